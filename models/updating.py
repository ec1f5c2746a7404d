"""Updating a fitted prediction model for a new site or population.

Four updates of increasing extent (Steyerberg, *Clinical Prediction Models*, 2nd ed. 2019,
ch. 20; Vergouwe et al., Stat Med 2017;36:4529-4539, doi:10.1002/sim.7179), all estimated
on the local (update) sample:

- ``original``: the model as it is (0 parameters);
- ``intercept``: recalibration in the large, ``logit p = a + lp`` (1 parameter);
- ``logistic``: logistic recalibration, ``logit p = a + b * lp`` (2 parameters);
- ``refit``: model revision, every coefficient re-estimated by maximum likelihood
  (``k`` parameters; :class:`MaximumLikelihoodRevision`: an unpenalised logistic regression
  on the original model's prepared predictors).

``lp`` is the original model's linear predictor, ``logit(p)`` of its probability (natural
log-odds). ``auto`` chooses among the four with the closed testing procedure of Vergouwe et
al. (see :class:`UpdatedClassifier`). The re-estimated intercept comes with its Wald
interval (cluster-robust by patient when patients have several lesions): with ``n`` local
lesions its standard error is about ``1 / sqrt(sum p (1 - p))``, so a chosen precision
needs :func:`patients_for_intercept_precision` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from features.errors import UserInputError
from features.progress import stage_line
from models.choices import UPDATE_METHODS as METHODS

#: Update methods, least to most extensive, then the data-driven choice among them.
#: Probabilities are clipped to [EPS, 1 - EPS] before the logit, so lp stays finite.
EPS = 1e-6


def _positive_column(estimator) -> int:
    """Column of ``predict_proba`` that holds class 1 (the second column if no ``classes_``)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return 1
    hits = np.flatnonzero(np.asarray(classes) == 1)
    if hits.size != 1:
        raise ValueError(f"estimator classes {list(classes)} do not include class 1")
    return int(hits[0])


def _probability(estimator, X) -> np.ndarray:
    """Probability of class 1 from a fitted binary classifier, shape (n,)."""
    return np.asarray(estimator.predict_proba(X), dtype=float)[:, _positive_column(estimator)]


def _linear_predictor(p: np.ndarray) -> np.ndarray:
    """``logit(clip(p, EPS, 1 - EPS))``, natural log-odds."""
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _log_likelihood(y: np.ndarray, p: np.ndarray) -> float:
    """Bernoulli log-likelihood of 0/1 outcomes ``y`` under probabilities ``p`` (nats)."""
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))


def n_parameters(estimator) -> int | None:
    """Number of estimated parameters of a fitted classifier, or None if it cannot be told.

    ``n_parameters_`` if the estimator has one; for a :class:`~sklearn.pipeline.Pipeline` the
    final step's count; otherwise the size of ``coef_`` plus the intercept (when
    ``fit_intercept`` is not False). Preprocessing (scalers, imputers) is not counted, nor are
    the parameters of a calibration map: pass ``refit_df`` for such models.
    """
    if hasattr(estimator, "n_parameters_"):
        return int(estimator.n_parameters_)
    if isinstance(estimator, Pipeline):
        return n_parameters(estimator.steps[-1][1])
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        return None
    n_intercept = np.size(getattr(estimator, "intercept_", 0.0))
    if getattr(estimator, "fit_intercept", True) is False:
        n_intercept = 0
    return int(np.size(coef) + n_intercept)


def _likelihood_ratio_test(ll_restricted: float, ll_full: float, df: int) -> tuple[float, float]:
    """LR statistic ``2 (ll_full - ll_restricted)`` (set to 0 if negative) and its chi-square
    p value on ``df`` degrees of freedom."""
    lr = max(0.0, 2.0 * (ll_full - ll_restricted))
    return lr, float(stats.chi2.sf(lr, df))


