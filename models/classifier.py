"""The calibrated pseudoprogression classifier.

A scikit-learn Pipeline takes the contract's DataFrame as it is: missing values, whole
missing modalities, ``cancer_type`` as a category and, when present, hundreds of radiomic
columns and a table description's declared extra features (:class:`FeatureLayout`). Three
model families are compared by patient-grouped internal cross-validation (log loss, a proper
score): penalised logistic regression on the contract's transforms with missing-value
indicators, the same with restricted cubic splines of each continuous column
(:class:`RestrictedCubicSplines`, for curved effects), and histogram gradient boosting with
native missing-value support; a user's own classifier can join them (``estimator`` of
:func:`fit_calibrated`). Each family's few settings that matter (:data:`TUNING_GRID`) and the
choice of radiomic reduction (:data:`RADIOMIC_CHOICES`) are tuned on the same patient-grouped
folds, so nested cross-validation of :func:`fit_calibrated` covers the tuning too.

The chosen family, with its chosen settings, is calibrated with
:class:`~sklearn.calibration.CalibratedClassifierCV` (sigmoid, ``ensemble=False``): the
calibration map is fitted on out-of-fold predictions, each from a model that did not see that
patient, and applied to the model refitted on all training patients. No resampling or class
weighting: the training prevalence is the prevalence the probabilities are calibrated to.

Small cohorts: a family's settings follow the rows it is fitted on, and a family that cannot
learn from so few events is skipped, with a note saying so (:func:`fit_calibrated`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import hash as joblib_hash
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
from sklearn.exceptions import FitFailedWarning
from sklearn.feature_selection import SelectorMixin, VarianceThreshold, f_classif
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import (
    FixedThresholdClassifier,
    GridSearchCV,
    ParameterGrid,
    cross_val_predict,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import l1_min_c
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
FAMILIES: tuple[str, ...] = ("logistic", "spline", "gradient_boosting")
#: The name under which a user's own classifier is compared (``estimator`` of
#: :func:`fit_calibrated`).
CUSTOM = "custom"


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


#: Knot positions of restricted cubic splines, as quantiles of a column, by number of knots
#: (Harrell, Regression Modeling Strategies, 2nd ed., section 2.4.6).
RCS_KNOT_QUANTILES: dict[int, tuple[float, ...]] = {
    3: (0.10, 0.5, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.5, 0.725, 0.95),
    6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95),
    7: (0.025, 0.1833, 0.3417, 0.5, 0.6583, 0.8167, 0.975),
}
#: Below this many non-missing rows, the outer knots are the 5th smallest and 5th largest
#: values instead of the outer quantiles (as Harrell advises).
RCS_FEW_ROWS = 100


def rcs_knots(values: np.ndarray, n_knots: int) -> np.ndarray:
    """Knots of a restricted cubic spline of ``values`` (NaN ignored), in their units: the
    quantiles of :data:`RCS_KNOT_QUANTILES`, duplicates merged (fewer knots on a column with
    few distinct values); empty for a column of fewer than 3 distinct values or when fewer
    than 3 distinct knots remain."""
    if n_knots not in RCS_KNOT_QUANTILES:
        raise ValueError(f"n_knots must be one of {sorted(RCS_KNOT_QUANTILES)}, got {n_knots!r}")
    x = np.sort(np.asarray(values, dtype=float)[~np.isnan(values)])
    if np.unique(x).size < 3:  # a 0/1 column stays linear (a knot between 0 and 1 would not)
        return np.empty(0)
    knots = np.quantile(x, RCS_KNOT_QUANTILES[n_knots])
    if x.size < RCS_FEW_ROWS and x.size >= 10:
        knots[0], knots[-1] = x[4], x[-5]
    knots = np.unique(knots)
    return knots if knots.size >= 3 else np.empty(0)


def rcs_terms(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """The nonlinear terms of a restricted cubic spline with ``knots`` (k >= 3) at ``x``,
    shape (n, k - 2), in Harrell's truncated-power form divided by (last - first knot)^2, so
    they are in the units of ``x``. With ``x`` itself they span the cubic splines that are
    linear below the first knot and above the last."""
    t = np.asarray(knots, dtype=float)
    k = t.size
    x = np.asarray(x, dtype=float)[:, None]
    tj = t[None, : k - 2]
    span = t[-1] - t[-2]

    def cube(a):
        return np.clip(a, 0.0, None) ** 3

    terms = (cube(x - tj) - cube(x - t[-2]) * (t[-1] - tj) / span
             + cube(x - t[-1]) * (t[-2] - tj) / span)
    return terms / (t[-1] - t[0]) ** 2


class RestrictedCubicSplines(TransformerMixin, BaseEstimator):
    """Restricted (natural) cubic splines of each column: a curve that is cubic between
    knots and linear beyond the outer ones, so it extrapolates as a straight line.

    Knots at quantiles of the training rows (:func:`rcs_knots`; ``n_knots`` in 3-7). Output
    per column: the column itself when ``include_linear`` (named as the column), then its
    ``n_knots - 2`` nonlinear terms (:func:`rcs_terms`, named ``<column>_rcs1``, ...). A
    column with fewer than three distinct knots (a binary column, say) gets no nonlinear
    term. A missing value gets the terms at the column's training median (NaN stays NaN in
    the linear column, for an imputer to fill and flag); infinity is an error.
    """

    def __init__(self, n_knots: int = 4, include_linear: bool = True):
        self.n_knots = n_knots
        self.include_linear = include_linear

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None) -> RestrictedCubicSplines:
        """Place the knots and record the medians from the rows ``X``."""
        a = validate_data(self, X, dtype=float, ensure_all_finite="allow-nan")
        if self.n_knots not in RCS_KNOT_QUANTILES:
            raise ValueError(f"n_knots must be one of {sorted(RCS_KNOT_QUANTILES)}, "
                             f"got {self.n_knots!r}")
        self.knots_ = [rcs_knots(a[:, j], self.n_knots) for j in range(a.shape[1])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
            self.medians_ = np.nanmedian(a, axis=0) if a.shape[0] else np.full(a.shape[1],
                                                                                 np.nan)
        return self

    def transform(self, X) -> np.ndarray:
        """Linear and nonlinear terms, float array (n_rows, n_output_columns)."""
        check_is_fitted(self, "knots_")
        a = validate_data(self, X, reset=False, dtype=float, ensure_all_finite="allow-nan")
        blocks = []
        for j, knots in enumerate(self.knots_):
            if self.include_linear:
                blocks.append(a[:, j:j + 1])
            if knots.size:
                filled = np.where(np.isnan(a[:, j]), self.medians_[j], a[:, j])
                blocks.append(rcs_terms(filled, knots))
        return np.hstack(blocks) if blocks else np.empty((a.shape[0], 0))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The column's own name (when linear terms are kept), then ``<name>_rcs<j>``."""
        check_is_fitted(self, "knots_")
        if input_features is None:
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                names = [f"x{j}" for j in range(self.n_features_in_)]
        elif len(input_features) != self.n_features_in_:
            raise ValueError(f"input_features should have length {self.n_features_in_}, "
                             f"got {len(input_features)}")
        else:
            names = input_features
        out = []
        for name, knots in zip(names, self.knots_, strict=True):
            if self.include_linear:
                out.append(str(name))
            out += [f"{name}_rcs{j + 1}" for j in range(max(knots.size - 2, 0))]
        return np.asarray(out, dtype=object)


