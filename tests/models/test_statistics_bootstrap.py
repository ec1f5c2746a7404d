"""Decision curves, bootstrap CIs, DeLong's test and the paired model-vs-rule comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.statistics import (
    auc,
    binary_metrics,
    bootstrap_metrics,
    compare_all_rules,
    compare_with_rule,
    delong_test,
    diagnostic_odds_ratios,
    net_benefit,
    operating_point_at_sensitivity,
    treat_all_net_benefit,
    treat_none_net_benefit,
)


def _cohort(n: int, seed: int, prevalence: float = 0.2, shift: float = 1.5):
    """Labels, a calibrated-looking score and the latent marker it comes from."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, prevalence, n)
    x = rng.normal(shift * y, 1.0)
    p = 1.0 / (1.0 + np.exp(-(shift * x - shift**2 / 2 + np.log(prevalence / (1 - prevalence)))))
    return y, p, x


# --------------------------------------------------------------------------- net benefit


def test_net_benefit_hand_computed():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    # pt = 0.25: called 0.9, 0.4, 0.6 -> TP 2, FP 1: 2/5 - 1/5 * (0.25/0.75) = 0.4 - 1/15
    # pt = 0.5: called 0.9, 0.6 -> TP 1, FP 1: 1/5 - 1/5 * 1 = 0
    # pt = 0.95: none called -> 0
    nb = net_benefit(y, p, [0.25, 0.5, 0.95])
    np.testing.assert_allclose(nb, [0.4 - 1 / 15, 0.0, 0.0])


def test_net_benefit_rule_is_fixed_call():
    y = np.array([1, 0, 1, 0])
    rule = np.array([1.0, 1.0, 0.0, 0.0])
    pt = np.array([0.1, 0.5])
    np.testing.assert_allclose(net_benefit(y, rule, pt), 1 / 4 - 1 / 4 * pt / (1 - pt))


def test_treat_all_and_none():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    pt = np.linspace(0.05, 0.6, 12)
    prev = 0.2
    np.testing.assert_allclose(treat_all_net_benefit(y, pt), prev - (1 - prev) * pt / (1 - pt))
    np.testing.assert_allclose(net_benefit(y, np.ones(10), pt), treat_all_net_benefit(y, pt))
    np.testing.assert_array_equal(treat_none_net_benefit(pt), 0.0)


def test_net_benefit_abstentions():
    y = np.array([1, 1, 0, 0])
    rule = np.array([1.0, np.nan, 1.0, np.nan])
    with pytest.raises(ValueError, match="abstain"):
        net_benefit(y, rule, 0.2)
    # treat-none: the NaN rows are not called; denominator stays 4.
    np.testing.assert_allclose(net_benefit(y, rule, 0.2, abstain="treat-none"),
                               [1 / 4 - 1 / 4 * 0.25])
    # covered: rows 0 and 2 only.
    np.testing.assert_allclose(net_benefit(y, rule, 0.2, abstain="covered"),
                               [1 / 2 - 1 / 2 * 0.25])


def test_net_benefit_rejects_bad_thresholds():
    with pytest.raises(ValueError):
        net_benefit([0, 1], [0.2, 0.8], [0.0, 0.5])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_contains_estimate_and_is_reproducible():
    y, p, _ = _cohort(300, seed=1)
    a = bootstrap_metrics(y, p, threshold=0.3, n_resamples=200, seed=3)
    b = bootstrap_metrics(y, p, threshold=0.3, n_resamples=200, seed=3)
    assert a == b
    assert {"auc", "brier", "ppv", "sensitivity", "net_benefit@0.10", "net_benefit@0.20",
            "net_benefit@0.30"} <= set(a)
    for name, m in a.items():
        lo, hi = m["ci"]
        assert lo <= m["estimate"] <= hi, name
        assert isinstance(m["method"], str) and "bootstrap" in m["method"]
    c = bootstrap_metrics(y, p, threshold=0.3, n_resamples=200, seed=4)
    assert c["auc"]["ci"] != a["auc"]["ci"]


def test_bootstrap_widens_with_smaller_n():
    y, p, _ = _cohort(1200, seed=2)
    big = bootstrap_metrics(y, p, 0.3, n_resamples=200, seed=0)
    small = bootstrap_metrics(y[:150], p[:150], 0.3, n_resamples=200, seed=0)
    for name in ("auc", "brier", "sensitivity", "ppv", "net_benefit@0.20"):
        w_small = small[name]["ci"][1] - small[name]["ci"][0]
        w_big = big[name]["ci"][1] - big[name]["ci"][0]
        assert w_small > 1.5 * w_big, name


