"""Metrics against hand-computed references, second methods and simulated truths."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from features.article import FIGURES, PREVALENCE
from models import statistics as M
from models.evaluation import contract_scales

Z = stats.norm.ppf(0.975)


def _table(tp: int, fp: int, fn: int, tn: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions that make the given 2x2 table."""
    y = np.r_[np.ones(tp), np.zeros(fp), np.ones(fn), np.zeros(tn)]
    pred = np.r_[np.ones(tp), np.ones(fp), np.zeros(fn), np.zeros(tn)]
    return y, pred


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    ph = k / n
    centre = (ph + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(ph * (1 - ph) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


# --------------------------------------------------------------------------- 2x2 tables


def test_wilson_matches_formula_and_empty():
    for k, n in [(40, 60), (0, 10), (10, 10), (1, 3)]:
        assert M.wilson_ci(k, n) == pytest.approx(_wilson_by_hand(k, n), abs=1e-10)
    lo, hi = M.wilson_ci(0, 0)
    assert math.isnan(lo) and math.isnan(hi)


def test_binary_metrics_hand_table():
    tp, fp, fn, tn = 40, 10, 20, 130
    y, pred = _table(tp, fp, fn, tn)
    m = M.binary_metrics(y, pred)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (tp, fp, fn, tn)
    assert m["n"] == 200 and m["n_positive"] == 60
    assert m["sensitivity"] == pytest.approx(40 / 60)
    assert m["specificity"] == pytest.approx(130 / 140)
    assert m["ppv"] == pytest.approx(40 / 50)
    assert m["npv"] == pytest.approx(130 / 150)
    assert m["sensitivity_ci"] == pytest.approx(list(_wilson_by_hand(40, 60)))
    assert m["ppv_ci"] == pytest.approx(list(_wilson_by_hand(40, 50)))
    assert m["dor"] == pytest.approx(26.0)
    se = math.sqrt(1 / 40 + 1 / 10 + 1 / 20 + 1 / 130)
    assert m["dor_ci"] == pytest.approx([26 * math.exp(-Z * se), 26 * math.exp(Z * se)])
    for key in ("sensitivity_ci", "specificity_ci", "ppv_ci", "npv_ci", "dor_ci"):
        assert isinstance(m[key], list) and len(m[key]) == 2


def test_confusion_counts_ints():
    c = M.confusion_counts([1, 0, 1, 0], [1, 1, 0, 0])
    assert c == {"tp": 1, "fp": 1, "tn": 1, "fn": 1}
    assert all(type(v) is int for v in c.values())


def test_dor_zero_cell_haldane():
    dor, (lo, hi) = M.diagnostic_odds_ratio(tp=10, fp=0, fn=5, tn=20)
    a, b, c, d = 10.5, 0.5, 5.5, 20.5
    assert dor == pytest.approx(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert (lo, hi) == pytest.approx((dor * math.exp(-Z * se), dor * math.exp(Z * se)))


def test_undefined_metrics_are_nan():
    m = M.binary_metrics([1, 0, 1], [0, 0, 0])  # no predicted positives
    assert math.isnan(m["ppv"]) and all(math.isnan(v) for v in m["ppv_ci"])
    assert m["npv"] == pytest.approx(1 / 3)
    m = M.binary_metrics([], [])
    assert m["n"] == 0 and math.isnan(m["sensitivity"]) and math.isnan(m["dor"])


def test_abstentions_not_counted():
    m = M.binary_metrics([1, 1, 0, 0], [1, np.nan, np.nan, 0])
    assert (m["tp"], m["fp"], m["tn"], m["fn"], m["n"]) == (1, 0, 1, 0, 2)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        M.binary_metrics([1, 0, 2], [1, 0, 1])
    with pytest.raises(ValueError):
        M.binary_metrics([1, 0], [1, 0, 1])
    with pytest.raises(ValueError):
        M.binary_metrics([1, np.nan], [1, 0])


# --------------------------------------------------------------------------- AUC


def test_auc_equals_mann_whitney_and_ci_brackets():
    rng = np.random.default_rng(1)
    y = rng.binomial(1, 0.3, 300)
    p = np.round(rng.random(300) * 0.6 + 0.3 * y, 2)  # rounding makes ties
    auc, ci = M.auc_with_ci(y, p)
    u = stats.mannwhitneyu(p[y == 1], p[y == 0]).statistic
    assert auc == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()))
    assert ci[0] < auc < ci[1] and 0 <= ci[0] and ci[1] <= 1


def test_delong_se_close_to_bootstrap():
    rng = np.random.default_rng(2)
    n = 400
    y = rng.binomial(1, 0.35, n)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y)))
    aucs, v10, v01 = M.delong_components(y, [p])
    auc = aucs[0]
    se = np.sqrt(v10.var(ddof=1) / v10.shape[1] + v01.var(ddof=1) / v01.shape[1])
    from sklearn.metrics import roc_auc_score

    assert auc == pytest.approx(roc_auc_score(y, p))
    assert M.auc(y, p) == pytest.approx(auc)
    idx = rng.integers(0, n, (2000, n))  # bootstrap resamples, AUC by ranks (Mann-Whitney)
    yb, ranks = y[idx], stats.rankdata(p[idx], axis=1)
    n1 = yb.sum(axis=1)
    boot = ((ranks * yb).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * (n - n1))
    assert se == pytest.approx(np.std(boot, ddof=1), rel=0.15)


