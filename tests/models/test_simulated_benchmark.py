"""The acceptance check on a simulated melanoma cohort: the calibrated model against the
article's rules and against the simulator's Bayes-optimal ceiling, on held-out patients."""

import pytest

from features.synthetic.cohort import bayes_posterior, simulate_cohort
from models.training import train


@pytest.fixture(scope="module")
def melanoma():
    cohort = simulate_cohort(3000, cohort="melanoma", seed=5)
    return train(cohort, seed=5, bayes_p=bayes_posterior(cohort), progress=False,
                 nested_cv=False).metrics


def test_model_auc_is_close_to_the_bayes_ceiling(melanoma):
    model, bayes = melanoma["model"], melanoma["bayes_ceiling"]
    assert model["auc"] <= bayes["auc"] + 0.01
    assert bayes["auc"] - model["auc"] < 0.03


def test_model_is_calibrated(melanoma):
    model = melanoma["model"]
    assert 0.75 < model["calibration_slope"] < 1.3
    assert abs(model["calibration_intercept"]) < 0.35
    assert model["brier"] < melanoma["prevalence"] * (1 - melanoma["prevalence"])


def test_model_ppv_at_each_rules_sensitivity_is_at_least_the_rules(melanoma):
    compared = []
    for rule_id, r in melanoma["rules"].items():
        if r["tp"] < 5 or r["fp"] == 0:
            continue  # too few calls to compare, or a rule no model can beat on PPV
        at = r["model_at_rule_sensitivity"]
        assert at["sensitivity"] >= r["sensitivity"]
        assert at["ppv"] >= r["ppv"], (rule_id, at["ppv"], r["ppv"])
        compared.append(rule_id)
    assert len(compared) >= 8
