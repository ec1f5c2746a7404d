"""Landmark models over follow-up scans: features of the course, the models against the rules
over time, a user's own long scans table, and the cost of waiting in the report."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from features.choices import LANDMARK_WEEKS
from features.description import TableDescription
from features.scans import read_scans
from features.synthetic import simulate_cohort
from features.synthetic.followup import simulate_followup
from models.evaluation import evaluate
from models.landmarks import (
    COURSE_COLUMNS,
    course_features,
    load_landmarks,
    predict_landmarks,
    reaches_landmark,
    save_landmarks,
    train_landmarks,
    waiting_cost,
)
from models.report import format as fmt
from models.report import write_report
from models.scan_rules import SCAN_RULE_IDS
from models.statistics import to_jsonable

NAN = float("nan")


@pytest.fixture(scope="module")
def cohort():
    c = simulate_cohort(1000, "melanoma", seed=0)
    return c, simulate_followup(c, 0)


@pytest.fixture(scope="module")
def trained(cohort):
    c, scans = cohort
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return train_landmarks(c, scans, seed=0, families=("logistic",))


def _at(result, week: float) -> dict:
    return next(t for t in to_jsonable(result.metrics)["times"] if t["week"] == week)


# --------------------------------------------------------------------------- features


def _scans(rows):
    return read_scans(pd.DataFrame(rows, columns=["patient_id", "weeks_on_treatment",
                                                  "index_scan", "volume_ml", "spd_mm2", "rcbv"]))


def test_course_features_and_landmark_windows():
    s = _scans([("A", 6, 1, 1.0, NAN, 2.0), ("A", 10, 0, 2.0, NAN, 3.0),
                ("A", 14, 0, 4.0, NAN, NAN),
                ("B", 6, 1, NAN, 100.0, NAN), ("B", 9, 0, NAN, 125.0, 1.0),
                ("C", 6, 1, 1.0, NAN, 1.0)])
    f = course_features(s, 8).droplevel(1)
    assert list(f.columns) == list(COURSE_COLUMNS)
    # A: log(4) at 8 weeks, slope through the index over the scans at 4 and 8
    assert f.loc["A", "course_size_log_ratio"] == pytest.approx(np.log(4))
    assert f.loc["A", "course_size_slope_per_week"] == pytest.approx(
        (4 * np.log(2) + 8 * np.log(4)) / (16 + 64))
    assert f.loc["A", "course_rcbv_log_ratio"] == pytest.approx(np.log(1.5))
    # B: an SPD change put on the volume scale; no rCBV at the index scan
    assert f.loc["B", "course_size_log_ratio"] == pytest.approx(1.5 * np.log(1.25))
    assert np.isnan(f.loc["B", "course_rcbv_log_ratio"])
    assert f.loc["C"].isna().all()  # no follow-up scan
    assert course_features(s, 4).droplevel(1).loc["A", "course_size_log_ratio"] == \
        pytest.approx(np.log(2))
    reach = {w: reaches_landmark(s, w).droplevel(1).to_dict() for w in (0, 4, 8, 12)}
    assert reach[0] == {"A": True, "B": True, "C": True}
    assert reach[4] == {"A": True, "B": True, "C": False}  # B's scan at +3 is within 2 weeks
    assert reach[8] == {"A": True, "B": False, "C": False}
    assert reach[12] == {"A": False, "B": False, "C": False}  # A's last scan is at +8


def test_waiting_cost_counts_patients_with_true_progression():
    y = np.array([0, 1, 0, 1, 1])
    patients = np.array(["a", "a", "b", "c", "d"])
    out = waiting_cost(y, patients, 8, calls=np.array([1, 1, 0, 1, 1]))
    assert out["patients"] == 4 and out["patients_with_true_progression"] == 2
    assert out["weeks_untreated_per_100_patients"] == pytest.approx(100 * 8 * 2 / 4)
    lo, hi = out["weeks_untreated_per_100_patients_ci"]
    assert lo < 400 < hi
    assert out["false_reassurance_per_100_patients"] == pytest.approx(25.0)
    assert waiting_cost(y, patients, 0)["weeks_untreated_per_100_patients"] == 0.0


# --------------------------------------------------------------------------- models


def test_plus_8_model_has_higher_ppv_than_irano_at_its_sensitivity(trained):
    at8 = _at(trained, 8.0)
    irano = at8["rules"]["iRANO_confirmation"]
    model = irano["model_at_rule_sensitivity"]
    assert irano["coverage"] > 0.9
    assert model["sensitivity"] >= irano["sensitivity"]
    assert model["ppv"] > irano["ppv"]


def test_landmark_metrics_keys(trained, cohort):
    m = to_jsonable(trained.metrics)
    assert m["weeks"] == list(LANDMARK_WEEKS)
    assert {"window_weeks", "split", "course_features", "method", "waiting_definition"} <= set(m)
    assert m["scans_source"].startswith("simulated follow-up")
    for t in m["times"]:
        assert {"week", "n", "n_positive", "n_patients", "n_train", "family", "threshold",
                "model", "rules", "waiting"} <= set(t)
        assert {"auc", "auc_ci", "sensitivity", "sensitivity_ci", "ppv", "ppv_ci"} <= set(
            t["model"])
        assert list(t["rules"]) == list(SCAN_RULE_IDS)
        for r in t["rules"].values():
            assert {"coverage", "sensitivity", "ppv", "auc", "model_at_rule_sensitivity"} <= set(r)
        w = t["waiting"]
        assert w["weeks_untreated_per_100_patients"] == pytest.approx(
            100 * t["week"] * w["patients_with_true_progression"] / w["patients"])
    index, at4 = m["times"][0], m["times"][1]
    assert all(r["coverage"] == 0 for r in index["rules"].values())  # nothing to read yet
    assert at4["rules"]["C4_shrinkage"]["coverage"] == 0  # C4 reads 8-12 weeks
    # evaluated only on held-out patients, never on those the models were fitted on
    assert not set(trained.train_ids) & set(trained.test_ids)
    for frame in trained.frames.values():
        assert set(frame["patient_id"]) <= set(trained.test_ids)
    assert {float(w) for w in trained.models} == set(LANDMARK_WEEKS)
    assert trained.models[8.0].training["landmark_week"] == 8.0
    assert set(COURSE_COLUMNS) <= set(trained.models[8.0].feature_columns)
    assert not set(COURSE_COLUMNS) & set(trained.models[0.0].feature_columns)


# --------------------------------------------------------------------------- prediction


def _as_users_tables(cohort, n: int = 12):
    """The first ``n`` simulated lesions with every scan, under a user's own column names and
    taken on the planned weeks; lesion 2's scans stop at +8 weeks, lesion 3 has no follow-up,
    lesion 4 no scan at all."""
    c, scans = cohort
    complete = scans.groupby("patient_id").size().eq(5)  # no scan missed
    c = c[c["patient_id"].map(complete)].iloc[:n].reset_index(drop=True)
    ids = list(c["patient_id"])
    s = scans[scans["patient_id"].isin(ids)].copy()
    planned = 4 * np.round(s["weeks_from_index"] / 4)
    s["weeks_on_treatment"] = (s["weeks_on_treatment"] - s["weeks_from_index"] + planned).round(6)
    s["weeks_from_index"] = planned
    s = s[~((s["patient_id"] == ids[1]) & (s["weeks_from_index"] > 8))]
    s = s[~((s["patient_id"] == ids[2]) & (s["weeks_from_index"] > 0))]
    s = s[s["patient_id"] != ids[3]].reset_index(drop=True)
    table = c.rename(columns={"patient_id": "Pat", "rcbv": "rCBV"}).assign(Les="L1")
    long = pd.DataFrame({"Pat": s["patient_id"], "Les": "L1",
                         "wk": s["weeks_on_treatment"], "vol": s["size"],
                         "first_pd": s["index_scan"].map({1: "1", 0: ""}),
                         "rCBV": s["rcbv"], "adc": s["adc"],
                         "volume_change_pct": s["volume_change_pct"]})
    desc = TableDescription.from_dict({"patient": "Pat", "lesion": "Les",
                                       "rename": {"rCBV": "rcbv"}})
    rename = {"wk": "weeks_on_treatment", "vol": "volume_ml", "first_pd": "index_scan"}
    return c, s, table, long, desc, rename


def test_predict_landmarks_on_a_users_long_table(trained, cohort, tmp_path):
    c, s, table, long, desc, rename = _as_users_tables(cohort)
    out = predict_landmarks(trained.models, table, long, description=desc, scans_rename=rename)
    assert list(out.columns[:5]) == ["Pat", "Les", "landmark_week", "p_pseudoprogression",
                                     "prediction"]
    assert [f"rule_{r}" for r in SCAN_RULE_IDS] == list(out.columns[5:])
    assert len(out) == len(table) and list(out["Pat"]) == list(table["Pat"])
    assert list(out["landmark_week"][:4]) == [12.0, 8.0, 0.0, 0.0]
    assert out["p_pseudoprogression"].between(0, 1).all()
    assert out.loc[2:3, [f"rule_{r}" for r in SCAN_RULE_IDS]].isna().all().all()
    assert out.loc[1, "rule_C4_shrinkage"] in (0, 1)  # as of +8, C4 reads the +8 scan
    # the same numbers as the canonical tables give
    same = predict_landmarks(trained.models, c, s)
    np.testing.assert_allclose(out["p_pseudoprogression"], same["p_pseudoprogression"])
    # saved beside a model file and read back, with their records
    paths = save_landmarks(trained.models, tmp_path / "M.skops")
    assert sorted(p.name for p in paths.values()) == [
        "M.landmark-0w.skops", "M.landmark-12w.skops", "M.landmark-4w.skops",
        "M.landmark-8w.skops"]
    loaded = load_landmarks(tmp_path / "M.skops")
    again = predict_landmarks(loaded, table, long, description=desc, scans_rename=rename)
    pd.testing.assert_frame_equal(again, out)


# --------------------------------------------------------------------------- report


def test_waiting_section_and_figure_in_a_written_report(trained, cohort, tmp_path):
    c, _ = cohort
    model = trained.models[0.0]
    ev = evaluate(model, c[c["patient_id"].isin(trained.test_ids)], warn=False)
    metrics = ev.metrics | {"landmarks": trained.metrics}
    paths = write_report(tmp_path, metrics, ev.frame, model=model)
    assert paths["waiting_cost"] == tmp_path / "waiting_cost.png"
    assert paths["waiting_cost"].stat().st_size > 10_000
    data = json.loads((tmp_path / "metrics.json").read_text())
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    at8 = next(t for t in data["landmarks"]["times"] if t["week"] == 8)
    for text in (md, html):
        assert "What waiting costs" in text
        assert "Scans: simulated follow-up" in text
        assert fmt.pct_ci(at8["model"]["ppv"], at8["model"]["ppv_ci"]) in text
        w = at8["waiting"]
        assert fmt.est_ci(w["weeks_untreated_per_100_patients"],
                          w["weeks_untreated_per_100_patients_ci"], 1) in text
    assert "](waiting_cost.png)" in md
    assert 'data-figure="waiting_cost"' in html
