"""Training and evaluation as functions on DataFrames (``train.py`` and ``predict.py`` wrap them).

>>> from features.synthetic.cohort import simulate_cohort
>>> from models.training import train
>>> result = train(simulate_cohort(2000, seed=1))          # doctest: +SKIP
>>> result.evaluation.metrics["model"]["auc"]               # doctest: +SKIP

Evaluation never touches rows the model was fitted, calibrated or tuned on: patients are
split once into training and evaluation sets; model choice, calibration and any threshold
tuning happen inside the training set.

Internal validation is kept honest about optimism; three figures are kept apart, each with
the patients behind it:

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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from features.contract import (
    ID,
    LABEL,
    is_radiomic,
    model_columns,
    validate_table,
    warn_extra_columns,
)
from features.errors import UserInputError
from models.bundle import TrainedModel, table_sha256
from models.classifier import (
    FeatureLayout,
    fit_calibrated,
    out_of_fold_probabilities,
    patient_folds,
    with_threshold,
)
from models.evaluation import Evaluation, evaluate
from models.statistics import (
    auc_with_ci,
    binary_metrics,
    brier_score,
    calibration_intercept_slope,
    called,
    delong_test,
    operating_point_at_sensitivity,
)

#: The default decision threshold on the calibrated probability (see README).
DEFAULT_THRESHOLD = 0.5
MIN_ROWS_PER_CLASS = 10


#: Below this many events per candidate feature a model is flagged as possibly unstable
#: (Riley et al. 2020 and TRIPOD+AI discuss 10 as a floor for regression, more for ML).
MIN_EVENTS_PER_FEATURE = 10.0


def _validation_scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """The statistics internal validation compares, from :mod:`models.statistics`."""
    cal = calibration_intercept_slope(y, p)
    at = binary_metrics(y, called(p, threshold).astype(float))
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
        rows.append({"fold": i + 1, **_validation_scores(part[LABEL].to_numpy().astype(int), p,
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
    return _validation_scores(y, model.predict_proba(train_table, warn=False), model.threshold)


@dataclass
class TrainingResult:
    model: TrainedModel
    evaluation: Evaluation
    train_ids: list[str]
    test_ids: list[str]


class _Stages:
    """A progress bar over named stages (silent when disabled)."""

    def __init__(self, total: int, enabled: bool):
        self.started = 0
        self.bar = tqdm(total=total, disable=not enabled, unit="step",
                        bar_format="{desc:<34}{bar:20}| {n_fmt}/{total_fmt} [{elapsed}]")

    def __call__(self, message: str) -> None:
        if 0 < self.started <= self.bar.total:
            self.bar.update(1)
        self.started += 1
        self.bar.set_description_str(message)

    def close(self) -> None:
        self.bar.update(max(self.bar.total - self.bar.n, 0))
        self.bar.close()


def split_patients(table: pd.DataFrame, test_size: float = 0.3,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of training and evaluation patients, stratified by the label.

    The contract makes ``patient_id`` unique, so each row is one patient and a row split
    is a patient split.
    """
    if not 0.05 <= test_size <= 0.8:
        raise UserInputError(f"test size must be between 0.05 and 0.8, got {test_size}.")
    if table[ID].duplicated().any():
        raise UserInputError("patient_id must be unique to split patients; see the contract.")
    y = table[LABEL].to_numpy().astype(int)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_size,
                                           stratify=y, random_state=seed)
    return np.sort(train_idx), np.sort(test_idx)


def _check_trainable(table: pd.DataFrame, what: str) -> None:
    counts = table[LABEL].value_counts()
    small = {int(k): int(v) for k, v in counts.items() if v < MIN_ROWS_PER_CLASS}
    if len(counts) < 2 or small:
        raise UserInputError(
            f"{what} has too few rows of a class to train and evaluate "
            f"(counts by label: {counts.to_dict()}); need at least {MIN_ROWS_PER_CLASS} "
            "pseudoprogression and true progression rows in each of the training and "
            "evaluation sets. Provide more data or lower --test-size.")


def fit_model(train_table: pd.DataFrame, seed: int = 0, threshold: float | None = None,
              target_sensitivity: float | None = None, source: str = "table",
              progress: Callable[[str], None] | None = None) -> TrainedModel:
    """Fit the calibrated classifier on a validated training table with labels."""
    if threshold is not None and target_sensitivity is not None:
        raise UserInputError("give either a threshold or a target sensitivity, not both.")
    columns = model_columns(train_table.columns)
    if not columns:
        raise UserInputError("the table has no feature columns of the contract; see the data "
                             "dictionary in the README.")
    warn_extra_columns(train_table, columns)
    X = train_table[[*columns, ID]]
    y = train_table[LABEL].to_numpy().astype(int)
    groups = train_table[ID].to_numpy()
    fitted = fit_calibrated(X, y, groups, seed=seed, progress=progress)
    if target_sensitivity is not None:
        if not 0 < target_sensitivity < 1:
            raise UserInputError(f"target sensitivity must be in (0, 1), got {target_sensitivity}.")
        if progress:
            progress("choosing the threshold")
        oof = out_of_fold_probabilities(fitted, X, y, groups, seed)
        chosen = operating_point_at_sensitivity(y, oof, target_sensitivity)["threshold"]
        source_text = (f"sensitivity {target_sensitivity:g} on out-of-fold calibrated "
                       "probabilities of the training patients")
    else:
        chosen = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not 0 < chosen < 1:
            raise UserInputError(f"threshold must be in (0, 1), got {chosen}.")
        source_text = "default (equal harms)" if threshold is None else "given by the user"
    return TrainedModel(
        estimator=with_threshold(fitted.estimator, chosen), family=fitted.family,
        feature_columns=columns, threshold_source=source_text, cv_scores=fitted.cv_scores,
        training={"source": source, "n": int(len(train_table)), "n_positive": int(y.sum()),
                  "sha256": table_sha256(train_table), "seed": seed})


