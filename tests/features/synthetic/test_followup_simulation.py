"""The follow-up simulator: schedule, measurement error by method, courses, C4, settings."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from features.article import FIGURES
from features.errors import UserInputError
from features.scans import CANONICAL, read_scans
from features.synthetic.cohort import simulate_cohort
from features.synthetic.followup import (
    SETTINGS,
    c4_share,
    derive_followup_values,
    followup_arrays,
    followup_setting,
    simulate_followup,
)
from features.synthetic.parameters import DEFAULT_PARAMETERS, PUBLISHED, FollowupParameters
from models.scan_rules import c4_shrinkage

P = DEFAULT_PARAMETERS
F = P.followup
ALPHA = 1e-3


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate_cohort(6000, prevalence=0.5, seed=4)


@pytest.fixture(scope="module")
def followup(cohort) -> pd.DataFrame:
    return simulate_followup(cohort, seed=4)


@pytest.fixture(scope="module")
def arrays(cohort) -> dict:
    return followup_arrays(cohort, 4, P)


def test_schedule_planned_every_four_weeks_taken_irregularly_some_missed(cohort, followup):
    assert F.interval_weeks == FIGURES["T4_interval"].value == 4
    assert list(F.scan_weeks()) == [0, 4, 8, 12, 16]
    assert list(followup.columns) == [*CANONICAL, "volume_change_pct", "rcbv", "adc"]
    after = followup["weeks_from_index"].to_numpy()
    planned = 4 * np.round(after / 4)
    assert np.abs(after - planned).max() <= F.scan_jitter_weeks + 1e-6
    later = after > 0
    j = F.scan_jitter_weeks  # taken uniformly within j weeks of the plan
    assert stats.kstest((after - planned)[later], stats.uniform(-j, 2 * j).cdf).pvalue > ALPHA
    per = followup.groupby("patient_id")
    assert per.size().max() == 5 and per.ngroups == len(cohort)
    assert (per["index_scan"].sum() == 1).all()
    n_follow = 4 * len(cohort)
    kept = int(later.sum())
    assert stats.binomtest(n_follow - kept, n_follow, F.missing_visit).pvalue > ALPHA
    index = followup[followup["index_scan"] == 1].set_index("patient_id")
    c = cohort.set_index("patient_id")
    np.testing.assert_array_equal(index["weeks_on_treatment"],
                                  c["weeks_on_treatment"].round(6).loc[index.index])
    pd.testing.assert_frame_equal(read_scans(followup).table, followup)


def test_followup_has_its_own_random_stream(cohort, followup):
    pd.testing.assert_frame_equal(simulate_cohort(6000, prevalence=0.5, seed=4), cohort)
    pd.testing.assert_frame_equal(simulate_followup(cohort, seed=4).head(50), followup.head(50))
    assert not np.allclose(simulate_followup(cohort, seed=5)["size"].head(50),
                           followup["size"].head(50))


def test_measurement_error_by_method_from_the_published_figures(arrays):
    # volume: log(1.68) is the median range of 8 readings; the median range of 8 standard
    # normals by simulation, a second way to the constant the parameters take from scipy
    z = np.random.default_rng(0).standard_normal((200_000, 8))
    median_range = np.median(z.max(axis=1) - z.min(axis=1))
    assert F.size_noise_sd("volume") == pytest.approx(math.log(1.68) / median_range, rel=0.01)
    # 2D and 1D: error grows with sqrt((1 - ICC) / ICC), by hand from 0.97, 0.61, 0.42
    ratio_2d = math.sqrt((0.39 / 0.61) / (0.03 / 0.97))
    ratio_1d = math.sqrt((0.58 / 0.42) / (0.03 / 0.97))
    assert F.size_noise_sd("2d") / F.size_noise_sd("volume") == pytest.approx(ratio_2d)
    assert F.size_noise_sd("1d") / F.size_noise_sd("volume") == pytest.approx(ratio_1d)
    assert PUBLISHED["contour_factor"].value == 1.68 and PUBLISHED["ICC_1d"].value == 0.42
    # every reading, the index included, carries that error: chi-square interval of the SD
    error = (np.log(arrays["volume"]) - np.log(arrays["baseline"])[:, None]
             - arrays["true_log"]).ravel()
    n = error.size
    lo, hi = (math.sqrt((n - 1) * error.var(ddof=1) / stats.chi2.ppf(q, n - 1))
              for q in (0.9995, 0.0005))
    assert lo < F.size_noise_sd() < hi
    assert abs(error.mean()) < 4 * F.size_noise_sd() / math.sqrt(n)
    two_d = replace(P, followup=replace(F, measurement="2d"))
    assert simulate_followup(simulate_cohort(50, seed=1), 1, two_d).attrs[
        "simulation_followup"]["size_noise_sd"] == pytest.approx(F.size_noise_sd("2d"))


def test_courses_prolonged_slow_and_steroids(cohort, arrays):
    y, t, true = arrays["label"], arrays["weeks"], arrays["true_log"]
    pp, tp = y == 1, y == 0
    # a prolonged pseudoprogression peaks uniformly in (0, 16]: at the scan near 4 weeks
    # (taken at t) it still grows with probability share * (1 - t / 16)
    growing = true[:, 1] > true[:, 0]
    expected = F.pp_prolonged_share * np.mean(1 - t[pp, 1] / F.pp_prolonged_max_weeks)
    k, n = int(growing[pp].sum()), int(pp.sum())
    assert stats.binomtest(k, n, expected).pvalue > ALPHA
    # without steroids the true course of each class against an independent formula
    no_steroid = replace(P, followup=replace(F, steroid_volume_change_pct=0.0))
    plain = followup_arrays(cohort, 4, no_steroid)["true_log"]
    given = cohort["steroid_response_pct"].notna().to_numpy()
    shift = true - plain
    np.testing.assert_allclose(shift[given][:, 1:], math.log(0.75), atol=1e-12)
    np.testing.assert_allclose(shift[~given], 0.0, atol=1e-12)
    np.testing.assert_allclose(shift[:, 0], 0.0, atol=1e-12)
    assert 0.3 < given[tp].mean() and given[pp].mean() < 0.2  # symptoms bring dexamethasone
    # true progression: straight lines at a rate; a share grows at a quarter of the pace
    rate = (plain[tp, -1] - plain[tp, 0]) / t[tp, -1]
    slow = rate < np.quantile(rate, 0.5) * 0.5
    assert abs(slow.mean() - F.tp_slow_share) < 0.05
    assert (rate > 0).all()


def test_c4_on_the_simulated_scans_and_its_derivation(cohort, followup):
    y = cohort.set_index("patient_id")["pseudoprogression"]
    c4 = c4_shrinkage(followup, lesions=cohort).droplevel(1)
    pp = c4[y.loc[c4.index] == 1].dropna()
    assert len(pp) > 1800  # irregular scans: about 70% have one in the window
    assert abs(pp.mean() - FIGURES["C4"].value) <= 0.03
    tp = c4[y.loc[c4.index] == 0].dropna()
    assert tp.mean() < 0.1
    share = c4_share(P)
    assert share == pytest.approx(FIGURES["C4"].value, abs=0.002)
    assert c4_share(P, F.pp_resolution_median * 1.5) > share > c4_share(P, F.pp_resolution_median
                                                                       / 1.5)
    d = derive_followup_values(P)
    assert d["followup_pp_resolution_median"] == pytest.approx(F.pp_resolution_median, rel=1e-3)


def test_settings_scale_noise_and_variability():
    assert followup_setting("published") is P
    low, high = followup_setting("low").followup, followup_setting("high").followup
    assert set(SETTINGS) == {"low", "published", "high"}
    assert low.size_noise_sd() == pytest.approx(F.size_noise_sd() / 2)
    assert high.size_noise_sd() == pytest.approx(2 * F.size_noise_sd())
    assert high.pp_prolonged_share == 2 * F.pp_prolonged_share
    assert low.tp_slow_share == F.tp_slow_share / 2
    assert math.log1p(high.steroid_volume_change_pct / 100) == pytest.approx(
        2 * math.log1p(F.steroid_volume_change_pct / 100))
    assert high.scan_jitter_weeks < F.interval_weeks / 2
    assert high.pp_resolution_median == F.pp_resolution_median
    with pytest.raises(UserInputError, match="setting"):
        followup_setting("medium")


def test_followup_parameters_are_checked():
    with pytest.raises(UserInputError, match="missing_visit"):
        FollowupParameters(missing_visit=1.5)
    with pytest.raises(UserInputError, match="interval_weeks"):
        FollowupParameters(interval_weeks=0.0)
    with pytest.raises(UserInputError, match="measurement"):
        FollowupParameters(measurement="3d")
    with pytest.raises(UserInputError, match="scan_jitter_weeks"):
        FollowupParameters(scan_jitter_weeks=2.5)
    assert list(FollowupParameters(last_week=8.0).scan_weeks()) == [0, 4, 8]


def test_followup_needs_the_label():
    with pytest.raises(UserInputError, match="pseudoprogression"):
        simulate_followup(simulate_cohort(10).drop(columns="pseudoprogression"), seed=0)


def test_icc_of_known_variance_components():
    from features.synthetic.followup import _icc

    rng = np.random.default_rng(1)
    truth = rng.standard_normal(4000)  # between-lesion SD 1
    readings = truth[:, None] + 0.5 * rng.standard_normal((4000, 2))  # error SD 0.5
    value, low, high = _icc(readings)
    assert low < 1 / (1 + 0.25) < high and high - low < 0.03