#: How a wide block (radiomic columns, declared ``block: radiomic`` columns) can be reduced
#: after the filters, each choice as :class:`RadiomicSelector` settings.
RADIOMIC_CHOICES: tuple[dict[str, Any], ...] = (
    {"method": "kbest", "k": 5},
    {"method": "kbest", "k": 10},
    {"method": "kbest", "k": 20},
    {"method": "l1", "l1_scale": 3.0},
    {"method": "l1", "l1_scale": 10.0},
)


class RadiomicSelector(SelectorMixin, BaseEstimator):
    """Keeps the columns of a wide block that carry signal, fitted on the training rows.

    ``method="kbest"``: the ``k`` columns with the largest univariate F statistic (ANOVA
    F-test against the label). ``method="l1"``: the columns with a nonzero coefficient in an
    L1-penalised logistic regression of the label on the block (the LASSO selection of
    radiomics studies), its inverse penalty ``l1_scale`` times the smallest one that lets any
    column in (:func:`sklearn.svm.l1_min_c`), so the setting means the same on any number of
    rows (one-vs-rest beyond two classes, a column kept when any class uses it). Expects
    standardised, finite columns. ``scores_``: each column's F statistic under either method
    (what reports show of the kept columns); ``coef_``: the L1 coefficients, one row per
    class fitted.
    """

    def __init__(self, method: str = "kbest", k: int = 10, l1_scale: float = 3.0):
        self.method = method
        self.k = k
        self.l1_scale = l1_scale

    def fit(self, X, y) -> RadiomicSelector:
        """Choose the columns from the rows ``X`` and their 0/1 labels ``y``."""
        a, y = validate_data(self, X, y, dtype=float)
        if self.method not in ("kbest", "l1"):
            raise ValueError(f"method must be 'kbest' or 'l1', got {self.method!r}")
        p = a.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant columns
            scores, pvalues = f_classif(a, y)
        self.scores_ = np.nan_to_num(scores, nan=0.0, posinf=0.0)
        self.pvalues_ = np.nan_to_num(pvalues, nan=1.0)
        keep = np.zeros(p, dtype=bool)
        if self.method == "kbest":
            keep[np.argsort(-self.scores_, kind="stable")[:max(0, min(int(self.k), p))]] = True
            self.coef_ = None
        else:
            classes = np.unique(y)
            targets = [y == classes[-1]] if len(classes) == 2 else [y == c for c in classes]
            self.coef_ = np.zeros((len(targets), p))
            for row, target in enumerate(targets if len(classes) > 1 else []):
                try:
                    c = self.l1_scale * l1_min_c(a, target, loss="log", intercept_scaling=10.0)
                except ValueError:  # no column varies: nothing can enter
                    continue
                model = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=c,
                                           intercept_scaling=10.0, max_iter=1000)
                self.coef_[row] = model.fit(a, target).coef_.ravel()
            keep = (np.abs(self.coef_) > 1e-10).any(axis=0)
        self.support_ = keep
        return self

    def transform(self, X) -> np.ndarray:
        """The kept columns; an empty (n_rows, 0) array, without a warning, when none was
        kept (no column of the block carries signal)."""
        check_is_fitted(self, "support_")
        if self.support_.any():
            return super().transform(X)
        return np.empty((_n_rows(validate_data(self, X, reset=False, dtype=None,
                                               ensure_all_finite=False)), 0))

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

    def is_binary(self, column: str) -> bool:
        """True for a 0/1 column: the contract's ``binary`` kind, or declared so."""
        if column in BY_NAME:
            return BY_NAME[column].kind == "binary"
        feature = self.declared.get(column)
        return feature is not None and feature.kind == "binary"

    @property
    def continuous(self) -> list[str]:
        """The numeric block's continuous columns (not 0/1): where effects may curve."""
        return [c for c in self.numeric if not self.is_binary(c)]

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


