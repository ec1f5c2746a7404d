"""Intervals on lesions clustered in patients, checked against independent computations: a
hand-written patient bootstrap (scikit-learn's AUC), Obuchowski's formula written pair by
pair, and statsmodels' GEE for the cluster-robust variance of a proportion."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models import statistics as st


def clustered_table(n_patients: int = 300, seed: int = 0):
    """Labels, probabilities and patients of about 900 lesions (1-5 a patient) whose labels
    and scores are shared within a patient, as metastases of one patient tend to be."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 6, n_patients)
    g = np.repeat(np.arange(n_patients), k)
    patient_label = rng.random(n_patients) < 0.2
    y = np.where(rng.random(len(g)) < 0.9, patient_label[g],
                 rng.random(len(g)) < 0.2).astype(int)
    s = y + rng.normal(0, 1, n_patients)[g] + 1.2 * patient_label[g] + rng.normal(0, .5, len(g))
    return y, 1 / (1 + np.exp(-(s - 1.5))), g


def patient_bootstrap(y, p, g, statistic, n_resamples=2000, seed=1):
    """Percentile 95% interval of ``statistic(y, p)`` over resamples of patients."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(g == u) for u in np.unique(g)]
    values = []
    for _ in range(n_resamples):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        values.append(statistic(y[rows], p[rows]))
    values = np.asarray(values, dtype=float)
    return np.quantile(values[np.isfinite(values)], [0.025, 0.975])


@pytest.fixture(scope="module")
def table():
    return clustered_table()


def test_clustered_auc_interval_matches_a_patient_bootstrap(table):
    y, p, g = table
    value, ci = st.auc_with_ci(y, p, groups=g)
    _, plain = st.auc_with_ci(y, p)
    assert value == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    lo, hi = patient_bootstrap(y, p, g, st.auc)  # st.auc: roc_auc_score, sorted once
    assert abs((ci[1] - ci[0]) / (hi - lo) - 1) < 0.15
    assert (plain[1] - plain[0]) < 0.8 * (hi - lo)  # lesions as independent: too narrow


def obuchowski_by_pairs(y, s, g):
    """Obuchowski (1997) eqs. 3-5 written literally: psi over every positive-negative pair,
    S10 over the I10 patients with a positive lesion, S01 over the I01 with a negative one,
    S11 over all I."""
    ids = np.unique(g)
    pos, neg = y == 1, y == 0
    n1, n0, n_c = pos.sum(), neg.sum(), len(ids)
    psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
    theta = psi.mean()
    v10 = psi.sum(axis=1) / n0  # per positive lesion
    v01 = psi.sum(axis=0) / n1  # per negative lesion
    gp, gn = g[pos], g[neg]
    s10 = s01 = s11 = 0.0
    for i in ids:
        a = v10[gp == i].sum() - (gp == i).sum() * theta
        b = v01[gn == i].sum() - (gn == i).sum() * theta
        s10 += a * a
        s01 += b * b
        s11 += a * b
    # I10 and I01: the patients with at least one positive, one negative lesion
    i10, i01 = len(np.unique(gp)), len(np.unique(gn))
    s10 *= i10 / ((i10 - 1) * n1)
    s01 *= i01 / ((i01 - 1) * n0)
    s11 *= n_c / (n_c - 1)
    return theta, s10 / n1 + s01 / n0 + 2 * s11 / (n1 * n0)


def test_clustered_auc_variance_is_obuchowskis_formula():
    y, p, g = clustered_table(60, seed=4)
    p = np.round(p, 2)  # ties count one half in both
    theta, var = obuchowski_by_pairs(y, p, g)
    aucs, cov = st.auc_covariance(y, [p], st.clusters(g, len(y)))
    assert aucs[0] == pytest.approx(theta, abs=1e-12)
    assert cov[0, 0] == pytest.approx(var, rel=1e-10)


def test_clustered_delong_test_matches_a_patient_bootstrap(table):
    y, p, g = table
    other = np.clip(p + np.random.default_rng(3).normal(0, 0.15, len(p)), 0, 1)
    test = st.delong_test(y, p, other, groups=g)
    lo, hi = patient_bootstrap(y, np.c_[p, other], g,
                               lambda yy, pp: st.auc(yy, pp[:, 0]) - st.auc(yy, pp[:, 1]),
                               n_resamples=1000)
    assert abs((test["ci"][1] - test["ci"][0]) / (hi - lo) - 1) < 0.15
    assert "Obuchowski" in test["method"]


def test_proportion_variance_is_statsmodels_gee_robust_variance(table):
    import statsmodels.api as sm

    y, p, g = table
    call = p >= 0.5
    rows = y == 1  # sensitivity: calls among the positive lesions
    hits, groups = call[rows].astype(float), g[rows]
    r = hits.mean()
    fit = sm.GEE(hits, np.ones((len(hits), 1)), groups=groups,
                 family=sm.families.Binomial(), cov_struct=sm.cov_struct.Independence()).fit()
    # the GEE's robust variance of logit(r), back on the proportion's scale by the delta method
    gee_var = fit.cov_robust[0, 0] * (r * (1 - r)) ** 2
    n_clusters = len(np.unique(groups))
    deff = st.proportion_design_effect(hits, st.clusters(groups, len(hits)))
    assert deff * r * (1 - r) / len(hits) == pytest.approx(
        gee_var * n_clusters / (n_clusters - 1), rel=1e-6)


@pytest.mark.parametrize("key", ["sensitivity", "specificity", "ppv", "npv"])
def test_clustered_proportion_intervals_match_a_patient_bootstrap(table, key):
    y, p, g = table
    threshold = 0.5
    m = st.binary_metrics(y, (p >= threshold).astype(float), groups=g)

    def proportion(yy, pp):
        return st.binary_metrics(yy, (pp >= threshold).astype(float))[key]

    lo, hi = patient_bootstrap(y, p, g, proportion, n_resamples=600)
    assert abs((m[f"{key}_ci"][1] - m[f"{key}_ci"][0]) / (hi - lo) - 1) < 0.2
    assert m["design_effect"][key] > 1.5
    assert m["n_patients"] == len(np.unique(g))


def test_clustered_dor_interval_matches_a_patient_bootstrap(table):
    y, p, g = table
    m = st.binary_metrics(y, (p >= 0.5).astype(float), groups=g)

    def log_dor(yy, pp):
        return math.log(st.binary_metrics(yy, (pp >= 0.5).astype(float))["dor"])

    lo, hi = patient_bootstrap(y, p, g, log_dor, n_resamples=600)
    width = math.log(m["dor_ci"][1]) - math.log(m["dor_ci"][0])
    assert abs(width / (hi - lo) - 1) < 0.2


def test_one_lesion_per_patient_changes_nothing():
    y, p, _ = clustered_table(200, seed=2)
    ids = np.arange(len(y)).astype(str)
    calls = (p >= 0.5).astype(float)
    assert st.auc_with_ci(y, p, groups=ids) == st.auc_with_ci(y, p)
    assert st.binary_metrics(y, calls, groups=ids) == st.binary_metrics(y, calls)
    assert st.calibration_intercept_slope(y, p, groups=ids) == \
        st.calibration_intercept_slope(y, p)
    rules = {"r": calls}
    import pandas as pd
    with_ids = st.benchmark(y, p, 0.5, pd.DataFrame(rules), groups=ids)
    without = st.benchmark(y, p, 0.5, pd.DataFrame(rules))
    assert st.to_jsonable(with_ids) == st.to_jsonable(without)
    assert "independent" in without["interval_methods"]["unit"]


def test_benchmark_on_clustered_rows_says_so(table):
    import pandas as pd

    y, p, g = table
    out = st.benchmark(y, p, 0.5, pd.DataFrame({"r": (p >= 0.4).astype(float)}), groups=g)
    assert "Obuchowski" in out["interval_methods"]["auc"]
    assert out["model"]["auc_ci"] == st.auc_with_ci(y, p, groups=g)[1]
    assert out["rules"]["r"]["design_effect"]["sensitivity"] > 1
    assert out["model"]["calibration_slope_ci"] != st.calibration_intercept_slope(
        y, p)["calibration_slope_ci"]


def disagreeing_lesions(n_patients: int = 300, rho: float = -0.18, seed: int = 5):
    """Positive lesions, two a patient, called with probability 0.7 and a within-patient
    correlation ``rho`` < 0 (one lesion called, the other missed, more often than chance):
    a design effect of 1 + rho."""
    rng = np.random.default_rng(seed)
    p = 0.7
    both = p * p + rho * p * (1 - p)
    pattern = rng.choice(4, n_patients, p=[both, p - both, p - both, 1 - 2 * p + both])
    calls = np.c_[np.isin(pattern, (0, 1)), np.isin(pattern, (0, 2))].ravel().astype(float)
    return np.ones(2 * n_patients, int), calls, np.repeat(np.arange(n_patients), 2)


def test_lesions_that_disagree_within_a_patient_give_an_interval_narrower_than_wilsons():
    import statsmodels.api as sm

    y, calls, g = disagreeing_lesions()
    m = st.binary_metrics(y, calls, groups=g)
    r, n, n_clusters = calls.mean(), len(calls), len(np.unique(g))
    deff = m["design_effect"]["sensitivity"]
    assert deff < 0.9  # not floored at 1
    wilson = st.wilson_ci(int(calls.sum()), n)
    width = m["sensitivity_ci"][1] - m["sensitivity_ci"][0]
    assert width < 0.95 * (wilson[1] - wilson[0])
    # the same variance as statsmodels' GEE (robust covariance), with an independence and an
    # exchangeable working correlation (equal clusters: the same estimate and variance)
    for structure in (sm.cov_struct.Independence(), sm.cov_struct.Exchangeable()):
        fit = sm.GEE(calls, np.ones((n, 1)), groups=g, family=sm.families.Binomial(),
                     cov_struct=structure).fit()
        gee_var = fit.cov_robust[0, 0] * (r * (1 - r)) ** 2  # delta method from logit(r)
        assert deff * r * (1 - r) / n == pytest.approx(
            gee_var * n_clusters / (n_clusters - 1), rel=1e-6)
    assert fit.cov_struct.dep_params < 0  # the exchangeable correlation found is negative
    # and about as wide as a 2,000-resample patient bootstrap (per-patient sums, vectorised)
    hits, rows = calls.reshape(-1, 2).sum(axis=1), np.full(n_clusters, 2)
    pick = np.random.default_rng(1).integers(0, n_clusters, (2000, n_clusters))
    shares = hits[pick].sum(axis=1) / rows[pick].sum(axis=1)
    lo, hi = np.quantile(shares, [0.025, 0.975])
    assert abs(width / (hi - lo) - 1) < 0.1


def test_dor_interval_narrower_than_woolfs_where_a_patients_lesions_offset_each_other():
    """One lesion of each class a patient, both more likely called in some patients: the
    errors of log(Se) and log(1 - Sp) offset, so the clustered Woolf interval is narrower
    than the independent one, as wide as a patient bootstrap's."""
    rng = np.random.default_rng(7)
    n_patients = 400
    tendency = rng.normal(0, 1, n_patients)
    y = np.tile([1, 0], n_patients)
    g = np.repeat(np.arange(n_patients), 2)
    score = np.repeat(tendency, 2) + 1.2 * y + rng.normal(0, 0.7, 2 * n_patients)
    calls = (score > 0.6).astype(float)
    m = st.binary_metrics(y, calls, groups=g)
    plain = st.binary_metrics(y, calls)
    assert m["design_effect"]["dor"] < 0.9
    width = math.log(m["dor_ci"][1] / m["dor_ci"][0])
    assert width < 0.95 * math.log(plain["dor_ci"][1] / plain["dor_ci"][0])

    def log_dor(yy, pp):
        return math.log(st.binary_metrics(yy, pp)["dor"])

    lo, hi = patient_bootstrap(y, calls, g, log_dor, n_resamples=600)
    assert abs(width / (hi - lo) - 1) < 0.15


