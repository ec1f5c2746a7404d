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


@pytest.fixture(scope="module")
def site_update():
    """A quick model (imputation and logistic regression, a user's estimator) of 400
    melanoma patients, updated by its intercept with 300 lung-cancer patients, the update
    cross-validated 3 x 3."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    from features.synthetic import simulate_cohort
    from models import train
    from models.updating import update_model

    estimator = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500))
    original = train(simulate_cohort(400, seed=1), estimator=estimator, validation="holdout",
                     nested_cv=False, progress=False).model
    local = simulate_cohort(300, cohort="nsclc", seed=5)
    return update_model(original, local, method="intercept", repeats=3, folds=3,
                        progress=False)


def test_updated_figures_are_each_repeats_own_not_the_averaged_ensembles(
        site_update, metrics_schema_errors):
    from sklearn.metrics import roc_auc_score

    from features.contract import ID, LABEL
    from models.evaluation import rubin_interval
    from models.statistics import auc_with_ci, to_jsonable

    evaluation = site_update.evaluation
    stacked = evaluation.predictions
    aucs, slopes, intervals = [], [], []
    for _, part in stacked.groupby("repeat"):
        y, p = part[LABEL].to_numpy(), part["p_pseudoprogression"].to_numpy()
        aucs.append(roc_auc_score(y, p))
        fit = sm.GLM(y, sm.add_constant(logit(p)), family=sm.families.Binomial()).fit()
        slopes.append(fit.params[1])
        intervals.append(auc_with_ci(y, p)[1])
    figures = site_update.metrics["update"]["updated_cross_validated"]
    assert figures["auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert figures["calibration_slope"] == pytest.approx(np.mean(slopes), abs=1e-6)
    assert figures["auc_ci"] == pytest.approx(rubin_interval(aucs, intervals, "logit"))
    assert evaluation.metrics["model"]["auc"] == pytest.approx(figures["auc"])
    # the averaged ensemble is kept apart, under its own name
    pooled = stacked.groupby([ID, "repeat"]).first().groupby(ID)
    mean_p = pooled["p_pseudoprogression"].mean()
    ensemble = evaluation.metrics["ensemble"]
    assert ensemble["model"]["auc"] == pytest.approx(
        roc_auc_score(pooled[LABEL].first(), mean_p), abs=1e-12)
    assert ensemble["model"]["auc"] != pytest.approx(figures["auc"], abs=1e-6)
    assert "averaged ensemble" in ensemble["describes"]
    assert any(c.startswith("rule_") for c in stacked.columns)  # with the rules' calls
    assert metrics_schema_errors(to_jsonable(site_update.metrics)) == []
