"""A table description: how a user's own table maps onto the column contract.

A small YAML file names the patient, lesion and label columns, the label's values, contract
columns the table holds under other names (``rename``), extra model features (``features``)
and columns to drop silently (``ignore``)::

    patient: patientName
    lesion: lesion_no
    label: {column: statusIfPD, positive: yes, negative: no, name: pseudoprogression,
            negative_name: true progression, missing: skip}
    rename: {rCBV_max: rcbv}
    features:
      - {columns: ["original_*", "wavelet.*"], kind: number, block: radiomic}
      - {columns: [kps], kind: number, range: [0, 100]}
    ignore: ["Unnamed..0"]
    rules:
      - {id: rcbv_175, positive_when: "rcbv >= 1.75", source: "Hu et al. 2009"}
    study:
      outcome: pseudoprogression at the first enlarging scan after treatment
      reference_standard: follow-up MRI at 12 weeks or biopsy
      prevalences: {melanoma: 0.098}

Without ``lesion``, a ``lesion_id`` column is used when the table has one; otherwise rows
sharing a patient are that patient's lesions, numbered "1", "2", ... in order of appearance.
Label values compare as stripped, case-insensitive text, with yes/true/1 alike and
no/false/0 alike (:func:`label_token`). Columns matching the project's radiomic naming
(:func:`features.contract.is_radiomic`) count as declared, in the radiomic block.

``label.name`` and ``label.negative_name`` (default "not <name>", or "true progression" for
the contract's own label) name the two classes in every report; ``label.missing: skip``
leaves rows with an empty label out of training and evaluation (counted in
:attr:`DescribedTable.unlabelled`) instead of refusing them. ``rules`` declares the
thresholds of the user's field (:class:`RuleDeclaration`, conditions in the grammar of
:mod:`features.rule_grammar`), benchmarked beside the model like the article's; ``study``
(:data:`STUDY_KEYS`) describes the study for the report.

:meth:`TableDescription.apply` returns the table in the contract's canonical form
(``patient_id``, ``lesion_id``, 0/1 ``pseudoprogression``, contract columns, declared
features), checked by :func:`features.contract.validate_table`. Every problem found is
reported at once in one :class:`UserInputError`, each naming the key to change and how.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from features.article import RULE_IDS
from features.contract import (
    BY_NAME,
    FEATURE_COLUMNS,
    ID,
    KEY_COLUMNS,
    LABEL,
    LESION,
    check_table,
    format_problems,
    id_text,
    is_radiomic,
    lesion_numbers,
    validate_table,
    warn_similar_ids,
)
from features.errors import UserInputError, quoted
from features.rule_grammar import RuleSyntaxError, parse, type_problems
from features.rule_grammar import columns as rule_columns
from features.yamlfile import load_yaml

#: What a declared feature column holds.
KINDS: tuple[str, ...] = ("number", "binary", "category")
#: Blocks a feature may join: ``radiomic`` is reduced like the radiomic columns, in the folds.
BLOCKS: tuple[str, ...] = ("radiomic",)
TOP_KEYS: tuple[str, ...] = ("patient", "lesion", "label", "rename", "features", "ignore",
                             "scans", "rules", "study")
#: Keys under ``scans`` (the long table of follow-up scans, :mod:`features.scans`).
SCANS_KEYS: tuple[str, ...] = ("rename",)
#: Columns only a scans table has (besides the contract's ``weeks_on_treatment`` and the
#: per-scan contract columns): the lesion's size as volume (ml, or declared in mm^3 or cm^3,
#: converted to ml) or SPD (mm^2), and the flag of the scan that raised the question.
SCAN_ONLY_COLUMNS: tuple[str, ...] = ("volume_ml", "volume_mm3", "volume_cm3", "spd_mm2",
                                      "index_scan")
LABEL_KEYS: tuple[str, ...] = ("column", "positive", "negative", "name", "negative_name",
                               "missing")
#: What to do with a row whose label is empty: refuse the table, or leave the row out.
LABEL_MISSING: tuple[str, ...] = ("error", "skip")
#: The contract's own name of the positive class (and of its label column).
DEFAULT_POSITIVE_NAME = "pseudoprogression"
#: The contract's own name of the negative class.
DEFAULT_NEGATIVE_NAME = "true progression"
RULE_KEYS: tuple[str, ...] = ("id", "positive_when", "source")
#: Keys of ``study``: sentences describing the study, and the prevalences at which PPV and
#: NPV are restated (name: fraction).
STUDY_KEYS: tuple[str, ...] = ("outcome", "population", "setting", "reference_standard",
                               "prevalences")
_RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
FEATURE_KEYS: tuple[str, ...] = ("columns", "kind", "block", "range")
DEFAULT_SOURCE = "the table description"
STORED_SOURCE = "the table description stored in the model"
#: Above this many undeclared columns the warning groups them by prefix.
GROUP_UNDECLARED_ABOVE = 20

_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})
_WILDCARD = re.compile(r"[*?\[]")


# --------------------------------------------------------------------------- small helpers


def label_tokens(values: pd.Series) -> pd.Series:
    """:func:`label_token` of every value of ``values`` (same index), each distinct value
    converted once: a label column holds a few distinct values in many rows."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    tokens = np.array([label_token(u) for u in uniques] + [None], dtype=object)
    return pd.Series(tokens[codes], index=values.index, dtype=object)


def label_token(value) -> str | None:
    """A label (or binary) value as comparable text, None when empty.

    Stripped and lower case; numbers in their shortest form ("1.0" is "1"); 1, true and yes
    are all "1", 0, false and no all "0". So "Yes", True, 1, "1" and 1.0 compare equal.
    """
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    text = str(value).strip().lower()
    if text in ("", "nan", "none", "<na>"):
        return None
    try:
        num = float(text)
    except ValueError:
        num = None
    if num is not None and math.isfinite(num):
        text = str(int(num)) if num == int(num) else repr(num)
    if text in _TRUE:
        return "1"
    if text in _FALSE:
        return "0"
    return text


def _is_pattern(name: str) -> bool:
    return bool(_WILDCARD.search(name))


def _matches(name: str, pattern: str) -> bool:
    """``name`` equals ``pattern`` or matches it as a shell-style (fnmatch) pattern."""
    return name == pattern or (_is_pattern(pattern) and fnmatch.fnmatchcase(name, pattern))