#: Radiomic columns kept after the filters by the untuned reduction (univariate F-test on
#: the training fold): a user's own estimator gets this one.
RADIOMIC_KEEP = 10
#: Of two radiomic columns correlated beyond this (|Pearson r|), the later one is dropped.
RADIOMIC_MAX_CORR = 0.9


def _choice_text(choice: Mapping[str, Any]) -> str:
    if choice["method"] == "kbest":
        return f"the {choice['k']} columns with the strongest univariate association (F-test)"
    return (f"the columns an L1-penalised logistic regression keeps (inverse penalty "
            f"{choice['l1_scale']:g} x the smallest that admits a column)")


#: The radiomic reduction in words, for reports and model cards.
RADIOMIC_REDUCTION = (
    f"median imputation, zero-variance and correlation (|r| > {RADIOMIC_MAX_CORR:g}) filters, "
    "standardisation, then one of: "
    + "; ".join(_choice_text(c) for c in RADIOMIC_CHOICES)
    + ", chosen by patient-grouped cross-validation (before the family's other settings); "
    "all fitted on training rows only")


def _radiomic_reduction() -> Pipeline:
    """Median imputation, zero-variance and correlation filters, standardisation, then
    :class:`RadiomicSelector` (by default the :data:`RADIOMIC_KEEP` columns with the strongest
    univariate association; tuned over :data:`RADIOMIC_CHOICES`). Every step is fitted on the
    training fold only, so nothing leaks from held-out patients."""
    return Pipeline([
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("variance", VarianceThreshold(1e-12)),
        ("correlation", CorrelationFilter(RADIOMIC_MAX_CORR)),
        ("scale", StandardScaler()),
        ("select", RadiomicSelector("kbest", k=RADIOMIC_KEEP))])


#: Boosting's leaf size on large tables (rows), reached from 600 rows per fitted model up.
BOOSTING_MIN_SAMPLES_LEAF = 30
#: Boosting's smallest leaf (rows), on small tables.
BOOSTING_MIN_LEAF_FLOOR = 5
#: Boosting is skipped when a cross-validation training fold holds fewer rows of the
#: smaller class than this.
BOOSTING_MIN_MINORITY = 10
#: The spline family is skipped when a cross-validation training fold holds fewer rows of the
#: smaller class than this: its curve terms (two or three per continuous column) would rest
#: on too few events to be estimated.
SPLINE_MIN_MINORITY = 20
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


#: The settings tuned in each family, by patient-grouped cross-validation inside the training
#: patients (scikit-learn parameter names of :func:`build_family`'s pipeline, candidate values).
#: Logistic and spline C: inverse L2 penalty; spline n_knots: knots per continuous column;
#: boosting: learning rate and leaves per tree (100 trees). With a wide block,
#: :data:`RADIOMIC_CHOICES` are searched first (:func:`tuning_stages`).
TUNING_GRID: dict[str, dict[str, tuple]] = {
    "logistic": {"model__C": (0.03, 0.1, 0.3, 1.0, 3.0)},
    "spline": {"model__C": (0.03, 0.1, 0.3, 1.0, 3.0),
               "prepare__contract__spline__n_knots": (4, 5)},
    "gradient_boosting": {"model__learning_rate": (0.05, 0.1),
                          "model__max_leaf_nodes": (7, 15)},
}
#: The tuned settings in words, for reports.
TUNED_SETTINGS: dict[str, str] = {
    "model__C": "inverse L2 penalty C",
    "prepare__contract__spline__n_knots": "spline knots per continuous column",
    "model__learning_rate": "learning rate",
    "model__max_leaf_nodes": "leaves per tree",
    "prepare__radiomic__select__method": "radiomic selection (kbest: F-test, l1: L1 penalty)",
    "prepare__radiomic__select__k": "radiomic columns kept by the F-test",
    "prepare__radiomic__select__l1_scale": "radiomic L1 inverse penalty, x the smallest",
}


def tuning_stages(family: str, layout: FeatureLayout) -> list[list[dict[str, list]]]:
    """The candidate settings of ``family`` for ``layout``, as successive
    :class:`~sklearn.model_selection.GridSearchCV` ``param_grid`` lists, each searched with
    the best settings of the ones before: with a wide block, first the radiomic reduction
    (:func:`radiomic_choices`, the family's other settings untuned), then the family's
    :data:`TUNING_GRID`. ``[[{}]]`` (the settings as built) for a family without a grid,
    such as :data:`CUSTOM`. Searching the reduction first, instead of crossing it with the
    family's grid, costs the sum of the two grids instead of their product."""
    base = {k: list(v) for k, v in TUNING_GRID.get(family, {}).items()}
    if family == "spline" and not layout.continuous:
        base.pop("prepare__contract__spline__n_knots", None)
    stages = [[base]]
    choices = radiomic_choices(len(layout.radiomic))
    if family in TUNING_GRID and len(choices) > 1:
        stages.insert(0, [{f"prepare__radiomic__select__{k}": [v] for k, v in choice.items()}
                          for choice in choices])
    return stages


def radiomic_choices(n_columns: int) -> list[dict[str, Any]]:
    """:data:`RADIOMIC_CHOICES` that differ on a block of ``n_columns`` columns: the F-test
    choices keeping all of them are one (the smallest such ``k``); none without a block."""
    if not n_columns:
        return []
    out, keeps_all = [], False
    for choice in RADIOMIC_CHOICES:
        if choice["method"] == "kbest" and choice["k"] >= n_columns:
            if keeps_all:
                continue
            keeps_all = True
        out.append(dict(choice))
    return out


