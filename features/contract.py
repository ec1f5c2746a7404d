"""The column contract: names, units and plausible ranges of the per-lesion feature table.

Users bring their own tables, so these names are a public interface. :func:`validate_table`
checks a table against the contract and raises :class:`UserInputError` with a message that
names the column, the problem and the fix.

A row is one lesion: a patient may have several, told apart by ``lesion_id`` (text). A table
without ``lesion_id`` whose ``patient_id`` repeats gets its lesions numbered "1", "2", ...
per patient in order of appearance.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import UserInputError, listed

ID = "patient_id"
#: One lesion of a patient (text); (patient_id, lesion_id) is unique.
LESION = "lesion_id"
LABEL = "pseudoprogression"
CANCER_TYPE = "cancer_type"


@dataclass(frozen=True)
class Column:
    """One column of the contract.

    kind: ``id``, ``category``, ``number``, ``binary`` or ``label``.
    low/high: plausible range in ``unit``; values outside are an error (wrong unit).
    transform: how models put the column on a roughly Gaussian scale:
    ``log`` (positive ratios and concentrations), ``log_ratio`` (a % change, as
    log(1 + pct/100)), ``logit_pct`` (a percentage in 0-100) or ``none``.
    modality: which examination gives it (used to describe missingness).
    """

    name: str
    kind: str
    unit: str
    meaning: str
    figures: str = ""
    low: float | None = None
    high: float | None = None
    transform: str = "none"
    modality: str = ""


COLUMNS: tuple[Column, ...] = (
    Column(ID, "id", "", "one row each"),
    Column(CANCER_TYPE, "category", "", "melanoma, nsclc or another name", "P1, P2",
           modality="clinical"),
    Column("weeks_on_treatment", "number", "weeks",
           "treatment start to the scan that shows enlargement", "P3", 0, 520, "log", "clinical"),
    Column("volume_change_pct", "number", "%", "lesion volume against baseline", "C1",
           -100, 5000, "log_ratio", "mri"),
    Column("symptomatic", "binary", "0/1", "new or worse neurological symptoms", "C1, Q1a",
           modality="clinical"),
    Column("steroid_response_pct", "number", "%",
           "symptom relief 48 h after dexamethasone; empty if none given", "C2, Q1a",
           0, 100, "logit_pct", "steroid"),
    Column("rcbv", "number", "ratio", "relative cerebral blood volume (DSC-MRI)", "D1, C3, Q1b",
           0, 30, "log", "perfusion"),
    Column("adc", "number", "10^-3 mm^2/s",
           "apparent diffusion coefficient (1.2 means 1.2x10^-3 mm^2/s)", "D1",
           0.05, 5, "log", "diffusion"),
    Column("cho_cr", "number", "ratio", "MRS choline/creatine", "D2", 0, 50, "log", "mrs"),
    Column("lactate_peak", "binary", "0/1", "MRS lactate peak present", "D2", modality="mrs"),
    Column("suvmax_change_pct", "number", "%", "PET-CT SUVmax against baseline", "M3, Q1c",
           -100, 2000, "log_ratio", "pet"),
    Column("ctdna_change_pct", "number", "%",
           "ctDNA at treatment week 6 against baseline; negative is a fall", "D3, M4, Q1d",
           -100, 10000, "log_ratio", "ctdna"),
    Column("il8_pg_ml", "number", "pg/ml", "serum IL-8", "D4", 0, 10000, "log", "cytokines"),
    Column("ifng_pg_ml", "number", "pg/ml", "serum IFN-gamma", "D4", 0, 10000, "log",
           "cytokines"),
    Column("cd8_tumor_ratio", "number", "ratio", "biopsy CD8+ T cells per tumour cell", "D5",
           0, 100, "log", "biopsy"),
    Column("ki67_pct", "number", "%", "biopsy Ki-67 index", "D5", 0, 100, "logit_pct", "biopsy"),
    Column(LABEL, "label", "0/1", "the label: 1 pseudoprogression, 0 true progression"),
)

BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}

#: Tabular feature columns (everything a model may use apart from images).
FEATURE_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in COLUMNS if c.kind in ("category", "number", "binary")
)
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    c.name for c in COLUMNS if c.kind in ("number", "binary")
)

# pyradiomics feature names: <imageType>_<featureClass>_<feature>, prefixed by the sequence.
_IMAGE_TYPES = r"(original|log-sigma-[0-9-]+mm-3D|wavelet-[HL]+|square|squareroot|logarithm|" \
               r"exponential|gradient|lbp-[23]D[-a-z0-9]*)"
_FEATURE_CLASSES = r"(shape|shape2D|firstorder|glcm|glrlm|glszm|gldm|ngtdm)"
RADIOMIC_COLUMN = re.compile(rf"^[A-Za-z0-9]+_{_IMAGE_TYPES}_{_FEATURE_CLASSES}_[A-Za-z0-9]+$")


def is_radiomic(name: str) -> bool:
    """True when ``name`` is a radiomic feature column, ``<sequence>_<pyradiomics name>``."""
    return bool(RADIOMIC_COLUMN.match(name))


#: Columns that identify a row or hold its label; never model features.
KEY_COLUMNS: tuple[str, ...] = (ID, LESION, LABEL)


def model_columns(columns, declared=()) -> list[str]:
    """The columns of a table that a model may use: contract features, radiomic features and
    the ``declared`` extra feature names (e.g. a table description's features), in table
    order. The id, lesion and label columns never are."""
    declared = set(declared)
    return [c for c in columns if c not in KEY_COLUMNS
            and (c in FEATURE_COLUMNS or is_radiomic(c) or c in declared)]


#: Each transform of :func:`to_model_scale` written exactly as it applies it, floors and
#: clips included ("{c}" stands for the column's name).
MODEL_SCALE_EXPRESSIONS: dict[str, str] = {
    "log": "log(max({c}, 0.001))",
    "log_ratio": "log(1 + max({c}, -99)/100)",
    "logit_pct": "logit(min(max({c}, 0.5), 99.5)/100)",
}


def to_model_scale(name: str, values) -> np.ndarray:
    """Put one contract column on the scale models use (its ``Column.transform``).

    log: natural log, values floored at 1e-3 of the unit; log_ratio: log(1 + pct/100), a
    fall floored at 99% (1% of baseline, so a cleared marker is not an extreme outlier);
    logit_pct: logit of pct/100, clipped to 0.5-99.5%. NaN stays NaN; other columns pass
    through unchanged.
    """
    x = np.asarray(values, dtype=float)
    kind = BY_NAME[name].transform if name in BY_NAME else "none"
    if kind == "log":
        return np.log(np.clip(x, 1e-3, None))
    if kind == "log_ratio":
        return np.log1p(np.clip(x / 100.0, -0.99, None))
    if kind == "logit_pct":
        q = np.clip(x / 100.0, 0.005, 0.995)
        return np.log(q / (1 - q))
    return x


def id_text(values: pd.Series) -> pd.Series:
    """Identifiers as stripped text (pandas string dtype, <NA> when empty); whole numbers
    held as floats (a numeric column with gaps) are written without ".0" (up to 2^53, the
    whole numbers a float holds exactly)."""
    if pd.api.types.is_float_dtype(values):
        num = values.astype(float)
        whole = num.notna() & (num.abs() <= 2.0**53) & (num == np.round(num))
        if bool((whole | num.isna()).all()):
            values = num.astype("Int64")
    text = values.astype("string").str.strip()
    empty = text.isna() | text.str.lower().isin(["", "nan", "none", "<na>"])
    return text.mask(empty, pd.NA)


#: At most this many problems are listed in one error (the rest are counted).
MAX_LISTED_PROBLEMS = 40
#: Longest problem line of a message, in characters (:func:`format_problems`).
PROBLEM_CHARS = 600
#: Texts a number column reads as an empty cell (compared in lower case): the markers that
#: pandas' CSV reader takes for missing, so a DataFrame and a file holding them agree.
MISSING_MARKERS = frozenset({"", "#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan",
                             "1.#ind", "1.#qnan", "<na>", "n/a", "na", "null", "nan", "none",
                             "nat"})
#: Distinct offending values shown per problem.
SHOWN_VALUES = 3
#: A "%" column is read as fractions (0-1) only with at least this many values, all of them
#: within [-1, 1] and one at least not a whole number.
FRACTION_MIN_VALUES = 5


def format_problems(title: str, problems: list[str]) -> str:
    """One message listing ``problems`` under ``title``, one per line (at most
    :data:`MAX_LISTED_PROBLEMS`, the rest counted; each cut to :data:`PROBLEM_CHARS`
    characters, so a value quoted from a hostile file cannot flood the terminal)."""
    shown = problems[:MAX_LISTED_PROBLEMS]
    lines = [f"  - {p if len(p) <= PROBLEM_CHARS else p[:PROBLEM_CHARS - 4] + ' ...'}"
             for p in shown]
    if len(problems) > len(shown):
        lines.append(f"  - ... and {len(problems) - len(shown)} more problem(s).")
    return f"{title} ({len(problems)} problem(s)):\n" + "\n".join(lines)


def data_rows(mask: pd.Series, limit: int = 5) -> str:
    """The 1-based data rows where ``mask`` holds: "data rows 2, 5" or "data row 2"."""
    rows = [str(i) for i in np.flatnonzero(np.asarray(mask, dtype=bool)) + 1]
    more = f", ... ({len(rows)} in all)" if len(rows) > limit else ""
    return f"data row{'s' if len(rows) > 1 else ''} {', '.join(rows[:limit])}{more}"


def _found(values: pd.Series) -> str:
    """Distinct offending values with their counts: "'n/a' (2 rows), '<0.5' (1 row)"."""
    text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    counts = text.map(repr).value_counts(sort=True)
    shown = [f"{v} ({n} row{'s' if n > 1 else ''})" for v, n in counts.head(SHOWN_VALUES).items()]
    more = f" and {len(counts) - SHOWN_VALUES} other value(s)" if len(counts) > SHOWN_VALUES else ""
    return ", ".join(shown) + more


def empty_id_problems(ids: pd.Series, name: str, fix: str) -> list[str]:
    """A problem naming the rows where the identifier ``ids`` (:func:`id_text`) of the column
    ``name`` is empty, with ``fix``; none when every row has one."""
    empty = ids.isna()
    if not empty.any():
        return []
    return [f"'{name}' is empty in {int(empty.sum())} row(s) ({data_rows(empty)}); {fix}"]


def _lesion_problems(patient_ids: pd.Series, lesions: pd.Series) -> list[str]:
    """Problems with ``lesion_id`` (already :func:`id_text`): empty, or a repeated pair."""
    problems = empty_id_problems(
        lesions, LESION, f"give every lesion an id, or drop the column so that rows sharing a "
        f"'{ID}' are numbered as that patient's lesions.")
    pairs = pd.DataFrame({"p": patient_ids.to_numpy(), "l": lesions.to_numpy()}).dropna()
    repeated = pairs.duplicated(keep=False)
    if repeated.any():
        dup = pairs[repeated].drop_duplicates()
        shown = listed(f"{p}/{les}" for p, les in dup.itertuples(index=False))
        problems.append(
            f"duplicated ('{ID}', '{LESION}') pairs in {int(repeated.sum())} rows; each "
            f"lesion of a patient needs its own '{LESION}' (one row per lesion); duplicated "
            f"{ID}/{LESION}: {shown}.")
    return problems


def similar_ids(raw: pd.Series) -> list[tuple[str, ...]]:
    """Groups of distinct identifiers in ``raw`` that differ only in letter case or in
    spaces around them (``'P001'``, ``'p001'``, ``' P001'``), each group sorted."""
    text = raw.dropna().astype(str)
    text = text[text.str.strip().ne("")]
    distinct = pd.Series(pd.unique(text))
    key = distinct.str.strip().str.casefold()
    groups = distinct.groupby(key.to_numpy(), sort=False).agg(lambda g: tuple(sorted(g)))
    return [g for g in groups if len(g) > 1]


def warn_similar_ids(raw: pd.Series, source: str, column: str) -> int:
    """One warning when identifiers of ``raw`` (the column ``column`` of ``source``, as read)
    differ only in letter case or surrounding spaces: spaces are removed, so such ids are
    merged; a case difference keeps them apart. Returns the number of groups."""
    groups = similar_ids(raw)
    if groups:
        spaces = sum(len({g.strip() for g in group}) < len(group) for group in groups)
        shown = "; ".join(" and ".join(repr(v) for v in group[:3]) for group in groups[:3])
        warnings.warn(
            f"{source}: {len(groups)} {column} value(s) are written in several ways that "
            f"differ only in letter case or surrounding spaces ({shown}"
            f"{' ...' if len(groups) > 3 else ''}): {spaces} differing only in spaces are read "
            f"as one, {len(groups) - spaces} differing in case as different {column}s. Write "
            "each id one way, the same in every table.", UserWarning, stacklevel=3)
    return len(groups)


def _nonempty_ids(ids: pd.Series, source: str, name: str, fix: str) -> pd.Series:
    """:func:`id_text` of ``ids``; :class:`UserInputError` naming ``name`` when one is empty."""
    text = id_text(ids)
    problems = empty_id_problems(text, name, fix)
    if problems:
        raise UserInputError(f"{source}: {problems[0]}")
    return text


def checked_ids(ids: pd.Series, source: str,
                purpose: str = "one row per lesion assessment") -> pd.Series:
    """``patient_id`` values as stripped text; :class:`UserInputError` when one is empty or
    repeated (``purpose`` says why each must be unique). For tables keyed by patient (an
    image manifest, a radiomic table); a lesion table uses :func:`checked_lesions`."""
    text = _nonempty_ids(ids, source, ID, "give every row an id.")
    warn_similar_ids(ids, source, ID)
    dup = text[text.duplicated()].unique()
    if len(dup):
        raise UserInputError(
            f"{source} has duplicated '{ID}' values; '{ID}' must be unique ({purpose}); "
            f"duplicated: {listed(dup)}.")
    return text.astype(object)


def lesion_numbers(patient_ids: pd.Series) -> pd.Series:
    """Lesion ids "1", "2", ... per patient in order of appearance (rows sharing a patient
    are that patient's lesions), aligned with ``patient_ids``."""
    numbers = patient_ids.groupby(patient_ids, sort=False, dropna=False).cumcount() + 1
    return numbers.astype(str).astype(object)


def checked_lesions(patient_ids: pd.Series, lesion_ids: pd.Series, source: str) -> pd.Series:
    """``lesion_id`` values as stripped text; :class:`UserInputError` listing every problem
    when one is empty or a (patient_id, lesion_id) pair repeats."""
    lesions = id_text(lesion_ids)
    problems = _lesion_problems(id_text(patient_ids), lesions)
    if problems:
        raise UserInputError(format_problems(f"{source} has lesion ids to correct", problems))
    return lesions.astype(object)


def _unit_hint(col: Column, values: pd.Series) -> str:
    """A guess at the unit mistake behind out-of-range values, or ''."""
    med = float(values.median())
    if col.name == "adc" and 0 < med < 0.01:
        return " The values look like mm^2/s; give ADC in 10^-3 mm^2/s (multiply by 1000)."
    if col.name == "adc" and med > 50:
        return " The values look like 10^-6 mm^2/s; give ADC in 10^-3 mm^2/s (divide by 1000)."
    if col.unit == "%" and values.abs().max() <= 1.5:
        return " The values look like fractions; give percentages (multiply by 100)."
    return ""


def _looks_like_fractions(col: Column, values: pd.Series) -> bool:
    """True when a percentage column holds fractions: at least :data:`FRACTION_MIN_VALUES`
    values, all within [-1, 1], some not whole (0.35 rather than 35)."""
    return (col.unit == "%" and len(values) >= FRACTION_MIN_VALUES
            and bool((values.abs() <= 1).all()) and bool((values != np.round(values)).any()))


#: A number written with a thousands separator: groups of three digits after the first one to
#: three, each after the same mark (',', '.', an apostrophe or a space), then optional decimals.
_THOUSANDS = r"[+-]?\d{1,3}([,.' \u00a0\u202f])\d{3}(?:\1\d{3})*(?:[.,]\d+)?"


def _text_fix(col: Column, text: pd.Series) -> str:
    """The fix for text in a numeric column, with what its values suggest."""
    hints = []
    grouped = text.str.fullmatch(_THOUSANDS)
    if grouped.any():
        example = text[grouped].iloc[0]
        mark = re.match(_THOUSANDS, example).group(1)
        hints.append(f"'{example}' holds a thousands separator ({mark!r} between groups of "
                     "three digits), which is not read: export the numbers without it")
    if text.str.fullmatch(r"[+-]?\d+,\d+").any():  # '1,234' may be either
        hints.append("a decimal comma ('1,2') needs --decimal ',' (or write 1.2)")
    if text.str.match(r"^[<>]=?\s*[+-]?[\d.]").any():
        hints.append("a censored value ('<0.5') is not a number: give the value, or leave "
                     "the cell empty")
    if text.str.lower().isin(["n.a.", "-", "--", "?", "missing", "unknown", "nd", "not done",
                              "not measured"]).any():
        hints.append("leave the cell empty (or write n/a) when the value is unknown")
    if col.kind in ("binary", "label") and text.str.lower().isin(
            ["yes", "no", "true", "false", "y", "n", "ja", "nein", "oui", "non"]).any():
        hints.append("write 1 for yes and 0 for no")
    hint = "; ".join(hints) if hints else "use numbers, and leave the cell empty when unknown"
    return hint[0].upper() + hint[1:] + "."


def _column_problems(col: Column, raw: pd.Series, require_label: bool
                     ) -> tuple[pd.Series | None, list[str]]:
    """One contract column as float (None when it has a problem) and its problems."""
    problems: list[str] = []
    what = f"column '{col.name}' ({col.unit})" if col.unit else f"column '{col.name}'"
    num = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_bool_dtype(raw) \
        else raw.astype(float)
    unparsed = num.isna() & raw.notna()
    text = raw.where(unparsed).astype(str).str.strip()
    bad = unparsed & ~text.str.lower().isin(MISSING_MARKERS)
    num = num.astype(float).where(~unparsed)
    present = num.dropna()
    if col.kind in ("binary", "label"):
        odd = present[~present.isin([0.0, 1.0])]
        if bad.any() or len(odd):
            wrong = bad | num.notna() & ~num.isin([0.0, 1.0])
            problems.append(
                f"{what} must be 0 or 1; found {_found(raw[wrong])} ({data_rows(wrong)}). "
                f"{_text_fix(col, text[bad]) if bad.any() else 'Recode it as 1 and 0.'}")
            return None, problems
    elif bad.any():
        problems.append(
            f"{what} must be numeric; found {_found(raw[bad])} ({data_rows(bad)}). "
            f"{_text_fix(col, text[bad])}")
        return None, problems
    if col.kind == "label" and require_label and num.isna().any():
        problems.append(
            f"'{LABEL}' is empty in {int(num.isna().sum())} row(s) ({data_rows(num.isna())}). "
            "Every row used for training or evaluation needs its label: fill them in, or take "
            "those rows out of the table.")
    if col.low is not None and len(present):
        outside = (num < col.low) | (num > col.high) | num.isin([np.inf, -np.inf])
        if outside.any():
            shown = ", ".join(f"{v:g}" for v in pd.unique(num[outside])[:SHOWN_VALUES])
            hint = _unit_hint(col, present) or (
                f" Correct them, or check their unit (the contract's is {col.unit}).")
            problems.append(
                f"{what} should lie within [{col.low:g}, {col.high:g}]; "
                f"{int(outside.sum())} value(s) are outside (e.g. {shown}; {data_rows(outside)})."
                f"{hint}")
            return None, problems
        if _looks_like_fractions(col, present):
            problems.append(
                f"{what}: all {len(present)} values lie within [-1, 1] (e.g. "
                f"{', '.join(f'{v:g}' for v in pd.unique(present)[:SHOWN_VALUES])}); they look "
                "like fractions. Give percentages (multiply by 100).")
            return None, problems
    return num, problems


@dataclass
class TableCheck:
    """What :func:`check_table` found: the cleaned ``table`` (columns with a problem left as
    given) and every ``problems`` line, each naming the column, the rows and the fix."""

    table: pd.DataFrame
    problems: list[str]


def check_table(df: pd.DataFrame, require_label: bool = False) -> TableCheck:
    """Check ``df`` against the contract, collecting every problem instead of stopping at the
    first; :func:`validate_table` raises them together. The input is not changed."""
    problems: list[str] = []
    names = [str(c) for c in df.columns]
    doubled = sorted({c for c in names if names.count(c) > 1})
    if doubled:
        return TableCheck(df.copy(), [
            f"several columns are named {', '.join(map(repr, doubled))}; give each column its "
            "own name."])
    out = df.copy()
    out.columns = names
    if ID not in out.columns:
        problems.append(
            f"no '{ID}' column. Add one identifier per row, or name your patient column with "
            f"--patient-column (columns found: {listed(names, 12)}).")
    else:
        ids = id_text(out[ID])
        problems += empty_id_problems(ids, ID, "give every row an id.")
        out[ID] = ids.astype(object)
        if LESION in out.columns:
            lesions = id_text(out[LESION])
            problems += _lesion_problems(ids, lesions)
            out[LESION] = lesions.astype(object)
        elif ids.dropna().duplicated().any():
            out.insert(out.columns.get_loc(ID) + 1, LESION, lesion_numbers(ids))
    if require_label and LABEL not in out.columns:
        problems.append(
            f"no '{LABEL}' label column (1 pseudoprogression, 0 true progression). Add it to "
            "train or to evaluate, or name your label column with --label-column.")
    if CANCER_TYPE in out.columns:
        ct = out[CANCER_TYPE].astype("string").str.strip().str.lower()
        out[CANCER_TYPE] = ct.astype(object).where(ct.notna() & ct.ne(""), np.nan)
    label_ok = False
    for col in COLUMNS:
        if col.name not in out.columns or col.kind in ("id", "category"):
            continue
        num, found = _column_problems(col, out[col.name], require_label)
        problems += found
        if num is not None:
            out[col.name] = num
            label_ok = label_ok or (col.kind == "label" and not found)
    if require_label and label_ok:
        classes = sorted(out[LABEL].dropna().unique())
        if len(classes) < 2:
            held = f"all {len(out)} row(s) are {int(classes[0])}" if classes else "no rows"
            problems.append(
                f"'{LABEL}' holds only one class ({held}); training and evaluation need both "
                "pseudoprogression (1) and true progression (0) cases.")
    return TableCheck(out, problems)


def validate_table(df: pd.DataFrame, require_label: bool = False,
                   source: str = "the table") -> pd.DataFrame:
    """Check ``df`` against the contract and return a cleaned copy (the input is not changed).

    Numeric columns are coerced to float (empty cells become NaN), binary columns must
    hold 0/1, values must sit in the plausible range of their unit, and a percentage column
    must not hold fractions. ``patient_id`` must be present and never empty; with a
    ``lesion_id`` column each (patient_id, lesion_id) pair must be unique, without one a
    repeated ``patient_id`` gets ``lesion_id`` "1", "2", ... in order of appearance (added
    right after ``patient_id``). Other columns pass through. Raises one
    :class:`UserInputError` listing every problem (:func:`check_table`), each with its
    column, rows, example values and fix.
    """
    if not isinstance(df, pd.DataFrame):
        raise UserInputError(f"{source} must be a pandas DataFrame, got {type(df).__name__}.")
    if ID in df.columns:
        warn_similar_ids(df[ID], source, ID)
    checked = check_table(df, require_label=require_label)
    if checked.problems:
        raise UserInputError(format_problems(f"{source} does not follow the column contract",
                                             checked.problems))
    return checked.table


def warn_extra_columns(df: pd.DataFrame, expected: list[str], stacklevel: int = 3) -> None:
    """Warn about columns that are neither expected features, the id, the lesion nor the
    label (at fitting and at prediction alike); ``stacklevel`` as :func:`warnings.warn`'s,
    counted from the caller of this function's caller by default."""
    extra = [c for c in df.columns if c not in expected and c not in KEY_COLUMNS]
    if extra:
        warnings.warn(
            f"ignoring {len(extra)} column(s) the model does not use: "
            f"{listed(extra, 8)}", UserWarning, stacklevel=stacklevel)
