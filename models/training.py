"""Training as functions on DataFrames (``train.py`` wraps them).

>>> from features.synthetic import simulate_cohort
>>> from models import train
>>> result = train(simulate_cohort(2000, seed=1))          # doctest: +SKIP
>>> result.metrics["model"]["auc"]                          # doctest: +SKIP

A user's table is first put in the contract's canonical form by its table description
(:class:`features.description.TableDescription`: patient, lesion and label columns, renamed
contract columns, declared extra features). Evaluation never touches lesions of patients the
model was fitted, calibrated or tuned on: the chosen validation scheme
(:mod:`models.validation`: holdout, repeated cross-validation or the optimism-corrected
bootstrap) keeps each patient's lesions together, and model choice, calibration and any
threshold tuning happen inside the training patients of each split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from features.contract import ID, LABEL, is_radiomic, model_columns, warn_extra_columns
from features.description import DeclaredFeature, DescribedTable, TableDescription
from features.errors import UserInputError
from features.progress import StageBar
from models.bundle import TrainedModel, table_sha256
from models.choices import DEFAULT_THRESHOLD
from models.classifier import (
    CUSTOM,
    FAMILIES,
    TUNING_GRID,
    FeatureLayout,
    custom_estimator,
    estimator_name,
    fit_calibrated,
    out_of_fold_probabilities,
    with_threshold,
)
from models.evaluation import Evaluation, evaluate, evaluate_resampled, feature_effect_parts
from models.population import TrainingProfile
from models.statistics import delong_test, operating_point_at_sensitivity
from models.validation import (
    LEAVE_ONE_OUT,
    apparent_performance,
    check_trainable,
    choose_validation,
    holdout_split,
    nested_cross_validation,
    optimism_bootstrap,
    repeated_cv,
    sample_size,
)

#: Default repeats of cross-validation and resamples of the optimism bootstrap.
DEFAULT_REPEATS = {"cv": 10, "bootstrap": 100}


@dataclass
class TrainingResult:
    """The model fitted on the training rows (all rows under cv and bootstrap), its
    evaluation, which patients were used for what, and what the metrics document says of
    the training (:meth:`document_parts`, :attr:`metrics`).

    ``validation``: the scheme used, ``requested`` the one asked for and ``reason`` why
    (:func:`models.validation.choose_validation`); ``internal_validation``: the apparent
    figures, the events per candidate feature and the nested cross-validation, repeated
    cross-validation or optimism bootstrap; ``split``: the counts of lesions and patients
    fitted and evaluated; ``feature_effects``: what each feature does, measured on the
    training rows when no lesion was held out (else the evaluation holds it);
    ``positive_class``: the label's positive name; ``study``: the unlabelled rows and the
    undeclared columns of the table, when there were any."""

    model: TrainedModel
    evaluation: Evaluation
    train_ids: list[str]
    test_ids: list[str]
    validation: str = "holdout"
    requested: str = "auto"
    reason: str = ""
    internal_validation: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    feature_effects: dict = field(default_factory=dict)
    positive_class: str | None = None
    study: dict = field(default_factory=dict)

    def document_parts(self) -> dict:
        """The parts of the metrics document this training gives (keyword arguments of
        :func:`models.metrics_document.build_metrics_document`)."""
        return {**self.feature_effects, "internal_validation": self.internal_validation,
                "split": self.split,
                "validation": {"scheme": self.validation, "reason": self.reason,
                               "requested": self.requested},
                "model_selection": {"chosen": self.model.family, "cv": self.model.cv_scores},
                "positive_class": self.positive_class}

    @property
    def metrics(self) -> dict:
        """The metrics document of this training alone (no uncertainty, no report):
        :func:`models.metrics_document.build_metrics_document` of the evaluation's figures and
        :meth:`document_parts`."""
        from models.metrics_document import build_metrics_document

        return build_metrics_document(self.evaluation.metrics, self.study, **self.document_parts())


def describe_table(table: pd.DataFrame, description: TableDescription | None = None,
                   require_label: bool = True, source: str = "the table") -> DescribedTable:
    """``table`` in the contract's canonical form by ``description`` (the default describes a
    table already in the contract); see :meth:`TableDescription.apply`."""
    from models.rules import warn_empty_columns

    described = (description or TableDescription()).apply(table, require_label=require_label,
                                                           source=source)
    warn_empty_columns(described.table, source)
    return described


def feature_columns(table: pd.DataFrame,
                    features: Mapping[str, DeclaredFeature] | None = None) -> list[str]:
    """The model columns of a canonical table (:func:`features.contract.model_columns`), or
    a :class:`UserInputError` when there are none: checked before anything else about the
    table (its size, the validation scheme), so a table without features hears that first."""
    columns = model_columns(table.columns, declared=dict(features or {}))
    if not columns:
        raise UserInputError("the table has no feature columns: none of the contract's, no "
                             "radiomic columns and none declared under 'features' in a table "
                             "description (--table); see 'Your own data' in the README.")
    return columns


def check_threshold_options(threshold: float | None, target_sensitivity: float | None) -> None:
    """UserInputError unless at most one of a decision threshold and a target sensitivity
    is given, each strictly between 0 and 1 (checked before anything is fitted)."""
    if threshold is not None and target_sensitivity is not None:
        raise UserInputError("give either a threshold or a target sensitivity, not both.")
    if target_sensitivity is not None and not 0 < target_sensitivity < 1:
        raise UserInputError(f"target sensitivity must be in (0, 1), got {target_sensitivity}.")
    if threshold is not None and not 0 < float(threshold) < 1:
        raise UserInputError(f"threshold must be in (0, 1), got {float(threshold)}.")


def fit_model(train_table: pd.DataFrame, seed: int = 0, threshold: float | None = None,
              target_sensitivity: float | None = None, source: str = "table",
              progress: Callable[[str], None] | None = None,
              features: Mapping[str, DeclaredFeature] | None = None,
              description: TableDescription | None = None,
              estimator: Any = None) -> TrainedModel:
    """Fit the calibrated classifier on a canonical, labelled training table.

    ``features``: the declared extra feature columns (beyond the contract and the radiomic
    columns); ``description``: the table description, stored in the model so prediction
    applies it again. ``estimator``: a user's own unfitted classifier (or a factory of one,
    :func:`models.classifier.custom_estimator`) used instead of the built-in families, as
    the family :data:`~models.classifier.CUSTOM`, with the same calibration and threshold;
    its class is recorded in ``training["estimator"]``.
    """
    check_threshold_options(threshold, target_sensitivity)
    features = dict(features or {})
    columns = feature_columns(train_table, features)
    warn_extra_columns(train_table, columns)
    X = train_table[[*columns, ID]]
    y = train_table[LABEL].to_numpy().astype(int)
    groups = train_table[ID].to_numpy()
    fitted = fit_calibrated(X, y, groups, seed=seed, progress=progress, declared=features,
                            families=FAMILIES if estimator is None else (),
                            estimator=estimator)
    training = {"source": source, "n": int(len(train_table)), "n_positive": int(y.sum()),
                "n_patients": int(train_table[ID].nunique()),
                "sha256": table_sha256(train_table), "seed": seed}
    if fitted.family == CUSTOM:
        training["estimator"] = estimator_name(fitted.estimator.fitted_pipeline)
    if target_sensitivity is not None and progress:
        progress("choosing the threshold")
    return model_from_fit(fitted, train_table, columns, features, description, training,
                          threshold=threshold, target_sensitivity=target_sensitivity,
                          rows="the training patients")


def model_from_fit(fitted, table: pd.DataFrame, columns: list[str],
                   declared: Mapping[str, DeclaredFeature],
                   description: TableDescription | None, training: dict,
                   threshold: float | None = None, target_sensitivity: float | None = None,
                   rows: str = "the training patients") -> TrainedModel:
    """The saved form of a calibrated fit (:func:`models.classifier.fit_calibrated` on
    ``table``'s ``columns``): its decision threshold chosen by the policy (``threshold`` as
    given, :data:`~models.choices.DEFAULT_THRESHOLD` without one, or the one reaching
    ``target_sensitivity`` on out-of-fold calibrated probabilities of ``rows``), the declared
    features it uses, the table description, the ``training`` record and the training
    population."""
    if target_sensitivity is not None:
        X = table[[*columns, ID]]
        y = table[LABEL].to_numpy().astype(int)
        oof = out_of_fold_probabilities(fitted, X, y, table[ID].to_numpy(),
                                        training.get("seed", 0))
        chosen = float(operating_point_at_sensitivity(y, oof, target_sensitivity,
                                                      with_ci=False)["threshold"])
        source_text = (f"sensitivity {target_sensitivity:g} on out-of-fold calibrated "
                       f"probabilities of {rows}")
    else:
        chosen = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        source_text = "default (equal harms)" if threshold is None else "given by the user"
    return TrainedModel(
        estimator=with_threshold(fitted.estimator, chosen), family=fitted.family,
        feature_columns=columns, threshold_source=source_text, cv_scores=fitted.cv_scores,
        training=training,
        declared_features={k: vars(v) | {"range": None if v.range is None else list(v.range)}
                           for k, v in declared.items()},
        description=None if description is None else description.to_dict(),
        population=TrainingProfile.from_table(
            table, columns, categorical=fitted.layout.categorical).to_dict())


def _sample_size(model: TrainedModel, table: pd.DataFrame,
                 anticipated_c: float | None = None) -> dict:
    """:func:`models.validation.sample_size` for the model's features, counting the spline
    terms the built-in families may fit, with the user's anticipated C statistic (or Riley
    et al.'s conservative default without one)."""
    layout = FeatureLayout.from_columns(model.feature_columns, declared=model.declared())
    knots = (None if model.family == CUSTOM or "spline" not in FAMILIES else
             max(TUNING_GRID["spline"]["prepare__contract__spline__n_knots"]))
    return sample_size(table, layout, c_statistic=anticipated_c, spline_knots=knots)


