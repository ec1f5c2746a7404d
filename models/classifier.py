"""The calibrated pseudoprogression classifier.

A scikit-learn Pipeline takes the contract's DataFrame as it is: missing values, whole
missing modalities, ``cancer_type`` as a category and, when present, hundreds of radiomic
columns. Two model families are compared by patient-grouped internal cross-validation
(log loss, a proper score): penalised logistic regression on the contract's transforms
with missing-value indicators, and histogram gradient boosting with native missing-value
support. The chosen family is calibrated with :class:`~sklearn.calibration.CalibratedClassifierCV`
(sigmoid, ``ensemble=False``): the calibration map is fitted on out-of-fold predictions,
each from a model that did not see that patient, and applied to the model refitted on
all training patients. No resampling or class
weighting: the training prevalence is the prevalence the probabilities are calibrated to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    FixedThresholdClassifier,
    StratifiedGroupKFold,
    cross_val_predict,
    cross_validate,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from features.contract import BY_NAME, CANCER_TYPE, ID, is_radiomic, to_model_scale

#: Families compared by internal cross-validation, by name.
FAMILIES: tuple[str, ...] = ("logistic", "gradient_boosting")


class ContractTransformer(TransformerMixin, BaseEstimator):
    """Applies :func:`features.contract.to_model_scale` column by column (stateless)."""

    def fit(self, X: pd.DataFrame, y=None) -> ContractTransformer:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({c: to_model_scale(c, X[c].to_numpy()) for c in X.columns},
                            index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.feature_names_in_, dtype=object)


class CorrelationFilter(TransformerMixin, BaseEstimator):
    """Drops a column whose absolute Pearson correlation with an earlier kept column exceeds
    ``max_abs_corr`` (fitted on the training rows only).

    scikit-learn has no correlation filter; this greedy one keeps the first of each
    correlated group, which is what radiomics studies usually report.
    """

    def __init__(self, max_abs_corr: float = 0.95):
        self.max_abs_corr = max_abs_corr

    def fit(self, X, y=None) -> CorrelationFilter:
        a = np.asarray(X, dtype=float)
        self.n_features_in_ = a.shape[1]
        if a.shape[1] <= 1:
            self.keep_ = np.arange(a.shape[1])
            return self
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.abs(np.corrcoef(a, rowvar=False))
        r = np.nan_to_num(r, nan=0.0)
        keep: list[int] = []
        for j in range(a.shape[1]):
            if all(r[j, k] <= self.max_abs_corr for k in keep):
                keep.append(j)
        self.keep_ = np.asarray(keep, dtype=int)
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float)[:, self.keep_]


@dataclass
class FeatureLayout:
    """Which columns of the training table go where in the pipeline."""

    contract_numeric: list[str] = field(default_factory=list)
    radiomic: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)

    @classmethod
    def from_columns(cls, columns) -> FeatureLayout:
        """Sort model columns into contract numeric, radiomic and categorical."""
        layout = cls()
        for c in columns:
            if c == CANCER_TYPE:
                layout.categorical.append(c)
            elif is_radiomic(c):
                layout.radiomic.append(c)
            elif c in BY_NAME:
                layout.contract_numeric.append(c)
        return layout

    @property
    def columns(self) -> list[str]:
        return [*self.contract_numeric, *self.radiomic, *self.categorical]


#: Radiomic columns kept after the filters, by univariate F-test on the training fold.
RADIOMIC_KEEP = 10
#: Of two radiomic columns correlated beyond this (|Pearson r|), the later one is dropped.
RADIOMIC_MAX_CORR = 0.9
#: The radiomic reduction in words, for reports and model cards.
RADIOMIC_REDUCTION = (
    f"median imputation, zero-variance and correlation (|r| > {RADIOMIC_MAX_CORR:g}) filters, "
    f"then the {RADIOMIC_KEEP} columns with the strongest univariate association (F-test), "
    "all fitted on training rows only")


def _radiomic_reduction() -> Pipeline:
    """Median imputation, zero-variance and correlation filters, then the
    :data:`RADIOMIC_KEEP` columns with the strongest univariate association, scaled. Every
    step is fitted on the training fold only, so nothing leaks from held-out patients."""
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         VarianceThreshold(1e-12), CorrelationFilter(RADIOMIC_MAX_CORR),
                         SelectKBest(f_classif, k=RADIOMIC_KEEP), StandardScaler())


def build_family(family: str, layout: FeatureLayout, random_state: int = 0) -> Pipeline:
    """An unfitted pipeline of one model family for the given column layout."""
    parts = []
    if family == "logistic":
        if layout.contract_numeric:
            parts.append(("contract", make_pipeline(
                ContractTransformer(),
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler()), layout.contract_numeric))
        if layout.radiomic:
            parts.append(("radiomic", _radiomic_reduction(), layout.radiomic))
        if layout.categorical:
            parts.append(("category", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="unknown"),
                OneHotEncoder(handle_unknown="ignore")), layout.categorical))
        model = LogisticRegression(C=0.3, max_iter=2000)
    elif family == "gradient_boosting":
        if layout.contract_numeric:
            parts.append(("contract", ContractTransformer(), layout.contract_numeric))
        if layout.radiomic:
            parts.append(("radiomic", _radiomic_reduction(), layout.radiomic))
        if layout.categorical:
            parts.append(("category", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="unknown"),
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
                layout.categorical))
        model = HistGradientBoostingClassifier(
            learning_rate=0.08, max_iter=150, max_leaf_nodes=15, min_samples_leaf=30,
            l2_regularization=1.0, early_stopping=False, random_state=random_state)
    else:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
    pre = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("prepare", pre), ("model", model)])


def patient_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list:
    """Stratified folds that keep every patient's rows together; fewer folds on tiny data."""
    y = np.asarray(y)
    n_splits = int(max(2, min(n_splits, np.bincount(y.astype(int)).min())))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y, groups))


