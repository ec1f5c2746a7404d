"""The calibrated pseudoprogression classifier.

A scikit-learn Pipeline takes the contract's DataFrame as it is: missing values, whole
missing modalities, ``cancer_type`` as a category and, when present, hundreds of radiomic
columns and a table description's declared extra features (:class:`FeatureLayout`). Two
model families are compared by patient-grouped internal cross-validation
(log loss, a proper score): penalised logistic regression on the contract's transforms
with missing-value indicators, and histogram gradient boosting with native missing-value
support. The chosen family is calibrated with :class:`~sklearn.calibration.CalibratedClassifierCV`
(sigmoid, ``ensemble=False``): the calibration map is fitted on out-of-fold predictions,
each from a model that did not see that patient, and applied to the model refitted on
all training patients. No resampling or class weighting: the training prevalence is the
prevalence the probabilities are calibrated to.

Small cohorts: a family's settings follow the rows it is fitted on, and a family that cannot
learn from so few events is skipped, with a note saying so (:func:`fit_calibrated`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
    clone,
)
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_selection import SelectKBest, SelectorMixin, VarianceThreshold, f_classif
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
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from threadpoolctl import threadpool_limits

from features.contract import (
    BY_NAME,
    ID,
    KEY_COLUMNS,
    NUMERIC_FEATURES,
    is_radiomic,
    to_model_scale,
)
from features.description import DeclaredFeature
from features.errors import UserInputError

#: Families compared by internal cross-validation, by name.
FAMILIES: tuple[str, ...] = ("logistic", "gradient_boosting")


class ContractTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Puts each contract column on its model scale (:func:`features.contract.to_model_scale`);
    columns the contract does not name pass through unchanged. Learns nothing.

    ``columns``: the names of an array's columns, in order; columns beyond them are unnamed
    (``x<j>``) and pass through, like every column of an array when ``columns`` is None. A
    DataFrame is read by its own column names. NaN stays NaN; infinity is an error.
    """

    def __init__(self, columns: Sequence[str] | None = None):
        self.columns = columns

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None) -> ContractTransformer:
        """Record the input columns (their names say which transform each one gets)."""
        validate_data(self, X, dtype=float, ensure_all_finite="allow-nan")
        return self

    def _names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        named = [] if self.columns is None else [str(c) for c in self.columns]
        return [named[j] if j < len(named) else f"x{j}" for j in range(self.n_features_in_)]

    def transform(self, X) -> np.ndarray:
        """The columns on their model scales, as a float array (n_rows, n_columns)."""
        check_is_fitted(self, "n_features_in_")
        a = validate_data(self, X, reset=False, dtype=float, ensure_all_finite="allow-nan")
        out = np.empty_like(a, dtype=float)
        for j, name in enumerate(self._names()):
            out[:, j] = to_model_scale(name, a[:, j])
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The input column names (``columns`` for an array when given)."""
        check_is_fitted(self, "n_features_in_")
        if input_features is None and not hasattr(self, "feature_names_in_") \
                and self.columns is not None:
            return np.asarray(self._names(), dtype=object)
        return super().get_feature_names_out(input_features)


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Drops a column whose absolute Pearson correlation with an earlier kept column exceeds
    ``max_abs_corr`` (fitted on the training rows only; no missing values, impute first).

    scikit-learn has no correlation filter; this greedy one keeps the first of each
    correlated group, which is what radiomics studies usually report. A constant column has
    no correlation and is kept (a variance filter drops it).
    """

    def __init__(self, max_abs_corr: float = 0.95):
        self.max_abs_corr = max_abs_corr

    def fit(self, X, y=None) -> CorrelationFilter:
        """Choose the columns to keep from the rows ``X``."""
        a = validate_data(self, X, dtype=float)
        p = a.shape[1]
        if p <= 1 or a.shape[0] < 2:
            self.support_ = np.ones(p, dtype=bool)
            return self
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.abs(np.corrcoef(a, rowvar=False))
        r = np.nan_to_num(r, nan=0.0)
        keep = np.zeros(p, dtype=bool)
        for j in range(p):
            keep[j] = not (r[j, :j][keep[:j]] > self.max_abs_corr).any()
        self.support_ = keep
        return self

    @property
    def keep_(self) -> np.ndarray:
        """Indices of the kept columns."""
        return np.flatnonzero(self.support_)

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_