def _split_counts(train_part: pd.DataFrame, test_part: pd.DataFrame, seed: int) -> dict:
    return {"n_train": int(len(train_part)), "n_train_positive": int(train_part[LABEL].sum()),
            "n_train_patients": int(train_part[ID].nunique()),
            "n_test": int(len(test_part)), "n_test_positive": int(test_part[LABEL].sum()),
            "n_test_patients": int(test_part[ID].nunique()),
            "unit": "lesions", "grouped_by": "patient", "seed": seed}


def train(table: pd.DataFrame | DescribedTable, seed: int = 0, test_size: float = 0.3,
          threshold: float | None = None, target_sensitivity: float | None = None,
          bayes_p: np.ndarray | None = None, source: str = "table",
          progress: bool = True, nested_cv: bool = True,
          description: TableDescription | None = None, validation: str = "auto",
          folds: int = 5, repeats: int | None = None,
          estimator: Any = None, anticipated_c: float | None = None) -> TrainingResult:
    """Fit the procedure and validate it by patient.

    ``table``: the user's table, put in canonical form by ``description`` (or a
    :class:`DescribedTable` already in it, e.g. joined with radiomic features). ``validation``:
    ``holdout`` (fit on ``1 - test_size`` of the patients, evaluate on the others, with
    nested cross-validation on the training patients when ``nested_cv``), ``cv`` (``repeats``
    x ``folds``-fold patient-grouped cross-validation of the whole procedure; the model is
    then fitted on every lesion), ``bootstrap`` (Harrell's optimism correction over
    ``repeats`` resamples of patients; the model is fitted on every lesion) or ``auto``
    (:func:`models.validation.choose_validation`). ``bayes_p`` (aligned with ``table``) is
    the simulator's exact posterior, reported as the ceiling beside the model.
    ``estimator``: a user's own unfitted scikit-learn classifier with ``predict_proba`` (or
    a function returning one; :func:`models.classifier.load_estimator` reads one from
    ``"module:factory"``), fitted instead of the built-in families through the same
    calibration, threshold, validation, benchmark against the rules and report; the model's
    family is then :data:`~models.classifier.CUSTOM`. ``anticipated_c``: the C statistic
    (AUC) expected from earlier studies, behind the minimum sample size (Riley et al.);
    without it their conservative default is used.

    A table without feature columns is refused first, before its size is judged.
    """
    if isinstance(table, DescribedTable):
        described = table
        description = description or described.description
    else:
        described = describe_table(table, description, require_label=True, source=source)
    table = described.table
    feature_columns(table, described.features)
    check_threshold_options(threshold, target_sensitivity)
    if anticipated_c is not None and not 0.5 < float(anticipated_c) < 1:
        raise UserInputError(f"the anticipated C statistic must lie between 0.5 and 1, got "
                             f"{anticipated_c}; give the AUC earlier studies report, or "
                             "leave it out for Riley et al.'s conservative default.")
    if estimator is not None:
        custom_estimator(estimator)  # a clear error before any split or fit
    mode, reason = choose_validation(table, validation, test_size, folds)
    options = dict(seed=seed, threshold=threshold, target_sensitivity=target_sensitivity,
                   source=source, features=described.features, description=description,
                   estimator=estimator)

    def procedure(part: pd.DataFrame, progress=None) -> TrainedModel:
        return fit_model(part, progress=progress, **options)

    bayes = None if bayes_p is None else np.asarray(bayes_p, dtype=float)
    if mode == "holdout":
        result = _train_holdout(table, procedure, test_size, seed, bayes, progress, nested_cv,
                                anticipated_c)
    elif mode == "loo":
        result = _train_resampled(table, procedure, "cv", LEAVE_ONE_OUT, 1, seed, bayes,
                                  progress, anticipated_c)
    else:
        result = _train_resampled(table, procedure, mode, folds,
                                  repeats or DEFAULT_REPEATS[mode], seed, bayes, progress,
                                  anticipated_c)
    study = {"unlabelled": described.unlabelled, "undeclared": list(described.undeclared)}
    result = replace(result, validation=mode, requested=validation, reason=reason,
                     positive_class=described.positive_name,
                     study={k: v for k, v in study.items() if v})
    result.model.metrics = result.metrics  # the saved model's record
    return result


