"""The article's rule-based thresholds, and a study's own declared rules, as scikit-learn
compatible classifiers.

:class:`DeclaredRule` is a rule a table description declares (``rules:``, a condition of
:mod:`features.rule_grammar`); :func:`study_rules` gives the calls of every rule benchmarked
on a table: the article's rules whose inputs are columns of it (:func:`applicable_article_rules`)
and the declared ones.

Each rule says 1 (pseudoprogression) or 0 (true progression) from a few columns of the
contract, with the cut-offs of :data:`features.article.THRESHOLDS`. A row that lacks an
input the rule needs is an *abstention*: :meth:`ArticleRule.predict` returns NaN there,
and reports count it as lost coverage, never as 0 or 1.

Two rules need care:

- ``Q1a_symptoms`` needs only ``symptomatic``: a symptomatic patient with no steroid
  response on record counts as not relieved (0), as the contract says.
- ``Q1_four_part`` combines the article's four-part differential (Q1a to Q1d): it says
  pseudoprogression when the symptom criterion (Q1a) holds *and every objective criterion
  that is available* (Q1b perfusion rCBV, Q1c PET, Q1d ctDNA) points to pseudoprogression.
  It needs ``symptomatic`` and at least one objective criterion; otherwise it abstains.

:func:`risk_group` gives the article's T5/T6 triage: "low" when all three T5 criteria are
met, "high" as soon as any one is known not to be met (T6), empty when it cannot tell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from features.article import RULE_IDS, THRESHOLDS

#: A rule's inputs: column name -> float values, NaN where missing (:func:`_inputs`).
Inputs = Mapping[str, np.ndarray]


def _below(d: Inputs, key: str) -> np.ndarray:
    t = THRESHOLDS[key]
    return d[t.column] < t.value  # False where missing


def _above(d: Inputs, key: str) -> np.ndarray:
    t = THRESHOLDS[key]
    return d[t.column] > t.value  # False where missing


def _q1a(d: Inputs) -> np.ndarray:
    return (d["symptomatic"] == 0) | _above(d, "steroid_relief")


@dataclass(frozen=True)
class RuleSpec:
    """One rule: its id, the figure it comes from, the inputs it needs and its decision.

    ``decide`` maps the inputs (:data:`Inputs`) to a boolean array (True:
    pseudoprogression); it is only read on rows where every column in ``needs`` is present.
    """

    id: str
    figure: str
    says_pseudoprogression_when: str
    needs: tuple[str, ...]
    decide: Callable[[Inputs], np.ndarray]


def _thr(key: str) -> str:
    t = THRESHOLDS[key]
    return f"{t.value:g}"


RULES: dict[str, RuleSpec] = {
    r.id: r
    for r in [
        RuleSpec("D1_perfusion_diffusion", "D1",
                 f"rcbv < {_thr('rcbv_low')} and adc > {_thr('adc_high')}", ("rcbv", "adc"),
                 lambda d: _below(d, "rcbv_low") & _above(d, "adc_high")),
        RuleSpec("D2_mrs_cho_cr", "D2", f"cho_cr < {_thr('cho_cr_low')}", ("cho_cr",),
                 lambda d: _below(d, "cho_cr_low")),
        RuleSpec("D2_mrs_lactate", "D2", "lactate_peak == 0", ("lactate_peak",),
                 lambda d: d["lactate_peak"] == 0),
        RuleSpec("D3_ctdna_clearance", "D3", f"ctdna_change_pct < {_thr('ctdna_clearance')}",
                 ("ctdna_change_pct",), lambda d: _below(d, "ctdna_clearance")),
        RuleSpec("D4_cytokines", "D4",
                 f"il8_pg_ml > {_thr('il8_high')} and ifng_pg_ml > {_thr('ifng_high')}",
                 ("il8_pg_ml", "ifng_pg_ml"),
                 lambda d: _above(d, "il8_high") & _above(d, "ifng_high")),
        RuleSpec("D5_pathology", "D5",
                 f"cd8_tumor_ratio > {_thr('cd8_ratio_high')} and ki67_pct < {_thr('ki67_low')}",
                 ("cd8_tumor_ratio", "ki67_pct"),
                 lambda d: _above(d, "cd8_ratio_high") & _below(d, "ki67_low")),
        RuleSpec("Q1a_symptoms", "Q1a",
                 f"symptomatic == 0, or steroid_response_pct > {_thr('steroid_relief')}",
                 ("symptomatic",), _q1a),
        RuleSpec("Q1b_perfusion", "Q1b", f"rcbv < {_thr('rcbv_low')}", ("rcbv",),
                 lambda d: _below(d, "rcbv_low")),
        RuleSpec("Q1c_pet", "Q1c", f"suvmax_change_pct < {_thr('suvmax_rise_low')}",
                 ("suvmax_change_pct",), lambda d: _below(d, "suvmax_rise_low")),
        RuleSpec("Q1d_ctdna_trend", "Q1d", f"ctdna_change_pct < {_thr('ctdna_fall')}",
                 ("ctdna_change_pct",), lambda d: _below(d, "ctdna_fall")),
        RuleSpec("T5_low_risk", "T5",
                 f"symptomatic == 0 and ctdna_change_pct < {_thr('ctdna_fall')} and "
                 f"rcbv < {_thr('rcbv_low')}",
                 ("symptomatic", "ctdna_change_pct", "rcbv"),
                 lambda d: (d["symptomatic"] == 0) & _below(d, "ctdna_fall")
                 & _below(d, "rcbv_low")),
    ]
}

#: The objective parts of the four-part differential (Q1b to Q1d).
Q1_OBJECTIVE_PARTS: tuple[str, ...] = ("Q1b_perfusion", "Q1c_pet", "Q1d_ctdna_trend")
Q1_COMBINED_ID = "Q1_four_part"
Q1_COMBINATION = ("Q1a holds and every available objective criterion (Q1b rCBV, Q1c PET, "
                  "Q1d ctDNA) points to pseudoprogression; needs symptomatic and at least one "
                  "objective criterion")



def rule_inputs(rule_id: str) -> tuple[str, ...]:
    """The contract columns a rule reads, in a fixed order (the default order of an array's
    columns for :class:`ArticleRule`)."""
    if rule_id == Q1_COMBINED_ID:
        parts = ("Q1a_symptoms", *Q1_OBJECTIVE_PARTS)
        return tuple(dict.fromkeys(c for r in parts for c in rule_inputs(r)))
    if rule_id not in RULES:
        raise ValueError(f"unknown rule id {rule_id!r}; choose one of {RULE_IDS}")
    spec = RULES[rule_id]
    return (*spec.needs, "steroid_response_pct") if spec.id == "Q1a_symptoms" else spec.needs


def _inputs(X: pd.DataFrame, columns) -> Inputs:
    """The columns a rule reads, as float arrays (plain numpy: the rules are read on every
    prediction, and whole-array comparisons cost a fraction of pandas'); absent columns
    become all-missing."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError("rules read named columns: pass a pandas DataFrame in the column contract")
    missing = np.full(len(X), np.nan)
    return {c: _floats(X[c]) if c in X.columns else missing for c in columns}


def _floats(values: pd.Series) -> np.ndarray:
    """A column as floats, NaN where empty or not a number (a float column as it is)."""
    if values.dtype == np.float64:
        return values.to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _decide_spec(spec: RuleSpec, d: Inputs, present: Mapping[str, np.ndarray]) -> np.ndarray:
    """1.0 / 0.0 where the rule's inputs are present in ``d`` (``present``: each input's
    mask), NaN where it abstains."""
    covered = (present[spec.needs[0]] if len(spec.needs) == 1 else
               np.logical_and.reduce([present[c] for c in spec.needs]))
    return np.where(covered, np.asarray(spec.decide(d), dtype=bool), np.nan)


def _decide_four_part(parts: Mapping[str, np.ndarray]) -> np.ndarray:
    """The four-part differential from the decisions of its parts (Q1a to Q1d)."""
    q1a = parts["Q1a_symptoms"]
    objective = [parts[r] for r in Q1_OBJECTIVE_PARTS]
    any_available = np.logical_or.reduce([~np.isnan(v) for v in objective])
    all_agree = np.logical_and.reduce([v != 0.0 for v in objective])  # 1 or abstains (NaN)
    says = (q1a == 1.0) & all_agree
    return np.where(~np.isnan(q1a) & any_available, says.astype(float), np.nan)


def _decide_all(rule_ids, d: Inputs) -> dict[str, np.ndarray]:
    """Each rule's decisions on inputs ``d`` holding (at least) its inputs as floats; each
    input's missing values and each part of the four-part rule are found once."""
    present = {c: ~np.isnan(v) for c, v in d.items()}
    decided: dict[str, np.ndarray] = {}

    def decide(rule_id: str) -> np.ndarray:
        if rule_id not in decided:
            decided[rule_id] = (
                _decide_four_part({r: decide(r) for r in ("Q1a_symptoms", *Q1_OBJECTIVE_PARTS)})
                if rule_id == Q1_COMBINED_ID else _decide_spec(RULES[rule_id], d, present))
        return decided[rule_id]

    return {r: decide(r) for r in rule_ids}


class FixedRule(ClassifierMixin, BaseEstimator):
    """What every rule shares as a scikit-learn classifier: fixed cut-offs learn nothing
    from ``y`` (``fit`` only checks ``X`` and names the classes), missing values are allowed,
    ``predict`` gives ``classes_[1]`` / ``classes_[0]`` or NaN where the rule abstains,
    ``covers`` says where it does not, and ``score`` is the accuracy on those rows.
    Subclasses give ``_decisions(X)``: 1.0 / 0.0 / NaN per row."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = False
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.poor_score = True  # fixed cut-offs learn nothing from y
        return tags

    def _array_columns(self, X, reset: bool, needed) -> dict[str, np.ndarray]:
        """The ``needed`` columns of an array ``X`` (checked like scikit-learn input), found
        by ``columns``, the names seen by ``fit``, or else ``needed``'s order; all-missing
        where absent."""
        a = validate_data(self, X, reset=reset, dtype=float, ensure_all_finite="allow-nan")
        names = self.columns if self.columns is not None else \
            getattr(self, "feature_names_in_", needed)
        position = {str(c): j for j, c in enumerate(names) if j < a.shape[1]}
        return {c: a[:, position[c]] if c in position else np.full(a.shape[0], np.nan)
                for c in needed}

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` (by default 1.0: the rule says the positive class) /
        ``classes_[0]`` per row, NaN where the rule abstains."""
        return _as_classes(self._decisions(X), self.classes_)

    def covers(self, X) -> np.ndarray:
        """Boolean mask of the rows the rule decides (does not abstain on)."""
        return ~np.isnan(self._decisions(X))

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy on the covered rows only (NaN when the rule covers none)."""
        return _covered_accuracy(self, X, y, sample_weight)


class ArticleRule(FixedRule):
    """One of the article's rules as a scikit-learn classifier (``fit`` learns no parameter).

    Parameters
    ----------
    rule_id : one of :data:`RULE_IDS`.
    columns : the names of an array's columns, in order; None: the names seen by ``fit``
        on a DataFrame, else :func:`rule_inputs` of the rule. A DataFrame with text column
        names is read by those names (``columns`` unused); one with other names, like an
        array. Columns beyond the names are ignored, and a needed input with no column is
        missing (the rule abstains), as for a DataFrame without that column.

    ``predict(X)`` returns 1 (pseudoprogression), 0 (true progression) or NaN where the
    rule abstains, as floats. When ``fit`` is given labels ``y`` (two classes), the rule's
    1 and 0 are reported as ``classes_[1]`` and ``classes_[0]``, scikit-learn's positive and
    negative class. ``covers(X)`` says where the rule does not abstain. Inputs are read on
    their contract units; NaN is missing, infinity an error.
    """

    def __init__(self, rule_id: str = "D1_perfusion_diffusion", columns=None):
        self.rule_id = rule_id
        self.columns = columns

    def _check_id(self) -> None:
        if self.rule_id not in RULE_IDS:
            raise ValueError(f"unknown rule id {self.rule_id!r}; choose one of {RULE_IDS}")

    def _frame(self, X, reset: bool) -> Inputs:
        """The rule's inputs from ``X`` as floats (checked like scikit-learn input)."""
        needed = rule_inputs(self.rule_id)
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            validate_data(self, X, reset=reset, skip_check_array=True)
            d = _inputs(X, needed)
        else:
            d = self._array_columns(X, reset, needed)
        if any(np.isinf(v).any() for v in d.values()):
            raise ValueError(f"Input X contains infinity in a column {self.rule_id} reads "
                             f"({', '.join(needed)}); give a finite value or leave it empty.")
        return d

    def fit(self, X, y=None) -> ArticleRule:
        """Nothing to learn: checks ``X`` and, when given, the binary labels ``y`` whose
        classes name the rule's two decisions; returns self."""
        self._check_id()
        self._frame(X, reset=True)
        self.classes_ = _fit_classes(X, y, self.rule_id)
        return self

    def _decisions(self, X) -> np.ndarray:
        check_is_fitted(self, "classes_")
        self._check_id()
        return _decide_all([self.rule_id], self._frame(X, reset=False))[self.rule_id]



class DeclaredRule(FixedRule):
    """A rule a table description declares (``rules:``), as a scikit-learn classifier like
    :class:`ArticleRule` (``fit`` learns no parameter).

    Parameters
    ----------
    rule_id : the rule's name (``id`` in the description).
    positive_when : its condition (:mod:`features.rule_grammar`), e.g. ``"rcbv >= 1.75"``.
    columns : the names of an array's columns, in order; None: the names seen by ``fit``
        on a DataFrame, else the columns the condition reads, in reading order. A DataFrame
        with text column names is read by those names.

    ``predict(X)`` returns 1 (the positive class) where the condition holds, 0 where it does
    not and NaN where the rule abstains (a column it reads is missing on that row, or absent
    from ``X``), as floats; with labels given to ``fit`` the 1 and 0 are reported as
    ``classes_[1]`` and ``classes_[0]``. ``covers(X)`` says where it does not abstain. A
    condition that does not parse is a ValueError
    (:class:`~features.rule_grammar.RuleSyntaxError` with its position) at ``fit``.
    """

    def __init__(self, rule_id: str = "rule", positive_when: str = "x0 > 0", columns=None):
        self.rule_id = rule_id
        self.positive_when = positive_when
        self.columns = columns

    def _tree(self):
        from features.rule_grammar import parse

        return parse(self.positive_when)

    def inputs(self) -> tuple[str, ...]:
        """The columns the condition reads, in reading order."""
        from features.rule_grammar import columns

        return tuple(columns(self._tree()))

    def _frame(self, X, reset: bool) -> pd.DataFrame:
        needed = self.inputs()
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        return pd.DataFrame(self._array_columns(X, reset, needed))

    def fit(self, X, y=None) -> DeclaredRule:
        """Nothing to learn: parses the condition, checks ``X`` and, when given, the binary
        labels ``y`` whose classes name the rule's two decisions; returns self."""
        self._tree()
        self._frame(X, reset=True)
        self.classes_ = _fit_classes(X, y, self.rule_id)
        return self

    def _decisions(self, X) -> np.ndarray:
        from features.rule_grammar import evaluate

        check_is_fitted(self, "classes_")
        d = self._frame(X, reset=False)
        read = d[[c for c in self.inputs() if c in d.columns]]
        numbers = read.select_dtypes("number").to_numpy(dtype=float)
        if np.isinf(numbers).any():
            raise ValueError(f"Input X contains infinity in a column {self.rule_id} reads "
                             f"({', '.join(self.inputs())}); give a finite value or leave it "
                             "empty.")
        return evaluate(self._tree(), d)



def _fit_classes(X, y, rule_id: str) -> np.ndarray:
    """The two classes naming a rule's decisions: [0, 1] without ``y``, else ``y``'s."""
    if y is None:
        return np.array([0, 1])
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
    kind = type_of_target(y, input_name="y", raise_unknown=True)
    if kind != "binary":
        raise ValueError("Only binary classification is supported: a rule says the positive "
                         f"class or not. The type of the target is {kind}.")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"y holds one class only ({classes[0]!r}); {rule_id} needs both "
                         "classes to name its two decisions (or fit it without y).")
    return classes