def _did_you_mean(word: str, choices, what: str = "") -> str:
    """" Did you mean 'x'?" for the closest of ``choices`` (case-insensitive first), or ''."""
    choices = [str(c) for c in choices]
    same_case = [c for c in choices if c.lower() == str(word).lower() and c != word]
    close = same_case or difflib.get_close_matches(str(word), choices, n=3, cutoff=0.6)
    if not close:
        return ""
    return f" Did you mean {' or '.join(repr(c) for c in close)}{what}?"


def _few(names, n: int = 8) -> str:
    names = [str(c) for c in names]
    more = f", ... ({len(names)} in all)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def _shown(values) -> str:
    return ", ".join(repr(v) for v in values)


def _raise(title: str, problems: list[str]) -> None:
    """One :class:`UserInputError` listing every problem (see
    :func:`features.contract.format_problems`)."""
    raise UserInputError(format_problems(title, problems))


def group_columns(names: list[str], limit: int = GROUP_UNDECLARED_ABOVE) -> str:
    """``names`` in full, or grouped by prefix when there are more than ``limit``.

    The prefix is the part before the first ``_`` (or, without one, the first ``.``):
    ``wavelet.LLH_firstorder_Mean`` falls in ``wavelet.LLH_* (312 columns)``.
    """
    if len(names) <= limit:
        return ", ".join(names)
    groups: dict[str, list[str]] = {}
    for name in names:
        cut = name.find("_")
        sep = "_"
        if cut <= 0:
            cut, sep = name.find("."), "."
        key = f"{name[:cut]}{sep}*" if cut > 0 else name
        groups.setdefault(key, []).append(name)
    return ", ".join(f"{key} ({len(members)} columns)" if len(members) > 1 else members[0]
                     for key, members in groups.items())


def _yaml_loader() -> type:
    """YAML's safe loader, except that yes/no/on/off stay text (only true/false are
    booleans), so ``positive: yes`` is the text "yes" and ``patient: no`` a column name."""
    bool_tag = "tag:yaml.org,2002:bool"

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != bool_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    return Loader