def _numeric_block(spline: bool = False) -> Pipeline:
    """Contract scales, median imputation with missing-value indicators, standardisation;
    with ``spline``, each column's restricted cubic spline terms (:class:`RestrictedCubicSplines`,
    4 knots until tuned) after its linear term, before imputation: a 0/1 column has too few
    distinct values for a knot and stays linear, and a missing value gets the terms at the
    median and is flagged by the indicator of its linear term."""
    if not spline:
        return make_pipeline(
            ContractTransformer(),
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler())
    return Pipeline([
        ("scale", ContractTransformer()),
        ("spline", RestrictedCubicSplines(n_knots=4, include_linear=True)),
        ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                 keep_empty_features=True)),
        ("standardize", StandardScaler())])


def _prepare(family: str, layout: FeatureLayout) -> ColumnTransformer:
    """The 'prepare' step of a family: one block per kind of column."""
    parts = []
    trees = family == "gradient_boosting"
    if layout.numeric:
        parts.append(("contract", ContractTransformer() if trees
                      else _numeric_block(spline=family == "spline"), layout.numeric))
    if layout.radiomic:
        parts.append(("radiomic", _radiomic_reduction(), layout.radiomic))
    if layout.categorical:
        encoder = (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
                   if trees else OneHotEncoder(handle_unknown="ignore", sparse_output=False))
        parts.append(("category", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="unknown"), encoder),
            layout.categorical))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def build_family(family: str, layout: FeatureLayout, random_state: int = 0,
                 n_rows: int | None = None) -> Pipeline:
    """An unfitted pipeline of one model family for the given column layout, with the
    untuned settings (:func:`tuning_stages` gives the candidates).

    ``logistic``: L2-penalised logistic regression on the contract's scales with median
    imputation and missing-value indicators, standardised, categories one-hot. ``spline``:
    the same with the nonlinear terms of a restricted cubic spline of each continuous column
    on its contract scale (:func:`_numeric_block`); binary columns, indicators and the
    radiomic block stay linear. ``gradient_boosting``: histogram
    gradient boosting on the contract's scales, missing values native, categories as codes.
    ``n_rows``: how many rows each fit of it will see, which sizes gradient boosting's
    leaves (:func:`boosting_min_samples_leaf`; None: the large-table setting).
    """
    if family in ("logistic", "spline"):
        model = LogisticRegression(C=0.3, max_iter=2000)
    elif family == "gradient_boosting":
        model = HistGradientBoostingClassifier(
            learning_rate=0.08, max_iter=100, max_leaf_nodes=15,
            min_samples_leaf=boosting_min_samples_leaf(n_rows), l2_regularization=1.0,
            early_stopping=False, random_state=random_state)
    else:
        raise ValueError(f"unknown model family {family!r}; choose one of {FAMILIES}")
    return Pipeline([("prepare", _prepare(family, layout)), ("model", model)])


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_text(params: Mapping[str, Any]) -> str:
    """Chosen settings (``cv_scores[family]["best_params"]``) in words, for reports:
    ``"inverse L2 penalty C 0.3; spline knots per continuous column 4"``; ``"as given"``
    when empty (a user's estimator)."""
    if not params:
        return "as given"
    return "; ".join(f"{TUNED_SETTINGS.get(k, k)} {_value_text(v)}" for k, v in params.items())


def tuning_text() -> str:
    """The whole grid in words, for a report's methods: each family's candidates and the
    radiomic choices searched first."""
    families = "; ".join(
        f"{family}: " + ", ".join(f"{TUNED_SETTINGS.get(k, k)} in "
                                  + "/".join(_value_text(v) for v in values)
                                  for k, values in grid.items())
        for family, grid in TUNING_GRID.items())
    radiomic = "; ".join(_choice_text(c) for c in RADIOMIC_CHOICES)
    return (f"{families} (every combination); with radiomic columns, the radiomic reduction "
            f"is chosen first among: {radiomic}")


def has_spline_terms(pipeline) -> bool:
    """True when a fitted pipeline of :func:`build_family` holds restricted cubic spline
    terms (its coefficients are then not per-feature effects: read it by permutation)."""
    prepare = getattr(pipeline, "named_steps", {}).get("prepare")
    for _, block, _ in getattr(prepare, "transformers_", []):
        for _, step in getattr(block, "steps", []):
            if isinstance(step, RestrictedCubicSplines) and any(
                    k.size for k in getattr(step, "knots_", [])):
                return True
    return False


def custom_estimator(estimator) -> BaseEstimator:
    """A fresh unfitted copy of a user's classifier: ``estimator`` itself (cloned), or what a
    factory returns when called with no arguments (a class, a function).

    :class:`~features.errors.UserInputError` unless the result is a scikit-learn
    classifier with ``fit``, ``predict_proba`` and ``get_params`` (so it can be cloned and
    calibrated).
    """
    made = estimator
    if isinstance(estimator, type) or (callable(estimator) and not hasattr(estimator, "fit")):
        try:
            made = estimator()
        except Exception as exc:
            raise UserInputError(f"the estimator factory {estimator!r} failed when called with "
                                 f"no arguments: {exc}") from exc
    missing = [m for m in ("fit", "predict_proba", "get_params") if not hasattr(made, m)]
    if missing:
        raise UserInputError(
            f"the estimator {made!r} lacks {', '.join(missing)}: give an unfitted "
            "scikit-learn classifier with predict_proba (e.g. SVC(probability=True)), or a "
            "function returning one.")
    try:
        return clone(made)
    except Exception as exc:
        raise UserInputError(f"the estimator {made!r} cannot be cloned by scikit-learn "
                             f"({exc}); its __init__ must only store its parameters.") from exc