def row_groups(X, group_column: str | None = ID) -> np.ndarray:
    """The patient of each row: ``X[group_column]`` when ``X`` is a DataFrame holding it,
    otherwise each row is its own patient."""
    if group_column and isinstance(X, pd.DataFrame) and group_column in X.columns:
        return X[group_column].astype(str).to_numpy()
    return np.arange(len(X))


class PatientCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A classifier calibrated on patient-grouped folds.

    :class:`~sklearn.calibration.CalibratedClassifierCV` (``method``, ``ensemble=False``) on
    stratified folds that keep each patient's rows together: the calibration map is fitted
    on out-of-fold predictions and applied to ``estimator`` refitted on all rows. The
    patients are read at ``fit`` from ``groups`` or from the ``group_column`` of a DataFrame
    ``X`` (the pipeline ignores that column); without either, each row is one patient. The
    folds are made at every ``fit``, so ``clone(model).fit(X, y)`` works on any table.
    """

    def __init__(self, estimator=None, method: str = "sigmoid", n_splits: int = 5,
                 random_state: int = 0, group_column: str | None = ID):
        self.estimator = estimator
        self.method = method
        self.n_splits = n_splits
        self.random_state = random_state
        self.group_column = group_column

    def fit(self, X, y, groups=None) -> PatientCalibratedClassifier:
        """Fit on rows ``X`` with 0/1 labels ``y``; ``groups``: patient of each row."""
        if self.estimator is None:
            raise ValueError("PatientCalibratedClassifier needs an estimator.")
        y = np.asarray(y)
        groups = row_groups(X, self.group_column) if groups is None else np.asarray(groups)
        folds = patient_folds(y, groups, self.n_splits, self.random_state)
        self.calibrated_ = CalibratedClassifierCV(self.estimator, method=self.method,
                                                  cv=folds, ensemble=False).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        if hasattr(self.calibrated_, "n_features_in_"):
            self.n_features_in_ = self.calibrated_.n_features_in_
        if hasattr(self.calibrated_, "feature_names_in_"):
            self.feature_names_in_ = self.calibrated_.feature_names_in_
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, shape (n, 2)."""
        check_is_fitted(self, "calibrated_")
        return self.calibrated_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """The more probable class (threshold 0.5; the saved model carries its own)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @property
    def fitted_pipeline(self):
        """The chosen family's pipeline refitted on all rows (for coefficients, names)."""
        check_is_fitted(self, "calibrated_")
        return self.calibrated_.calibrated_classifiers_[0].estimator


def with_threshold(calibrated: PatientCalibratedClassifier,
                   threshold: float) -> FixedThresholdClassifier:
    """The fitted calibrated classifier with its decision threshold inside: ``predict`` calls
    pseudoprogression (1) where P(pseudoprogression) >= ``threshold``."""
    return FixedThresholdClassifier(calibrated, threshold=float(threshold),
                                    response_method="predict_proba")


@dataclass
class FittedClassifier:
    """The calibrated estimator and how it was chosen."""

    estimator: PatientCalibratedClassifier
    family: str
    layout: FeatureLayout
    cv_scores: dict[str, dict[str, float]]


def fit_calibrated(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, seed: int = 0,
                   n_splits: int = 5, families=FAMILIES, progress=None) -> FittedClassifier:
    """Choose a family by grouped CV log loss, then fit it calibrated (sigmoid, grouped CV).

    X holds the model columns (and may hold ``patient_id``, which the pipelines ignore); y
    is 0/1; groups are patient ids. ``progress`` is an optional callable taking a message,
    called before each stage. Runs with one OpenMP thread: on tables of this size gradient
    boosting's thread pool costs more than it gives, and on a busy machine it slows
    training several-fold.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit_calibrated(X, y, groups, seed, n_splits, families, progress)


def _fit_calibrated(X, y, groups, seed, n_splits, families, progress) -> FittedClassifier:
    layout = FeatureLayout.from_columns([c for c in X.columns if c != ID])
    folds = patient_folds(y, groups, n_splits, seed)
    scores: dict[str, dict[str, float]] = {}
    for fam in families:
        if progress:
            progress(f"cross-validating {fam}")
        res = cross_validate(build_family(fam, layout, seed), X, y, cv=folds,
                             scoring=("neg_log_loss", "roc_auc"))
        scores[fam] = {"log_loss": float(-res["test_neg_log_loss"].mean()),
                       "log_loss_sd": float(res["test_neg_log_loss"].std()),
                       "auc": float(res["test_roc_auc"].mean())}
    chosen = min(scores, key=lambda f: scores[f]["log_loss"])
    if progress:
        progress(f"calibrating {chosen}")
    calibrated = PatientCalibratedClassifier(build_family(chosen, layout, seed), method="sigmoid",
                                             n_splits=n_splits, random_state=seed)
    calibrated.fit(X, y, groups=groups)
    return FittedClassifier(calibrated, chosen, layout, scores)


def out_of_fold_probabilities(fitted: FittedClassifier, X: pd.DataFrame, y: np.ndarray,
                              groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """Calibrated probabilities for the training rows, each from a model that did not see it.

    Used to choose a threshold for a target sensitivity without touching evaluation data.
    """
    inner = PatientCalibratedClassifier(build_family(fitted.family, fitted.layout, seed),
                                        method="sigmoid", n_splits=3, random_state=seed)
    folds = patient_folds(y, groups, 5, seed + 1)
    with threadpool_limits(limits=1, user_api="openmp"):
        return cross_val_predict(inner, X, y, cv=folds, method="predict_proba")[:, 1]
