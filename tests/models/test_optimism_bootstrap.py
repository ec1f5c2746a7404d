"""The optimism bootstrap's figures against a hand-written loop: Harrell's optimism with the
copies of a resampled patient in one group, the refits' pooled out-of-bag predictions
(scikit-learn and statsmodels on the same resamples), the optimism by the family each refit
chose, and the warning when the refits choose another family than the saved model's.

The procedure here chooses between two small families by patient-grouped cross-validation
(fast); ``models.training.train`` runs the same code with the full procedure."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.tree import DecisionTreeClassifier

from features.contract import ID, LABEL
from features.description import TableDescription
from features.synthetic import simulate_cohort
from models import validation as V
from models.evaluation import evaluate_resampled
from models.report.document import render_markdown_document
from models.report.sections import build_document
from models.report.tables import optimism_by_family_table
from models.statistics import to_jsonable

COLUMNS = ["volume_change_pct", "weeks_on_treatment", "symptomatic"]
N_RESAMPLES, SEED = 8, 11


class TwoFamilies:
    """A logistic regression or a shallow tree on three columns, whichever has the lower
    log loss over three patient-grouped folds of the rows it is given (so the copies of a
    resampled patient stay in one fold); threshold 0.2."""

    threshold = 0.2

    def __init__(self, table: pd.DataFrame, progress=None):
        X, y = table[COLUMNS].fillna(0.0), table[LABEL].to_numpy().astype(int)
        groups = table[ID].to_numpy()
        candidates = {"logistic": lambda: LogisticRegression(C=0.5, max_iter=1000),
                      "tree": lambda: DecisionTreeClassifier(max_depth=2, min_samples_leaf=5,
                                                             random_state=0)}
        loss = {}
        for name, make in candidates.items():
            p = np.zeros(len(y))
            for fit, held in GroupKFold(n_splits=3).split(X, y, groups):
                p[held] = make().fit(X.iloc[fit], y[fit]).predict_proba(X.iloc[held])[:, 1]
            loss[name] = log_loss(y, np.clip(p, 0.02, 0.98))
        self.family = min(loss, key=loss.get)
        self.estimator = candidates[self.family]().fit(X, y)

    def probability(self, table: pd.DataFrame, warn: bool = True) -> np.ndarray:
        """P(pseudoprogression) of each row, within [0.01, 0.99]."""
        return np.clip(self.estimator.predict_proba(table[COLUMNS].fillna(0.0))[:, 1],
                       0.01, 0.99)

    def table_description(self) -> TableDescription:
        """The default description, as a model trained on a contract table has."""
        return TableDescription()


def calibration(y, p) -> dict:
    """statsmodels' calibration slope and calibration-in-the-large."""
    lp = np.log(p / (1 - p))
    slope = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit().params[1]
    large = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(),
                   offset=lp).fit().params[0]
    return {"calibration_slope": slope, "calibration_intercept": large}


def hand_scores(y, p, threshold) -> dict:
    calls = (p >= threshold).astype(int)
    return {"auc": roc_auc_score(y, p), "brier": brier_score_loss(y, p),
            "sensitivity": recall_score(y, calls), "ppv": precision_score(y, calls),
            "specificity": recall_score(1 - y, 1 - calls)} | calibration(y, p)


@pytest.fixture(scope="module")
def table():
    return simulate_cohort(300, seed=5)