def train(table: pd.DataFrame, seed: int = 0, test_size: float = 0.3,
          threshold: float | None = None, target_sensitivity: float | None = None,
          bayes_p: np.ndarray | None = None, source: str = "table",
          progress: bool = True, nested_cv: bool = True) -> TrainingResult:
    """Split patients, fit on the training part, evaluate on the held-out part.

    ``bayes_p`` (aligned with ``table``) is the simulator's exact posterior, reported as the
    ceiling beside the model on the same evaluation rows. ``nested_cv`` adds nested
    cross-validation on the training patients (five more fits of the whole procedure).
    """
    table = validate_table(table, require_label=True, source=source)
    train_idx, test_idx = split_patients(table, test_size, seed)
    train_part, test_part = table.iloc[train_idx], table.iloc[test_idx]
    _check_trainable(train_part, "the training set")
    _check_trainable(test_part, "the evaluation set")
    epv = events_per_feature(train_part)
    n_stages = 4 + (target_sensitivity is not None) + (5 if nested_cv else 0)
    stages = _Stages(total=n_stages, enabled=progress)

    def procedure(part: pd.DataFrame, progress=None) -> TrainedModel:
        return fit_model(part, seed=seed, threshold=threshold,
                         target_sensitivity=target_sensitivity, source=source,
                         progress=progress)

    try:
        model = procedure(train_part, progress=stages)
        stages("evaluating on held-out patients")
        evaluation = evaluate(model, test_part,
                              None if bayes_p is None else np.asarray(bayes_p)[test_idx],
                              warn=False)
        internal = {"apparent": apparent_performance(model, train_part),
                    "events_per_feature": epv}
        if nested_cv:
            internal["nested_cv"] = nested_cross_validation(
                train_part, procedure, lambda m: m.threshold, seed=seed, progress=stages)
    finally:
        stages.close()
    evaluation.metrics["internal_validation"] = internal
    evaluation.metrics["model_selection"] = {"chosen": model.family, "cv": model.cv_scores}
    evaluation.metrics["split"] = {"n_train": int(len(train_part)),
                                   "n_train_positive": int(train_part[LABEL].sum()),
                                   "n_test": int(len(test_part)),
                                   "n_test_positive": int(test_part[LABEL].sum()),
                                   "unit": "patients", "seed": seed}
    model.metrics = evaluation.metrics
    return TrainingResult(model, evaluation, train_part[ID].tolist(), test_part[ID].tolist())


def image_contribution(with_images: TrainingResult, without_images: TrainingResult) -> dict:
    """What the image features add: both models on the same held-out patients, with
    DeLong's test for the AUC difference (with minus without)."""
    a, b = with_images.evaluation, without_images.evaluation
    if a.frame[ID].tolist() != b.frame[ID].tolist():
        raise ValueError("the two models were not evaluated on the same patients")
    keys = ("auc", "auc_ci", "brier", "calibration_slope", "sensitivity", "ppv")
    test = delong_test(a.frame[LABEL].to_numpy(), a.frame["p_pseudoprogression"].to_numpy(),
                       b.frame["p_pseudoprogression"].to_numpy())
    return {"n": int(len(a.frame)), "n_positive": int(a.frame[LABEL].sum()),
            "with_images": {k: a.metrics["model"][k] for k in keys}
            | {"family": with_images.model.family,
               "n_features": len(with_images.model.feature_columns)},
            "without_images": {k: b.metrics["model"][k] for k in keys}
            | {"family": without_images.model.family,
               "n_features": len(without_images.model.feature_columns)},
            "auc_difference": test["difference"], "auc_difference_ci": test["ci"],
            "delong_p_value": test["p_value"]}


def compare_without_images(table: pd.DataFrame, with_images: TrainingResult,
                           **options) -> dict:
    """Train the same procedure on ``table`` without its radiomic columns (same seed, so the
    same patients are held out) and compare it with ``with_images`` (:func:`image_contribution`).

    ``options`` are :func:`train`'s keyword arguments as ``with_images`` was trained with;
    nested cross-validation is skipped for the comparison model.
    """
    tabular = table.drop(columns=[c for c in table.columns if is_radiomic(c)])
    without = train(tabular, **(options | {"nested_cv": False}))
    return image_contribution(with_images, without)