def estimator_name(estimator: Any) -> str:
    """The qualified class name of an estimator (``sklearn.svm._classes.SVC``), or of the
    final step of a pipeline: what a report says a user's own classifier is."""
    if isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    kind = type(estimator)
    return f"{kind.__module__}.{kind.__qualname__}"


def _import_file(path: Path, spec: str, fix: str):
    """The Python file ``path`` imported by its path under a name of its own, so that it
    can shadow none of the project's modules (its folder is searched last for the modules
    it imports)."""
    if not path.is_file():
        raise UserInputError(f"estimator {spec!r}: the file {path} does not exist. {fix}")
    name = "user_estimator_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    found = importlib.util.spec_from_file_location(name, path)
    if found is None or found.loader is None:
        raise UserInputError(f"estimator {spec!r}: {path} cannot be imported as Python "
                             f"code. {fix}")
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.append(folder)
    try:
        found.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise UserInputError(f"estimator {spec!r}: importing {path} failed with "
                             f"{type(exc).__name__}: {exc}. Fix the file.") from exc
    finally:
        if added:
            sys.path.remove(folder)
    return module


def _import_source(source: str, spec: str):
    """The module ``source`` of an estimator spec: a ``.py`` file path, a module of the
    current folder (imported by its path, so a folder of the user's named like one of the
    project's packages shadows nothing), or a module importable from ``sys.path``."""
    fix = ("Give --estimator as module:factory (a module in the current folder or on "
           "PYTHONPATH) or path/to/file.py:factory.")
    if source.endswith(".py") or os.sep in source or "/" in source:
        return _import_file(Path(source).expanduser(), spec, fix)
    here = Path.cwd()
    local = here.joinpath(*source.split("."))
    for candidate in (local.with_suffix(".py"), local / "__init__.py"):
        if candidate.is_file():
            return _import_file(candidate, spec, fix)
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and (source == exc.name or source.startswith(exc.name + ".")):
            raise UserInputError(f"estimator {spec!r}: no module named {source!r} in the "
                                 f"current folder ({here}) or on sys.path. {fix}") from exc
        raise UserInputError(f"estimator {spec!r}: the module {source!r} imports "
                             f"{exc.name!r}, which is not installed. Install it or fix the "
                             "module.") from exc
    except Exception as exc:
        raise UserInputError(f"estimator {spec!r}: importing the module {source!r} failed "
                             f"with {type(exc).__name__}: {exc}. Fix the module.") from exc


def load_estimator(spec: str) -> BaseEstimator:
    """An unfitted classifier from ``"module:factory"`` or ``"path/to/file.py:factory"``.

    ``module`` is a file of the current folder (imported by its path: it shadows none of the
    project's modules) or a module on ``sys.path``; a path ending in ``.py`` is imported
    by its path; ``factory`` names a class, a function or an estimator in it
    (``Class.method`` reaches inside). A class or function is called with no arguments.
    The result must be a scikit-learn classifier with ``fit`` and ``predict_proba``
    (:func:`custom_estimator`). Every problem (no such module or file, no such name, the
    factory raising, a result that is no classifier) is one
    :class:`~features.errors.UserInputError` naming it and the fix.
    """
    source, colon, name = str(spec).strip().rpartition(":")
    if not colon or not source or not name or os.sep in name or "/" in name:
        raise UserInputError(
            f"estimator {spec!r} is not of the form module:factory; e.g. "
            "--estimator my_models:make_classifier (my_models.py in the current folder, "
            "make_classifier() returning an unfitted scikit-learn classifier) or "
            "--estimator path/to/file.py:make_classifier.")
    target: Any = _import_source(source, spec)
    for part in name.split("."):
        if not hasattr(target, part):
            public = sorted(k for k in dir(target) if not k.startswith("_"))[:12]
            raise UserInputError(
                f"estimator {spec!r}: {source} has no attribute {name!r}"
                + (f" (it has: {', '.join(public)})" if public else "")
                + ". Name a function or class that returns an unfitted classifier.")
        target = getattr(target, part)
    try:
        return custom_estimator(target)
    except UserInputError as exc:
        raise UserInputError(f"estimator {spec!r}: {exc}") from exc


def build_custom(estimator, layout: FeatureLayout) -> Pipeline:
    """A user's classifier (:func:`custom_estimator`) behind the logistic family's 'prepare'
    step: it sees a finite numeric matrix with named columns (contract scales, median
    imputation with missing-value indicators, standardised; the untuned radiomic reduction;
    categories one-hot). Its own settings are used as given: nothing is tuned."""
    return Pipeline([("prepare", _prepare("logistic", layout)),
                     ("model", custom_estimator(estimator))])


