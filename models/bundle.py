"""A trained model with everything needed to trust it later, and saving / loading it.

The bundle carries the calibrated estimator, the feature columns it expects, the decision
threshold and where it came from, package versions, the training data's hash and size,
and the evaluation metrics. Loading checks that the file is such a bundle.
"""

from __future__ import annotations

import hashlib
import platform
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from features.contract import ID, KEY_COLUMNS
from features.description import DeclaredFeature, TableDescription
from features.errors import UserInputError
from features.tables import atomic_path
from models.statistics import called

FORMAT_VERSION = 2
_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "joblib",
             "SimpleITK", "pyradiomics-bhklab", "pseudoprogression")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a saved model depends on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def table_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table (row order and column order included)."""
    h = hashlib.sha256()
    h.update("|".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


@dataclass
class TrainedModel:
    """A calibrated classifier ready for prediction, with its provenance.

    ``estimator`` is a fitted scikit-learn classifier holding its decision threshold
    (:func:`models.classifier.with_threshold`: ``predict`` calls pseudoprogression where
    P(pseudoprogression) >= ``threshold``). It takes the model's ``feature_columns`` plus
    ``patient_id`` (used only to group a patient's rows when it is refitted), so
    ``sklearn.base.clone(model.estimator).fit(table, y)`` refits the whole procedure.
    """

    estimator: Any
    family: str
    feature_columns: list[str]
    threshold_source: str
    cv_scores: dict
    training: dict
    versions: dict = field(default_factory=package_versions)
    metrics: dict | None = None
    radiomics_settings: str | None = None
    declared_features: dict = field(default_factory=dict)
    description: dict | None = None
    population: dict | None = None
    format_version: int = FORMAT_VERSION

    def declared(self) -> dict[str, DeclaredFeature]:
        """The declared extra feature columns, by name (kind, block, range)."""
        return {k: DeclaredFeature(v["kind"], v.get("block"),
                                   None if v.get("range") is None else tuple(v["range"]))
                for k, v in self.declared_features.items()}

    def table_description(self) -> TableDescription:
        """The table description the model was trained with (the default when none)."""
        if self.description is None:
            return TableDescription()
        return TableDescription.from_dict(self.description,
                                          source="the table description stored in the model")

    @property
    def training_prevalence(self) -> float:
        """The share of positive lesions in the training rows (what it is calibrated to)."""
        n = self.training.get("n") or 0
        return float(self.training.get("n_positive", 0)) / n if n else float("nan")

    @property
    def threshold(self) -> float:
        """The decision threshold on P(pseudoprogression), read from the estimator."""
        return float(self.estimator.threshold)

    @property
    def input_columns(self) -> list[str]:
        """What the estimator takes: the feature columns, then ``patient_id``."""
        return [*self.feature_columns, ID]

    def align(self, df: pd.DataFrame, warn: bool = True) -> pd.DataFrame:
        """The estimator's columns from ``df``, in training order: extra columns are ignored
        and columns seen in training but absent here are treated as missing, each with a
        warning (unless ``warn`` is False)."""
        if not warn:
            return df.reindex(columns=self.input_columns)
        extra = [c for c in df.columns if c not in self.input_columns and c not in KEY_COLUMNS]
        if extra:
            warnings.warn(
                f"ignoring {len(extra)} column(s) the model was not trained on: "
                f"{', '.join(map(str, extra[:8]))}{' ...' if len(extra) > 8 else ''}",
                UserWarning, stacklevel=2)
        absent = [c for c in self.feature_columns if c not in df.columns]
        if absent:
            warnings.warn(
                f"{len(absent)} column(s) used in training are absent and treated as missing: "
                f"{', '.join(absent[:8])}{' ...' if len(absent) > 8 else ''}",
                UserWarning, stacklevel=2)
        return df.reindex(columns=self.input_columns)

    def predict_proba(self, df: pd.DataFrame, warn: bool = True) -> np.ndarray:
        """P(pseudoprogression) per row, shape (n,); ``warn`` as in :meth:`align`."""
        X = self.align(df, warn=warn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            return self.estimator.predict_proba(X)[:, 1]

    def predict(self, df: pd.DataFrame, warn: bool = True) -> np.ndarray:
        """1 (pseudoprogression) / 0 per row, by the estimator at its threshold."""
        X = self.align(df, warn=warn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            return self.estimator.predict(X).astype(int)

    def decide(self, p) -> np.ndarray:
        """1/0 calls from probabilities already computed, at the model's threshold (the same
        rule as :meth:`predict`, :func:`models.statistics.called`)."""
        return called(p, self.threshold).astype(int)


def save_model(model: TrainedModel, path: str | Path) -> Path:
    """Write the bundle with joblib through a temp file (atomic replace)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        joblib.dump(model, tmp, compress=3)
    return path


def load_model(path: str | Path) -> TrainedModel:
    """Read a bundle written by :func:`save_model`; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"model file not found: {path}. Train one with train.py --out {path}.")
    try:
        model = joblib.load(path)  # scikit-learn's version-mismatch warning stays visible
    except Exception as exc:
        raise UserInputError(
            f"could not read the model file {path} ({type(exc).__name__}); it is corrupted or "
            "not a model saved by train.py. Retrain it with train.py.") from None
    if not isinstance(model, TrainedModel):
        raise UserInputError(
            f"{path} holds a {type(model).__name__}, not a model saved by train.py. "
            "Retrain it with train.py.")
    if model.format_version != FORMAT_VERSION:
        raise UserInputError(
            f"{path} was saved in model format {model.format_version}; this version reads "
            f"format {FORMAT_VERSION}. Retrain it with this version's train.py.")
    return model
