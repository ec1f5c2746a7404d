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

from features.errors import UserInputError

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
    held as floats (a numeric column with gaps) are written without ".0"."""
    if pd.api.types.is_float_dtype(values):
        num = values.astype(float)
        whole = num.notna() & np.isfinite(num) & (num == np.round(num))
        if bool((whole | num.isna()).all()):
            values = num.astype("Int64")
    text = values.astype("string").str.strip()
    empty = text.isna() | text.str.lower().isin(["", "nan", "none", "<na>"])
    return text.mask(empty, pd.NA)


def _nonempty_ids(ids: pd.Series, source: str, name: str, fix: str) -> pd.Series:
    """:func:`id_text` of ``ids``; :class:`UserInputError` naming ``name`` when one is empty."""
    text = id_text(ids)
    if text.isna().any():
        raise UserInputError(f"{source} has {int(text.isna().sum())} row(s) with an empty "
                             f"'{name}'; {fix}")
    return text


def checked_ids(ids: pd.Series, source: str,
                purpose: str = "one row per lesion assessment") -> pd.Series:
    """``patient_id`` values as stripped text; :class:`UserInputError` when one is empty or
    repeated (``purpose`` says why each must be unique). For tables keyed by patient (an
    image manifest, a radiomic table); a lesion table uses :func:`checked_lesions`."""
    text = _nonempty_ids(ids, source, ID, "give every row an id.")
    dup = text[text.duplicated()].unique()
    if len(dup):
        raise UserInputError(
            f"{source} has duplicated '{ID}' values; '{ID}' must be unique ({purpose}); "
            f"duplicated: {', '.join(dup[:5])}{' ...' if len(dup) > 5 else ''}.")
    return text.astype(object)


def lesion_numbers(patient_ids: pd.Series) -> pd.Series:
    """Lesion ids "1", "2", ... per patient in order of appearance (rows sharing a patient
    are that patient's lesions), aligned with ``patient_ids``."""
    numbers = patient_ids.groupby(patient_ids, sort=False, dropna=False).cumcount() + 1
    return numbers.astype(str).astype(object)


def checked_lesions(patient_ids: pd.Series, lesion_ids: pd.Series, source: str) -> pd.Series:
    """``lesion_id`` values as stripped text; :class:`UserInputError` when one is empty or a
    (patient_id, lesion_id) pair repeats."""
    lesions = _nonempty_ids(
        lesion_ids, source, LESION,
        f"give every lesion an id, or drop the column so that rows sharing a '{ID}' are "
        "numbered as that patient's lesions.")
    pairs = pd.DataFrame({"p": id_text(patient_ids).to_numpy(), "l": lesions.to_numpy()})
    dup = pairs[pairs.duplicated()].drop_duplicates()
    if len(dup):
        shown = ", ".join(f"{p}/{les}" for p, les in dup.head(5).itertuples(index=False))
        raise UserInputError(
            f"{source} has duplicated ('{ID}', '{LESION}') pairs; each lesion of a patient "
            f"needs its own '{LESION}' (one row per lesion); duplicated "
            f"{ID}/{LESION}: {shown}{' ...' if len(dup) > 5 else ''}.")
    return lesions.astype(object)


def _unit_hint(col: Column, values: pd.Series) -> str:
    """A guess at the unit mistake behind out-of-range values, or ''."""
    med = float(values.median())
    if col.name == "adc" and med < 0.01:
        return " The values look like mm^2/s; give ADC in 10^-3 mm^2/s (multiply by 1000)."
    if col.name == "adc" and med > 50:
        return " The values look like 10^-6 mm^2/s; give ADC in 10^-3 mm^2/s (divide by 1000)."
    if col.unit == "%" and values.abs().max() <= 1.5 and col.name != "ctdna_change_pct":
        return " The values look like fractions; give percentages (multiply by 100)."
    return ""


def validate_table(df: pd.DataFrame, require_label: bool = False,
                   source: str = "the table") -> pd.DataFrame:
    """Check ``df`` against the contract and return a cleaned copy (the input is not changed).

    Numeric columns are coerced to float (empty cells become NaN), binary columns must
    hold 0/1, values must sit in the plausible range of their unit. ``patient_id`` must be
    present and never empty; with a ``lesion_id`` column each (patient_id, lesion_id) pair
    must be unique, without one a repeated ``patient_id`` gets ``lesion_id`` "1", "2", ...
    in order of appearance (added right after ``patient_id``). Other columns pass through.
    Raises :class:`UserInputError` naming the problem.
    """
    if not isinstance(df, pd.DataFrame):
        raise UserInputError(f"{source} must be a pandas DataFrame, got {type(df).__name__}.")
    if ID not in df.columns:
        raise UserInputError(
            f"{source} has no '{ID}' column. Add one identifier per row "
            f"(columns found: {', '.join(map(str, df.columns[:12]))}).")
    out = df.copy()
    ids = _nonempty_ids(out[ID], source, ID, "give every row an id.")
    out[ID] = ids.astype(object)
    if LESION in out.columns:
        out[LESION] = checked_lesions(ids, out[LESION], source)
    elif ids.duplicated().any():
        out.insert(out.columns.get_loc(ID) + 1, LESION, lesion_numbers(ids))
    if require_label and LABEL not in out.columns:
        raise UserInputError(
            f"{source} has no '{LABEL}' label column (1 pseudoprogression, 0 true "
            "progression). Add it to train or to evaluate.")
    if CANCER_TYPE in out.columns:
        ct = out[CANCER_TYPE].astype("string").str.strip().str.lower()
        out[CANCER_TYPE] = ct.astype(object).where(ct.notna(), np.nan)
    for col in COLUMNS:
        if col.name not in out.columns or col.kind in ("id", "category"):
            continue
        raw = out[col.name]
        num = pd.to_numeric(raw, errors="coerce")
        unparsed = num.isna() & raw.notna()
        bad = unparsed & raw.where(unparsed).astype(str).str.strip().ne("") if unparsed.any() \
            else unparsed
        if bad.any():
            examples = ", ".join(map(repr, raw[bad].astype(str).unique()[:3]))
            raise UserInputError(
                f"{source}: column '{col.name}' ({col.unit}) must be numeric; found {examples} "
                f"in {int(bad.sum())} row(s). Use numbers, and leave the cell empty when unknown.")
        num = num.astype(float)
        present = num.dropna()
        if col.kind in ("binary", "label") and not present.isin([0.0, 1.0]).all():
            others = ", ".join(map(str, present[~present.isin([0.0, 1.0])].unique()[:3]))
            raise UserInputError(
                f"{source}: column '{col.name}' must be 0 or 1; found {others}.")
        if col.kind == "label" and num.isna().any() and require_label:
            raise UserInputError(
                f"{source}: '{LABEL}' is empty in {int(num.isna().sum())} row(s). Every row "
                "used for training or evaluation needs its label.")
        if col.low is not None and len(present):
            outside = present[(present < col.low) | (present > col.high)]
            if len(outside):
                raise UserInputError(
                    f"{source}: column '{col.name}' should be in {col.unit} within "
                    f"[{col.low:g}, {col.high:g}]; {len(outside)} value(s) are outside "
                    f"(e.g. {outside.iloc[0]:g}).{_unit_hint(col, present)}")
        out[col.name] = num
    if require_label and out[LABEL].nunique() < 2:
        raise UserInputError(
            f"{source}: '{LABEL}' holds only one class; training and evaluation need both "
            "pseudoprogression (1) and true progression (0) cases.")
    return out


def warn_extra_columns(df: pd.DataFrame, expected: list[str]) -> None:
    """Warn about columns that are neither expected features, the id, the lesion nor the
    label."""
    extra = [c for c in df.columns if c not in expected and c not in KEY_COLUMNS]
    if extra:
        warnings.warn(
            f"ignoring {len(extra)} column(s) the model does not use: "
            f"{', '.join(map(str, extra[:8]))}{' ...' if len(extra) > 8 else ''}",
            UserWarning, stacklevel=3)
