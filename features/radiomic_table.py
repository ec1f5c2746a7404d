"""From images to the joined per-lesion table: extraction over a manifest, then the join.

:func:`add_radiomic_features` is what ``train.py --manifest`` and ``predict.py --manifest``
run; :func:`simulated_cohort_with_images` is the synthetic path (``train.py --images``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.extract import DEFAULT_PARAMS, ExtractionResult, extract
from features.join import JoinResult, join_features
from features.parameters import DEFAULT_PARAMETERS, CohortParameters


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


def add_radiomic_features(clinical: pd.DataFrame, manifest: pd.DataFrame | str | Path,
                          params: str | Path = DEFAULT_PARAMS, jobs: int = 1,
                          cache_dir: str | Path | None = None, progress: bool = True,
                          base_dir: str | Path | None = None) -> RadiomicTable:
    """Extract pyradiomics features for the manifest's patients and left-join them onto
    ``clinical`` by patient_id.

    A patient whose extraction failed keeps its clinical row with empty radiomic columns;
    each failure is reported by a warning (and listed in the result), never dropped silently.
    """
    result = extract(manifest, params=params, jobs=jobs, cache_dir=cache_dir,
                     progress=progress, base_dir=base_dir)
    if len(result.failures):
        warnings.warn(f"radiomic extraction failed for {result.failures['patient_id'].nunique()} "
                      f"patient(s); their image features are treated as missing:\n"
                      + result.summary().split("\n", 1)[-1], UserWarning, stacklevel=2)
    joined = join_features(clinical, result.features)
    return RadiomicTable(joined.table, result, joined, Path(params).read_text())


def simulated_cohort_with_images(n: int, cohort: str, seed: int, image_dir: str | Path,
                                 prevalence: float | None = None, jobs: int = 1,
                                 progress: bool = True, params: CohortParameters | None = None
                                 ) -> tuple[pd.DataFrame, Path]:
    """Simulate a cohort and write its synthetic MRI under ``image_dir``, both shaped by
    ``params`` (the simulator's parameter table; its ``images`` field for the MRI).

    Returns the clinical table and the path of the image manifest.
    """
    from features.images import MANIFEST_FILE, write_synthetic_images
    from features.simulate import simulate_cohort

    table = simulate_cohort(n, cohort=cohort, prevalence=prevalence, seed=seed, params=params)
    image_dir = Path(image_dir)
    if progress:
        print(f"writing synthetic MRI for {n} patients to {image_dir} ...", flush=True)
    params = DEFAULT_PARAMETERS if params is None else params
    write_synthetic_images(table, image_dir, seed=seed, params=params.images, jobs=jobs)
    return table, image_dir / MANIFEST_FILE