def _train_holdout(table, procedure, test_size, seed, bayes, progress, nested_cv,
                   anticipated_c=None) -> TrainingResult:
    train_idx, test_idx = holdout_split(table, test_size, seed)
    train_part, test_part = table.iloc[train_idx], table.iloc[test_idx]
    check_trainable(train_part, "the training set")
    check_trainable(test_part, "the evaluation set")
    stages = StageBar(total=4 + (5 if nested_cv else 0), enabled=progress)
    try:
        model = procedure(train_part, progress=stages)
        size = _sample_size(model, train_part, anticipated_c)
        stages("evaluating on held-out patients")
        evaluation = evaluate(model, test_part, None if bayes is None else bayes[test_idx],
                              warn=False)
        internal = {"apparent": apparent_performance(model, train_part),
                    "events_per_feature": size}
        if nested_cv:
            internal["nested_cv"] = nested_cross_validation(train_part, procedure, seed=seed,
                                                            progress=stages)
    finally:
        stages.close()
    return TrainingResult(model, evaluation, train_part[ID].unique().tolist(),
                          test_part[ID].unique().tolist(), "holdout",
                          internal_validation=internal,
                          split=_split_counts(train_part, test_part, seed))


def _train_resampled(table, procedure, mode, folds, repeats, seed, bayes, progress,
                     anticipated_c=None) -> TrainingResult:
    n_steps = (repeats * folds if mode == "cv" else repeats) + 4
    stages = StageBar(total=n_steps, enabled=progress)
    try:
        model = procedure(table, progress=stages)
        size = _sample_size(model, table, anticipated_c)
        if mode == "cv":
            predictions, summary = repeated_cv(table, procedure, folds, repeats, seed,
                                               progress=stages)
        else:
            predictions, summary = optimism_bootstrap(table, procedure, model, repeats, seed,
                                                      progress=stages)
    finally:
        stages.close()
    evaluation = evaluate_resampled(table, model, predictions, mode, summary, bayes)
    evaluated = table.iloc[np.unique(predictions["row"].to_numpy().astype(int))]
    internal = {"apparent": apparent_performance(model, table), "events_per_feature": size,
                "cross_validation" if mode == "cv" else "optimism_bootstrap": summary}
    split = {
        "n_train": int(len(table)), "n_train_positive": int(table[LABEL].sum()),
        "n_train_patients": int(table[ID].nunique()), "n_test": int(len(evaluated)),
        "n_test_positive": int(evaluated[LABEL].sum()),
        "n_test_patients": int(evaluated[ID].nunique()), "unit": "lesions",
        "grouped_by": "patient", "seed": seed,
        "evaluated_on": ("each repeat's out-of-fold probabilities, every lesion called at "
                         "its fold model's threshold; figures averaged over the repeats"
                         if mode == "cv" else
                         "the saved model's apparent figures corrected for optimism "
                         "(Harrell), calibration from the refits' pooled out-of-bag "
                         "predictions; curves and rule comparisons from each lesion's "
                         "out-of-bag probability averaged over the refits")}
    ids = table[ID].unique().tolist()
    return TrainingResult(model, evaluation, ids, ids, mode, internal_validation=internal,
                          split=split,
                          feature_effects=feature_effect_parts(model, table, rows="training"))