def patient_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list:
    """Stratified folds that keep every patient's rows together; fewer folds on tiny data.

    ``(train rows, test rows)`` pairs; at most as many folds as there are patients with a
    lesion of the rarer class (at least 2), so that every test fold can hold both classes.
    Patients with the same count of lesions of each class form a stratum; strata are dealt
    out in turn (most lesions first), each shuffled (``seed``) and spread evenly over the
    folds, its remainder going first to folds still lacking a class the stratum has, then to
    those holding the smallest share of its classes, then the fewest lesions. The same kind of
    stratified group split as :class:`~sklearn.model_selection.StratifiedGroupKFold` makes, in
    time linear in the patients (that one took 7 s for 10,000 patients).
    """
    y = np.asarray(y)
    groups = np.asarray(groups)
    if len(groups) != len(y):
        raise ValueError(f"groups has {len(groups)} rows but y has {len(y)}")
    classes, class_counts = np.unique(y, return_counts=True)
    _, patient = np.unique(groups.astype(str), return_inverse=True)
    n_patients = int(patient.max()) + 1 if patient.size else 0
    composition = np.zeros((n_patients, len(classes)), dtype=int)
    np.add.at(composition, (patient, np.searchsorted(classes, y)), 1)
    n_splits = int(max(2, min(n_splits, (composition > 0).sum(axis=0).min())))
    if n_patients < n_splits:
        raise ValueError(f"cannot make {n_splits} folds of {n_patients} patient(s)")
    kinds, stratum = np.unique(composition, axis=0, return_inverse=True)
    stratum = stratum.ravel()
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n_patients, dtype=int)
    load = np.zeros((n_splits, len(classes)), dtype=int)
    for j in np.lexsort((*kinds.T[::-1], -kinds.sum(axis=1))):
        members = rng.permutation(np.flatnonzero(stratum == j))
        q, r = divmod(len(members), n_splits)
        present = kinds[j] > 0
        lacking = (load[:, present] == 0).sum(axis=1)
        share = (load[:, present] / class_counts[present]).sum(axis=1)
        first = np.lexsort((rng.random(n_splits), load.sum(axis=1), share, -lacking))
        per_fold = np.full(n_splits, q)
        per_fold[first[:r]] += 1
        fold_of[members] = np.repeat(np.arange(n_splits), per_fold)
        load += per_fold[:, None] * kinds[j]
    fold = fold_of[patient]
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_splits)]


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
        if len(np.unique(y)) < 2:
            raise ValueError("PatientCalibratedClassifier needs samples of at least 2 classes; "
                             "the data contains only one class.")
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

    cv_scores: per family, the mean cross-validated log loss (its SD over folds) and AUC at
    its chosen settings, NaN for a family skipped or failed; for a family that was scored,
    ``best_params`` (the chosen settings, scikit-learn parameter names to plain JSON values;
    empty for a user's estimator, used as given) and ``n_settings`` (candidates compared); a
    ``note`` when the family was adapted to the table's size, skipped or failed. notes: the
    same notes, by family.
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

    - logistic regression and a user's estimator run at any size (the L2 penalty, tuned,
      keeps the first stable);
    - the spline family is skipped when a training fold holds fewer than
      :data:`SPLINE_MIN_MINORITY` (20) rows of the smaller class: too few events to
      estimate curves;
    - gradient boosting is skipped when a training fold holds fewer than
      :data:`BOOSTING_MIN_MINORITY` (10) rows of the smaller class: a tree's splits would
      then rest on a handful of events;
    - otherwise its leaves are sized for the smallest training fold
      (:func:`boosting_min_samples_leaf`), so the settings scored by cross-validation are the
      ones calibrated and refitted; the note says when that is below the large-table 30.
    """
    n_fit = min(len(train) for train, _ in folds)
    if family not in ("gradient_boosting", "spline"):
        return n_fit, ""
    classes = np.unique(y)
    minority = min(int(np.sum(y[train] == c)) for train, _ in folds for c in classes)
    if family == "spline":
        if minority < SPLINE_MIN_MINORITY:
            return None, (f"skipped: the smaller class has {minority} rows in the smallest "
                          f"cross-validation training fold, fewer than {SPLINE_MIN_MINORITY}; "
                          "too few events to estimate curved effects")
        return n_fit, ""
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
                   declared: Mapping[str, DeclaredFeature] | None = None,
                   estimator: Any = None) -> FittedClassifier:
    """Tune and compare families by grouped CV log loss, then fit the best calibrated
    (sigmoid, grouped CV).

    X holds the model columns (and may hold ``patient_id``, which the pipelines ignore); y
    is 0/1; groups are patient ids; ``declared``: the table description's extra feature
    columns (:meth:`FeatureLayout.from_columns`). ``progress`` is an optional callable taking
    a message, called before each stage.

    ``estimator``: a user's unfitted scikit-learn classifier with ``predict_proba``, or a
    factory returning one (:func:`custom_estimator`). It is put behind the standard
    preparation (:func:`build_custom`) and compared as the family :data:`CUSTOM` with
    ``families``, by the same folds and score, with its settings as given; ``families=()``
    uses it alone. The chosen one is calibrated the same way whatever it is.

    Each family's candidate settings (:func:`tuning_stages`) are scored by
    :class:`~sklearn.model_selection.GridSearchCV` on one set of patient-grouped stratified
    folds; a family's score is its best candidate's mean log loss (a little optimistic, being
    the best of a few on the same folds: nested cross-validation of the whole procedure
    measures that). Each family is fitted as :func:`family_plan` says for the table's size
    (settings adapted, or skipped with a note). Only a family with a finite mean CV log loss
    can be chosen; a :class:`~features.errors.UserInputError` names the class counts when
    none has one, or when a class has fewer than :data:`MIN_ROWS_PER_CLASS` rows. Runs with
    one OpenMP thread: on tables of this size gradient boosting's thread pool costs more than
    it gives, and on a busy machine it slows training several-fold.
    """
    families = tuple(families)
    if estimator is not None:
        custom_estimator(estimator)  # a clear error before any fitting
        families = (*[f for f in families if f != CUSTOM], CUSTOM)
    elif CUSTOM in families:
        raise UserInputError(f"the family {CUSTOM!r} needs an estimator (estimator=...).")
    if not families:
        raise UserInputError(f"no model family to fit; choose from {FAMILIES} or give an "
                             "estimator.")
    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit_calibrated(X, y, groups, seed, n_splits, families, progress, declared,
                               estimator)


def _plain(value: Any) -> Any:
    """A grid value as a plain JSON value (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


class FoldScorer:
    """A GridSearchCV ``scoring`` callable: negative log loss (``log_loss``) and ROC AUC
    (``auc``) of a fitted pipeline on a test fold, both from one ``predict_proba``.

    The pipeline's preparation (every step before the model) of a test fold is kept, by
    the fitted step objects and the fold's rows, and reused by the next candidate holding
    the same fitted steps: under :class:`FitCache`, candidates that differ only in the
    model's settings share them, so each test fold is prepared once per preparation instead
    of once per candidate. The numbers are those of scikit-learn's ``neg_log_loss`` and
    ``roc_auc`` scorers. Lives as long as one search.
    """

    def __init__(self):
        self.store: dict[tuple, tuple] = {}

    def __call__(self, estimator, X, y) -> dict[str, float]:
        """``{"log_loss": -log loss, "auc": AUC}`` of ``estimator`` on rows ``X``, labels
        ``y``."""
        if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
            proba = estimator.predict_proba(X)
            classes = estimator.classes_
        else:
            steps = tuple(step for _, step in estimator.steps[:-1])
            key = (tuple(id(step) for step in steps), _fingerprint(X))
            kept = self.store.get(key)
            if kept is None or any(a is not b for a, b in zip(kept[0], steps, strict=True)):
                kept = (steps, estimator[:-1].transform(X))
                self.store[key] = kept
            model = estimator.steps[-1][1]
            proba = model.predict_proba(kept[1])
            classes = model.classes_
        if len(classes) == 2:
            auc = roc_auc_score(y, proba[:, 1])
        else:
            auc = roc_auc_score(y, proba, labels=classes, multi_class="ovr")
        return {"log_loss": -float(log_loss(y, proba, labels=classes)), "auc": float(auc)}


def _fingerprint(value) -> str:
    """A digest of a fold's rows or of any other value, fast on wide tables.

    A DataFrame is identified by its index labels, column names and numbers (not its text,
    slow to hash: within one table, rows with the same labels and numbers hold the same
    text); an array by its bytes; anything else by its pickle.
    """
    digest = hashlib.sha1()
    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, pd.DataFrame):
        digest.update(pickle.dumps([str(c) for c in value.columns]))
        digest.update(np.ascontiguousarray(value.index.to_numpy()).tobytes()
                      if value.index.dtype != object else pickle.dumps(list(value.index)))
        numbers = value.select_dtypes(include="number")
        if numbers.shape[1]:
            digest.update(np.ascontiguousarray(numbers.to_numpy(dtype=float)).tobytes())
        return "frame" + digest.hexdigest()
    if isinstance(value, np.ndarray) and value.dtype != object:
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
        return "array" + digest.hexdigest()
    try:
        digest.update(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # not picklable: joblib's hash copes with more
        return "joblib" + joblib_hash(value)
    return "pickle" + digest.hexdigest()


class FitCache:
    """An in-memory stand-in for :class:`joblib.Memory` in a Pipeline's ``memory``: a
    transformer fitted on the same rows with the same settings is fitted once and reused.

    Used by the tuning, where candidates that differ only in the model's settings share the
    'prepare' step of each fold; lives as long as one search (nothing is written to disk).
    Copies made by :func:`sklearn.base.clone` share the store; a pickled copy is empty.
    """

    def __init__(self):
        self.store: dict[str, Any] = {}

    def __deepcopy__(self, memo) -> FitCache:
        return self

    def __reduce__(self):
        """Pickled (and so hashed, inside the settings of the estimators holding it) as an
        empty cache: its contents are no part of any estimator's settings."""
        return (FitCache, ())

    def cache(self, func: Callable, ignore: Sequence[str] | None = None) -> Callable:
        """``func``, answered from the store when called again with equal arguments
        (those named in ``ignore`` left out of the comparison)."""
        signature = inspect.signature(func)
        skip = set(ignore or ())

        def cached(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            key = "|".join(f"{name}={_fingerprint(value)}"
                           for name, value in bound.arguments.items() if name not in skip)
            if key not in self.store:
                self.store[key] = func(*args, **kwargs)
            return self.store[key]

        return cached


@dataclass
class FitFailures:
    """Fits that failed while a family was tuned: how many of how many, and why (the last
    line of the first error, or what it means: ``the radiomic selection kept no feature``).
    Counted from the searches' scores and warnings; nothing of them is printed."""

    n: int = 0
    of: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, text: str, radiomic: bool) -> None:
        """Count the failures a scikit-learn message (a FitFailedWarning, or the ValueError
        of a search whose every fit failed) describes, and keep their reason."""
        for line in str(text).splitlines():
            if re.match(r"^[\w.]+(Error|Exception|Warning): ", line):
                reason = line.split(": ", 1)[1].strip()
                if "0 feature(s)" in reason:
                    reason = ("the radiomic selection kept no feature" if radiomic
                              else "no feature was left to fit on")
                elif "meets the variance threshold" in reason:
                    reason = "every column of the radiomic block is constant (or empty)"
                if reason not in self.reasons:
                    self.reasons.append(reason[:160])

    def record(self) -> dict:
        """``{"n", "of", "reason"}`` for metrics.json (the reasons joined)."""
        return {"n": int(self.n), "of": int(self.of),
                "reason": "; ".join(self.reasons) or "a fit or a score failed"}


def _tune(pipe: Pipeline, stages: list[list[dict]], X, y, folds: list,
          failures: FitFailures | None = None
          ) -> tuple[dict[str, float], dict[str, Any], int]:
    """Score the candidates of each stage of :func:`tuning_stages` on ``folds``, each stage
    with the best settings of the ones before: (scores of the last stage's best by mean log
    loss, the chosen settings, number of candidates). Raises ValueError when every fit of a
    stage failed. Failed fits are counted in ``failures`` (their warnings are not shown).

    The 'prepare' step fitted on a training fold is kept (:class:`FitCache`, for this search
    only) and reused by the candidates that differ only in the model's settings, and so are
    the radiomic filters by candidates that differ in the radiomic selection; so is that
    step's output on the test fold (:class:`FoldScorer`).
    """
    cache = FitCache()
    cached = clone(pipe).set_params(memory=cache)
    if any(name == "radiomic" for name, *_ in cached.named_steps["prepare"].transformers):
        cached.set_params(prepare__radiomic__memory=cache)  # filters once per fold
    chosen: dict[str, Any] = {}
    scorer = FoldScorer()
    failures = FitFailures() if failures is None else failures
    radiomic = any(name == "radiomic" for name, *_ in pipe.named_steps["prepare"].transformers)
    n = 0
    nan = float("nan")
    for grid in stages:
        search = GridSearchCV(clone(cached).set_params(**chosen), grid, scoring=scorer,
                              refit=False, cv=folds, error_score=np.nan)
        n_fits = len(ParameterGrid(grid)) * len(folds)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FitFailedWarning)
            warnings.filterwarnings("ignore",
                                    message="One or more of the test scores are non-finite")
            try:
                search.fit(X, y)
            except ValueError as exc:  # every fit failed
                failures.n, failures.of = failures.n + n_fits, failures.of + n_fits
                failures.add(str(exc), radiomic)
                raise
        for w in caught:
            if issubclass(w.category, FitFailedWarning):
                failures.add(str(w.message), radiomic)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        res = search.cv_results_
        split_losses = np.array([res[f"split{i}_test_log_loss"] for i in range(len(folds))],
                                dtype=float)
        failures.n += int(np.isnan(split_losses).sum())
        failures.of += n_fits
        loss = -np.asarray(res["mean_test_log_loss"], dtype=float)
        n += len(loss)
        if not np.isfinite(loss).any():
            return {"log_loss": nan, "log_loss_sd": nan, "auc": nan}, {}, n
        best = int(np.argmin(np.where(np.isfinite(loss), loss, np.inf)))
        chosen |= {k: _plain(v) for k, v in res["params"][best].items()}
        scores = {"log_loss": float(loss[best]),
                  "log_loss_sd": float(res["std_test_log_loss"][best]),
                  "auc": float(res["mean_test_auc"][best])}
    return scores, chosen, n


