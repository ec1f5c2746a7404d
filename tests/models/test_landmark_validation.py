"""Landmark models validated like the index model (holdout, cv, bootstrap, by patient), with
its threshold policy, across the follow-up simulator's settings, and scan sizes in units."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from features.description import TableDescription
from features.errors import UserInputError
from features.scans import MAX_LESION_VOLUME_ML, read_scans
from features.synthetic import simulate_cohort
from features.synthetic.followup import simulate_followup
from models.landmarks import (
    UPDATE_REFUSAL,
    followup_sensitivity,
    landmark_path,
    landmarks_not_updated,
    reaches_landmark,
    train_landmarks,
)
from models.statistics import to_jsonable

FAST = dict(families=("logistic",), weeks=(0.0, 8.0))


@pytest.fixture(scope="module")
def cohort():
    c = simulate_cohort(400, "melanoma", prevalence=0.3, seed=3)
    return c, simulate_followup(c, 3)


def landmarks_schema_errors(metrics) -> list[str]:
    """Where a ``landmarks`` entry breaks metrics.json's schema of one."""
    from models.report.schema import metrics_validator

    root = metrics_validator()  # references resolve against the whole schema
    landmarks = root.evolve(schema=root.schema["properties"]["landmarks"])
    return [f"{e.json_path}: {e.message}" for e in landmarks.iter_errors(to_jsonable(metrics))]


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return f(*args, **kwargs)


@pytest.fixture(scope="module")
def default(cohort):
    c, scans = cohort
    return _quiet(train_landmarks, c, scans, seed=0, **FAST)


@pytest.fixture(scope="module")
def cv(cohort):
    c, scans = cohort
    return _quiet(train_landmarks, c, scans, seed=0, validation="cv", folds=3, repeats=1,
                  **FAST)


def test_cv_scores_every_lesion_out_of_fold_by_patient(cv, cohort):
    c, scans = cohort
    m = to_jsonable(cv.metrics)
    assert m["split"]["scheme"] == "cv" and m["split"]["n_folds"] == 3
    assert m["split"]["n_repeats"] == 1 and m["split"]["n_test_patients"] == len(c)
    at8 = next(t for t in m["times"] if t["week"] == 8.0)
    reached = int(reaches_landmark(read_scans(scans), 8.0).sum())
    assert at8["n"] == at8["n_train"] == reached  # every lesion reaching +8, each scored once
    assert at8["internal_validation"]["n_repeats"] == 1
    assert "out-of-fold" in m["method"]
    # the scores are not the saved model's in-sample probabilities on the same lesions
    frame = cv.frames[8.0]
    model = cv.models[8.0]
    from models.landmarks import landmark_table
    rows = landmark_table(c.reset_index(drop=True), read_scans(scans, lesions=c), 8.0)
    in_sample = _quiet(model.probability, rows.drop(columns="row"), warn=False)
    assert not np.allclose(frame["p_pseudoprogression"].to_numpy(), in_sample)
    # the saved model is fitted on every lesion reaching the landmark
    assert model.training["n"] == reached


def test_bootstrap_reports_optimism(cohort):
    c, scans = cohort
    result = _quiet(train_landmarks, c, scans, seed=0, validation="bootstrap", repeats=3,
                    families=("logistic",), weeks=(0.0,))
    t = to_jsonable(result.metrics)["times"][0]
    iv = t["internal_validation"]
    assert iv["n_resamples"] == 3 and set(iv["corrected"]) >= {"auc", "brier"}
    assert iv["corrected"]["auc"] == pytest.approx(iv["apparent"]["auc"]
                                                   - iv["optimism"]["auc"])
    assert result.metrics["split"]["scheme"] == "bootstrap"
    # the headline is the saved model's corrected figures, not the out-of-bag ensemble's
    assert t["model"]["auc"] == pytest.approx(iv["corrected"]["auc"], abs=1e-12)
    assert t["model"]["calibration_slope"] == pytest.approx(
        iv["out_of_bag"]["calibration_slope"], abs=1e-12)
    assert t["model"]["headline"]["sources"]["auc"]["method"] == "harrell"
    assert not landmarks_schema_errors(result.metrics)


def test_unknown_validation_and_too_few_patients_are_refused(cohort):
    c, scans = cohort
    with pytest.raises(UserInputError, match="unknown validation"):
        train_landmarks(c, scans, validation="jackknife", **FAST)
    # two patients of the rarer class: fewer than any validation by patient needs
    few = c[c["pseudoprogression"].eq(0) | c.index.isin(c.index[c["pseudoprogression"] == 1][:2])]
    with pytest.raises(UserInputError, match=r"the landmark at \+0 weeks: too few patients"):
        _quiet(train_landmarks, few, scans[scans["patient_id"].isin(few["patient_id"])],
               validation="cv", **FAST)


