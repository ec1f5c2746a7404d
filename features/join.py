"""Join the clinical table with the radiomic features on ``patient_id``.

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

from features.contract import ID, checked_ids
from features.errors import UserInputError
from features.extract import DEFAULT_PARAMS, ExtractionResult, extract, settings_with_lesions


@dataclass
class JoinResult:
    """What :func:`join_features` returns.

    table: the clinical rows, in their order, with the radiomic columns added.
    only_in_clinical: ids with a clinical row but no radiomic row (radiomic columns NaN).
    only_in_radiomic: ids with radiomic features but no clinical row (left out).
    duplicated: columns present in both tables besides patient_id; the clinical copy is
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


def _examples(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")


def join_features(clinical: pd.DataFrame, radiomic: pd.DataFrame) -> JoinResult:
    """Left-join ``radiomic`` onto ``clinical`` by patient_id (ids compared as text).

    Raises :class:`UserInputError` when either table lacks patient_id or repeats an id.
    Ids found on one side only are listed in the result and reported with a warning.
    """
    clinical_ids = _ids(clinical, "clinical")
    radiomic_ids = _ids(radiomic, "radiomic")
    left = clinical.copy()
    left[ID] = clinical_ids.values
    shared = [c for c in radiomic.columns if c != ID and c in clinical.columns]
    right = radiomic.drop(columns=shared).copy()
    right[ID] = radiomic_ids.values

    in_right = set(right[ID])
    in_left = set(left[ID])
    only_clinical = [i for i in left[ID] if i not in in_right]
    only_radiomic = [i for i in right[ID] if i not in in_left]

    table = left.merge(right, on=ID, how="left", validate="one_to_one", sort=False)
    table.index = clinical.index

    if shared:
        warnings.warn(
            f"{len(shared)} column(s) appear in both tables ({_examples(shared)}); the "
            "clinical values are kept.", UserWarning, stacklevel=2)
    if only_clinical:
        warnings.warn(
            f"{len(only_clinical)} of {len(left)} clinical row(s) have no radiomic features "
            f"(e.g. {_examples(only_clinical)}); their radiomic columns are NaN.",
            UserWarning, stacklevel=2)
    if only_radiomic:
        warnings.warn(
            f"{len(only_radiomic)} radiomic row(s) have no clinical row "
            f"(e.g. {_examples(only_radiomic)}); they are left out of the joined table.",
            UserWarning, stacklevel=2)
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
        """Counts for the report: patients with images, failures, unmatched ids."""
        return {"n_manifest": self.extraction.n_patients,
                "n_extracted": int(len(self.extraction.features)),
                "n_radiomic_columns": int(self.extraction.features.shape[1] - 1),
                "failures": self.extraction.failures.to_dict(orient="records"),
                "only_in_clinical": self.join.only_in_clinical,
                "only_in_radiomic": self.join.only_in_radiomic,
                "settings_version": self.extraction.version}

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