def _binary_outcome(y, n_rows: int) -> np.ndarray:
    """``y`` as a float 0/1 vector with both classes present, else :class:`UserInputError`."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise UserInputError(
            f"the outcome has {len(y)} values for {n_rows} rows; give one 0/1 label per row")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise UserInputError(
            f"the outcome must hold only 0 and 1, found {sorted(values, key=str)[:5]}; "
            "recode it as 1 for the positive class and 0 otherwise")
    if len(values) < 2:
        raise UserInputError(
            "the update sample holds only one outcome class; a model cannot be updated "
            "without both events (1) and non-events (0)")
    return y.astype(float)


def patients_for_intercept_precision(half_width: float, mean_variance: float,
                                     confidence_level: float = 0.95) -> int:
    """Local lesions whose re-estimated intercept has a 95% interval of +/- ``half_width``
    (log-odds): the intercept's standard error is about ``1 / sqrt(n v)`` with ``v`` the mean
    of ``p (1 - p)`` over the local lesions, so ``n = (z / half_width)^2 / v``."""
    z = stats.norm.ppf(0.5 + confidence_level / 2)
    return int(np.ceil((z / half_width) ** 2 / mean_variance))


class MaximumLikelihoodRevision(ClassifierMixin, BaseEstimator):
    """Model revision by maximum likelihood: an unpenalised logistic regression re-estimating
    one coefficient per predictor (and the intercept) on the local data, the predictors
    prepared by the original model's fitted ``prepare`` step (its scales, imputation,
    splines, encoding and radiomic reduction, kept as they are). ``n_parameters_``: the
    coefficients estimated, intercept included, for the closed test's degrees of freedom;
    constant prepared columns are dropped first."""

    def __init__(self, prepare=None, max_iter: int = 5000):
        self.prepare = prepare
        self.max_iter = max_iter

    def __sklearn_clone__(self) -> MaximumLikelihoodRevision:
        return type(self)(prepare=self.prepare, max_iter=self.max_iter)

    def _design(self, X) -> np.ndarray:
        Z = np.asarray(self.prepare.transform(X), dtype=float)
        return Z[:, self.keep_]

    def fit(self, X, y) -> MaximumLikelihoodRevision:
        from sklearn.linear_model import LogisticRegression

        Z = np.asarray(self.prepare.transform(X), dtype=float)
        self.keep_ = np.flatnonzero(np.ptp(Z, axis=0) > 0)
        self.model_ = LogisticRegression(C=np.inf, max_iter=self.max_iter, tol=1e-10)
        self.model_.fit(Z[:, self.keep_], np.asarray(y).astype(int))
        self.classes_ = self.model_.classes_
        self.n_parameters_ = int(self.keep_.size + 1)
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(self._design(X))


class UpdatedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier updated on local data (Steyerberg 2019, ch. 20).

    Parameters
    ----------
    base : fitted classifier with ``predict_proba`` (DataFrame in), the model to update. It is
        never refitted: :func:`sklearn.base.clone` keeps it as it is (the same object).
    method : "intercept", "logistic", "refit" or "auto".
        ``intercept``: recalibration in the large, ``logit p = a + lp`` with ``lp`` as offset;
        ``logistic``: ``logit p = a + b * lp``; both unpenalised maximum likelihood
        (statsmodels GLM, binomial, logit link). ``refit``: ``clone(refit_estimator)``
        fitted on the local data. ``auto``: the closed testing procedure below.
    refit_estimator : unfitted classifier, needed by "refit" and "auto"; cloned before
        fitting. For the tests of "auto" it should be a maximum likelihood refit of the
        model (e.g. ``LogisticRegression(C=np.inf)`` on the original predictors).
    refit_df : number of parameters of the refit model, ``k``. If None it is read from the
        fitted refit (``n_parameters_``, or ``coef_`` of its final step plus the intercept);
        give it for models where that count is wrong, such as a calibrated pipeline.
    alpha : level of each likelihood ratio test of "auto" (default 0.05).

    Closed testing procedure ("auto"; Vergouwe et al. 2017, section 2 and their appendix
    function). Each update is fitted on the local data and its log-likelihood there
    compared, by a likelihood ratio (LR) test, with that of the revised model (refit):

    1. refit vs original, ``df = k``. Not significant: keep the original model.
    2. refit vs recalibration in the large, ``df = k - 1``. Not significant: ``intercept``.
    3. refit vs logistic recalibration, ``df = k - 2``. Not significant: ``logistic``.
    4. All three significant: ``refit``.

    Every test is at level ``alpha``; testing stops at the first non-significant step, so
    a more extensive update is chosen only when the revised model fits significantly better
    than every less extensive one. As in the paper, the refit log-likelihood is the
    apparent one, from the refit model's in-sample predicted probabilities on the same local
    data. The LR statistic is chi-square only for nested maximum likelihood fits; with a
    penalised, tree-based or calibrated refit it is an approximation, and a negative
    statistic (refit fits worse in-sample) is set to 0 (p = 1). ``k`` must be at least 3.

    Attributes
    ----------
    method_ : the update used: "original", "intercept", "logistic" or "refit".
    tests_ : list of dicts, one per LR test run by "auto" (empty otherwise), with keys
        ``comparison``, ``lr`` (statistic), ``df``, ``p_value`` and ``decision``
        ("significant" or "not significant").
    intercept_, slope_ : ``a`` and ``b`` of ``logit p = a + b * lp`` for "original" (0, 1),
        "intercept" (a, 1) and "logistic" (a, b); NaN for "refit".
    intervals_ : for "intercept" and "logistic" (whichever was chosen), the 95% Wald
        intervals of their intercept (and slope) and the intercept's standard error.
    refit_ : the fitted refit model when one was fitted ("refit", "auto"), else None.
    classes_ : array([0, 1]).
    """

    def __init__(self, base, method: str = "auto", refit_estimator=None,
                 refit_df: int | None = None, alpha: float = 0.05):
        self.base = base
        self.method = method
        self.refit_estimator = refit_estimator
        self.refit_df = refit_df
        self.alpha = alpha

    def __sklearn_clone__(self) -> UpdatedClassifier:
        """Clone every parameter except ``base``, the fitted model being updated, which is
        kept as it is (cloning it would discard its fit)."""
        params = {name: clone(value, safe=False)
                  for name, value in self.get_params(deep=False).items() if name != "base"}
        return type(self)(base=self.base, **params)

    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown update method {self.method!r}; choose one of "
                             + ", ".join(repr(m) for m in METHODS))
        if not 0.0 < float(self.alpha) < 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha!r}")
        if self.method in ("refit", "auto") and self.refit_estimator is None:
            raise ValueError(f"method {self.method!r} needs refit_estimator, an unfitted "
                             "classifier to re-estimate on the local data, e.g. "
                             "LogisticRegression(C=np.inf)")
        if self.refit_df is not None and int(self.refit_df) < 1:
            raise ValueError(f"refit_df must be a positive integer, got {self.refit_df!r}")

    def fit(self, X, y, groups=None) -> UpdatedClassifier:
        """Estimate the update on local data ``X`` (DataFrame, as ``base`` takes it) and 0/1
        outcomes ``y``; ``groups``: the patient of each row, for cluster-robust intervals
        of the intercept and slope when a patient has several rows."""
        self._check_params()
        y = _binary_outcome(y, len(X))
        lp = _linear_predictor(_probability(self.base, X))
        n = len(y)
        robust = {}
        if groups is not None:
            _, cluster = np.unique(np.asarray(groups).astype(str), return_inverse=True)
            if cluster.max() + 1 < n:
                robust = {"cov_type": "cluster", "cov_kwds": {"groups": cluster.ravel()},
                          "use_t": True}  # t on patients - 1 degrees of freedom

        in_large = sm.GLM(y, np.ones((n, 1)), family=sm.families.Binomial(),
                          offset=lp).fit(**robust)
        recalibration = sm.GLM(y, np.column_stack([np.ones(n), lp]),
                               family=sm.families.Binomial()).fit(**robust)
        a_int = float(in_large.params[0])
        a_log, b_log = (float(v) for v in recalibration.params)
        candidates = {"original": (0.0, 1.0), "intercept": (a_int, 1.0),
                      "logistic": (a_log, b_log)}
        int_ci = np.asarray(in_large.conf_int())
        log_ci = np.asarray(recalibration.conf_int())
        self.intervals_ = {
            "intercept": {"intercept": [float(v) for v in int_ci[0]],
                          "intercept_se": float(np.asarray(in_large.bse)[0])},
            "logistic": {"intercept": [float(v) for v in log_ci[0]],
                         "intercept_se": float(np.asarray(recalibration.bse)[0]),
                         "slope": [float(v) for v in log_ci[1]]}}

        self.refit_ = None
        self.tests_ = []
        if self.method in ("refit", "auto"):
            self.refit_ = clone(self.refit_estimator).fit(X, y.astype(int))
        if self.method == "auto":
            self.method_ = self._closed_test(X, y, lp, candidates)
        else:
            self.method_ = self.method
        self.intercept_, self.slope_ = candidates.get(self.method_, (np.nan, np.nan))
        self.classes_ = np.array([0, 1])
        return self

    def _closed_test(self, X, y: np.ndarray, lp: np.ndarray, candidates: dict) -> str:
        """Vergouwe et al.'s sequence of LR tests against the refit model; returns the
        chosen method and fills ``tests_``."""
        k = self.refit_df if self.refit_df is not None else n_parameters(self.refit_)
        if k is None:
            raise ValueError(f"cannot count the parameters of {type(self.refit_).__name__}; "
                             "pass refit_df, its number of estimated parameters")
        k = int(k)
        if k < 3:
            raise ValueError(f"the refit model has {k} parameters; the closed test needs at "
                             "least 3 (more than logistic recalibration's 2); use "
                             "method='logistic'")
        ll_refit = _log_likelihood(y, _probability(self.refit_, X))
        for name, n_params in (("original", 0), ("intercept", 1), ("logistic", 2)):
            a, b = candidates[name]
            ll = _log_likelihood(y, expit(a + b * lp))
            df = k - n_params
            lr, p_value = _likelihood_ratio_test(ll, ll_refit, df)
            significant = p_value < self.alpha
            self.tests_.append({"comparison": f"refit vs {name}", "lr": lr, "df": df,
                                "p_value": p_value,
                                "decision": "significant" if significant else "not significant"})
            if not significant:
                return name
        return "refit"

    def predict_proba(self, X) -> np.ndarray:
        """Updated probabilities, shape (n, 2): columns P(y=0), P(y=1).

        For "original", "intercept" and "logistic": ``expit(a + b * lp)``, with ``lp`` from the
        base model's probability clipped to [1e-6, 1 - 1e-6]; for "refit": the refit model's.
        """
        check_is_fitted(self, "method_")
        if self.method_ == "refit":
            p = _probability(self.refit_, X)
        else:
            p = expit(self.intercept_ + self.slope_ * _linear_predictor(
                _probability(self.base, X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Class 1 where the updated probability exceeds 0.5, else 0."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


# --------------------------------------------------------------------------- trained models


def _prepare_step(model):
    """The fitted ``prepare`` step of a trained model's chosen pipeline, or None (a user's
    estimator built without one)."""
    try:
        pipeline = model.estimator.estimator.fitted_pipeline
    except AttributeError:
        return None
    steps = getattr(pipeline, "named_steps", {})
    return steps.get("prepare")


#: How an update is validated (the metrics document's ``validation``).
UPDATE_VALIDATION = {
    "scheme": "cv", "requested": "cv",
    "reason": "the update is evaluated by cross-validation of the update itself on the "
              "local patients"}


@dataclass
class UpdateResult:
    """The updated model (:class:`models.bundle.TrainedModel`), its evaluation on the local
    lesions and what the metrics document says of the update (``update``: the method
    chosen, its tests, the original and updated calibration and discrimination)."""

    model: Any
    evaluation: Any
    update: dict

    def document_parts(self) -> dict:
        """The parts of the metrics document this update gives (keyword arguments of
        :func:`models.metrics_document.build_metrics_document`)."""
        return {"update": self.update, "validation": dict(UPDATE_VALIDATION)}

    @property
    def metrics(self) -> dict:
        """The metrics document of this update alone (no uncertainty, no report)."""
        from models.metrics_document import build_metrics_document

        return build_metrics_document(self.evaluation.metrics, **self.document_parts())


def update_model(model, table, method: str = "auto", seed: int = 0, folds: int = 5,
                 repeats: int = 5, source: str = "local table",
                 progress: bool = True) -> UpdateResult:
    """Update a trained model (:class:`models.bundle.TrainedModel`) with the labelled local
    lesions of ``table`` (canonical form, as the model's table description gives it).

    Returns an :class:`UpdateResult`: the updated model and its evaluation. The update is
    chosen and fitted on every local lesion (:class:`UpdatedClassifier`, refit = the
    model's own procedure); the evaluation
    compares, on the same local lesions, the original model's probabilities with the
    updated model's out-of-fold probabilities from repeated patient-grouped cross-validation
    of the update itself (``repeats`` x ``folds``), so the update is never scored on the
    patients it was estimated on. A table holding none of the model's feature columns is
    refused first, before its size is judged. ``UpdateResult.update`` holds the chosen
    method, its tests, and the original and updated calibration and discrimination.
    The updated figures (``metrics["model"]``, ``update["updated_cross_validated"]``) are,
    as under ``--validation cv`` (:func:`models.evaluation.evaluate_resampled`), the mean
    over the repeats of each repeat's out-of-fold figures with intervals by Rubin's rules:
    they describe the update procedure (each fold's update), not the saved update alone;
    the averaged ensemble of the repeats' updates is kept apart (``metrics["ensemble"]``)
    and is what the evaluation frame's probabilities are.
    """
    from dataclasses import replace

    from features.contract import ID, LABEL
    from models.bundle import table_sha256
    from models.classifier import FeatureLayout, with_threshold
    from models.evaluation import combined_over_repeats, evaluate_resampled
    from models.statistics import auc_with_ci, brier_score, calibration_intercept_slope
    from models.validation import candidate_feature_count, choose_validation, repeated_cv

    if method not in METHODS:
        raise UserInputError(f"unknown update method {method!r}; choose one of "
                             + ", ".join(METHODS) + ".")
    present = [c for c in model.feature_columns if c in table.columns]
    if not present:  # said before any judgement of the table's size
        shown = ", ".join(model.feature_columns[:8]) + (
            " ..." if len(model.feature_columns) > 8 else "")
        raise UserInputError(
            "the table has no feature columns: none of the model's "
            f"{len(model.feature_columns)} feature columns ({shown}) is in it, so the model "
            "cannot be updated with it; give the local table those columns (renamed by a "
            "table description, --table, when they are named otherwise).")
    choose_validation(table, "cv")  # refuses tables too small to cross-validate
    prepare = _prepare_step(model)
    if prepare is not None:  # a maximum-likelihood revision on the model's own predictors
        refit_estimator, refit_df = MaximumLikelihoodRevision(prepare), None
    else:  # a user's estimator without a prepare step: its own procedure, df approximate
        layout = FeatureLayout.from_columns(model.feature_columns, declared=model.declared())
        refit_estimator = clone(model.estimator)
        refit_df = max(3, candidate_feature_count(
            table.reindex(columns=model.feature_columns), layout) + 1)

    def fitted(part: pd.DataFrame):
        X = model.align(part, warn=False)
        y = part[LABEL].to_numpy().astype(int)
        upd = UpdatedClassifier(base=model.estimator, method=method,
                                refit_estimator=refit_estimator, refit_df=refit_df)
        upd.fit(X, y, groups=part[ID].to_numpy())
        training = {"source": f"{model.training.get('source')} updated with {source}",
                    "n": int(len(part)), "n_positive": int(y.sum()),
                    "n_patients": int(part[ID].nunique()), "sha256": table_sha256(part),
                    "seed": seed, "update_method": upd.method_,
                    "original": dict(model.training)}
        return replace(model, estimator=with_threshold(upd, model.threshold),
                       training=training, metrics=None), upd

    updated, upd = fitted(table)
    stage_line(f"update chosen on all {len(table)} local lesions: {upd.method_}; "
               "cross-validating the update ...", progress)
    predictions, summary = repeated_cv(table, lambda part: fitted(part)[0], folds, repeats,
                                       seed)
    # the headline: the mean over the repeats of each repeat's out-of-fold figures, Rubin's
    # intervals; the averaged ensemble apart (metrics["ensemble"]), as under --validation cv
    evaluation = evaluate_resampled(table, updated, predictions, "cv", summary)
    local = table.iloc[np.unique(predictions["row"].to_numpy().astype(int))]
    y = local[LABEL].to_numpy().astype(int)
    groups = local[ID].astype(str).to_numpy()  # intervals at the patient level

    def figures(p: np.ndarray) -> dict:
        auc_value, auc_ci = auc_with_ci(y, p, groups=groups)
        return {"auc": auc_value, "auc_ci": auc_ci, "brier": brier_score(y, p),
                **calibration_intercept_slope(y, p, groups=groups)}

    original_p = model.probability(local, warn=False)
    intervals = upd.intervals_.get(upd.method_, {})
    updated_p = updated.probability(local, warn=False)
    variance = float(np.mean(updated_p * (1 - updated_p)))
    record = {
        "requested": method, "chosen": upd.method_, "tests": upd.tests_,
        "intercept": upd.intercept_, "slope": upd.slope_,
        "intercept_ci": intervals.get("intercept", [np.nan, np.nan]),
        "intercept_se": intervals.get("intercept_se", np.nan),
        "slope_ci": intervals.get("slope", [np.nan, np.nan]),
        "local_lesions_for_intercept_within": {
            f"{h:g}": patients_for_intercept_precision(h, variance) for h in (0.1, 0.2, 0.3)},
        "refit": ("maximum-likelihood logistic revision on the model's prepared predictors"
                  if prepare is not None else
                  "the user's estimator refitted (its parameter count approximate)"),
        "refit_df": (upd.refit_.n_parameters_ if prepare is not None and upd.refit_ is not None
                     else refit_df),
        "original": figures(original_p),
        "updated_cross_validated": combined_over_repeats(
            [figures(part.sort_values("row")["p_pseudoprogression"].to_numpy())
             for _, part in predictions.groupby("repeat", sort=True)]),
        "cross_validation": summary,
        "original_model": {"source": model.training.get("source"),
                           "sha256": model.training.get("sha256"),
                           "n": model.training.get("n"),
                           "n_positive": model.training.get("n_positive")}}
    result = UpdateResult(updated, evaluation, record)
    updated.metrics = result.metrics  # the saved model's record
    return result