def test_target_sensitivity_reaches_the_landmark_models(cohort, default):
    c, scans = cohort
    result = _quiet(train_landmarks, c, scans, seed=0, target_sensitivity=0.9, **FAST)
    for model in result.models.values():
        assert "sensitivity 0.9" in model.threshold_source
        assert model.threshold < 0.5  # 90% of pseudoprogressions needs a lower threshold
    t = to_jsonable(result.metrics)["times"]
    d = to_jsonable(default.metrics)["times"]
    assert all("sensitivity 0.9" in x["threshold_source"] for x in t)
    for a, b in zip(t, d, strict=True):  # the same fits, called at a lower threshold
        assert a["model"]["auc"] == pytest.approx(b["model"]["auc"])
        assert a["model"]["sensitivity"] >= b["model"]["sensitivity"]
        assert b["threshold_source"] == "default (equal harms)"
    with pytest.raises(UserInputError, match="either a threshold or a target sensitivity"):
        train_landmarks(c, scans, threshold=0.4, target_sensitivity=0.9, **FAST)
    given = _quiet(train_landmarks, c, scans, seed=0, threshold=0.3, families=("logistic",),
                   weeks=(0.0,))
    assert given.models[0.0].threshold == 0.3
    assert given.models[0.0].threshold_source == "given by the user"


def test_sensitivity_table_across_settings(cohort):
    c, scans = cohort
    from models.training import describe_table

    out = _quiet(followup_sensitivity, describe_table(c), seed=0, families=("logistic",),
                 settings=("low", "high"), weeks=(0.0, 8.0))
    settings = {s["setting"]: s for s in out["settings"]}
    assert settings["high"]["size_noise_sd"] == pytest.approx(
        4 * settings["low"]["size_noise_sd"])
    rows = pd.DataFrame(out["rows"])
    assert set(rows["setting"]) == {"low", "high"}
    assert {"model"} <= set(rows["who"]) and set(rows["week"]) == {0.0, 8.0}
    model = rows[rows["who"] == "model"].set_index(["setting", "week"])
    assert model["auc"].between(0.5, 1).all()
    lo, hi = np.array(model["auc_ci"].tolist(), dtype=float).T
    auc = model["auc"].to_numpy()
    finite = np.isfinite(lo)  # DeLong has no interval at a perfect separation
    assert ((lo <= auc) & (auc <= hi))[finite].all() and (auc[~finite] == 1).all()
    # the index model does not see the scans: the same under every setting
    assert model.loc[("low", 0.0), "auc"] == model.loc[("high", 0.0), "auc"]
    assert (rows[rows["week"] == 8.0]["weeks_untreated_per_100_patients"] > 0).all()


def test_update_refusal_and_record_note(tmp_path):
    assert "Drop --followup and --scans" in UPDATE_REFUSAL and "not updated" in UPDATE_REFUSAL
    model = tmp_path / "M.skops"
    assert landmarks_not_updated(model) is None
    for week in (0.0, 8.0):
        landmark_path(model, week).write_bytes(b"")
    note = landmarks_not_updated(model)
    assert "were not updated" in note and "0, 8 weeks" in note


# --------------------------------------------------------------------------- units


def _scans_in(scans: pd.DataFrame, column: str, factor: float) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": scans["patient_id"], "wk": scans["weeks_on_treatment"],
                         "index_scan": scans["index_scan"], column: scans["size"] * factor,
                         "rcbv": scans["rcbv"], "adc": scans["adc"]})


def test_a_volume_declared_in_mm3_is_converted_and_trains_the_same(cohort, default):
    c, scans = cohort
    desc = TableDescription.from_dict({"scans": {"rename": {"wk": "weeks_on_treatment",
                                                            "vol": "volume_mm3"}}})
    mm3 = _scans_in(scans, "vol", 1000.0)
    read = read_scans(mm3, desc)
    np.testing.assert_allclose(read.table["size"], scans["size"].to_numpy(), rtol=1e-12)
    assert set(read.table["size_kind"]) == {"volume_ml"}
    cm3 = read_scans(_scans_in(scans, "volume_cm3", 1.0).rename(
        columns={"wk": "weeks_on_treatment"}))
    np.testing.assert_allclose(cm3.table["size"], scans["size"].to_numpy())
    declared = _quiet(train_landmarks, c, mm3, seed=0, description=desc, **FAST)
    for a, b in zip(default.metrics["times"], declared.metrics["times"], strict=True):
        assert a["model"]["auc"] == pytest.approx(b["model"]["auc"])