def _as_classes(says: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """A rule's 1.0 / 0.0 / NaN as ``classes[1]`` / ``classes[0]`` / NaN."""
    if np.array_equal(classes, [0, 1]):
        return says
    covered = ~np.isnan(says)
    numeric = np.issubdtype(classes.dtype, np.number)
    out = np.full(len(says), np.nan, dtype=float if numeric else object)
    out[covered] = classes[says[covered].astype(int)]
    return out


def _covered_accuracy(rule, X, y, sample_weight=None) -> float:
    """A rule's accuracy on the rows it covers (NaN when it covers none)."""
    keep = rule.covers(X)
    if not keep.any():
        return float("nan")
    pred = rule.predict(X)[keep]
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)[keep]
    return float(np.average(pred == np.asarray(y)[keep], weights=w))


def declared_rules(description) -> list[DeclaredRule]:
    """The :class:`DeclaredRule` of each rule a table description declares (its ``rules``,
    :class:`features.description.RuleDeclaration`), in order; none for None."""
    return [DeclaredRule(r.id, r.positive_when)
            for r in getattr(description, "rules", None) or ()]


def apply_declared_rules(X: pd.DataFrame, description) -> pd.DataFrame:
    """Each declared rule's decision per row of the canonical table ``X`` (1.0 / 0.0 / NaN),
    columns named by id. A rule names columns as the user's table does; a renamed contract
    column is read under its contract name (``description.rule_columns()``)."""
    mapping = description.rule_columns() if description is not None else {}
    out = {}
    for rule in declared_rules(description):
        frame = pd.DataFrame({c: X[mapping.get(c, c)] if mapping.get(c, c) in X.columns
                              else np.nan for c in rule.inputs()}, index=X.index)
        out[rule.rule_id] = rule.fit(frame).predict(frame)
    return pd.DataFrame(out, index=X.index)