def test_auc_one_class_is_nan():
    auc, ci = M.auc_with_ci([1, 1, 1], [0.2, 0.5, 0.9])
    assert math.isnan(auc) and all(math.isnan(v) for v in ci)


# --------------------------------------------------------------------------- calibration


def test_calibration_of_true_probabilities():
    rng = np.random.default_rng(3)
    p = 1 / (1 + np.exp(-rng.normal(-1, 1.5, 20000)))
    y = rng.binomial(1, p)
    c = M.calibration_intercept_slope(y, p)
    assert c["calibration_slope"] == pytest.approx(1.0, abs=0.06)
    assert c["calibration_intercept"] == pytest.approx(0.0, abs=0.06)
    for key in ("calibration_slope", "calibration_intercept"):
        lo, hi = c[f"{key}_ci"]
        assert lo < c[key] < hi and hi - lo < 0.15


def test_calibration_overconfident_slope_below_one():
    rng = np.random.default_rng(4)
    lp = rng.normal(-1, 1.5, 20000)
    y = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    p_over = 1 / (1 + np.exp(-2 * lp))  # twice as extreme as the truth
    c = M.calibration_intercept_slope(y, p_over)
    assert c["calibration_slope"] == pytest.approx(0.5, abs=0.05)
    assert c["calibration_slope_ci"][1] < 1