def test_a_volume_in_mm3_undeclared_is_refused_naming_the_unit(cohort):
    _, scans = cohort
    undeclared = _scans_in(scans, "volume_ml", 1000.0).rename(
        columns={"wk": "weeks_on_treatment"})
    assert (undeclared["volume_ml"] > MAX_LESION_VOLUME_ML).any()
    with pytest.raises(UserInputError, match=r"above 500 ml.*look like mm\^3.*volume_mm3"):
        read_scans(undeclared)
    both = undeclared.assign(volume_cm3=1.0)
    with pytest.raises(UserInputError, match="2 volume columns"):
        read_scans(both)


def test_several_lesions_per_patient_give_clustered_intervals_and_the_studys_prevalences(
        cohort):
    """Two lesions per patient (the cohort's patients paired): every landmark interval
    accounts for the clustering, as the statistics functions given the patients compute it
    on the evaluated lesions, and PPV is restated at the study's prevalences only."""
    from features.description import TableDescription
    from models.statistics import auc_with_ci, binary_metrics, called

    c, scans = cohort
    half = len(c) // 2
    pair = {p: (f"PT{i % half:03d}", str(1 + i // half)) for i, p in enumerate(c["patient_id"])}
    paired = c.assign(patient_id=c["patient_id"].map(lambda p: pair[p][0]),
                      lesion_id=c["patient_id"].map(lambda p: pair[p][1]))
    paired_scans = scans.assign(patient_id=scans["patient_id"].map(lambda p: pair[p][0]),
                                lesion_id=scans["patient_id"].map(lambda p: pair[p][1]))
    description = TableDescription.from_dict({"study": {"prevalences": {"our clinic": 0.2}}})
    result = _quiet(train_landmarks, paired, paired_scans, seed=0, description=description,
                    **FAST)
    m = to_jsonable(result.metrics)
    at8 = next(t for t in m["times"] if t["week"] == 8.0)
    assert "clustered in patients" in at8["interval_methods"]["unit"]
    frame = result.frames[8.0]
    y, p, g = frame["pseudoprogression"].to_numpy(), frame["p_pseudoprogression"].to_numpy(), \
        frame["patient_id"].to_numpy()
    assert frame["patient_id"].duplicated().any()  # several lesions of one patient evaluated
    _, clustered = auc_with_ci(y, p, groups=g)
    _, independent = auc_with_ci(y, p)
    assert at8["model"]["auc_ci"] == pytest.approx(clustered, abs=1e-12)
    assert at8["model"]["auc_ci"] != pytest.approx(independent, abs=1e-6)
    calls = called(p, at8["threshold"]).astype(float)
    assert at8["model"]["sensitivity_ci"] == pytest.approx(
        binary_metrics(y, calls, groups=g)["sensitivity_ci"], abs=1e-12)
    assert set(at8["model"]["at_prevalence"]) == {"our clinic"}


def test_cv_figures_are_each_repeats_own_combined_not_the_averaged_ensembles(cohort,
                                                                              monkeypatch):
    """Under cv a landmark's AUC and sensitivity are the mean over the repeats of each
    repeat's out-of-fold figures (scikit-learn's AUC, calls at each fold model's
    threshold), recomputed here from the very folds the run made."""
    from sklearn.metrics import roc_auc_score

    import models.landmarks as landmarks
    from models.landmarks import landmark_table

    made = []

    def spy(*args, **kwargs):
        out = landmarks_repeated_cv(*args, **kwargs)
        made.append(out[0])
        return out

    landmarks_repeated_cv = landmarks.repeated_cv
    monkeypatch.setattr(landmarks, "repeated_cv", spy)
    c, scans = cohort
    result = _quiet(train_landmarks, c, scans, seed=0, validation="cv", folds=3, repeats=3,
                    families=("logistic",), weeks=(8.0,))
    at8 = to_jsonable(result.metrics)["times"][0]
    rows = landmark_table(c.reset_index(drop=True), read_scans(scans, lesions=c), 8.0)
    y = rows["pseudoprogression"].to_numpy()
    aucs, sens, pooled = [], [], made[0].groupby("row")["p_pseudoprogression"].mean()
    for _, part in made[0].groupby("repeat"):
        part = part.sort_values("row")
        truth, p = y[part["row"].to_numpy()], part["p_pseudoprogression"].to_numpy()
        aucs.append(roc_auc_score(truth, p))
        calls = p >= part["threshold"].to_numpy()
        sens.append(calls[truth == 1].mean())
    assert len(aucs) == 3 and np.ptp(aucs) > 0
    assert at8["model"]["auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert at8["model"]["sensitivity"] == pytest.approx(np.mean(sens), abs=1e-12)
    assert at8["model"]["auc"] != pytest.approx(roc_auc_score(y[pooled.index], pooled),
                                                abs=1e-6)  # not the averaged ensemble's
    low, high = at8["model"]["auc_ci"]
    assert low < np.mean(aucs) < high
    assert "Rubin" in at8["model"]["headline"]["intervals"]
    assert not landmarks_schema_errors(result.metrics)