def _plain(value):
    """A numpy scalar as the Python scalar it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------- the description


@dataclass(frozen=True)
class FeatureGroup:
    """Extra model features: column names or shell-style patterns and what they hold.

    kind: number, binary (0/1, yes/no or true/false) or category. block: ``radiomic`` to
    reduce them like radiomic columns inside the folds, or None. range: (low, high) in the
    column's own unit for a number; a value outside is an error.
    """

    patterns: tuple[str, ...]
    kind: str = "number"
    block: str | None = None
    range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        patterns = (self.patterns,) if isinstance(self.patterns, str) else self.patterns
        object.__setattr__(self, "patterns", tuple(patterns))
        if self.range is not None and not isinstance(self.range, str):
            object.__setattr__(self, "range", tuple(_plain(v) for v in self.range))


@dataclass(frozen=True)
class DeclaredFeature:
    """How the model should treat one declared extra column (see :class:`FeatureGroup`)."""

    kind: str = "number"
    block: str | None = None
    range: tuple[float, float] | None = None


_RADIOMIC = DeclaredFeature("number", "radiomic", None)


@dataclass(frozen=True)
class RuleDeclaration:
    """A rule of the user's field: ``id`` (letters, digits, ``_ . -``), ``positive_when`` (a
    condition of :mod:`features.rule_grammar` on the table's columns, under the table's own
    names) and an optional ``source`` shown in the report."""

    id: str
    positive_when: str
    source: str = ""


@dataclass
class DescribedTable:
    """A user's table in canonical form, and what :meth:`TableDescription.apply` learnt.

    table: ``patient_id``, ``lesion_id``, contract columns, declared features and, when the
    table had labels, ``pseudoprogression`` (0/1). features: each declared extra column.
    positive_name: how reports name the positive class. undeclared: dropped columns.
    unlabelled: with ``label.missing: skip``, the rows left out for an empty label:
    ``{"n": rows, "values": {the empty value as found: rows}}`` (empty when none).
    """

    table: pd.DataFrame
    features: dict[str, DeclaredFeature]
    positive_name: str
    n_patients: int
    n_lesions: int
    undeclared: list[str]
    description: TableDescription | None = None
    unlabelled: dict = field(default_factory=dict)


def _as_tuple(values) -> tuple:
    if values is None:
        return ()
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        return (_plain(values),)
    return tuple(_plain(v) for v in values)


@dataclass(frozen=True)
class TableDescription:
    """How a table's columns map onto the contract; ``TableDescription()`` describes a table
    already in the contract (``patient_id``, label ``pseudoprogression`` 1/0)."""

    patient_column: str = ID
    lesion_column: str | None = None
    label_column: str = LABEL
    positive: tuple = (1,)
    negative: tuple = (0,)
    positive_name: str = DEFAULT_POSITIVE_NAME
    rename: dict[str, str] = field(default_factory=dict)
    features: tuple[FeatureGroup, ...] = ()
    ignore: tuple[str, ...] = ()
    #: ``{your column: scan column}`` for the scans table (``scans: rename:`` in YAML).
    scans_rename: dict[str, str] = field(default_factory=dict)
    #: The negative class's name; None: "not <positive_name>" (the contract's own label:
    #: "true progression"), see :attr:`negative_label`.
    negative_name: str | None = None
    #: ``error`` (refuse rows with an empty label) or ``skip`` (leave them out).
    label_missing: str = "error"
    rules: tuple[RuleDeclaration, ...] = ()
    #: ``outcome``, ``population``, ``setting``, ``reference_standard`` (text) and
    #: ``prevalences`` (name: fraction) of :data:`STUDY_KEYS`; absent keys are unknown.
    study: dict = field(default_factory=dict)
    source: str = field(default=DEFAULT_SOURCE, compare=False, repr=False)
    #: Read back from a model file: it cannot be edited there, only the table can (or
    #: another description given with --table); see :meth:`stored_in_model`.
    from_model: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "positive", _as_tuple(self.positive))
        object.__setattr__(self, "negative", _as_tuple(self.negative))
        object.__setattr__(self, "rename", dict(self.rename or {}))
        object.__setattr__(self, "scans_rename", dict(self.scans_rename or {}))
        object.__setattr__(self, "features", tuple(self.features or ()))
        object.__setattr__(self, "ignore", _as_tuple(self.ignore))
        object.__setattr__(self, "rules", tuple(
            r if isinstance(r, RuleDeclaration) else RuleDeclaration(**r)
            for r in self.rules or ()))
        object.__setattr__(self, "study", dict(self.study or {}))
        problems = _meaning_problems(self)
        if problems:
            _raise(f"{self.source} is not usable", problems)

    @property
    def negative_label(self) -> str:
        """The negative class's name: ``negative_name``, else "true progression" for the
        contract's own label and "not <positive_name>" for any other."""
        if self.negative_name:
            return self.negative_name
        return DEFAULT_NEGATIVE_NAME if self.keeps_contract_label else \
            f"not {self.positive_name}"

    @property
    def keeps_contract_label(self) -> bool:
        """The table keeps the contract's own label, pseudoprogression (under any column
        name): the article's context (its outcome, populations and prevalences) is the
        study's."""
        return self.positive_name == DEFAULT_POSITIVE_NAME

    # ------------------------------------------------------------------ reading and writing

    @classmethod
    def from_yaml(cls, path: str | Path) -> TableDescription:
        """Read a YAML table description; :class:`UserInputError` for a missing file, a YAML
        syntax error (with its line) or any schema problem."""
        path = Path(path)
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "not found"
            raise UserInputError(f"table description {what}: {path}. Check the path.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserInputError(f"could not read the table description {path} as UTF-8 "
                                 f"text: {exc}.") from None
        try:
            data = load_yaml(text, f"the table description {path}", _yaml_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise UserInputError(
                f"the table description {path} is not valid YAML{where}: {problem}. Check the "
                "indentation there, and quote names holding ':', '#', '*' or '['.") from None
        return cls.from_dict(data, source=f"the table description {path}")

    @classmethod
    def stored_in_model(cls, d) -> TableDescription:
        """The description a model file carries (:meth:`from_dict`), marked as read back
        from it (``from_model``)."""
        return replace(cls.from_dict(d, source=STORED_SOURCE), from_model=True)

    @classmethod
    def from_dict(cls, d, source: str = DEFAULT_SOURCE) -> TableDescription:
        """Build from a parsed YAML mapping (None or {} for the defaults); every schema
        problem is reported in one :class:`UserInputError`."""
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise UserInputError(
                f"{source} must be a mapping of keys ({', '.join(TOP_KEYS)}) to values; "
                f"found {type(d).__name__}. Start each line with a key, e.g. 'patient: id'.")
        problems: list[str] = []
        _unknown_keys(d, TOP_KEYS, "", problems)
        kw: dict = {"source": source}
        kw["patient_column"] = _name(d.get("patient", ID), "patient", problems, ID)
        if d.get("lesion") is not None:
            kw["lesion_column"] = _name(d["lesion"], "lesion", problems, None)
        kw.update(_label(d.get("label"), problems))
        kw["rename"] = _rename(d.get("rename"), problems)
        kw["features"] = _features(d.get("features"), problems)
        kw["ignore"] = _names(d.get("ignore"), "ignore", problems, allow_empty=True)
        kw["scans_rename"] = _scans(d.get("scans"), problems)
        kw["rules"] = _rules(d.get("rules"), problems)
        kw["study"] = _study(d.get("study"), problems)
        problems += _meaning_problems(_Fields(**kw))
        if problems:
            _raise(f"{source} has problems", problems)
        return cls(**kw)

    def to_dict(self) -> dict:
        """Plain dicts, lists, text and numbers; :meth:`from_dict` gives this back."""
        return {
            "patient": self.patient_column,
            "lesion": self.lesion_column,
            "label": {"column": self.label_column, "positive": list(self.positive),
                      "negative": list(self.negative), "name": self.positive_name,
                      "negative_name": self.negative_name, "missing": self.label_missing},
            "rename": dict(self.rename),
            "features": [{"columns": list(g.patterns), "kind": g.kind, "block": g.block,
                          "range": None if g.range is None else [float(v) for v in g.range]}
                         for g in self.features],
            "ignore": list(self.ignore),
            "scans": {"rename": dict(self.scans_rename)},
            "rules": [{"id": r.id, "positive_when": r.positive_when, "source": r.source}
                      for r in self.rules],
            "study": dict(self.study),
        }

    def with_overrides(self, patient_column: str | None = None,
                       label_column: str | None = None,
                       positive=None) -> TableDescription:
        """A copy with the command line's ``--patient-column``, ``--label-column`` and
        ``--positive`` (text such as "yes" or "1", or a list) in place of the file's."""
        changes: dict = {}
        if patient_column is not None:
            changes["patient_column"] = patient_column
        if label_column is not None:
            changes["label_column"] = label_column
        if positive is not None:
            changes["positive"] = _as_tuple(positive)
        if not changes:
            return self
        source = f"{self.source} with --patient-column, --label-column or --positive"
        probe = _Fields(**{**_fields_of(self), **changes, "source": source})
        problems = _meaning_problems(probe)
        if problems:
            _raise(f"{source} is not usable", problems)
        return replace(self, **changes)

    # ------------------------------------------------------------------ applying it

    def apply(self, df: pd.DataFrame, require_label: bool = False,
              source: str = "the table") -> DescribedTable:
        """The table ``df`` (not modified) in canonical form; see :class:`DescribedTable`.

        ``require_label``: the label column must be present and filled (training and
        evaluation). Raises :class:`UserInputError` listing every mismatch between the
        description and the table; warns once about undeclared columns it drops.
        """
        if not isinstance(df, pd.DataFrame):
            raise UserInputError(f"{source} must be a pandas DataFrame, got {type(df).__name__}.")
        src = df.copy(deep=False)
        src.columns = [str(c) for c in df.columns]
        names = list(src.columns)
        doubled = sorted(c for c, n in Counter(names).items() if n > 1)
        if doubled:
            raise UserInputError(f"{source} has several columns named {_shown(doubled)}; "
                                 "give each column its own name.")
        problems: list[str] = []
        plan = _Plan(self, names, source, problems)
        patients = self._patients(src, plan, problems)
        lesions = self._lesions(src, patients, plan, problems)
        labels = self._labels(src, plan, require_label, patients, problems)
        plan.route()
        declared: dict[str, DeclaredFeature] = {}
        values: dict[str, pd.Series] = {}
        for name, (feature, where) in plan.declared.items():
            converted = _convert(src[name], name, feature, where, problems)
            if converted is not None:
                declared[name], values[name] = feature, converted
        if problems:
            _raise(f"{source} does not match {self.source}",
                   problems + self._contract_problems(src, plan))

        data: dict[str, pd.Series] = {ID: patients.astype(object), LESION: lesions}
        for name in names:
            if name in plan.contract:
                data[name] = src[name]
            elif name in self.rename:
                data[self.rename[name]] = src[name]
            elif name in values:
                data[name] = values[name]
        if labels is not None:
            data[LABEL] = labels
        out = pd.DataFrame(data, index=src.index)
        rule_problems = self._rule_problems(out, names, plan)
        if rule_problems:
            _raise(f"{source} does not match the rules of {self.source}", rule_problems)
        unlabelled: dict = {}
        if labels is not None and require_label and self.label_missing == "skip":
            empty = out[LABEL].isna()
            if empty.any():
                raw = src[self.label_column][empty.to_numpy()]
                shown = raw.map(lambda v: "(empty cell)" if v is None or (
                    not isinstance(v, str) and bool(pd.isna(v))) or not str(v).strip()
                    else repr(str(v).strip()))
                unlabelled = {"n": int(empty.sum()), "column": self.label_column,
                              "values": {str(k): int(n) for k, n in
                                         shown.value_counts().items()}}
                out = out[~empty]
        if plan.undeclared:
            warnings.warn(
                f"{source}: dropping {len(plan.undeclared)} column(s) that {self.source} does "
                f"not declare: {group_columns(plan.undeclared)}. Declare them under 'features' "
                "to use them, or list them under 'ignore' to drop them without this warning.",
                UserWarning, stacklevel=2)
        try:
            table = validate_table(out, require_label=require_label, source=source)
        except UserInputError as exc:
            raise UserInputError(f"{exc}{self._where_from(str(exc))}") from None
        return DescribedTable(
            table=table, features=declared, positive_name=self.positive_name,
            n_patients=int(table[ID].nunique()), n_lesions=int(len(table)),
            undeclared=list(plan.undeclared), description=self, unlabelled=unlabelled)

    def rule_columns(self) -> dict[str, str]:
        """``{name as written in a rule: the canonical table's column}``: a contract column
        under the table's own name (``rename``) or its own; any other name unchanged."""
        return {name: target for name, target in self.rename.items()}

    def _rule_problems(self, out: pd.DataFrame, names: list[str], plan: _Plan) -> list[str]:
        """Each declared rule's columns, read in the canonical table ``out``: a name that is
        no column of the table, one the model cannot use, or a comparison of a text column
        with a number (or of a number column with text)."""
        problems: list[str] = []
        mapping = self.rule_columns()
        for i, rule in enumerate(self.rules):
            where = f"rules[{i}] ({rule.id}).positive_when"
            tree = parse(rule.positive_when)
            is_text = {}
            for name in rule_columns(tree):
                target = mapping.get(name, name)
                if target in out.columns and target not in (ID, LESION, LABEL):
                    is_text[name] = not pd.api.types.is_numeric_dtype(out[target])
                elif name in names:
                    problems.append(
                        f"{where}: column '{name}' is in the table but not among the columns "
                        "the model may use (the patient, lesion or label column, ignored, or "
                        "undeclared); a rule reads the model's inputs: declare it under "
                        "features (or rename it onto a contract column).")
                else:
                    problems.append(f"{where}: '{name}' is no column of the table."
                                    f"{_did_you_mean(name, names)} Columns found: "
                                    f"{_few(names)}. Correct the name (in backquotes when it "
                                    "holds characters other than letters, digits, _ and .).")
            problems += [f"{where}: {p}." for p in type_problems(tree, is_text)]
        return problems

    def _patients(self, src: pd.DataFrame, plan: _Plan, problems: list[str]) -> pd.Series:
        if not plan.has(self.patient_column):
            plan.missing("patient", self.patient_column, "the patient identifier")
            return pd.Series(pd.NA, index=src.index, dtype="string")
        ids = id_text(src[self.patient_column])
        warn_similar_ids(src[self.patient_column], plan.source, "patient")
        if ids.isna().any():
            rows = _few([str(i) for i in np.flatnonzero(ids.isna().to_numpy()) + 1], 5)
            problems.append(
                f"patient: the patient column '{self.patient_column}' is empty in "
                f"{int(ids.isna().sum())} row(s) (data rows {rows}); give every row its "
                "patient.")
        return ids

    def _lesions(self, src: pd.DataFrame, patients: pd.Series, plan: _Plan,
                 problems: list[str]) -> pd.Series:
        column = plan.lesion_column
        if column is None:
            return lesion_numbers(patients)
        if not plan.has(column):
            plan.missing("lesion", column, "each patient's lesion",
                         "Set lesion to the right column name, or leave it out to number "
                         "each patient's rows in order.")
            return lesion_numbers(patients)
        lesions = id_text(src[column])
        if lesions.isna().any():
            problems.append(
                f"lesion: the lesion column '{column}' is empty in "
                f"{int(lesions.isna().sum())} row(s); give every lesion an id, or leave "
                "'lesion' out so that each patient's rows are numbered in order.")
        pairs = pd.DataFrame({"p": patients.to_numpy(), "l": lesions.to_numpy()}).dropna()
        dup = pairs[pairs.duplicated()].drop_duplicates()
        if len(dup):
            shown = ", ".join(f"{p}/{les}" for p, les in dup.head(5).itertuples(index=False))
            problems.append(
                f"lesion: the pair ('{self.patient_column}', '{column}') must be "
                f"unique (one row per lesion); repeated: {shown}"
                f"{' ...' if len(dup) > 5 else ''}. Give each lesion of a patient its own id.")
        return lesions.astype(object)

    def _labels(self, src: pd.DataFrame, plan: _Plan, require_label: bool,
                patients: pd.Series, problems: list[str]) -> pd.Series | None:
        col = self.label_column
        if not plan.has(col):
            if require_label:
                plan.missing("label.column", col,
                             f"the label: {_shown(self.positive)} for {self.positive_name}")
            return None
        tokens = label_tokens(src[col])
        pos = {label_token(v) for v in self.positive}
        neg = {label_token(v) for v in self.negative}
        unknown = tokens.notna() & ~tokens.isin(pos | neg)
        if unknown.any():
            raw = src[col].astype("string").str.strip()
            counts = raw.value_counts(dropna=True)
            found = ", ".join(f"{v!r} ({n} row{'s' if n > 1 else ''})"
                              for v, n in counts.head(10).items())
            odd = raw[unknown].unique()[:5]
            problems.append(
                f"label: the label column '{col}' holds {_shown(odd)} in "
                f"{int(unknown.sum())} row(s), neither label.positive ({_shown(self.positive)}) "
                f"nor label.negative ({_shown(self.negative)}). Values found: {found}. Set "
                f"label.positive to the value(s) meaning {self.positive_name} and "
                "label.negative to those of the other class, as a list when several (e.g. "
                f"negative: [{', '.join(map(str, [*self.negative, odd[0]]))}] if "
                f"'{odd[0]}' belongs there); a row of unknown class belongs in neither: take "
                "it out of the table.")
        empty = tokens.isna()
        if require_label and empty.any() and self.label_missing != "skip":
            who = _few(pd.unique(patients[empty].dropna()), 5)
            problems.append(
                f"label: the label column '{col}' is empty in {int(empty.sum())} row(s) "
                f"(patients {who}); every row used for training or evaluation needs its "
                "label: fill them in, or write missing: skip under label to leave those rows "
                "out.")
        return pd.Series(np.where(tokens.isin(pos), 1.0, np.where(tokens.isin(neg), 0.0,
                                                                   np.nan)), index=src.index)

    def _contract_problems(self, src: pd.DataFrame, plan: _Plan) -> list[str]:
        """The contract's problems with the values of ``src``'s contract and renamed columns,
        so that a table at odds with its description hears about its values in the same
        message (identifiers and labels are checked by the description itself)."""
        keys = {ID, LESION, LABEL}
        data = {ID: [f"row {i + 1}" for i in range(len(src))]}
        for name in plan.contract:
            data[name] = src[name].to_numpy()
        for name, target in self.rename.items():
            if plan.has(name) and target not in keys and target not in data:
                data[target] = src[name].to_numpy()
        found = check_table(pd.DataFrame(data, index=src.index)).problems
        return [f"{p}{self._where_from(p)}" for p in found]

    def _where_from(self, message: str) -> str:
        """A note naming the user's column behind a canonical name in a contract message."""
        origin = {target: f"'{name}' in the table, renamed by 'rename'"
                  for name, target in self.rename.items()}
        if self.patient_column != ID:
            origin[ID] = f"the patient column '{self.patient_column}'"
        if self.label_column != LABEL:
            origin[LABEL] = f"the label column '{self.label_column}'"
        if self.lesion_column not in (None, LESION):
            origin[LESION] = f"the lesion column '{self.lesion_column}'"
        notes = [f"'{c}' is {what}" for c, what in origin.items() if f"'{c}'" in message]
        return f" ({'; '.join(notes)})" if notes else ""


# --------------------------------------------------------------------------- schema checks


def _unchecked_twin(cls: type, leave_out: tuple[str, ...] = ("from_model",)) -> type:
    """A plain, mutable dataclass with the fields and defaults of the dataclass ``cls``
    (but ``leave_out``), whose values are not converted or checked: the fields of a
    :class:`TableDescription` before it is built, for checking."""
    from dataclasses import MISSING, fields, make_dataclass

    def default(f):
        if f.default_factory is not MISSING:
            return field(default_factory=f.default_factory)
        return field(default=f.default)

    return make_dataclass(f"_{cls.__name__}Fields",
                          [(f.name, f.type, default(f)) for f in fields(cls)
                           if f.name not in leave_out])


#: The fields of a :class:`TableDescription` before it is built (for checking).
_Fields = _unchecked_twin(TableDescription)


def _fields_of(desc: TableDescription) -> dict:
    return {f: getattr(desc, f) for f in _Fields.__dataclass_fields__}


def _unknown_keys(d: Mapping, known: tuple[str, ...], where: str, problems: list[str]) -> None:
    for key in d:
        if key not in known:
            hint = _did_you_mean(str(key), known) or ""
            problems.append(f"{where}{key}: unknown key.{hint} Known keys"
                            f"{' here' if where else ''}: {', '.join(known)}.")


def _name(value, key: str, problems: list[str], default):
    """A column name (non-empty text) from ``value``, else a problem and ``default``."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        problems.append(f"{key}: a column name must be text, found the number {value!r}; "
                        f"quote it: {key.split('.')[-1]}: \"{value}\".")
    else:
        problems.append(f"{key}: give a column name (text), found {value!r}.")
    return default


def _names(value, key: str, problems: list[str], allow_empty: bool = False) -> tuple[str, ...]:
    """Column names or patterns: one text or a list of texts."""
    if value is None and allow_empty:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not (items or allow_empty):
        problems.append(f"{key}: give a column name or a list of names/patterns, e.g. "
                        f"{key.split('.')[-1]}: [\"a\", \"b_*\"]; found {value!r}.")
        return ()
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
        else:
            problems.append(f"{key}[{i}]: a column name or pattern must be non-empty text, "
                            f"found {item!r}; quote it.")
    return tuple(out)


def _values(value, key: str, problems: list[str], default: tuple) -> tuple:
    """Label values: one scalar or a non-empty list of scalars."""
    items = value if isinstance(value, list | tuple) else [value]
    ok = bool(items) and all(isinstance(v, str | int | float | bool) and v != "" for v in items)
    if not ok:
        problems.append(f"{key}: give the value(s) of the class, one value or a list, e.g. "
                        f"{key.split('.')[-1]}: [yes, 1]; found {value!r}.")
        return default
    return tuple(items)


def _label(value, problems: list[str]) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"label_column": _name(value, "label", problems, LABEL)}
    if not isinstance(value, Mapping):
        problems.append(f"label: give a mapping (column, positive, negative, name) or the "
                        f"label column's name; found {value!r}.")
        return {}
    _unknown_keys(value, LABEL_KEYS, "label.", problems)
    out: dict = {}
    if "column" in value:
        out["label_column"] = _name(value["column"], "label.column", problems, LABEL)
    if "positive" in value:
        out["positive"] = _values(value["positive"], "label.positive", problems, (1,))
    if "negative" in value:
        out["negative"] = _values(value["negative"], "label.negative", problems, (0,))
    for key, field_name, which, example in (
            ("name", "positive_name", "positive", "local failure"),
            ("negative_name", "negative_name", "negative", "stable disease")):
        if value.get(key) is None and not (key == "name" and key in value):
            continue
        name = value[key]
        if isinstance(name, str) and name.strip():
            out[field_name] = name.strip()
        else:
            problems.append(f"label.{key}: give the {which} class's name as text, e.g. "
                            f"{key}: {example}; found {quoted(name)}.")
    if value.get("missing") is not None:
        missing = value["missing"]
        if missing in LABEL_MISSING:
            out["label_missing"] = missing
        else:
            problems.append(f"label.missing: give error (refuse rows with an empty label, the "
                            f"default) or skip (leave them out of training and evaluation); "
                            f"found {missing!r}.")
    return out


def _list_entries(value, key: str, entries: str, first: str, fields: str, example: str,
                  known: tuple[str, ...], problems: list[str]) -> list[tuple[int, Mapping]]:
    """The entries of a list-valued key (``rules``, ``features``) as (position, mapping), its
    unknown keys reported; a value that is no list, or an entry that is no mapping, is a
    problem naming ``fields`` with ``example`` (one entry) and left out. None: no entries."""
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{key}: give a list of {entries}, each starting with '- {first}:', "
                        f"e.g. {key}: [{example}]; found {value!r}.")
        return []
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            problems.append(f"{key}[{i}]: give a mapping with {fields}, e.g. {example}; "
                            f"found {item!r}.")
            continue
        _unknown_keys(item, known, f"{key}[{i}].", problems)
        out.append((i, item))
    return out


def _rules(value, problems: list[str]) -> tuple[RuleDeclaration, ...]:
    """``rules``: a list of ``{id, positive_when, source}``, each condition parsed (a syntax
    error named with the rule and its position); columns are checked against the table."""
    out, seen = [], set()
    for i, item in _list_entries(value, "rules", "rules", "id", "id and positive_when",
                                 '{id: rcbv_175, positive_when: "rcbv >= 1.75"}', RULE_KEYS,
                                 problems):
        where = f"rules[{i}]"
        rid, when, source = item.get("id"), item.get("positive_when"), item.get("source", "")
        if not isinstance(rid, str) or not _RULE_ID.match(rid.strip()):
            problems.append(f"{where}.id: give the rule a name of letters, digits, '_', '.' "
                            f"or '-', starting with a letter, e.g. id: rcbv_175; found "
                            f"{rid!r}.")
            continue
        rid = rid.strip()
        where = f"rules[{i}] ({rid})"
        if rid in seen or rid in RULE_IDS:
            what = "another rule" if rid in seen else "one of the article's rules"
            problems.append(f"{where}.id: '{rid}' is already the name of {what}; give each "
                            "rule its own id.")
        seen.add(rid)
        if not isinstance(when, str) or not when.strip():
            problems.append(f"{where}.positive_when: give the condition under which the rule "
                            "says the positive class, in quotes, e.g. positive_when: "
                            f"\"rcbv >= 1.75\"; found {when!r}.")
            continue
        when = when.strip()
        try:
            parse(when)
        except RuleSyntaxError as exc:
            problems.append(f"{where}.positive_when: {exc.message} at character "
                            f"{exc.position + 1} of \"{when}\". A condition compares columns "
                            "with numbers or quoted text (<, <=, >, >=, ==, !=) joined by and, "
                            "or, not and parentheses; write a name with other characters in "
                            "backquotes, e.g. `T2-FLAIR volume` > 40.")
            continue
        if not isinstance(source, str):
            problems.append(f"{where}.source: give the rule's source as text; found "
                            f"{source!r}.")
            source = ""
        out.append(RuleDeclaration(rid, when.strip(), source.strip()))
    return tuple(out)


def _study(value, problems: list[str]) -> dict:
    """``study``: text for outcome, population, setting and reference_standard, and
    ``prevalences`` (name: fraction between 0 and 1)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"study: give a mapping with {', '.join(STUDY_KEYS)}; found "
                        f"{value!r}.")
        return {}
    _unknown_keys(value, STUDY_KEYS, "study.", problems)
    out: dict = {}
    for key in STUDY_KEYS[:-1]:
        if value.get(key) is None:
            continue
        if isinstance(value[key], str) and value[key].strip():
            out[key] = value[key].strip()
        else:
            problems.append(f"study.{key}: give one sentence of text; found {value[key]!r}.")
    prevalences = value.get("prevalences")
    if prevalences is not None:
        good = isinstance(prevalences, Mapping) and all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1
            for v in prevalences.values())
        if good:
            out["prevalences"] = {str(k): float(v) for k, v in prevalences.items()}
        else:
            problems.append("study.prevalences: give each prevalence a name and a fraction "
                            "between 0 and 1, e.g. prevalences: {our clinic: 0.25}; found "
                            f"{prevalences!r}.")
    return out