@dataclass
class FeatureLayout:
    """Which columns of the training table go where in the pipeline.

    numeric: the contract's number and binary columns (put on their model scale) and declared
    ``number`` and ``binary`` columns (as they are); radiomic: radiomic columns and declared
    columns of ``block: radiomic``, reduced inside the folds; categorical: ``cancer_type`` and
    declared ``category`` columns. declared: the declared extra columns among them.
    """

    numeric: list[str] = field(default_factory=list)
    radiomic: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    declared: dict[str, DeclaredFeature] = field(default_factory=dict)

    @classmethod
    def from_columns(cls, columns: Sequence[str],
                     declared: Mapping[str, DeclaredFeature] | None = None) -> FeatureLayout:
        """Sort model columns into numeric, radiomic and categorical blocks.

        ``declared``: extra columns a table description declares (name to
        :class:`~features.description.DeclaredFeature`). A contract column keeps its contract
        role even when declared; a column neither in the contract, nor radiomic, nor declared
        is left out, and so are the id, lesion and label columns.
        """
        declared = dict(declared or {})
        layout = cls()
        for c in columns:
            if c in KEY_COLUMNS:
                continue
            if c in BY_NAME:
                if c in NUMERIC_FEATURES:
                    layout.numeric.append(c)
                elif BY_NAME[c].kind == "category":
                    layout.categorical.append(c)
            elif c in declared:
                feature = declared[c]
                if feature.block == "radiomic":
                    layout.radiomic.append(c)
                elif feature.kind == "category":
                    layout.categorical.append(c)
                else:
                    layout.numeric.append(c)
                layout.declared[c] = feature
            elif is_radiomic(c):
                layout.radiomic.append(c)
        return layout

    @property
    def contract_numeric(self) -> list[str]:
        """The numeric block (:attr:`numeric`; the name it had before declared columns)."""
        return self.numeric

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.radiomic, *self.categorical]

    def describe(self) -> dict:
        """For reports: per block, the number of columns, their names and which of them are
        declared extras; plain lists and numbers (JSON-ready)."""
        blocks = {"numeric": self.numeric, "radiomic": self.radiomic,
                  "categorical": self.categorical}
        return {name: {"n": len(cols), "columns": list(cols),
                       "declared": [c for c in cols if c in self.declared]}
                for name, cols in blocks.items()}


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


#: Boosting's leaf size on large tables (rows), reached from 600 rows per fitted model up.
BOOSTING_MIN_SAMPLES_LEAF = 30
#: Boosting's smallest leaf (rows), on small tables.
BOOSTING_MIN_LEAF_FLOOR = 5
#: Boosting is skipped when a cross-validation training fold holds fewer rows of the
#: smaller class than this.
BOOSTING_MIN_MINORITY = 10
#: Cross-validation needs at least this many rows of each class (two stratified folds).
MIN_ROWS_PER_CLASS = 2


def boosting_min_samples_leaf(n_rows: int | None) -> int:
    """Boosting's ``min_samples_leaf`` for a model fitted on ``n_rows`` rows.

    5% of the rows, between :data:`BOOSTING_MIN_LEAF_FLOOR` (5) and
    :data:`BOOSTING_MIN_SAMPLES_LEAF` (30); None gives 30. A tree cannot split fewer than
    twice its leaf size, so a fixed 30 leaves every tree a single leaf below 60 rows (constant
    predictions, a CV AUC of exactly 0.5); 5% keeps room for a few splits on a small table,
    and a leaf of at least 5 rows keeps each leaf's value from resting on one or two patients.
    """
    if n_rows is None:
        return BOOSTING_MIN_SAMPLES_LEAF
    return int(min(BOOSTING_MIN_SAMPLES_LEAF, max(BOOSTING_MIN_LEAF_FLOOR, n_rows // 20)))


def build_family(family: str, layout: FeatureLayout, random_state: int = 0,
                 n_rows: int | None = None) -> Pipeline:
    """An unfitted pipeline of one model family for the given column layout.

    ``n_rows``: how many rows each fit of it will see, which sizes gradient boosting's leaves
    (:func:`boosting_min_samples_leaf`; None: the large-table setting).
    """
    parts = []
    if family == "logistic":
        if layout.numeric:
            parts.append(("contract", make_pipeline(
                ContractTransformer(),
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                StandardScaler()), layout.numeric))
        if layout.radiomic:
            parts.append(("radiomic", _radiomic_reduction(), layout.radiomic))
        if layout.categorical:
            parts.append(("category", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="unknown"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                layout.categorical))
        model = LogisticRegression(C=0.3, max_iter=2000)
    elif family == "gradient_boosting":
        if layout.numeric:
            parts.append(("contract", ContractTransformer(), layout.numeric))
        if layout.radiomic:
            parts.append(("radiomic", _radiomic_reduction(), layout.radiomic))
        if layout.categorical:
            parts.append(("category", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="unknown"),
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
                layout.categorical))
        model = HistGradientBoostingClassifier(
            learning_rate=0.08, max_iter=150, max_leaf_nodes=15,
            min_samples_leaf=boosting_min_samples_leaf(n_rows), l2_regularization=1.0,
            early_stopping=False, random_state=random_state)
    else:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
    pre = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("prepare", pre), ("model", model)])