def test_calibration_survives_one_class_and_extremes():
    c = M.calibration_intercept_slope([0, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(c["calibration_slope"])
    c = M.calibration_intercept_slope([0, 1, 0, 1], [0.0, 1.0, 0.0, 1.0])  # clipped, no crash
    assert set(c) == {"calibration_intercept", "calibration_intercept_ci",
                      "calibration_slope", "calibration_slope_ci"}


def test_brier_score():
    assert M.brier_score([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)


# --------------------------------------------------------------------------- operating point


def test_operating_point_highest_threshold_reaching_target():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.5, 0.2, 0.1])
    op = M.operating_point_at_sensitivity(y, p, 0.75)
    assert op["threshold"] == pytest.approx(0.6)
    assert op["sensitivity"] == pytest.approx(0.75)
    assert (op["tp"], op["fp"], op["tn"], op["fn"], op["n"]) == (3, 1, 3, 1, 8)
    assert op["ppv"] == pytest.approx(0.75) and op["specificity"] == pytest.approx(0.75)
    op = M.operating_point_at_sensitivity(y, p, 0.7)  # between 0.5 and 0.75: still 0.6
    assert op["threshold"] == pytest.approx(0.6)
    op = M.operating_point_at_sensitivity(y, p, 1.0)
    assert op["threshold"] == pytest.approx(0.3) and op["sensitivity"] == 1.0
    op = M.operating_point_at_sensitivity(y, p, 0.0)
    assert op["tp"] == 0 and op["fp"] == 0 and math.isnan(op["ppv"])
    op = M.operating_point_at_sensitivity(y, p, float("nan"))
    assert math.isnan(op["threshold"])


def test_operating_point_reaches_target_on_random_data():
    rng = np.random.default_rng(5)
    y = rng.binomial(1, 0.3, 500)
    p = rng.random(500)
    for target in (0.1, 1 / 3, 0.5, 0.77, 0.95):
        op = M.operating_point_at_sensitivity(y, p, target)
        assert op["sensitivity"] >= target - 1e-12
        higher = p[p > op["threshold"]]  # any higher threshold falls below the target
        if len(higher):
            t_next = higher.min()
            assert ((p >= t_next) & (y == 1)).sum() / y.sum() < target


# --------------------------------------------------------------------------- prevalence


def test_restate_at_prevalence_bayes_by_hand():
    se, sp, prev = 0.8, 0.9, PREVALENCE["melanoma"]
    r = M.restate_at_prevalence(se, sp, prev, 50, 200)
    assert r["prevalence"] == prev
    assert r["ppv"] == pytest.approx(se * prev / (se * prev + (1 - sp) * (1 - prev)))
    assert r["npv"] == pytest.approx(sp * (1 - prev) / (sp * (1 - prev) + (1 - se) * prev))
    # Mercaldo et al. 2007, by hand: logit PPV = logit(prev) + log(se / (1 - sp))
    centre = math.log(prev / (1 - prev)) + math.log(se / (1 - sp))
    half = 1.959964 * math.sqrt((1 - se) / (se * 50) + sp / ((1 - sp) * 200))
    assert r["ppv_ci"][0] == pytest.approx(1 / (1 + math.exp(-(centre - half))), rel=1e-5)
    assert r["ppv_ci"][1] == pytest.approx(1 / (1 + math.exp(-(centre + half))), rel=1e-5)
    assert r["ppv_ci"][0] < r["ppv"] < r["ppv_ci"][1]
    assert r["npv_ci"][0] < r["npv"] < r["npv_ci"][1]
    r = M.restate_at_prevalence(se, sp, prev)
    assert all(math.isnan(v) for v in r["ppv_ci"])
    with pytest.raises(ValueError):
        M.restate_at_prevalence(se, sp, 1.5)


def test_d1_ppv_needs_extreme_specificity_at_article_prevalence():
    """FIGURES.md: D1's PPV at P1's prevalence needs a specificity above 99%."""
    r = M.restate_at_prevalence(0.8, 0.98, PREVALENCE["melanoma"])
    assert r["ppv"] < FIGURES["D1"].value


# --------------------------------------------------------------------------- odds ratios


def test_feature_or_per_sd_recovers_known_coefficient():
    rng = np.random.default_rng(6)
    n, beta_per_sd = 4000, 0.8
    log_rcbv = rng.normal(0.3, 0.5, n)
    z = (log_rcbv - log_rcbv.mean()) / log_rcbv.std(ddof=1)
    y = rng.binomial(1, 1 / (1 + np.exp(-(-1 + beta_per_sd * z))))
    df = pd.DataFrame({"rcbv": np.exp(log_rcbv)})
    df.loc[:99, "rcbv"] = np.nan  # missing rows are left out, not imputed
    out = M.feature_odds_ratios(df, y, scales=contract_scales())
    row = out.set_index("feature").loc["rcbv"]
    assert row["n"] == n - 100 and row["n_positive"] == y[100:].sum()
    assert row["ci_low"] < math.exp(beta_per_sd) < row["ci_high"]
    assert "log(max(rcbv, 0.001))" in row["scale"]
    assert list(out.columns[:8]) == ["feature", "scale", "n", "n_positive", "odds_ratio",
                                     "ci_low", "ci_high", "p_value"]


def test_feature_or_binary_matches_2x2_and_extra_binary():
    tp, fp, fn, tn = 40, 10, 20, 130
    y, pred = _table(tp, fp, fn, tn)
    ctdna = np.where(pred == 1, -80.0, 10.0)
    abstain = pd.Series(pred).where(np.arange(len(y)) % 10 != 0)  # some NaN
    df = pd.DataFrame({"ctdna_change_pct": ctdna, "symptomatic": 1 - pred})
    out = M.feature_odds_ratios(df, y, extra_binary={"ctdna_change_pct < -60": pred,
                                                     "with gaps": abstain},
                                scales=contract_scales()).set_index("feature")
    d3 = out.loc["ctdna_change_pct < -60"]
    dor, ci = M.diagnostic_odds_ratio(tp, fp, fn, tn)
    assert d3["odds_ratio"] == pytest.approx(dor, rel=1e-6)
    assert (d3["ci_low"], d3["ci_high"]) == pytest.approx(ci, rel=1e-5)
    assert out.loc["symptomatic", "odds_ratio"] == pytest.approx(1 / dor, rel=1e-6)
    assert out.loc["symptomatic", "scale"] == "per unit (1 vs 0)"
    assert out.loc["with gaps", "n"] == abstain.notna().sum()
    assert "log(1 + max(ctdna_change_pct, -99)/100)" in out.loc["ctdna_change_pct", "scale"]


def test_feature_or_graceful_failures():
    y = np.array([0, 1] * 20)
    df = pd.DataFrame({
        "rcbv": np.ones(40),                          # constant
        "adc": np.where(y == 1, 2.0, 0.5) + np.arange(40) * 1e-3,  # complete separation
        "lactate_peak": y.astype(float),              # binary separation
        "cancer_type": ["melanoma"] * 40,             # not numeric
        "cho_cr": [np.nan] * 40,                      # empty
        "ki67_pct": np.linspace(0, 100, 40),          # fine, includes 0 and 100
    })
    cols = ["rcbv", "adc", "lactate_peak", "cancer_type", "cho_cr", "ki67_pct", "missing"]
    out = M.feature_odds_ratios(df, y, columns=cols,
                                scales=contract_scales()).set_index("feature")
    for c in cols[:-2]:
        assert math.isnan(out.loc[c, "odds_ratio"]) and out.loc[c, "note"], c
    assert np.isfinite(out.loc["ki67_pct", "odds_ratio"]) and out.loc["ki67_pct", "note"] == ""
    assert out.loc["missing", "note"] == "column not in the table"


# --------------------------------------------------------------------------- benchmark


def _cohort(seed: int = 7, n: int = 600):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.25, n)
    score = rng.normal(size=n) + 1.5 * y
    p = 1 / (1 + np.exp(-(score - 2)))
    rules = pd.DataFrame({
        "D3_ctdna_clearance": np.where(rng.random(n) < 0.4, np.nan,
                                       (score + rng.normal(size=n) > 1.5).astype(float)),
        "Q1a_symptoms": (score > 0.5).astype(float),
        "D5_pathology": np.full(n, np.nan),
    })
    return y, p, rules


