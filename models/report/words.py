"""The study's own words: what the report calls the two classes, and whose study it is.

A report speaks of the study behind its table, not of the simulator's or the article's:
the positive and negative classes are named as the table description names them
(``label.name``, ``label.negative_name``), the outcome, population, setting and reference
standard come from its ``study`` block (or are said to be unknown), and PPV and NPV are
restated at its ``prevalences``. The article's own context (its outcome after
immunotherapy, the melanoma and lung-cancer prevalences P1 and P2) is used only for the
simulated cohorts and for a table that keeps the contract's own label
(:attr:`features.description.TableDescription.keeps_contract_label`).

:func:`study_metrics` records all of it under ``metrics["study"]``; :func:`words_of` reads
it back for every table, figure and sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from features.article import PREVALENCE
from features.contract import LABEL
from features.description import (
    DEFAULT_NEGATIVE_NAME,
    DEFAULT_POSITIVE_NAME,
    TableDescription,
)

#: The article's prevalences (P1, P2) under the names reports give them.
ARTICLE_PREVALENCES: dict[str, float] = {"melanoma": PREVALENCE["melanoma"],
                                         "nsclc": PREVALENCE["nsclc"]}
#: How reports name the article's prevalences (P1 melanoma, P2 lung cancer).
ARTICLE_PREVALENCE_LABELS: dict[str, str] = {"melanoma": "P1 melanoma", "nsclc": "P2 lung"}


def probability_column(positive: str) -> str:
    """The predictions file's probability column: ``p_<name>``, spaces and other
    separators as underscores (``p_pseudoprogression`` for the contract's own name)."""
    return "p_" + "_".join(str(positive).replace("-", " ").replace("/", " ").split())


@dataclass(frozen=True)
class Words:
    """The names and context a report uses (see the module's docstring)."""

    positive: str = DEFAULT_POSITIVE_NAME
    negative: str = DEFAULT_NEGATIVE_NAME
    article: bool = True
    label_column: str = LABEL
    study: Mapping = field(default_factory=dict)

    @property
    def p(self) -> str:
        """``P(progression)``: the model's output."""
        return f"P({self.positive})"

    @property
    def probability_column(self) -> str:
        return probability_column(self.positive)

    @property
    def Positive(self) -> str:  # noqa: N802 - the capitalised word, for a sentence's start
        return self.positive[:1].upper() + self.positive[1:]

    @property
    def Negative(self) -> str:  # noqa: N802
        return self.negative[:1].upper() + self.negative[1:]

    def say(self, text: str) -> str:
        """``text`` written for the contract's own class (a statistic's note, "never calls
        pseudoprogression") with this study's names."""
        text = str(text)
        if self.positive == DEFAULT_POSITIVE_NAME:
            return text
        return text.replace(DEFAULT_NEGATIVE_NAME, self.negative).replace(
            DEFAULT_POSITIVE_NAME, self.positive)

    def prevalence_label(self, name: str) -> str:
        """How a restated prevalence is named (``P1 melanoma`` for the article's)."""
        return ARTICLE_PREVALENCE_LABELS.get(name, name) if self.article else name


def restated_prevalences(description: TableDescription | None) -> dict[str, float]:
    """The prevalences PPV and NPV are restated at: the study's own (``study.prevalences``),
    else the article's for the contract's own label, else none."""
    description = description or TableDescription()
    own = dict(description.study.get("prevalences") or {})
    if own:
        return own
    return dict(ARTICLE_PREVALENCES) if description.keeps_contract_label else {}


def study_metrics(description: TableDescription | None,
                  rules_left_out: Mapping[str, str] | None = None) -> dict:
    """``metrics["study"]``: the classes' names, the label column, the probability column,
    whether the article's context applies, the study's own sentences, the prevalences
    restated at, the declared rules and the article's rules left out (id: columns needed)."""
    description = description or TableDescription()
    study = dict(description.study)
    return {
        "positive_class": description.positive_name,
        "negative_class": description.negative_label,
        "label_column": description.label_column,
        "probability_column": probability_column(description.positive_name),
        "article_context": description.keeps_contract_label,
        **{k: v for k, v in study.items() if k != "prevalences"},
        "prevalences": restated_prevalences(description),
        "declared_rules": [{"id": r.id, "positive_when": r.positive_when,
                            "source": r.source} for r in description.rules],
        "rules_left_out": dict(rules_left_out or {}),
    }


def words_of(metrics: Mapping | None) -> Words:
    """The :class:`Words` of a metrics dict (``metrics["study"]``); the contract's own for
    metrics without one (an older model's)."""
    metrics = metrics or {}
    study = metrics.get("study") or {}
    positive = str(study.get("positive_class") or metrics.get("positive_class")
                   or DEFAULT_POSITIVE_NAME)
    default = positive == DEFAULT_POSITIVE_NAME
    negative = study.get("negative_class") or (DEFAULT_NEGATIVE_NAME if default
                                               else f"not {positive}")
    article = study.get("article_context")
    return Words(positive=positive, negative=str(negative),
                 article=default if article is None else bool(article),
                 label_column=str(study.get("label_column") or LABEL), study=study)