def patient_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list:
    """Stratified folds that keep every patient's rows together; fewer folds on tiny data."""
    y = np.asarray(y)
    n_splits = int(max(2, min(n_splits, np.unique(y, return_counts=True)[1].min())))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y, groups))


def row_groups(X, group_column: str | None = ID) -> np.ndarray:
    """The patient of each row: ``X[group_column]`` when ``X`` is a DataFrame holding it,
    otherwise each row is its own patient."""
    if group_column and isinstance(X, pd.DataFrame) and group_column in X.columns:
        return X[group_column].astype(str).to_numpy()
    return np.arange(_n_rows(X))


def _n_rows(X) -> int:
    """Rows of an array, sparse matrix, DataFrame or list of rows."""
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(np.asarray(X))


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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            inner = get_tags(self.estimator)
            tags.input_tags.sparse = inner.input_tags.sparse
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
            tags.input_tags.string = inner.input_tags.string
        return tags

    def fit(self, X, y, groups=None) -> PatientCalibratedClassifier:
        """Fit on rows ``X`` with 0/1 labels ``y``; ``groups``: patient of each row."""
        if self.estimator is None:
            raise ValueError("PatientCalibratedClassifier needs an estimator.")
        if y is None:
            raise ValueError("PatientCalibratedClassifier requires y to be passed, but the "
                             "target y is None.")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
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
        check_is_fitted(self, "calibrated_")
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
    """The calibrated estimator and how it was chosen.

    cv_scores: per family, the mean cross-validated log loss (its SD over folds) and AUC, NaN
    for a family skipped or failed, and a ``note`` when the family was adapted to the table's
    size, skipped or failed. notes: the same notes, by family.
    """

    estimator: PatientCalibratedClassifier
    family: str
    layout: FeatureLayout
    cv_scores: dict[str, dict[str, float | str]]
    notes: dict[str, str] = field(default_factory=dict)


def _class_counts(y: np.ndarray) -> dict:
    labels, counts = np.unique(y, return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist(), strict=True))


def family_plan(family: str, y: np.ndarray, folds: list) -> tuple[int | None, str]:
    """How ``family`` is fitted on these folds: ``(n_rows, note)``, ``n_rows`` None when the
    family is skipped.

    Rules, on the cross-validation training folds (the rows each model learns from):

    - logistic regression runs at any size (its L2 penalty keeps it stable);
    - gradient boosting is skipped when a training fold holds fewer than
      :data:`BOOSTING_MIN_MINORITY` (10) rows of the smaller class: a tree's splits would
      then rest on a handful of events;
    - otherwise its leaves are sized for the smallest training fold
      (:func:`boosting_min_samples_leaf`), so the settings scored by cross-validation are the
      ones calibrated and refitted; the note says when that is below the large-table 30.
    """
    n_fit = min(len(train) for train, _ in folds)
    if family != "gradient_boosting":
        return n_fit, ""
    classes = np.unique(y)
    minority = min(int(np.sum(y[train] == c)) for train, _ in folds for c in classes)
    if minority < BOOSTING_MIN_MINORITY:
        return None, (f"skipped: the smaller class has {minority} rows in the smallest "
                      f"cross-validation training fold, fewer than {BOOSTING_MIN_MINORITY}; "
                      "boosted trees would split on a handful of events")
    leaf = boosting_min_samples_leaf(n_fit)
    if leaf < BOOSTING_MIN_SAMPLES_LEAF:
        return n_fit, (f"adapted: min_samples_leaf {leaf} instead of "
                       f"{BOOSTING_MIN_SAMPLES_LEAF} (5% of the {n_fit} rows each "
                       "cross-validation model is fitted on)")
    return n_fit, ""


