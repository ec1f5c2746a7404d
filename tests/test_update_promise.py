"""What an update promises, checked independently: the closed test of Vergouwe et al. (2017)
worked by hand with statsmodels, the coverage of the updated intercept's interval over
repeated local samples, the local sample size for a chosen precision, and the
maximum-likelihood revision against statsmodels' Logit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from models.updating import (
    MaximumLikelihoodRevision,
    UpdatedClassifier,
    patients_for_intercept_precision,
)

COLUMNS = ["x1", "x2", "x3"]
BETA = np.array([0.8, -0.6, 0.5])


def population(rng, n, intercept=-1.5, beta=BETA):
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=COLUMNS)
    return X, rng.binomial(1, expit(intercept + X.to_numpy() @ beta))


@pytest.fixture(scope="module")
def base():
    X, y = population(np.random.default_rng(0), 20000)
    return LogisticRegression(C=np.inf).fit(X, y)


def test_closed_test_matches_vergouwe_worked_by_hand(base):
    # the new site: a higher intercept and one effect weaker
    X, y = population(np.random.default_rng(1), 600, intercept=-1.1,
                      beta=np.array([0.8, -0.3, 0.5]))
    upd = UpdatedClassifier(base, method="auto",
                            refit_estimator=LogisticRegression(C=np.inf)).fit(X, y)
    lp = logit(np.clip(base.predict_proba(X)[:, 1], 1e-6, 1 - 1e-6))
    ll = {"original": np.sum(y * np.log(expit(lp)) + (1 - y) * np.log(expit(-lp)))}
    ll["intercept"] = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(),
                             offset=lp).fit().llf
    ll["logistic"] = sm.Logit(y, sm.add_constant(lp)).fit(disp=0).llf
    refit = sm.Logit(y, sm.add_constant(X.to_numpy())).fit(disp=0).llf  # k = 4 parameters
    expected, chosen = [], "refit"
    for name, used in (("original", 0), ("intercept", 1), ("logistic", 2)):
        lr = 2 * (refit - ll[name])
        p = stats.chi2.sf(lr, 4 - used)
        expected.append((f"refit vs {name}", 4 - used, p))
        if p >= 0.05:
            chosen = name
            break
    got = [(t["comparison"], t["df"], t["p_value"]) for t in upd.tests_]
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    assert [g[2] for g in got] == pytest.approx([e[2] for e in expected], rel=1e-4)
    assert upd.method_ == chosen


def test_updated_intercept_interval_covers_the_new_sites_truth(base):
    shifted = dict(intercept=-0.9)
    X_big, y_big = population(np.random.default_rng(99), 400000, **shifted)
    lp_big = logit(np.clip(base.predict_proba(X_big)[:, 1], 1e-6, 1 - 1e-6))
    truth = sm.GLM(y_big, np.ones((len(y_big), 1)), family=sm.families.Binomial(),
                   offset=lp_big).fit().params[0]
    rng = np.random.default_rng(5)
    covered, reps = 0, 300
    for _ in range(reps):
        X, y = population(rng, 400, **shifted)
        upd = UpdatedClassifier(base, method="intercept").fit(X, y)
        low, high = upd.intervals_["intercept"]["intercept"]
        covered += low <= truth <= high
    assert 0.92 <= covered / reps <= 0.98


def test_local_lesions_for_a_chosen_precision(base):
    X, y = population(np.random.default_rng(7), 200000, intercept=-0.9)
    p = UpdatedClassifier(base, method="intercept").fit(X, y).predict_proba(X)[:, 1]
    n = patients_for_intercept_precision(0.1, float(np.mean(p * (1 - p))))
    fit = UpdatedClassifier(base, method="intercept").fit(X.iloc[:n], y[:n])
    half = 1.959963984540054 * fit.intervals_["intercept"]["intercept_se"]
    assert half == pytest.approx(0.1, rel=0.05)


def test_maximum_likelihood_revision_is_statsmodels_logit():
    X, y = population(np.random.default_rng(3), 800)
    scaler = StandardScaler().fit(X)
    revision = MaximumLikelihoodRevision(scaler).fit(X, y)
    fit = sm.Logit(y, sm.add_constant(scaler.transform(X))).fit(disp=0)
    np.testing.assert_allclose(revision.predict_proba(X)[:, 1], fit.predict(), atol=1e-5)
    assert revision.n_parameters_ == 4
