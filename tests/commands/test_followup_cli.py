"""Follow-up scans through the command lines: ``train.py --followup`` writes the landmark
models and their metrics, and ``predict.py --scans`` reads a user's long scans table through
a table description (own names for the patient, the lesion and the scan columns)."""

from __future__ import annotations

import contextlib
import io
import json

import pandas as pd
import pytest

import predict
import train
from commands.run import run_command
from features.choices import LANDMARK_WEEKS
from features.synthetic import simulate_cohort, simulate_followup
from models.scan_rules import SCAN_RULE_IDS

FAST = ["--validation", "holdout", "--no-nested-cv", "--bootstrap", "0", "--no-progress",
        "--no-followup-sensitivity"]


def run(main, argv) -> tuple[int, str, str]:
    """A command line's ``main`` as its script runs it: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_command(main, [str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("followup")
    code, out, err = run(train.main, [
        "--cohort", "melanoma", "--n", 500, "--prevalence", 0.3, "--seed", 1, "--followup",
        "--target-sensitivity", 0.8, "--out", folder / "M.skops", "--report", folder / "R",
        *FAST])
    assert code == 0, err
    return folder, out


def test_train_followup_writes_landmarks_models_and_report(trained):
    folder, out = trained
    metrics = json.loads((folder / "R" / "metrics.json").read_text())
    times = metrics["landmarks"]["times"]
    assert [t["week"] for t in times] == list(LANDMARK_WEEKS)
    for t in times:
        assert 0.5 < t["model"]["auc"] <= 1
        assert set(t["rules"]) == set(SCAN_RULE_IDS)
        assert all(0 <= r["coverage"] <= 1 for r in t["rules"].values())
    assert times[0]["waiting"]["weeks_untreated_per_100_patients"] == 0
    # the threshold policy reaches every landmark model
    assert all("sensitivity 0.8" in t["threshold_source"] for t in times)
    assert metrics["landmarks"]["split"]["scheme"] == "holdout"
    assert (folder / "R" / "waiting_cost.png").stat().st_size > 10_000
    for week in LANDMARK_WEEKS:
        assert (folder / f"M.landmark-{week:g}w.skops").is_file()
        assert (folder / f"M.landmark-{week:g}w.skops.json").is_file()
    assert "follow-up landmarks (patients split once" in out and "iRANO_confirmation" in out


def test_predict_with_a_users_scans_through_a_description(trained, tmp_path):
    folder, _ = trained
    cohort = simulate_cohort(60, cohort="melanoma", seed=7)
    scans = simulate_followup(cohort, seed=7)
    late = scans["patient_id"].isin(cohort["patient_id"][:20]) & (scans["weeks_from_index"] > 4)
    scans = scans[~late]  # the first 20 patients stop after +4 weeks
    table = cohort.drop(columns="pseudoprogression").rename(columns={"patient_id": "Pat"})
    long = pd.DataFrame({"Pat": scans["patient_id"], "wk": scans["weeks_on_treatment"],
                         "first_pd": scans["index_scan"], "vol": scans["size"],
                         "rcbv": scans["rcbv"], "adc": scans["adc"]})
    table.to_csv(tmp_path / "lesions.csv", index=False)
    long.to_csv(tmp_path / "scans.csv", index=False)
    desc = tmp_path / "desc.yaml"
    desc.write_text("patient: Pat\nscans:\n  rename: {wk: weeks_on_treatment, vol: volume_ml, "
                    "first_pd: index_scan}\n")
    code, _, err = run(predict.main, [
        "--model", folder / "M.skops", "--data", tmp_path / "lesions.csv", "--table", desc,
        "--scans", tmp_path / "scans.csv", "--out", tmp_path / "pred.csv"])
    assert code == 0, err
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred["Pat"]) == list(table["Pat"])
    assert set(pred["landmark_week"][:20]) <= {0.0, 4.0}
    assert pred["landmark_week"][20:].max() == 12.0
    assert pred["p_pseudoprogression_landmark"].between(0, 1).all()
    assert {f"rule_{r}" for r in SCAN_RULE_IDS} <= set(pred.columns)
    # the same lesions in canonical form give the same landmark probabilities
    from models.landmarks import load_landmarks, predict_landmarks

    same = predict_landmarks(load_landmarks(folder / "M.skops"), cohort, scans)
    pd.testing.assert_series_equal(pred["p_pseudoprogression_landmark"],
                                   same["p_pseudoprogression"], check_names=False)
    pd.testing.assert_series_equal(pred["landmark_week"], same["landmark_week"])


def test_followup_options_that_cannot_work(tmp_path):
    """Refused before any training, so no model is needed."""
    data = tmp_path / "t.csv"
    simulate_cohort(40, seed=2, prevalence=0.5).to_csv(data, index=False)
    code, _, err = run(train.main, ["--data", data, "--followup", "--out", tmp_path / "m.skops",
                                    *FAST])
    assert code == 2 and "--followup with --data needs your scans: add --scans" in err
    code, _, err = run(train.main, ["--cohort", "melanoma", "--scans", data,
                                    "--out", tmp_path / "m.skops", *FAST])
    assert code == 2 and "--scans goes with --data" in err
    code, _, err = run(train.main, ["--data", data, "--scans", data,
                                    "--out", tmp_path / "m.skops", *FAST])
    assert code == 2 and "the scans table" in err and "volume_ml" in err  # before training
    assert not (tmp_path / "m.skops").exists()


def test_scans_with_a_model_without_landmarks(trained, tmp_path):
    folder, _ = trained
    data = tmp_path / "t.csv"
    simulate_cohort(40, seed=2, prevalence=0.5).to_csv(data, index=False)
    lone = tmp_path / "lone.skops"
    for path in folder.glob("M.skops*"):  # the main model without its landmark models
        (tmp_path / path.name.replace("M.skops", "lone.skops")).write_bytes(path.read_bytes())
    code, _, err = run(predict.main, ["--model", lone, "--data", data, "--scans", data,
                                      "--out", tmp_path / "p.csv"])
    assert code == 2 and "Train with --followup, or drop --scans" in err
    assert not (tmp_path / "p.csv").exists()


def test_update_beside_landmark_models_refuses_them_or_says_so(trained, tmp_path):
    folder, _ = trained
    local = tmp_path / "local.csv"
    simulate_cohort(160, seed=5, prevalence=0.4).to_csv(local, index=False)
    code, _, err = run(train.main, ["--update", folder / "M.skops", "--data", local,
                                    "--followup", "--scans", local,
                                    "--out", tmp_path / "U.skops", *FAST])
    assert code == 2 and "landmark models" in err and "not updated" in err
    assert not (tmp_path / "U.skops").exists()
    code, out, err = run(train.main, ["--update", folder / "M.skops", "--data", local,
                                      "--method", "intercept", "--repeats", 2,
                                      "--out", tmp_path / "U.skops", *FAST])
    assert code == 0, err
    record = json.loads((tmp_path / "U.skops.json").read_text())
    assert "were not updated" in record["training"]["landmarks"]
    assert "were not updated" in out