def fit_calibrated(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, seed: int = 0,
                   n_splits: int = 5, families: Sequence[str] = FAMILIES,
                   progress: Callable[[str], None] | None = None,
                   declared: Mapping[str, DeclaredFeature] | None = None) -> FittedClassifier:
    """Choose a family by grouped CV log loss, then fit it calibrated (sigmoid, grouped CV).

    X holds the model columns (and may hold ``patient_id``, which the pipelines ignore); y
    is 0/1; groups are patient ids; ``declared``: the table description's extra feature
    columns (:meth:`FeatureLayout.from_columns`). ``progress`` is an optional callable taking
    a message, called before each stage.

    Each family is fitted as :func:`family_plan` says for the table's size (settings adapted,
    or skipped with a note). Only a family with a finite mean CV log loss can be chosen; a
    :class:`~features.errors.UserInputError` names the class counts when none has one, or
    when a class has fewer than :data:`MIN_ROWS_PER_CLASS` rows. Runs with one OpenMP thread:
    on tables of this size gradient boosting's thread pool costs more than it gives, and on a
    busy machine it slows training several-fold.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit_calibrated(X, y, groups, seed, n_splits, families, progress, declared)


def _fit_calibrated(X, y, groups, seed, n_splits, families, progress,
                    declared) -> FittedClassifier:
    y = np.asarray(y)
    counts = _class_counts(y)
    if len(counts) < 2 or min(counts.values()) < MIN_ROWS_PER_CLASS:
        raise UserInputError(
            f"too few rows of a class to cross-validate a model (counts by label: {counts}); "
            f"need at least {MIN_ROWS_PER_CLASS} rows of each class, and "
            f"{BOOSTING_MIN_MINORITY} or more of the smaller class per training fold for "
            "gradient boosting.")
    layout = FeatureLayout.from_columns([c for c in X.columns if c != ID], declared)
    folds = patient_folds(y, groups, n_splits, seed)
    scores: dict[str, dict[str, float | str]] = {}
    notes: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for fam in families:
        n_rows, note = family_plan(fam, y, folds)
        nan = float("nan")
        scores[fam] = {"log_loss": nan, "log_loss_sd": nan, "auc": nan}
        if n_rows is not None:
            if progress:
                progress(f"cross-validating {fam}")
            try:
                res = cross_validate(build_family(fam, layout, seed, n_rows), X, y, cv=folds,
                                     scoring=("neg_log_loss", "roc_auc"))
            except ValueError as exc:  # raised when every fold's fit failed
                last = [line for line in str(exc).splitlines() if line.strip()][-1:]
                failed = f"failed: no cross-validation fit succeeded ({''.join(last)[:200]})"
            else:
                scores[fam] = {"log_loss": float(-res["test_neg_log_loss"].mean()),
                               "log_loss_sd": float(res["test_neg_log_loss"].std()),
                               "auc": float(res["test_roc_auc"].mean())}
                failed = ("failed: its cross-validated log loss is undefined (a fit or a "
                          "score failed in some fold)")
            if math.isfinite(scores[fam]["log_loss"]):
                sizes[fam] = n_rows
            else:
                note = "; ".join(filter(None, [note, failed]))
        if note:
            notes[fam] = scores[fam]["note"] = note
    if not sizes:
        told = "; ".join(f"{f}: {n}" for f, n in notes.items())
        raise UserInputError(
            f"no model family could be cross-validated on these {len(y)} rows (counts by "
            f"label: {counts}; at least {MIN_ROWS_PER_CLASS} of each class are needed, and "
            f"{BOOSTING_MIN_MINORITY} or more of the smaller class per training fold for "
            f"gradient boosting){': ' + told if told else ''}. Provide more labelled rows.")
    chosen = min(sizes, key=lambda f: scores[f]["log_loss"])
    if progress:
        progress(f"calibrating {chosen}")
    calibrated = PatientCalibratedClassifier(build_family(chosen, layout, seed, sizes[chosen]),
                                             method="sigmoid", n_splits=n_splits,
                                             random_state=seed)
    calibrated.fit(X, y, groups=groups)
    return FittedClassifier(calibrated, chosen, layout, scores, notes)


def out_of_fold_probabilities(fitted: FittedClassifier, X: pd.DataFrame, y: np.ndarray,
                              groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """Calibrated probabilities for the training rows, each from a model that did not see it.

    Used to choose a threshold for a target sensitivity without touching evaluation data.
    The chosen family keeps the settings it was chosen with.
    """
    inner = PatientCalibratedClassifier(clone(fitted.estimator.estimator), method="sigmoid",
                                        n_splits=3, random_state=seed)
    folds = patient_folds(y, groups, 5, seed + 1)
    with threadpool_limits(limits=1, user_api="openmp"):
        return cross_val_predict(inner, X, y, cv=folds, method="predict_proba")[:, 1]
