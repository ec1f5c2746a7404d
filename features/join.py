"""Join the clinical table with the radiomic features on ``patient_id`` (and ``lesion_id``).

The join is a left join on the clinical table: every clinical row is kept, and a patient
without images (or whose extraction failed) gets NaN radiomic columns. The clinical table
holds the label and the rows a study is about; dropping patients because an image is
missing would bias the cohort towards those who had complete imaging, and the models cope
with missing values anyway. Radiomic rows without a clinical row cannot be used (no label,
no clinical features): they are left out of the joined table, but listed in the result
and announced by a warning, never dropped silently.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.choices import DEFAULT_PARAMS
from features.contract import ID, LESION, checked_ids, checked_lesions, id_text
from features.errors import UserInputError, listed
from features.extract import ExtractionResult, extract, settings_with_lesions


@dataclass
class JoinResult:
    """What :func:`join_features` returns.

    table: the clinical rows, in their order, with the radiomic columns added.
    only_in_clinical: keys with a clinical row but no radiomic row (radiomic columns NaN):
    patient ids, or ``patient/lesion`` when the features are per lesion.
    only_in_radiomic: keys with radiomic features but no clinical row (left out).
    duplicated: columns present in both tables besides the keys; the clinical copy is
    kept and the radiomic copy left out.
    """

    table: pd.DataFrame
    only_in_clinical: list[str] = field(default_factory=list)
    only_in_radiomic: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


def _ids(df: pd.DataFrame, name: str) -> pd.Series:
    if not isinstance(df, pd.DataFrame):
        raise UserInputError(f"the {name} table must be a pandas DataFrame, got "
                             f"{type(df).__name__}.")
    if ID not in df.columns:
        raise UserInputError(f"the {name} table has no '{ID}' column to join on.")
    return checked_ids(df[ID], f"the {name} table", "the join needs one row per lesion")


def _keys(df: pd.DataFrame, name: str, per_lesion: bool) -> pd.DataFrame:
    """The join keys of ``df`` as text: patient_id, and lesion_id when ``per_lesion`` (a
    table without lesion_id is then one lesion per patient, lesion "1")."""
    if not isinstance(df, pd.DataFrame):
        raise UserInputError(f"the {name} table must be a pandas DataFrame, got "
                             f"{type(df).__name__}.")
    if ID not in df.columns:
        raise UserInputError(f"the {name} table has no '{ID}' column to join on.")
    if LESION in df.columns and per_lesion:
        ids = id_text(df[ID])
        if ids.isna().any():
            raise UserInputError(f"the {name} table has rows without '{ID}'; give every "
                                 "row its patient.")
        return pd.DataFrame({ID: ids.astype(object).to_numpy(),
                             LESION: checked_lesions(ids, df[LESION],
                                                     f"the {name} table").to_numpy()})
    if LESION in df.columns:  # per patient: each patient must have one lesion
        ids = id_text(df[ID])
        several = ids[ids.duplicated()].dropna().unique()
        if len(several):
            raise UserInputError(
                f"the {name} table has several lesions for {len(several)} patient(s) (e.g. "
                f"{_examples(list(several))}) but the radiomic features are one row per "
                f"patient, so they cannot be told apart; give the image manifest a "
                f"'{LESION}' column (one row per lesion, each with its own mask or its own "
                "'label' value), or extract with --lesions components or labels.")
    keys = pd.DataFrame({ID: _ids(df, name).to_numpy()})
    if per_lesion:
        keys[LESION] = "1"
    return keys


def _examples(ids: list[str]) -> str:
    return listed(ids)


def join_features(clinical: pd.DataFrame, radiomic: pd.DataFrame) -> JoinResult:
    """Left-join ``radiomic`` onto ``clinical`` by patient_id, and by lesion_id when the
    radiomic table has one (ids compared as text).

    Per lesion, a clinical table without lesion_id is one lesion per patient (lesion "1",
    the id :func:`features.extract.extract` gives a patient's largest component). Raises
    :class:`UserInputError` when either table lacks patient_id or repeats a key, or when
    features per patient meet a clinical table with several lesions per patient. Keys found
    on one side only (``patient`` or ``patient/lesion``) are listed in the result and
    reported in one warning with their counts.
    """
    per_lesion = isinstance(radiomic, pd.DataFrame) and LESION in radiomic.columns
    left_keys = _keys(clinical, "clinical", per_lesion)
    right_keys = _keys(radiomic, "radiomic", per_lesion)
    on = list(left_keys.columns)
    left = clinical.copy()
    hidden = [c for c in on if c not in clinical.columns]  # keys the clinical table lacks
    for c in on:
        left[c] = left_keys[c].to_numpy()
    shared = [c for c in radiomic.columns if c not in on and c in clinical.columns]
    right = radiomic.drop(columns=shared).copy()
    for c in on:
        right[c] = right_keys[c].to_numpy()

    def named(keys: pd.DataFrame) -> list[str]:
        return ["/".join(k) for k in keys[on].astype(str).itertuples(index=False)]

    left_named, right_named = named(left_keys), named(right_keys)
    in_right, in_left = set(right_named), set(left_named)
    only_clinical = [k for k in left_named if k not in in_right]
    only_radiomic = [k for k in right_named if k not in in_left]

    table = left.merge(right, on=on, how="left", validate="one_to_one", sort=False)
    table = table.drop(columns=hidden)
    table.index = clinical.index

    if shared:
        warnings.warn(
            f"{len(shared)} column(s) appear in both tables ({_examples(shared)}); the "
            "clinical values are kept.", UserWarning, stacklevel=2)
    unit = "lesion(s)" if per_lesion else "row(s)"
    lines = []
    if only_clinical:
        lines.append(
            f"{len(only_clinical)} of {len(left)} clinical {unit} have no radiomic features "
            f"(e.g. {_examples(only_clinical)}); their radiomic columns are NaN.")
    if only_radiomic:
        lines.append(
            f"{len(only_radiomic)} radiomic {unit} have no clinical row "
            f"(e.g. {_examples(only_radiomic)}); they are left out of the joined table.")
    if lines:
        if per_lesion:
            lines.append(f"Lesions are matched on '{ID}' and '{LESION}' (shown as "
                         "patient/lesion); the lesion map beside the features gives each "
                         "lesion's position and volume.")
        warnings.warn("\n".join(lines), UserWarning, stacklevel=2)
    return JoinResult(table=table, only_in_clinical=only_clinical,
                      only_in_radiomic=only_radiomic, duplicated=shared)


@dataclass
class RadiomicTable:
    """The joined table and what happened on the way (failures, unmatched ids)."""

    table: pd.DataFrame
    extraction: ExtractionResult
    join: JoinResult
    settings_text: str

    def summary(self) -> dict:
        """Counts for the report: patients and lesions with images, failures, unmatched
        keys."""
        ex = self.extraction
        keys = [c for c in (ID, LESION) if c in ex.features.columns]
        lesion_map = ex.lesion_map
        return {"n_manifest": ex.n_patients,
                "n_extracted": int(len(ex.features)),
                "n_radiomic_columns": int(ex.features.shape[1] - len(keys)),
                "failures": ex.failures.to_dict(orient="records"),
                "only_in_clinical": self.join.only_in_clinical,
                "only_in_radiomic": self.join.only_in_radiomic,
                "settings_version": ex.version,
                "lesions": ex.lesions,
                "n_patients": int(lesion_map[ID].nunique()) if len(lesion_map) else 0,
                "n_lesions": int(len(lesion_map)),
                "n_lesions_dropped": int(len(ex.dropped))}

    def provenance(self) -> dict:
        """Where the image features came from, as JSON-ready records: ``mask_resampled``
        (patient_id, sequence, mask, reason: masks resampled onto an image's grid under
        ``correctMask``) and ``dicom_series`` (patient_id, column, series_uid, files)."""
        series = self.extraction.series.astype({"files": int})
        return {"mask_resampled": self.extraction.mask_resampled.to_dict(orient="records"),
                "dicom_series": series.to_dict(orient="records")}


def add_radiomic_features(clinical: pd.DataFrame, manifest: pd.DataFrame | str | Path,
                          params: str | Path = DEFAULT_PARAMS, jobs: int = 1,
                          cache_dir: str | Path | None = None, progress: bool = True,
                          base_dir: str | Path | None = None, *,
                          scheduler: str | None = None, use_cache: bool = True,
                          sequences: list[str] | None = None,
                          lesions: str | None = None) -> RadiomicTable:
    """Extract pyradiomics features for the manifest's patients and left-join them onto
    ``clinical`` by patient_id.

    The arguments are :func:`features.extract.extract`'s (``scheduler``: a Dask scheduler
    address or ``"local"``). A patient whose extraction failed keeps its clinical row with
    empty radiomic columns; each failure is reported by a warning (and listed in the
    result), never dropped silently. Masks resampled onto an image's grid (``correctMask``)
    are listed in ``extraction.mask_resampled`` and in :meth:`RadiomicTable.provenance`.
    """
    result = extract(manifest, params=params, jobs=jobs, cache_dir=cache_dir,
                     sequences=sequences, progress=progress, base_dir=base_dir,
                     use_cache=use_cache, scheduler=scheduler, lesions=lesions)
    if len(result.failures):
        warnings.warn(f"radiomic extraction failed for {result.failures['patient_id'].nunique()} "
                      f"patient(s); their image features are treated as missing:\n"
                      + result.summary().split("\n", 1)[-1], UserWarning, stacklevel=2)
    joined = join_features(clinical, result.features)
    return RadiomicTable(joined.table, result, joined,
                         settings_with_lesions(Path(params).read_text(), lesions))