def _fit_calibrated(X, y, groups, seed, n_splits, families, progress, declared,
                    estimator) -> FittedClassifier:
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
    scores: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    pipes: dict[str, Pipeline] = {}
    for fam in families:
        n_rows, note = family_plan(fam, y, folds)
        nan = float("nan")
        scores[fam] = {"log_loss": nan, "log_loss_sd": nan, "auc": nan}
        if fam == "spline" and not layout.continuous:
            n_rows, note = None, "skipped: no continuous column to fit a spline to"
        if n_rows is not None:
            if progress:
                progress(f"tuning and cross-validating {fam}")
            pipe = (build_custom(estimator, layout) if fam == CUSTOM
                    else build_family(fam, layout, seed, n_rows))
            stages = [[{}]] if fam == CUSTOM else tuning_stages(fam, layout)
            failures = FitFailures()
            try:
                found, best, n_settings = _tune(pipe, stages, X, y, folds, failures)
            except ValueError:  # raised when every fit failed
                failed = (f"failed: no cross-validation fit succeeded "
                          f"({failures.record()['reason']}); family dropped")
            else:
                scores[fam] = found
                failed = ("failed: its cross-validated log loss is undefined (a fit or a "
                          "score failed in some fold); family dropped")
            if math.isfinite(scores[fam]["log_loss"]):
                scores[fam] |= {"best_params": best, "n_settings": n_settings}
                pipes[fam] = pipe.set_params(**best)
            else:
                note = "; ".join(filter(None, [note, failed]))
            if failures.n:
                scores[fam]["failed_fits"] = failures.record() | {
                    "dropped": not math.isfinite(scores[fam]["log_loss"])}
        if note:
            notes[fam] = scores[fam]["note"] = note
    if not pipes:
        told = "; ".join(f"{f}: {n}" for f, n in notes.items())
        raise UserInputError(
            f"no model family could be cross-validated on these {len(y)} rows (counts by "
            f"label: {counts}; at least {MIN_ROWS_PER_CLASS} of each class are needed, and "
            f"{BOOSTING_MIN_MINORITY} or more of the smaller class per training fold for "
            f"gradient boosting){': ' + told if told else ''}. Provide more labelled rows.")
    chosen = min(pipes, key=lambda f: scores[f]["log_loss"])
    if progress:
        progress(f"calibrating {chosen}")
    calibrated = PatientCalibratedClassifier(clone(pipes[chosen]), method="sigmoid",
                                             n_splits=n_splits, random_state=seed)
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
