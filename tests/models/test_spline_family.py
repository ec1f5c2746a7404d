"""The spline family: restricted cubic splines as Harrell defines them, and a cohort whose
true log-odds is curved, where the spline family must be chosen and come within 0.01 AUC of
the exact posterior on new patients."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from features.contract import ID, LABEL
from models.classifier import (
    FAMILIES,
    RCS_KNOT_QUANTILES,
    TUNING_GRID,
    FeatureLayout,
    RestrictedCubicSplines,
    build_family,
    fit_calibrated,
    has_spline_terms,
    rcs_knots,
    rcs_terms,
)

#: The curved cohort: per class (1 = pseudoprogression), mean and SD of log rCBV and log ADC
#: (both classes normal on the log scale, with different spreads, so the log-odds is a
#: quadratic in each), and P(symptomatic). Missing completely at random: rCBV 15%, ADC 10%.
PREVALENCE = 0.12
LOG_RCBV = {1: (0.2, 0.3), 0: (0.9, 0.8)}
LOG_ADC = {1: (0.45, 0.2), 0: (0.1, 0.35)}
SYMPTOMATIC = {1: 0.3, 0: 0.6}
COLUMNS = ["cancer_type", "rcbv", "adc", "symptomatic"]


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS and OpenMP thread: on these small matrices a thread pool only costs time."""
    with threadpool_limits(limits=1):
        yield