def study_rules(X: pd.DataFrame, description=None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rules benchmarked on the canonical table ``X``: the article's rules whose inputs
    are columns of ``X`` (:func:`applicable_article_rules`), then the rules ``description``
    declares; and the article's rules left out, with the columns each needs."""
    calls, left_out = study_rule_decisions(X, description)
    return pd.DataFrame(calls, index=X.index), left_out


def study_rule_decisions(X: pd.DataFrame, description=None
                         ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """:func:`study_rules` as one array per rule id (what a prediction needs, without
    building a frame)."""
    kept, left_out = applicable_article_rules(X.columns)
    calls = rule_decisions(X, kept) if kept else {}
    declared = apply_declared_rules(X, description)
    return calls | {r: declared[r].to_numpy(dtype=float) for r in declared.columns}, left_out


def article_rule_needs(rule_id: str) -> str:
    """The columns an article rule needs, in words (``rcbv and adc``)."""
    if rule_id == Q1_COMBINED_ID:
        return "symptomatic and one of rcbv, suvmax_change_pct, ctdna_change_pct"
    return " and ".join(RULES[rule_id].needs)


def applicable_article_rules(columns) -> tuple[list[str], dict[str, str]]:
    """The article's rules a table with ``columns`` can be benchmarked on, and those it
    cannot with the columns each needs: a rule is left out when a column it needs is not in
    the table (the four-part rule: ``symptomatic``, or every objective input)."""
    present = set(columns)
    kept, left_out = [], {}
    for rid in RULE_IDS:
        if rid == Q1_COMBINED_ID:
            objective = {c for r in Q1_OBJECTIVE_PARTS for c in RULES[r].needs}
            usable = "symptomatic" in present and bool(objective & present)
        else:
            usable = set(RULES[rid].needs) <= present
        if usable:
            kept.append(rid)
        else:
            left_out[rid] = article_rule_needs(rid)
    return kept, left_out


def apply_rules(X: pd.DataFrame, rule_ids=RULE_IDS) -> pd.DataFrame:
    """Every rule's decision per row (1.0 / 0.0 / NaN for abstention), columns named by id.

    A table with named columns is read once for all the rules (what :class:`ArticleRule`
    does per rule, with the same checks); anything else goes through each rule's
    estimator."""
    rule_ids = list(rule_ids)
    if not (isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns)):
        return pd.DataFrame({r: ArticleRule(r).fit(X).predict(X) for r in rule_ids},
                            index=getattr(X, "index", None))
    return pd.DataFrame(rule_decisions(X, rule_ids), index=X.index)


def rule_decisions(X: pd.DataFrame, rule_ids=RULE_IDS) -> dict[str, np.ndarray]:
    """:func:`apply_rules` of a table with named columns, as one array per rule id (what
    a prediction needs, without building a frame)."""
    rule_ids = list(rule_ids)
    for r in rule_ids:
        ArticleRule(r)._check_id()
    needed = list(dict.fromkeys(c for r in rule_ids for c in rule_inputs(r)))
    d = _inputs(X, needed)
    infinite = [c for c in needed if np.isinf(d[c]).any()]
    if infinite:
        first = next(r for r in rule_ids if set(rule_inputs(r)) & set(infinite))
        raise ValueError(f"Input X contains infinity in a column {first} reads "
                         f"({', '.join(rule_inputs(first))}); give a finite value or leave it "
                         "empty.")
    return _decide_all(rule_ids, d)


def describe_rules() -> pd.DataFrame:
    """A table of the rules: id, figure, what it says and what it needs."""
    rows = [{"rule": r.id, "figure": r.figure,
             "pseudoprogression_when": r.says_pseudoprogression_when,
             "needs": ", ".join(r.needs)} for r in RULES.values()]
    rows.append({"rule": Q1_COMBINED_ID, "figure": "Q1a-Q1d",
                 "pseudoprogression_when": Q1_COMBINATION,
                 "needs": "symptomatic and one of rcbv, suvmax_change_pct, ctdna_change_pct"})
    return pd.DataFrame(rows)


def risk_group(X: pd.DataFrame) -> pd.Series:
    """The article's triage: "low" (T5: all three met), "high" (T6: any one known not met).

    Empty string where the known criteria are all met but one is missing, so T5/T6
    cannot be decided.
    """
    t5 = RULES["T5_low_risk"]
    d = _inputs(X, t5.needs)  # symptomatic, ctdna_change_pct, rcbv: met as below
    met = [d["symptomatic"] == 0, _below(d, "ctdna_fall"), _below(d, "rcbv_low")]
    known = [~np.isnan(d[c]) for c in t5.needs]
    any_failed = np.logical_or.reduce([k & ~m for k, m in zip(known, met, strict=True)])
    all_met = np.logical_and.reduce([k & m for k, m in zip(known, met, strict=True)])
    groups = np.where(any_failed, 1, np.where(all_met, 2, 0))
    # text taken from three words, not made per row from a numpy string array (100x faster)
    return pd.Series(["", "high", "low"]).take(groups).set_axis(X.index).rename("risk_group")


def warn_empty_columns(table: pd.DataFrame, source: str = "the table") -> list[str]:
    """One warning naming the model columns of ``table`` (canonical) that are empty in every
    row, each with the rules it leaves without an input on every lesion (a rule that still
    decides from its other inputs, as the four-part differential may, is not named).
    Returns those columns."""
    import warnings

    from features.contract import model_columns

    empty = [c for c in model_columns(table.columns) if table[c].isna().all()]
    if not empty:
        return []
    try:
        calls = apply_rules(table)
    except ValueError:  # infinite inputs: validation names them elsewhere
        return empty
    silent = {r for r in RULE_IDS if calls[r].isna().all()}
    parts = []
    for c in empty:
        rules = [r for r in RULE_IDS if r in silent and c in rule_inputs(r)]
        parts.append(f"{c} (disables {', '.join(rules)})" if rules else
                     f"{c} (no rule reads it)")
    warnings.warn(
        f"{source}: {len(empty)} column(s) are empty in every row: {'; '.join(parts[:12])}"
        f"{' ...' if len(parts) > 12 else ''}. The model learns nothing from them and those "
        "rules abstain on every lesion; check the column's name and the export.",
        UserWarning, stacklevel=2)
    return empty
