"""The synthetic cohort simulator: determinism, contract, rates, and the exact posterior."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from sklearn.metrics import roc_auc_score

from features.article import PREVALENCE
from features.contract import BY_NAME, COLUMNS, LABEL, validate_table
from features.errors import UserInputError
from features.synthetic.cohort import CONTINUOUS, bayes_posterior, class_moments, simulate_cohort
from features.synthetic.followup import derive_followup_values
from features.synthetic.parameters import (
    DEFAULT_PARAMETERS,
    CohortParameters,
    FollowupParameters,
    derive_tuned_values,
)

P = DEFAULT_PARAMETERS
ALPHA = 1e-3  # significance level of the statistical checks


@pytest.fixture(scope="module")
def cohort20k() -> pd.DataFrame:
    return simulate_cohort(20_000, "mixed", seed=11)


# --- determinism and the contract --------------------------------------------------------


def test_same_seed_same_frame_and_different_seed_differs():
    a = simulate_cohort(500, seed=3)
    b = simulate_cohort(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = simulate_cohort(500, seed=4)
    assert not a.drop(columns="patient_id").equals(c.drop(columns="patient_id"))
    assert set(a["patient_id"]).isdisjoint(c["patient_id"])
    assert a["patient_id"].iloc[0] == "SIM-melanoma-s3-00001"


@pytest.mark.parametrize("cohort", ["melanoma", "nsclc", "mixed"])
def test_columns_follow_the_contract_and_validate(cohort):
    df = simulate_cohort(3000, cohort, seed=1)
    assert list(df.columns) == [c.name for c in COLUMNS]
    assert df["patient_id"].is_unique
    validate_table(df, require_label=True)
    assert df[LABEL].dtype.kind == "i" and set(df[LABEL].unique()) == {0, 1}
    expected = {"melanoma", "nsclc"} if cohort == "mixed" else {cohort}
    assert set(df["cancer_type"]) == expected
    for always in ("weeks_on_treatment", "volume_change_pct", "symptomatic"):
        assert df[always].notna().all()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="cohort"):
        simulate_cohort(10, "glioma")
    with pytest.raises(ValueError, match="prevalence"):
        simulate_cohort(10, prevalence=1.5)
    assert len(simulate_cohort(0)) == 0


@pytest.mark.filterwarnings("ignore:the table was simulated with prevalence")
def test_the_cohort_and_its_posterior_take_the_same_prevalences():
    table = simulate_cohort(10, seed=1)
    for bad in (0.0, 1.0, 1.5):  # one class (or none): no posterior, nothing to benchmark
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            simulate_cohort(10, prevalence=bad)
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            bayes_posterior(table, prevalence=bad)
    assert bayes_posterior(simulate_cohort(10, prevalence=0.5, seed=1),
                           prevalence=0.5).shape == (10,)


def test_class_means_stay_far_inside_the_contract_ranges():
    """No value ever needs clipping: every bound is > 5.5 SD from each class mean."""
    from features.synthetic.cohort import to_scale

    mu, cov = class_moments()
    for i, name in enumerate(CONTINUOUS):
        col = BY_NAME[name]
        with np.errstate(divide="ignore"):
            lo, hi = to_scale(name, col.low), to_scale(name, col.high)
        for label in (0, 1):
            sd = math.sqrt(cov[label, i, i])
            assert (mu[label, i] - lo) / sd > 5.5, name
            assert (hi - mu[label, i]) / sd > 5.5, name


# --- rates -----------------------------------------------------------------------------


@pytest.mark.parametrize("cohort, prevalence, expected", [
    ("melanoma", None, PREVALENCE["melanoma"]),
    ("nsclc", None, PREVALENCE["nsclc"]),
    ("melanoma", 0.3, 0.3),
])
def test_prevalence_within_binomial_ci(cohort, prevalence, expected):
    df = simulate_cohort(20_000, cohort, prevalence=prevalence, seed=5)
    k = int(df[LABEL].sum())
    assert stats.binomtest(k, len(df), expected).pvalue > ALPHA


def test_mixed_cohort_has_a_prevalence_per_cancer_type(cohort20k):
    for ctype, prev in PREVALENCE.items():
        y = cohort20k.loc[cohort20k["cancer_type"] == ctype, LABEL]
        assert stats.binomtest(int(y.sum()), len(y), prev).pvalue > ALPHA


def test_missingness_rates_per_modality(cohort20k):
    n = len(cohort20k)
    for modality in ("perfusion", "diffusion", "mrs", "pet", "ctdna", "cytokines", "biopsy"):
        cols = [c.name for c in COLUMNS if c.modality == modality]
        miss = cohort20k[cols].isna()
        assert (miss.all(axis=1) == miss.any(axis=1)).all(), f"{modality} missing together"
        k = int(miss.iloc[:, 0].sum())
        assert stats.binomtest(k, n, P.missing_rate(modality)).pvalue > ALPHA, modality


def test_steroid_response_only_for_symptomatic_patients(cohort20k):
    given = cohort20k["steroid_response_pct"].notna()
    assert (cohort20k.loc[given, "symptomatic"] == 1).all()
    sym = cohort20k["symptomatic"] == 1
    assert stats.binomtest(int(given.sum()), int(sym.sum()), P.steroid_given).pvalue > ALPHA


def test_defaults_match_their_derivation_from_the_article():
    d = derive_tuned_values() | derive_followup_values()
    got = {
        "steroid_sd_pp": P.steroid_response_pct.sd_pp,
        "steroid_sd_tp": P.steroid_response_pct.sd_tp,
        "suvmax_median_pp": P.suvmax_change_pct.median_pp,
        "suvmax_sd_pp": P.suvmax_change_pct.sd_pp,
        "ctdna_sd_tp": P.ctdna_change_pct.sd_tp,
        "cytokine_sd_pp": P.il8_pg_ml.sd_pp,
        "followup_tp_growth_per_week": P.followup.tp_growth_per_week,
        # a bisection on a Monte Carlo share
        # (tests/features/synthetic/test_followup_simulation.py checks it)
        "followup_pp_resolution_median": P.followup.pp_resolution_median,
    }
    for key, value in got.items():
        assert value == pytest.approx(d[key], rel=1e-3 if "resolution" in key else 1e-5), key
    assert P.ifng_pg_ml.sd_pp == P.il8_pg_ml.sd_pp


def test_every_parameter_names_its_figure_and_unit():
    for dataclass_ in (CohortParameters, FollowupParameters):
        for f in fields(dataclass_):
            assert f.metadata.get("figure") and f.metadata.get("unit"), f.name


def _hand_scale(name: str, x: float) -> float:
    """The simulation scale, written out independently of features.synthetic.cohort."""
    if name == "ctdna_change_pct":
        return -math.log(math.log(101.0) - math.log(1 + x / 100))
    transform = BY_NAME[name].transform
    if transform == "log":
        return math.log(x)
    if transform == "log_ratio":
        return math.log(1 + x / 100)
    return math.log(x / (100 - x))  # logit_pct


def _only(name: str, value: float, cancer: str = "melanoma") -> pd.DataFrame:
    row = {c.name: np.nan for c in COLUMNS}
    row.update({"patient_id": "x", "cancer_type": cancer, name: value})
    return pd.DataFrame([row])


@pytest.mark.parametrize("name", [*CONTINUOUS, "steroid_response_pct"])
def test_posterior_with_one_feature_is_the_one_dimensional_likelihood_ratio(name):
    m = getattr(P, name)
    prior = P.prevalence_melanoma
    for value in (m.median_pp, m.median_tp, 0.5 * (m.median_pp + m.median_tp)):
        y = _hand_scale(name, value)
        lr = (stats.norm.pdf(y, _hand_scale(name, m.median_pp), math.hypot(m.sd_pp, m.noise_sd))
              / stats.norm.pdf(y, _hand_scale(name, m.median_tp),
                               math.hypot(m.sd_tp, m.noise_sd)))
        expected = prior * lr / (prior * lr + 1 - prior)
        got = bayes_posterior(_only(name, value))[0]
        assert got == pytest.approx(expected, rel=1e-9), (name, value)


@pytest.mark.parametrize("name", ["symptomatic", "lactate_peak"])
def test_posterior_with_one_binary_feature(name):
    rate = getattr(P, name)
    prior = P.prevalence_nsclc
    for value, lr in ((1, rate.pp / rate.tp), (0, (1 - rate.pp) / (1 - rate.tp))):
        expected = prior * lr / (prior * lr + 1 - prior)
        assert bayes_posterior(_only(name, value, "nsclc"))[0] == pytest.approx(expected)


def test_posterior_with_nothing_observed_is_the_prior():
    df = pd.concat([_only("rcbv", np.nan), _only("rcbv", np.nan, "nsclc")])
    assert bayes_posterior(df) == pytest.approx([PREVALENCE["melanoma"], PREVALENCE["nsclc"]])
    assert bayes_posterior(df, prevalence=0.4) == pytest.approx([0.4, 0.4])


def test_posterior_is_calibrated_on_a_large_cohort():
    """Exactness: within deciles of the posterior, positives ~ sum of posteriors."""
    df = simulate_cohort(150_000, "mixed", prevalence=0.3, seed=21)
    post = bayes_posterior(df, prevalence=0.3)
    y = df[LABEL].to_numpy()
    bins = np.searchsorted(np.quantile(post, np.linspace(0, 1, 11)[1:-1]), post)
    chi2 = 0.0
    for b in range(10):
        p, o = post[bins == b], y[bins == b]
        var = np.sum(p * (1 - p))
        if var > 0:
            chi2 += (o.sum() - p.sum()) ** 2 / var
        else:
            assert o.sum() == 0
    assert stats.chi2.sf(chi2, df=10) > ALPHA, chi2


def test_posterior_ignores_the_label_and_shifts_with_the_prior():
    df = simulate_cohort(2000, seed=2)
    base = bayes_posterior(df)
    assert np.array_equal(base, bayes_posterior(df.drop(columns=LABEL)))
    with pytest.warns(UserWarning, match="prevalence"):
        shifted = bayes_posterior(df, prevalence=0.5)
    np.testing.assert_allclose(special.logit(shifted) - special.logit(base),
                               -special.logit(PREVALENCE["melanoma"]), rtol=1e-6, atol=1e-6)


def test_posterior_warns_on_other_parameters_and_refuses_unknown_priors():
    df = simulate_cohort(200, seed=2)
    other = replace(P, adc=replace(P.adc, median_pp=1.3))
    with pytest.warns(UserWarning, match="CohortParameters"):
        bayes_posterior(df, params=other)
    df.attrs.clear()  # a user's table: no record of how it was made, no warning
    df.loc[0, "cancer_type"] = "glioma"
    with pytest.raises(UserInputError, match="glioma"):
        bayes_posterior(df)
    df.loc[0, "adc"] = 1200.0
    with pytest.raises(UserInputError, match="adc"):
        bayes_posterior(df, prevalence=0.1)


def test_changed_parameters_change_the_cohort():
    wide = replace(P, missing_pet=0.0, prevalence_melanoma=0.5)
    df = simulate_cohort(4000, seed=0, params=wide)
    assert df["suvmax_change_pct"].notna().all()
    assert stats.binomtest(int(df[LABEL].sum()), len(df), 0.5).pvalue > ALPHA
    post = bayes_posterior(df, params=wide)
    assert roc_auc_score(df[LABEL], post) > 0.9


def test_bayes_auc_is_high_but_below_one():
    df = simulate_cohort(4000, seed=0)
    auc = roc_auc_score(df[LABEL], bayes_posterior(df))
    assert 0.85 < auc < 0.99