def test_clustered_calibration_intervals_match_a_patient_bootstrap(table):
    """Cluster-robust Wald intervals of the calibration intercept and slope against the
    standard error of 200 resamples of patients (both fits of a resample at once)."""
    y, p, g = table
    fit = st.calibration_intercept_slope(y, p, groups=g)
    plain = st.calibration_intercept_slope(y, p)
    keys = ("calibration_intercept", "calibration_slope")
    rng = np.random.default_rng(1)
    members = [np.flatnonzero(g == u) for u in np.unique(g)]
    draws = []
    for _ in range(200):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        again = st.calibration_intercept_slope(y[rows], p[rows])
        draws.append([again[k] for k in keys])
    boot_se = np.nanstd(np.asarray(draws, dtype=float), axis=0, ddof=1)
    for key, se in zip(keys, boot_se, strict=True):
        assert fit[key] == pytest.approx(plain[key])  # the estimates do not change
        width = fit[f"{key}_ci"][1] - fit[f"{key}_ci"][0]
        assert abs(width / (2 * 1.959963984540054 * se) - 1) < 0.2, key
        plain_width = plain[f"{key}_ci"][1] - plain[f"{key}_ci"][0]
        assert plain_width < 0.8 * width, key  # lesions as independent: too narrow


def test_a_clustered_proportion_keeps_its_coverage_on_eight_patients():
    """Eight patients of three lesions each, a patient's lesions alike: over 1,000 seeded
    cohorts the sensitivity interval holds the true sensitivity (a patient effect's mean,
    by numerical integration) at least 94% of the time: the t on patients - 1 degrees of
    freedom; the normal's critical value covers about 92% here."""
    from scipy import integrate, stats
    from scipy.special import expit

    from models.statistics import binary_metrics

    truth = integrate.quad(lambda u: expit(0.8 + u) * stats.norm.pdf(u), -10, 10)[0]
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(8), 3)
    held = 0
    for _ in range(1000):
        effect = rng.normal(0, 1, 8)[patients]
        calls = (rng.random(patients.size) < expit(0.8 + effect)).astype(float)
        low, high = binary_metrics(np.ones(patients.size), calls,
                                   groups=patients)["sensitivity_ci"]
        held += low <= truth <= high
    assert held / 1000 >= 0.94