def curved_cohort(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` patients in the contract's columns and their exact P(pseudoprogression | what
    is observed): the prior odds times each observed feature's likelihood ratio (features
    are independent given the class; a missing one carries no information)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < PREVALENCE).astype(int)
    log_rcbv = np.where(y == 1, rng.normal(*LOG_RCBV[1], n), rng.normal(*LOG_RCBV[0], n))
    log_adc = np.where(y == 1, rng.normal(*LOG_ADC[1], n), rng.normal(*LOG_ADC[0], n))
    symptomatic = (rng.random(n) < np.where(y == 1, SYMPTOMATIC[1], SYMPTOMATIC[0])) * 1.0
    log_rcbv[rng.random(n) < 0.15] = np.nan
    log_adc[rng.random(n) < 0.10] = np.nan
    table = pd.DataFrame({ID: [f"C{seed}-{i:05d}" for i in range(n)], "cancer_type": "melanoma",
                          "rcbv": np.exp(log_rcbv), "adc": np.exp(log_adc),
                          "symptomatic": symptomatic, LABEL: y})
    p1 = np.where(symptomatic == 1, SYMPTOMATIC[1], 1 - SYMPTOMATIC[1])
    p0 = np.where(symptomatic == 1, SYMPTOMATIC[0], 1 - SYMPTOMATIC[0])
    logit = np.log(PREVALENCE / (1 - PREVALENCE)) + np.log(p1 / p0)
    for x, by_class in ((log_rcbv, LOG_RCBV), (log_adc, LOG_ADC)):
        ratio = norm.logpdf(x, *by_class[1]) - norm.logpdf(x, *by_class[0])
        logit = logit + np.where(np.isnan(x), 0.0, ratio)
    return table, 1 / (1 + np.exp(-logit))


# --------------------------------------------------------------------------- the basis


def test_spline_terms_are_cubic_inside_and_linear_beyond_the_outer_knots():
    knots = np.array([-1.0, 0.0, 0.5, 2.0])
    x = np.linspace(-3, 5, 801)
    terms = rcs_terms(x, knots)
    assert terms.shape == (801, 2)
    step = x[1] - x[0]
    second = np.diff(terms, n=2, axis=0) / step**2
    mid = (x[1:-1])
    assert np.allclose(terms[x <= knots[0]], 0.0)
    assert np.allclose(second[(mid > knots[-1] + step)], 0.0, atol=1e-6)
    assert np.abs(second[(mid > knots[0]) & (mid < knots[-1])]).max() > 0.1
    # Harrell's truncated-power form at one point, by hand
    t, xv = knots, 1.3
    by_hand = (max(xv - t[0], 0) ** 3 - max(xv - t[2], 0) ** 3 * (t[3] - t[0]) / (t[3] - t[2])
               + max(xv - t[3], 0) ** 3 * (t[2] - t[0]) / (t[3] - t[2])) / (t[3] - t[0]) ** 2
    assert rcs_terms(np.array([xv]), knots)[0, 0] == pytest.approx(by_hand)


def test_knots_sit_at_harrells_quantiles_and_collapse_on_few_values():
    x = np.arange(1000, dtype=float)
    np.testing.assert_allclose(rcs_knots(x, 4), np.quantile(x, RCS_KNOT_QUANTILES[4]))
    assert rcs_knots(np.array([0.0, 1.0] * 50), 5).size == 0  # a 0/1 column: no knot
    assert rcs_knots(np.array([0.0, 1.0, 2.0] * 50), 5).size == 3
    assert rcs_knots(np.full(10, np.nan), 4).size == 0
    with pytest.raises(ValueError, match="n_knots"):
        rcs_knots(x, 9)


def test_transformer_names_terms_fills_missing_at_the_median_and_keeps_binary_linear():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"rcbv": rng.lognormal(size=300), "symptomatic": [0, 1] * 150})
    X.loc[:9, "rcbv"] = np.nan
    rcs = RestrictedCubicSplines(n_knots=5).fit(X)
    names = list(rcs.get_feature_names_out())
    assert names == ["rcbv", "rcbv_rcs1", "rcbv_rcs2", "rcbv_rcs3", "symptomatic"]
    out = rcs.transform(X)
    assert np.isnan(out[:10, 0]).all() and np.isfinite(out[:, 1:]).all()
    at_median = rcs.transform(pd.DataFrame({"rcbv": [np.nanmedian(X["rcbv"])],
                                            "symptomatic": [0]}))
    np.testing.assert_allclose(out[0, 1:4], at_median[0, 1:4])
    only_terms = RestrictedCubicSplines(include_linear=False).fit(X)
    assert list(only_terms.get_feature_names_out()) == ["rcbv_rcs1", "rcbv_rcs2"]


def test_spline_family_adds_terms_for_continuous_columns_only():
    rng = np.random.default_rng(1)
    n = 200
    X = pd.DataFrame({"cancer_type": "melanoma", "rcbv": rng.lognormal(size=n),
                      "adc": rng.lognormal(size=n), "symptomatic": rng.integers(0, 2, n) * 1.0})
    y = rng.integers(0, 2, n)
    layout = FeatureLayout.from_columns(X.columns)
    assert layout.continuous == ["rcbv", "adc"]
    pipe = build_family("spline", layout).fit(X, y)
    names = list(pipe[:-1].get_feature_names_out())
    assert {"rcbv_rcs1", "rcbv_rcs2", "adc_rcs1", "adc_rcs2", "symptomatic"} <= set(names)
    assert not [c for c in names if c.startswith("symptomatic_rcs")]
    assert has_spline_terms(pipe)
    assert not has_spline_terms(build_family("logistic", layout).fit(X, y))
    assert "spline" in FAMILIES and "prepare__contract__spline__n_knots" in TUNING_GRID["spline"]


# --------------------------------------------------------------------------- curved cohort


@pytest.fixture(scope="module")
def curved_fit():
    train, _ = curved_cohort(3000, seed=0)
    X = train[[*COLUMNS, ID]]
    with threadpool_limits(limits=1):
        return fit_calibrated(X, train[LABEL].to_numpy(), train[ID].to_numpy(), seed=0)


def test_spline_family_wins_on_a_curved_log_odds(curved_fit):
    scores = curved_fit.cv_scores
    assert curved_fit.family == "spline"
    assert scores["spline"]["log_loss"] < scores["logistic"]["log_loss"] - 0.02
    assert scores["spline"]["log_loss"] < scores["gradient_boosting"]["log_loss"]
    for family in FAMILIES:
        best = scores[family]["best_params"]
        assert json.loads(json.dumps(best)) == best  # plain JSON values
        assert set(best) == set(TUNING_GRID[family])
        assert all(best[k] in TUNING_GRID[family][k] for k in best)
        assert scores[family]["n_settings"] == np.prod([len(v) for v in
                                                        TUNING_GRID[family].values()])
    fitted = curved_fit.estimator.fitted_pipeline
    chosen = scores["spline"]["best_params"]
    assert fitted.get_params()["model__C"] == chosen["model__C"]


def test_spline_family_comes_within_001_auc_of_the_true_posterior(curved_fit):
    new, posterior = curved_cohort(5000, seed=1)
    y = new[LABEL].to_numpy()
    p = curved_fit.estimator.predict_proba(new[[*COLUMNS, ID]])[:, 1]
    ceiling = roc_auc_score(y, posterior)
    assert ceiling - roc_auc_score(y, p) < 0.01
    # and it is calibrated: mean predicted risk close to the observed rate
    assert abs(p.mean() - y.mean()) < 0.02