def test_benchmark_structure_and_consistency():
    y, p, rules = _cohort()
    b = M.benchmark(y, p, 0.3, rules, restate_prevalences=PREVALENCE)
    assert set(b) == {"n", "n_positive", "prevalence", "threshold", "model", "rules",
                      "interval_methods"}
    assert b["n"] == len(y) and b["n_positive"] == y.sum()
    model = b["model"]
    assert model["coverage"] == 1.0
    assert model["tp"] == int(((p >= 0.3) & (y == 1)).sum())
    for key in ("auc", "auc_ci", "brier", "calibration_intercept", "calibration_intercept_ci",
                "calibration_slope", "calibration_slope_ci"):
        assert key in model
    assert set(model["at_prevalence"]) == set(PREVALENCE)
    assert set(model["at_prevalence"]["nsclc"]) == {"prevalence", "ppv", "ppv_ci", "npv",
                                                     "npv_ci"}
    assert set(b["rules"]) == set(rules.columns)

    d3 = b["rules"]["D3_ctdna_clearance"]
    covered = rules["D3_ctdna_clearance"].notna().to_numpy()
    assert d3["n"] == covered.sum()
    assert d3["coverage"] == pytest.approx(covered.mean())
    assert d3["tp"] + d3["fp"] + d3["tn"] + d3["fn"] == covered.sum()
    op = d3["model_at_rule_sensitivity"]
    assert op["n"] == covered.sum()
    assert op["sensitivity"] >= d3["sensitivity"] - 1e-12
    on_rows = d3["model_on_rule_rows"]
    assert on_rows["tp"] == int(((p >= 0.3) & (y == 1) & covered).sum())

    empty = b["rules"]["D5_pathology"]
    assert empty["coverage"] == 0 and empty["n"] == 0 and math.isnan(empty["sensitivity"])
    assert math.isnan(empty["model_at_rule_sensitivity"]["threshold"])

    text = json.dumps(M.to_jsonable(b), allow_nan=False)
    assert "NaN" not in text


def test_benchmark_custom_prevalences_and_misaligned_rules():
    y, p, rules = _cohort()
    b = M.benchmark(y, p, 0.5, rules, restate_prevalences={"enriched": 0.5})
    assert set(b["rules"]["Q1a_symptoms"]["at_prevalence"]) == {"enriched"}
    with pytest.raises(ValueError):
        M.benchmark(y, p, 0.5, rules.iloc[:-1])
    with pytest.raises(ValueError):
        M.benchmark(y, p, 0.5, rules.assign(bad=2.0))


def test_to_jsonable():
    obj = {1: np.float32(0.5), "a": (np.int64(3), np.nan, float("inf")),
           "b": np.array([1.0, np.nan]), "c": np.bool_(True), "d": pd.DataFrame({"x": [1]})}
    out = M.to_jsonable(obj)
    assert out == {"1": 0.5, "a": [3, None, None], "b": [1.0, None], "c": True,
                   "d": [{"x": 1}]}
    json.dumps(out, allow_nan=False)