@pytest.fixture(scope="module")
def run(table):
    final = TwoFamilies(table)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictions, summary = V.optimism_bootstrap(table, TwoFamilies, final, N_RESAMPLES,
                                                    SEED)
    evaluation = evaluate_resampled(table, final, predictions, "bootstrap", summary)
    return final, summary, evaluation, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def by_hand(table):
    """Harrell's loop written out: the same draws of patients, each patient's copies keeping
    its id (so the procedure's grouped folds keep them together), the refit scored on its
    resample, on every lesion and on the patients it did not draw."""
    final = TwoFamilies(table)
    y = table[LABEL].to_numpy()
    ids = table[ID].unique()
    rows_of = table.groupby(ID, sort=False).indices
    rng = np.random.default_rng(SEED)
    optimism, oob = [], []
    for _ in range(N_RESAMPLES):
        pick = rng.integers(0, len(ids), len(ids))
        boot = table.iloc[np.concatenate([rows_of[ids[j]] for j in pick])]
        by_patient = boot.groupby(ID)[LABEL]
        if min(by_patient.max().sum(), (by_patient.min() == 0).sum()) < 2:
            continue
        model = TwoFamilies(boot)
        own = hand_scores(boot[LABEL].to_numpy(), model.probability(boot), model.threshold)
        test = hand_scores(y, model.probability(table), model.threshold)
        optimism.append({"family": model.family} | {k: own[k] - test[k] for k in own})
        left_out = ~table[ID].isin(set(ids[pick])).to_numpy()
        oob.append(pd.DataFrame({"y": y[left_out],
                                 "p": model.probability(table.iloc[np.flatnonzero(left_out)]),
                                 "threshold": model.threshold}))
    optimism = pd.DataFrame(optimism)
    apparent = hand_scores(y, final.probability(table), final.threshold)
    stacked = pd.concat(oob, ignore_index=True)
    pooled = hand_scores(stacked["y"].to_numpy(), stacked["p"].to_numpy(), 0.2)
    corrected = {k: apparent[k] - optimism[k].mean() for k in apparent}
    return {"final": final, "optimism": optimism, "apparent": apparent,
            "corrected": corrected, "pooled": pooled, "n_predictions": len(stacked)}


def test_harrell_and_pooled_out_of_bag_figures_are_a_hand_written_loop(run, by_hand):
    _, summary, _, _ = run
    assert summary["n_fitted"] == len(by_hand["optimism"])
    for k, v in by_hand["corrected"].items():
        assert summary["corrected"][k] == pytest.approx(v, abs=1e-8), k
    assert summary["out_of_bag"]["n_predictions"] == by_hand["n_predictions"]
    for k, v in by_hand["pooled"].items():
        assert summary["out_of_bag"][k] == pytest.approx(v, abs=1e-6), k


def test_families_are_tallied_with_their_optimism(run, by_hand):
    final, summary, _, _ = run
    optimism = by_hand["optimism"]
    by = summary["by_family"]
    assert optimism["family"].nunique() == 2  # both families chosen by some refit
    assert by["final_family"] == final.family
    assert by["n_other_family"] == int((optimism["family"] != final.family).sum())
    for family, rows in optimism.groupby("family"):
        entry = by["families"][family]
        assert entry["n_resamples"] == len(rows)
        for k in ("auc", "brier", "calibration_slope", "sensitivity"):
            assert entry["optimism"][k]["mean"] == pytest.approx(rows[k].mean(), abs=1e-8)
            assert entry["optimism"][k]["median"] == pytest.approx(rows[k].median(), abs=1e-8)
    assert [r["family"] for r in summary["per_resample"]] == optimism["family"].tolist()
    share = by["n_other_family"] / summary["n_fitted"]
    assert by["share_other_family"] == pytest.approx(share)
    assert (by["warning"] is not None) == (share > V.MAX_OTHER_FAMILY_SHARE)
    assert any("another family" in m for m in run[3]) == (share > V.MAX_OTHER_FAMILY_SHARE)
    table = optimism_by_family_table(to_jsonable({"internal_validation": {
        "optimism_bootstrap": summary}}))
    assert sorted(r[1] for r in table.rows) == sorted(
        str(n) for n in optimism["family"].value_counts())
    assert any("(the saved model's)" in r[0] for r in table.rows)