def test_bootstrap_survives_degenerate_resamples():
    # 2 positives in 20 rows: many resamples hold no positive at all.
    y = np.zeros(20, int)
    y[[3, 11]] = 1
    p = np.linspace(0.05, 0.6, 20)
    out = bootstrap_metrics(y, p, threshold=0.5, n_resamples=200, seed=0)
    assert np.isfinite(out["auc"]["ci"]).all()
    assert "of 200 resamples defined" in out["auc"]["method"]
    assert not out["auc"]["method"].startswith("200 of 200")


def test_bootstrap_by_patient():
    y, p, _ = _cohort(200, seed=5)
    groups = np.repeat(np.arange(100), 2)
    out = bootstrap_metrics(y, p, 0.3, groups=groups, n_resamples=200, seed=0)
    assert "100 patients" in out["auc"]["method"]
    assert out["auc"]["ci"][0] <= out["auc"]["estimate"] <= out["auc"]["ci"][1]
    with pytest.raises(ValueError):
        bootstrap_metrics(y, p, 0.3, groups=groups[:10], n_resamples=20)


# --------------------------------------------------------------------------- DeLong


def _paired_bootstrap_se(y, a, b, n_resamples=400, seed=0):
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_resamples):
        i = rng.integers(0, y.shape[0], y.shape[0])
        diffs.append(auc(y[i], a[i]) - auc(y[i], b[i]))
    return np.nanstd(diffs, ddof=1)


def test_delong_se_matches_paired_bootstrap():
    rng = np.random.default_rng(7)
    n = 400
    y = rng.binomial(1, 0.3, n)
    latent = rng.normal(y * 1.0, 1.0)
    a = latent + rng.normal(0, 0.5, n)
    b = latent + rng.normal(0, 1.2, n)
    d = delong_test(y, a, b)
    boot = _paired_bootstrap_se(y, a, b)
    assert abs(d["se"] - boot) / boot < 0.2
    assert d["ci"][0] < d["difference"] < d["ci"][1]


def test_delong_p_values():
    rng = np.random.default_rng(11)
    n = 300
    y = rng.binomial(1, 0.4, n)
    good = rng.normal(2.0 * y, 1.0)
    poor = rng.normal(0.2 * y, 1.0)
    assert delong_test(y, good, poor)["p_value"] < 1e-4
    base = rng.normal(1.0 * y, 1.0)
    copy_a = base + rng.normal(0, 0.3, n)
    copy_b = base + rng.normal(0, 0.3, n)
    assert delong_test(y, copy_a, copy_b)["p_value"] > 0.05


def test_delong_binary_rule_auc_and_identity():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    rule = np.array([1, 1, 0, 0, 1, 0, 0, 1])
    d = delong_test(y, rule, rule)
    sens, spec = 3 / 4, 3 / 4
    assert d["auc_a"] == pytest.approx((sens + spec) / 2)
    assert d["difference"] == 0 and d["p_value"] == 1.0
    assert np.isnan(delong_test([1, 0, 0], [0.3, 0.2, 0.1], [0.1, 0.2, 0.3])["se"])


# --------------------------------------------------------------------------- model vs rule