def _rename(value, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"rename: give a mapping of your column to the contract column, e.g. "
                        f"rename: {{rCBV_max: rcbv}}; found {value!r}.")
        return {}
    out = {}
    for name, target in value.items():
        if not isinstance(name, str) or not isinstance(target, str) or not target.strip():
            problems.append(f"rename.{name}: both your column and the contract column must be "
                            f"text; found {name!r}: {target!r} (quote them).")
            continue
        out[name.strip()] = target.strip()
    return out


def _scans(value, problems: list[str]) -> dict[str, str]:
    """``scans: {rename: {your column: scan column}}``: the names of the follow-up scans
    table's columns, checked against the scan and per-scan contract columns."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append("scans: give a mapping with 'rename', e.g. scans: {rename: {vol: "
                        f"volume_ml, wk: weeks_on_treatment}}; found {value!r}.")
        return {}
    _unknown_keys(value, SCANS_KEYS, "scans.", problems)
    rename = _rename(value.get("rename"), problems)
    allowed = (*SCAN_ONLY_COLUMNS, *(c for c in FEATURE_COLUMNS if BY_NAME[c].kind != "category"))
    for name, target in rename.items():
        if target not in allowed:
            problems.append(
                f"scans.rename.{name}: '{target}' is not a scan column; a scans table holds "
                f"{', '.join(SCAN_ONLY_COLUMNS)} and the contract's numeric columns "
                f"(weeks_on_treatment, rcbv, adc, ...).{_did_you_mean(target, allowed)}")
    return rename


def _range(value, where: str, problems: list[str]):
    numbers = isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not numbers:
        problems.append(f"{where}.range: give two numbers [low, high], e.g. range: [0, 100]; "
                        f"found {value!r}.")
        return None
    return (float(value[0]), float(value[1]))


def _features(value, problems: list[str]) -> tuple[FeatureGroup, ...]:
    groups = []
    for i, item in _list_entries(value, "features", "groups", "columns",
                                 "'columns' (and kind, block, range)",
                                 "{columns: [kps], kind: number}", FEATURE_KEYS, problems):
        where = f"features[{i}]"
        if "columns" not in item:
            problems.append(f"{where}.columns: missing; list the column names or patterns the "
                            "group declares, e.g. columns: [\"original_*\"].")
            continue
        patterns = _names(item["columns"], f"{where}.columns", problems)
        kind = item.get("kind", "number")
        if not isinstance(kind, str):
            problems.append(f"{where}.kind: give one of {', '.join(KINDS)}; found {kind!r}.")
            kind = "number"
        block = item.get("block")
        if block is not None and not isinstance(block, str):
            problems.append(f"{where}.block: give {' or '.join(BLOCKS)}, or leave it out; "
                            f"found {block!r}.")
            block = None
        rng = None if item.get("range") is None else _range(item["range"], where, problems)
        if patterns:
            groups.append(FeatureGroup(patterns, kind, block, rng))
    return tuple(groups)


def _meaning_problems(d) -> list[str]:
    """Problems with well-typed fields (``d``: a :class:`TableDescription` or _Fields)."""
    problems: list[str] = []
    roles = {"patient": d.patient_column, "label.column": d.label_column}
    if d.lesion_column is not None:
        roles["lesion"] = d.lesion_column
    seen: dict[str, str] = {}
    for key, col in roles.items():
        if col in seen:
            problems.append(f"{key}: '{col}' is already the {seen[col]} column; give each of "
                            "patient, lesion and label.column its own column.")
        seen.setdefault(col, key)
    role_of = {col: key for key, col in roles.items()}
    pos = {label_token(v) for v in d.positive}
    shared = [v for v in d.negative if label_token(v) in pos]
    if shared:
        problems.append(
            f"label.negative: {_shown(shared)} is also a positive value (labels compare as "
            "text, case-insensitive, with yes/true/1 alike and no/false/0 alike); give "
            "label.positive and label.negative different values.")
    targets: dict[str, str] = {}
    for name, target in d.rename.items():
        key = {ID: "patient", LABEL: "label.column", LESION: "lesion"}.get(target)
        if key:
            problems.append(f"rename.{name}: '{target}' is set by '{key}', not by rename; "
                            f"remove it from rename and write {key.replace('label.', '')}: "
                            f"{name}{' under label' if key == 'label.column' else ''}.")
        elif target not in FEATURE_COLUMNS:
            problems.append(
                f"rename.{name}: '{target}' is not a contract column."
                f"{_did_you_mean(target, FEATURE_COLUMNS)} rename maps your columns onto the "
                f"contract's ({', '.join(FEATURE_COLUMNS)}); declare other columns under "
                "features instead.")
        if name in role_of:
            problems.append(f"rename.{name}: '{name}' is the {role_of[name]} column; remove it "
                            "from rename.")
        if target in targets:
            problems.append(f"rename: '{targets[target]}' and '{name}' both map onto "
                            f"'{target}'; keep one of them.")
        targets.setdefault(target, name)
    for i, group in enumerate(d.features):
        where = f"features[{i}]"
        if group.kind not in KINDS:
            problems.append(f"{where}.kind: '{group.kind}' is not a kind; use "
                            f"{', '.join(KINDS)}.{_did_you_mean(group.kind, KINDS)}")
        if group.block is not None and group.block not in BLOCKS:
            problems.append(f"{where}.block: '{group.block}' is not a block; use "
                            f"{' or '.join(BLOCKS)} (reduced like radiomic columns, inside the "
                            f"folds) or leave it out.{_did_you_mean(group.block, BLOCKS)}")
        if group.block == "radiomic" and group.kind != "number":
            problems.append(f"{where}.block: radiomic columns are numbers; set kind: number "
                            "or leave block out.")
        if group.range is not None:
            rng = _as_tuple(group.range)
            good = len(rng) == 2 and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in rng) and rng[0] < rng[1]
            if not good:
                problems.append(f"{where}.range: give two increasing numbers [low, high], e.g. "
                                f"range: [0, 100]; found {list(rng)}.")
            elif group.kind != "number":
                problems.append(f"{where}.range: only a number has a range; remove it or set "
                                "kind: number.")
        for pattern in group.patterns:
            if _is_pattern(pattern):
                continue
            if pattern in BY_NAME or pattern in KEY_COLUMNS:
                problems.append(
                    f"{where}.columns: '{pattern}' is a contract column, used with the "
                    "contract's unit and checks without being declared; remove it from "
                    "features.")
            elif pattern in role_of:
                problems.append(f"{where}.columns: '{pattern}' is the {role_of[pattern]} "
                                "column; remove it from features.")
            elif pattern in d.rename:
                problems.append(f"{where}.columns: '{pattern}' is renamed to "
                                f"'{d.rename[pattern]}' under rename; remove it from one "
                                "of the two.")
    return problems


# --------------------------------------------------------------------------- table checks


class _Plan:
    """Where each column of a table goes under a description: the patient, lesion or label,
    a contract column, a declared feature, ignored, or undeclared (dropped with a warning).
    Problems found are appended to ``problems``."""

    def __init__(self, desc: TableDescription, names: list[str], source: str,
                 problems: list[str]) -> None:
        self.desc, self.names, self.source, self.problems = desc, names, source, problems
        #: The lesion column: the described one, else the contract's when the table has it.
        self.lesion_column = desc.lesion_column
        if self.lesion_column is None and LESION in names \
                and LESION not in (desc.patient_column, desc.label_column):
            self.lesion_column = LESION
        self.contract: list[str] = []
        self.declared: dict[str, tuple[DeclaredFeature, str]] = {}
        self.undeclared: list[str] = []

    @property
    def stored(self) -> bool:
        """The description was read back from a model file: it cannot be edited, only the
        table can (or another description given with --table)."""
        return self.desc.from_model

    def has(self, column: str) -> bool:
        return column in self.names

    def missing(self, key: str, column: str, what: str, fix: str = "") -> None:
        """Report that ``column`` (set by ``key``) is absent, with close names."""
        close = _did_you_mean(column, self.names)
        if self.stored:
            fix = (f"The model was trained with the column '{column}': name the table's "
                   "column so, or describe this table with --table.")
        self.problems.append(
            f"{key}: {self.source} has no column '{column}' ({what}).{close} Columns found: "
            f"{_few(self.names)}. {fix or f'Set {key} to the right column name.'}")

    def route(self) -> None:
        """Sort the columns into contract, declared and undeclared ones."""
        desc, names, problems = self.desc, self.names, self.problems
        present = set(names)
        special = {desc.patient_column, desc.label_column}
        if self.lesion_column is not None:
            special.add(self.lesion_column)
        ignored = {c for c in names if c not in special
                   and any(_matches(c, p) for p in desc.ignore)}
        for name, target in desc.rename.items():
            if name not in present:
                self.missing(f"rename.{name}", name, f"to be renamed to the contract's "
                             f"'{target}'", "Correct the name under rename, or remove it.")
            elif target in present and target not in ignored and target not in desc.rename:
                problems.append(
                    f"rename.{name}: the table already has a column '{target}'; list one of "
                    f"the two under ignore, or remove '{name}' from rename.")
        self.contract = [c for c in names if c in FEATURE_COLUMNS and c not in special
                         and c not in ignored and c not in desc.rename]
        taken = special | ignored | set(desc.rename) | set(self.contract)
        found: dict[str, tuple[DeclaredFeature, str]] = {}
        for i, group in enumerate(desc.features):
            feature = DeclaredFeature(group.kind, group.block, group.range)
            for pattern in group.patterns:
                matched = [c for c in names if _matches(c, pattern)]
                usable = [c for c in matched if c not in taken
                          and c not in BY_NAME and c not in KEY_COLUMNS]
                if not matched and self.stored:
                    problems.append(
                        f"features[{i}].columns: '{pattern}' matches no column of the table; "
                        f"the model was trained with '{pattern}'."
                        f"{_close_pattern(pattern, names)} Columns found: {_few(names)}. Add "
                        "the column to the table (left empty in every row, the model predicts "
                        "without it), or train a model without it.")
                elif not matched:
                    problems.append(
                        f"features[{i}].columns: '{pattern}' matches no column of "
                        f"{self.source}.{_close_pattern(pattern, names)} Columns found: "
                        f"{_few(names)}. Correct the name or pattern (shell-style: * any "
                        "text, ? one character), or remove it.")
                elif not usable:
                    problems.append(
                        f"features[{i}].columns: '{pattern}' matches only {_few(matched, 5)}, "
                        "already the patient, lesion or label column, a contract column, "
                        "renamed or ignored; remove it from features.")
                for c in usable:
                    found.setdefault(c, (feature, f"features[{i}]"))
        for c in names:
            if c not in taken and c not in found and is_radiomic(c):
                found[c] = (_RADIOMIC, "radiomic column")
        self.declared = {c: found[c] for c in names if c in found}
        self.undeclared = [c for c in names if c not in taken and c not in found]


def _close_pattern(pattern: str, names: list[str]) -> str:
    """" Did you mean ...?" for a name, or for a pattern whose text before its first
    wildcard is close to the start of some column names (``orignal_*``: ``original_*``)."""
    if not _is_pattern(pattern):
        return _did_you_mean(pattern, names)
    literal = _WILDCARD.split(pattern, maxsplit=1)[0]
    if not literal:
        return ""
    starts = {n[:k] for n in names for k in range(len(literal) - 1, len(literal) + 2) if k > 0}
    close = difflib.get_close_matches(literal, sorted(starts), n=1, cutoff=0.75)
    return f" Did you mean '{close[0]}{pattern[len(literal):]}'?" if close else ""


def _convert(raw: pd.Series, name: str, feature: DeclaredFeature, where: str,
             problems: list[str]) -> pd.Series | None:
    """A declared column as float (number, binary 0/1) or stripped lower-case text
    (category); None after appending a problem."""
    if feature.kind == "category":
        text = id_text(raw).str.lower()
        return text.astype(object).where(text.notna(), np.nan)
    if feature.kind == "binary":
        tokens = label_tokens(raw)
        found = list(pd.unique(tokens.dropna()))
        if len(found) > 2 or not set(found) <= {"0", "1"}:
            shown = _shown(pd.unique(raw[tokens.notna() & ~tokens.isin(["0", "1"])]
                                     .astype(str).str.strip())[:5])
            many = f"{len(found)} different values" if len(found) > 2 else "other values"
            problems.append(
                f"{where}: column '{name}' is declared binary but holds {many} ({shown}); "
                "a binary column holds 0/1 (or yes/no, true/false): recode it, or declare it "
                "with kind: category (or number).")
            return None
        return tokens.map({"1": 1.0, "0": 0.0}).astype(float)
    if pd.api.types.is_numeric_dtype(raw):
        num, bad = raw.astype(float), None
    else:
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        bad = num.isna() & id_text(raw).notna()
    if bad is not None and bad.any():
        examples = _shown(pd.unique(raw[bad].astype(str).str.strip())[:3])
        problems.append(
            f"{where}: column '{name}' must be numeric (kind: number); found {examples} in "
            f"{int(bad.sum())} row(s). Use numbers (a '.' for decimals), leave the cell empty "
            "when unknown, or declare the column with kind: category.")
        return None
    if feature.range is not None:
        low, high = feature.range
        outside = num[(num < low) | (num > high)]
        if len(outside):
            problems.append(
                f"{where}.range: column '{name}' has {len(outside)} value(s) outside "
                f"[{low:g}, {high:g}] (e.g. {outside.iloc[0]:g}); correct them, or widen "
                "range if they are plausible.")
            return None
    return num


# --------------------------------------------------------------------------- command lines


def description_from_arguments(args, stored: Mapping | None = None
                               ) -> TableDescription | None:
    """The table description the options give: ``--table`` (or ``stored``, a description a
    model carries) with the command-line shortcuts applied; None when nothing is given."""
    if args.table is not None:
        base = TableDescription.from_yaml(args.table)
    elif stored is not None:
        base = TableDescription.stored_in_model(stored)
    elif any(v is not None for v in (args.patient_column, args.label_column, args.positive)):
        base = TableDescription(source="the command line's table options")
    else:
        return None
    return base.with_overrides(patient_column=args.patient_column,
                               label_column=args.label_column, positive=args.positive)


def text_columns(description: TableDescription | None) -> list[str]:
    """Columns to read as text (identifiers keep leading zeros)."""
    if description is None:
        return [ID]
    return [c for c in (description.patient_column, description.lesion_column) if c]
