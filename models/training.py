"""Training and evaluation as functions on DataFrames (``train.py`` and ``predict.py`` wrap them).

>>> from features.simulate import simulate_cohort
>>> from models.training import train
>>> result = train(simulate_cohort(2000, seed=1))          # doctest: +SKIP
>>> result.evaluation.metrics["model"]["auc"]               # doctest: +SKIP

Evaluation never touches rows the model was fitted, calibrated or tuned on: patients are
split once into training and evaluation sets; model choice, calibration and any threshold
tuning happen inside the training set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from features.article import PREVALENCE, THRESHOLDS
from features.contract import ID, LABEL, model_columns, validate_table, warn_extra_columns
from features.errors import UserInputError
from models.bundle import TrainedModel, table_sha256
from models.classifier import (
    fit_calibrated,
    out_of_fold_probabilities,
)
from models.metrics import (
    auc_with_ci,
    benchmark,
    brier_score,
    feature_odds_ratios,
    operating_point_at_sensitivity,
)
from models.rules import apply_rules
from models.validation import (
    apparent_performance,
    events_per_feature,
    nested_cross_validation,
)

#: The default decision threshold on the calibrated probability (see README).
DEFAULT_THRESHOLD = 0.5
MIN_ROWS_PER_CLASS = 10


@dataclass
class Evaluation:
    """Predictions and metrics on evaluation rows.

    frame: patient_id, pseudoprogression, p_pseudoprogression, one column per rule
    (1/0/NaN) and, for simulated data, bayes_posterior.
    """

    frame: pd.DataFrame
    metrics: dict


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
    X = train_table[columns]
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
        estimator=fitted.estimator, family=fitted.family, feature_columns=columns,
        threshold=float(chosen), threshold_source=source_text, cv_scores=fitted.cv_scores,
        training={"source": source, "n": int(len(train_table)), "n_positive": int(y.sum()),
                  "sha256": table_sha256(train_table), "seed": seed})


def evaluate(model: TrainedModel, table: pd.DataFrame, bayes_p: np.ndarray | None = None,
             restate_prevalences: dict[str, float] | None = None,
             warn: bool = True) -> Evaluation:
    """Benchmark the model and every rule on exactly the rows of a labelled table.

    ``warn``: warn about columns the model ignores or misses (off when the caller already
    did).
    """
    table = validate_table(table, require_label=True, source="the evaluation table")
    y = table[LABEL].to_numpy().astype(int)
    p = model.predict_proba(table, warn=warn)
    rules = apply_rules(table)
    metrics = benchmark(y, p, model.threshold, rules,
                        restate_prevalences=restate_prevalences or PREVALENCE)
    frame = pd.DataFrame({ID: table[ID].to_numpy(), LABEL: y, "p_pseudoprogression": p})
    frame = pd.concat([frame, rules.add_prefix("rule_").reset_index(drop=True)], axis=1)
    if bayes_p is not None:
        bayes_p = np.asarray(bayes_p, dtype=float)
        auc, ci = auc_with_ci(y, bayes_p)
        metrics["bayes_ceiling"] = {"auc": auc, "auc_ci": ci,
                                    "brier": brier_score(y, bayes_p)}
        frame["bayes_posterior"] = bayes_p
    ctdna = THRESHOLDS["ctdna_clearance"]
    ors = feature_odds_ratios(
        table, y, extra_binary={
            f"{ctdna.column} < {ctdna.value:g} ({ctdna.figure})":
                (table[ctdna.column] < ctdna.value).astype(float).where(
                    table[ctdna.column].notna())})
    metrics["feature_odds_ratios"] = ors.to_dict(orient="records")
    return Evaluation(frame=frame, metrics=metrics)


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
    from models.uncertainty import delong_test

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