def test_model_at_sensitivity_picks_highest_threshold():
    y = np.array([1, 0, 1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    op = operating_point_at_sensitivity(y, p, 2 / 3, with_ci=False)
    assert op["threshold"] == 0.7
    assert op["ppv"] == pytest.approx(2 / 3)
    assert op["specificity"] == pytest.approx(2 / 3)


def test_rule_that_thresholds_p_matches_model():
    y, p, _ = _cohort(400, seed=9)
    # Cut exactly at a positive's score, so the model's operating point is the rule itself.
    t0 = np.sort(p[y == 1])[len(p[y == 1]) // 2]
    rule = (p >= t0).astype(float)
    out = compare_with_rule(y, p, rule, n_resamples=200, seed=0)
    assert out["ppv_difference"]["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert out["specificity_difference"]["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert out["model"]["threshold"] == pytest.approx(t0)
    assert out["rule"]["ppv"] == pytest.approx(binary_metrics(y, rule)["ppv"])
    lo, hi = out["ppv_difference"]["ci"]
    assert lo <= 0.0 <= hi and hi - lo < 0.1
    # the model's AUC is above a single cut of the same score
    assert out["auc_difference"]["estimate"] > 0
    # a cut between scores: difference still close to 0 (the model may shed a few FPs)
    rule2 = (p >= 0.31).astype(float)
    out2 = compare_with_rule(y, p, rule2, n_resamples=50, seed=0)
    assert 0.0 <= out2["ppv_difference"]["estimate"] < 0.03


def test_compare_uses_covered_rows_only():
    y, p, x = _cohort(400, seed=4)
    rule = (x > 0.8).astype(float)
    rule_nan = rule.copy()
    rule_nan[::2] = np.nan
    full = compare_with_rule(y[1::2], p[1::2], rule[1::2], n_resamples=100, seed=0)
    part = compare_with_rule(y, p, rule_nan, n_resamples=100, seed=0)
    assert part["n_covered"] == 200
    assert part["ppv_difference"]["estimate"] == pytest.approx(full["ppv_difference"]["estimate"])
    assert part["delong"]["p_value"] == pytest.approx(full["delong"]["p_value"])


def test_compare_all_rules_handles_degenerate_rules():
    y, p, x = _cohort(200, seed=6)
    rules = pd.DataFrame({
        "D3_ctdna_clearance": (x > 0.5).astype(float),
        "D5_pathology": np.full(200, np.nan),          # never applicable
        "Q1c_pet": np.where(y == 1, np.nan, 1.0),       # covers negatives only
    })
    out = compare_all_rules(y, p, rules, n_resamples=50, seed=0)
    assert set(out) == set(rules.columns)
    assert out["D5_pathology"]["n_covered"] == 0
    assert np.isnan(out["D5_pathology"]["auc_difference"]["estimate"])
    assert np.isnan(out["Q1c_pet"]["delong"]["p_value"])
    assert np.isfinite(out["D3_ctdna_clearance"]["ppv_difference"]["ci"]).all()


def test_diagnostic_odds_ratios():
    y = np.array([1] * 10 + [0] * 10)
    r = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 8, dtype=float)
    rules = pd.DataFrame({"D3_ctdna_clearance": r, "none": np.nan})
    tab = diagnostic_odds_ratios(y, rules)
    assert list(tab.columns) == ["label", "odds_ratio", "ci_low", "ci_high", "n", "note"]
    row = tab.iloc[0]
    assert row.odds_ratio == pytest.approx(16.0)
    se = np.sqrt(1 / 8 + 1 / 2 + 1 / 2 + 1 / 8)  # Woolf: sum of 1/cell
    assert row.ci_low == pytest.approx(16 * np.exp(-1.959964 * se), rel=1e-4)
    assert row.n == 20
    assert np.isnan(tab.iloc[1].odds_ratio) and tab.iloc[1].n == 0


def test_operating_point_at_sensitivity_against_a_scan_of_every_threshold():
    y, p, _ = _cohort(150, seed=12)
    p = np.round(p, 2)  # ties
    for target in (0.0, 0.1, 0.5, 0.77, 1.0):
        op = operating_point_at_sensitivity(y, p, target)
        candidates = [t for t in np.r_[np.unique(p), np.inf]
                      if ((p >= t) & (y == 1)).sum() / y.sum() >= target - 1e-12]
        best = max(candidates) if target > 0 else np.nextafter(p.max(), np.inf)
        assert op["threshold"] == pytest.approx(best)
        calls = (p >= op["threshold"]).astype(float)
        assert op["ppv"] == pytest.approx(binary_metrics(y, calls)["ppv"], nan_ok=True)


def test_too_few_rows_give_nan_not_errors():
    y = np.array([1, 0, 0, 1])
    p = np.array([0.9, 0.2, 0.3, 0.6])
    one = compare_with_rule(y, p, np.array([1.0, np.nan, np.nan, np.nan]), n_resamples=20)
    assert one["n_covered"] == 1 and np.isnan(one["ppv_difference"]["ci"]).all()
    assert np.isnan(bootstrap_metrics(y[:1], p[:1], 0.5, n_resamples=20)["auc"]["ci"]).all()


def test_rank_auc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    for _ in range(50):
        y = rng.integers(0, 2, 80)
        s = np.round(rng.random(80), 1)  # many ties
        if 0 < y.sum() < len(y):
            assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(auc(np.ones(5, dtype=int), rng.random(5)))
