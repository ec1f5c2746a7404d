"""Internal validation that is honest about optimism.

Three figures are kept apart, each with the patients behind it:

- *apparent*: the final model scored on the very patients it was trained on (optimistic);
- *nested cross-validation*: on the training patients, each outer fold refits the whole
  procedure (family choice by inner CV, calibration, threshold) on the other folds and is
  scored on the fold it never saw;
- *held-out test*: the patients set aside before anything was fitted (in ``metrics.json``).

Also the events per candidate feature (EPV) behind the model, with a warning when too few
events back a stable model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from features.contract import ID, LABEL, model_columns
from models.bundle import TrainedModel
from models.classifier import FeatureLayout, patient_folds
from models.metrics import (
    auc_with_ci,
    binary_metrics,
    brier_score,
    calibration_intercept_slope,
)

#: Below this many events per candidate feature a model is flagged as possibly unstable
#: (Riley et al. 2020 and TRIPOD+AI discuss 10 as a floor for regression, more for ML).
MIN_EVENTS_PER_FEATURE = 10.0


def _scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """The statistics internal validation compares, from :mod:`models.metrics`."""
    cal = calibration_intercept_slope(y, p)
    at = binary_metrics(y, (p >= threshold).astype(float))
    return {"n": at["n"], "n_positive": at["n_positive"],
            "auc": auc_with_ci(y, p)[0], "brier": brier_score(y, p),
            "calibration_intercept": cal["calibration_intercept"],
            "calibration_slope": cal["calibration_slope"],
            "sensitivity": at["sensitivity"], "ppv": at["ppv"]}


def candidate_feature_count(train_table: pd.DataFrame) -> int:
    """Candidate predictor parameters: one per numeric column (two when it has missing values,
    for its missing indicator), one per category level beyond the first."""
    layout = FeatureLayout.from_columns(model_columns(train_table.columns))
    count = 0
    for c in [*layout.contract_numeric, *layout.radiomic]:
        count += 1 + int(train_table[c].isna().any())
    for c in layout.categorical:
        count += max(int(train_table[c].nunique()) - 1, 0)
    return count


def events_per_feature(train_table: pd.DataFrame) -> dict:
    """Events (the rarer class) per candidate feature, and whether that is enough."""
    y = train_table[LABEL].to_numpy().astype(int)
    events = int(min(y.sum(), len(y) - y.sum()))
    k = candidate_feature_count(train_table)
    epv = events / k if k else float("nan")
    ok = bool(epv >= MIN_EVENTS_PER_FEATURE)
    if not ok:
        warnings.warn(f"only {epv:.2g} events per candidate feature ({events} events, {k} "
                      f"candidate features; fewer than {MIN_EVENTS_PER_FEATURE:g}): the model "
                      "may be unstable, and its apparent performance optimistic; judge it "
                      "by held-out and nested cross-validation figures.", UserWarning, stacklevel=2)
    return {"events": events, "candidate_features": k, "events_per_feature": epv,
            "minimum": MIN_EVENTS_PER_FEATURE, "enough": ok}


def nested_cross_validation(train_table: pd.DataFrame, fit, threshold_of, n_outer: int = 5,
                            seed: int = 0, progress=None) -> dict:
    """Score the whole fitting procedure on outer folds it never saw.

    ``fit(table) -> TrainedModel`` is the procedure (family choice, calibration, threshold);
    ``threshold_of(model)`` the threshold to score at. Returns per-fold scores and their
    mean and SD.
    """
    y = train_table[LABEL].to_numpy().astype(int)
    folds = patient_folds(y, train_table[ID].to_numpy(), n_outer, seed + 7)
    rows = []
    for i, (inner, outer) in enumerate(folds):
        if progress:
            progress(f"nested CV fold {i + 1}/{len(folds)}")
        model: TrainedModel = fit(train_table.iloc[inner])
        part = train_table.iloc[outer]
        p = model.predict_proba(part, warn=False)
        rows.append({"fold": i + 1, **_scores(part[LABEL].to_numpy().astype(int), p,
                                              threshold_of(model))})
    per_fold = pd.DataFrame(rows)
    summary = {k: {"mean": float(per_fold[k].mean()), "sd": float(per_fold[k].std(ddof=1))}
               for k in ("auc", "brier", "calibration_intercept", "calibration_slope",
                         "sensitivity", "ppv")}
    return {"n_outer_folds": len(folds), "n": int(len(train_table)),
            "n_positive": int(y.sum()), "summary": summary,
            "per_fold": per_fold.to_dict(orient="records")}


def apparent_performance(model: TrainedModel, train_table: pd.DataFrame) -> dict:
    """The final model scored on its own training patients (optimistic by construction)."""
    y = train_table[LABEL].to_numpy().astype(int)
    return _scores(y, model.predict_proba(train_table, warn=False), model.threshold)