def test_the_headline_names_the_source_of_each_figure(table, run, by_hand,
                                                      metrics_schema_errors):
    _, summary, evaluation, _ = run
    model = evaluation.metrics["model"]
    sources = model["headline"]["sources"]
    for k in ("auc", "brier", "sensitivity", "specificity", "ppv"):
        assert model[k] == pytest.approx(by_hand["corrected"][k], abs=1e-8), k
        assert sources[k]["method"] == "harrell" and "saved model" in sources[k]["describes"]
    for k in ("calibration_slope", "calibration_intercept"):
        assert model[k] == pytest.approx(by_hand["pooled"][k], abs=1e-6), k
        assert sources[k]["method"] == "out_of_bag"
        assert "not the saved model" in sources[k]["describes"]
    se, sp = model["sensitivity"], model["specificity"]
    assert model["dor"] == pytest.approx(se * sp / ((1 - se) * (1 - sp)))
    assert model["tp"] + model["fn"] == model["n_positive"]
    assert model["tp"] == round(se * model["n_positive"])
    assert sources["dor"]["method"] == sources["tp"]["method"] == "implied"
    # each interval is the saved model's apparent one (statsmodels' Wald interval: one
    # lesion per patient here) moved to the figure
    assert table[ID].is_unique
    p = by_hand["final"].probability(table)
    fit = sm.GLM(table[LABEL].to_numpy(), sm.add_constant(np.log(p / (1 - p))),
                 family=sm.families.Binomial()).fit()
    apparent_low, apparent_high = np.asarray(fit.conf_int())[1]
    low, high = model["calibration_slope_ci"]
    assert low - model["calibration_slope"] == pytest.approx(apparent_low - fit.params[1])
    assert high - model["calibration_slope"] == pytest.approx(apparent_high - fit.params[1])
    assert "calibration_slope: the refits" in model["headline"]["describes"].replace(
        "calibration_intercept, ", "")
    assert "averaged ensemble" in evaluation.metrics["out_of_bag"]["describes"]
    assert metrics_schema_errors(to_jsonable(evaluation.metrics)) == []


class NamedFamily:
    """A logistic regression whose family is named from the rows it is given: the saved
    model's ("logistic") on every patient, on a resample "logistic" or "other" as ``rule``
    says from the number of distinct patients drawn."""

    rule = staticmethod(lambda n_distinct: True)
    n_patients = 0

    def __init__(self, table: pd.DataFrame, progress=None):
        y = table[LABEL].to_numpy().astype(int)
        self.lr = LogisticRegression(C=0.5, max_iter=1000).fit(table[COLUMNS].fillna(0), y)
        distinct = table[ID].nunique()
        self.family = ("logistic" if distinct == self.n_patients or self.rule(distinct)
                       else "other")
        self.threshold = 0.2

    def probability(self, table: pd.DataFrame, warn: bool = True) -> np.ndarray:
        """P(pseudoprogression) of each row."""
        return self.lr.predict_proba(table[COLUMNS].fillna(0))[:, 1]

    def table_description(self) -> TableDescription:
        """The default description."""
        return TableDescription()


@pytest.mark.parametrize(("other_every", "warned"), [(2, True), (9, False)])
def test_a_warning_when_refits_often_choose_another_family(table, other_every, warned,
                                                           metrics_schema_errors):
    class Procedure(NamedFamily):
        n_patients = table[ID].nunique()
        rule = staticmethod(lambda n: n % other_every != 0)

    ids = table[ID].unique()
    rng = np.random.default_rng(SEED)  # the draws again, to count the other family by hand
    other = sum(len(set(rng.integers(0, len(ids), len(ids)))) % other_every == 0
                for _ in range(N_RESAMPLES))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        final = Procedure(table)
        predictions, summary = V.optimism_bootstrap(table, Procedure, final, N_RESAMPLES,
                                                    SEED)
    by = summary["by_family"]
    assert by["n_other_family"] == other
    expected = other / N_RESAMPLES > V.MAX_OTHER_FAMILY_SHARE
    assert expected == warned  # both sides of the threshold are exercised
    messages = [str(w.message) for w in caught if "another family" in str(w.message)]
    assert bool(by["warning"]) == expected == bool(messages)
    if not expected:
        return
    assert f"in {other} of {N_RESAMPLES} resamples" in by["warning"]
    evaluation = evaluate_resampled(table, final, predictions, "bootstrap", summary)
    metrics = to_jsonable(evaluation.metrics | {
        "validation": {"scheme": "bootstrap", "reason": "as requested",
                       "requested": "bootstrap"},
        "internal_validation": {"apparent": summary["apparent"],
                                "optimism_bootstrap": summary}})
    assert metrics_schema_errors(metrics) == []
    text = render_markdown_document("report", build_document(
        metrics, evaluation.frame, None, None, figures={}))
    assert f"in {other} of {N_RESAMPLES} resamples" in text
    assert "Optimism (a refit's figure on its own resample" in text