def image_contribution(with_images: TrainingResult, without_images: TrainingResult) -> dict:
    """What the image features add: both models on the same evaluated lesions, with
    DeLong's test for the AUC difference (with minus without), clustered by patient where
    patients have several lesions (Obuchowski's covariance, as every AUC interval)."""
    a, b = with_images.evaluation, without_images.evaluation
    if a.frame[ID].tolist() != b.frame[ID].tolist():
        raise ValueError("the two models were not evaluated on the same patients")
    keys = ("auc", "auc_ci", "brier", "calibration_slope", "sensitivity", "ppv")
    test = delong_test(a.frame[LABEL].to_numpy(), a.frame["p_pseudoprogression"].to_numpy(),
                       b.frame["p_pseudoprogression"].to_numpy(),
                       groups=a.frame[ID].astype(str).to_numpy())
    return {"n": int(len(a.frame)), "n_positive": int(a.frame[LABEL].sum()),
            "with_images": {k: a.metrics["model"][k] for k in keys}
            | {"family": with_images.model.family,
               "n_features": len(with_images.model.feature_columns)},
            "without_images": {k: b.metrics["model"][k] for k in keys}
            | {"family": without_images.model.family,
               "n_features": len(without_images.model.feature_columns)},
            "auc_difference": test["difference"], "auc_difference_ci": test["ci"],
            "delong_p_value": test["p_value"]}


def compare_without_images(table: pd.DataFrame | DescribedTable, with_images: TrainingResult,
                           **options) -> dict:
    """Train the same procedure on ``table`` without its radiomic columns (same seed and
    scheme, so the same patients are evaluated) and compare it with ``with_images``
    (:func:`image_contribution`).

    ``options`` are :func:`train`'s keyword arguments as ``with_images`` was trained with;
    nested cross-validation is skipped for the comparison model.
    """
    if isinstance(table, DescribedTable):
        radiomic = [c for c in table.table.columns
                    if is_radiomic(c) or (table.features.get(c) and
                                          table.features[c].block == "radiomic")]
        tabular = replace(table, table=table.table.drop(columns=radiomic),
                          features={k: v for k, v in table.features.items()
                                    if k not in radiomic})
    else:
        tabular = table.drop(columns=[c for c in table.columns if is_radiomic(c)])
    options = options | {"nested_cv": False, "validation": with_images.validation}
    return image_contribution(with_images, train(tabular, **options))
