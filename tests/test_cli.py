"""train.py and predict.py end to end: outputs, reports, user errors and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import predict
import train
from commands.run import run_command
from features.synthetic.cohort import simulate_cohort
from models.rules import RULE_IDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    code = run_command(train.main, ["--cohort", "melanoma", "--n", "700", "--seed", "3",
                                    "--prevalence", "0.2", "--out", str(out / "m.skops"),
                                    "--report", str(out / "report"), "--no-nested-cv",
                                    "--bootstrap", "100", "--no-progress"])
    assert code == 0
    return out


def test_train_writes_model_and_report(trained):
    assert (trained / "m.skops").is_file()
    metrics = json.loads((trained / "report" / "metrics.json").read_text())
    assert metrics["n"] == 210 and 0 < metrics["prevalence"] < 1
    assert set(metrics["rules"]) == set(RULE_IDS)
    model = metrics["model"]
    for key in ("sensitivity", "specificity", "ppv", "npv"):
        lo, hi = model[f"{key}_ci"]
        assert lo <= model[key] <= hi
    assert len(model["dor_ci"]) == 2 and model["auc"] > 0.8
    assert "bayes_ceiling" in metrics
    md = (trained / "report" / "metrics.md").read_text()
    assert all(r in md for r in RULE_IDS)
    preds = pd.read_csv(trained / "report" / "evaluation_predictions.csv")
    assert len(preds) == metrics["n"]
    assert "bootstrap" in metrics and "rule_comparisons" in metrics
    html = (trained / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6 and "Simulator fidelity" in html


def test_predict_writes_one_row_per_input_and_a_report(trained, tmp_path):
    new = simulate_cohort(120, prevalence=0.25, seed=42)
    data = tmp_path / "new.csv"
    new.to_csv(data, index=False)
    before = data.read_bytes()
    code = run_command(predict.main, ["--model", str(trained / "m.skops"), "--data", str(data),
                                      "--out", str(tmp_path / "pred.csv"),
                                      "--report", str(tmp_path / "rep"), "--bootstrap", "50"])
    assert code == 0
    assert data.read_bytes() == before
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert pred["patient_id"].tolist() == new["patient_id"].tolist()
    assert {"p_pseudoprogression", "prediction", "risk_group"} <= set(pred.columns)
    for r in RULE_IDS:
        assert set(pred[f"rule_{r}"].dropna().unique()) <= {0, 1}
    assert set(pred["risk_group"].dropna()) <= {"low", "high"}
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["n"] == 120


def test_predict_without_label_and_with_report_is_a_user_error(trained, tmp_path, capsys):
    data = tmp_path / "nolabel.csv"
    simulate_cohort(30, seed=8).drop(columns="pseudoprogression").to_csv(data, index=False)
    code = run_command(predict.main, ["--model", str(trained / "m.skops"), "--data", str(data),
                                      "--out", str(tmp_path / "p.csv"), "--report",
                                      str(tmp_path / "r")])
    assert code == 2
    assert "label" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()  # refused before anything is written


@pytest.mark.parametrize("script, args, message", [
    ("predict.py", ["--model", "{bad}", "--data", "{data}", "--out", "{tmp}/p.csv"], "corrupted"),
    ("predict.py", ["--model", "{model}", "--data", "{data}", "--out", "{data}"], "overwritten"),
    ("train.py", ["--data", "{nolabel}", "--out", "{tmp}/m.skops"], "label"),
    ("train.py", ["--data", "{tmp}/missing.csv", "--out", "{tmp}/m.skops"], "not found"),
    ("train.py", ["--data", "{data}", "--images", "--out", "{tmp}/m.skops"], "--manifest"),
    ("train.py", ["--data", "{data}", "--out", "{data}"], "input files"),
    ("predict.py", ["--model", "{model}", "--data", "{tmp}/evaluation_predictions.csv",
                    "--out", "{tmp}/p.csv", "--report", "{tmp}"],
     "holds the input table"),
])
def test_user_errors_exit_2_with_one_message(trained, tmp_path, script, args, message):
    data = tmp_path / "data.csv"
    simulate_cohort(60, seed=1).to_csv(data, index=False)
    user_file = tmp_path / "evaluation_predictions.csv"
    simulate_cohort(60, seed=1).to_csv(user_file, index=False)
    nolabel = tmp_path / "nolabel.csv"
    simulate_cohort(60, seed=1).drop(columns="pseudoprogression").to_csv(nolabel, index=False)
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"not a model")
    before = data.read_bytes()
    user_before = user_file.read_bytes()
    fill = {"bad": bad, "data": data, "nolabel": nolabel, "tmp": tmp_path,
            "model": trained / "m.skops"}
    argv = [a.format(**fill) for a in args]
    proc = subprocess.run([sys.executable, str(ROOT / script), *argv], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert data.read_bytes() == before and user_file.read_bytes() == user_before


@pytest.mark.parametrize("script", ["train.py", "predict.py"])
def test_help_explains_every_option(script):
    proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0
    for option in (["--cohort", "--data", "--out", "--report", "--threshold",
                    "--target-sensitivity", "--images", "--manifest"] if script == "train.py"
                   else ["--model", "--data", "--out", "--report", "--manifest"]):
        assert option in proc.stdout


def test_train_with_synthetic_images_compares_with_and_without(tmp_path):
    code = run_command(train.main, ["--cohort", "melanoma", "--n", "80", "--prevalence", "0.5",
                                    "--images", "--jobs", "1", "--seed", "2",
                                    "--out", str(tmp_path / "m.skops"),
                                    "--report", str(tmp_path / "rep"), "--no-nested-cv",
                                    "--bootstrap", "0", "--no-progress"])
    assert code == 0
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    images = metrics["image_features"]
    assert images["n"] == metrics["n"]
    assert images["with_images"]["n_features"] > images["without_images"]["n_features"]
    extraction = metrics["radiomic_extraction"]
    # 80 simulated patients, some with several lesions: one row of features per lesion
    assert extraction["n_patients"] == 80
    assert extraction["n_extracted"] == extraction["n_lesions"]
    assert extraction["n_lesions"] > 80
    assert "What the image features add" in (tmp_path / "rep" / "report.md").read_text()
    pred = tmp_path / "pred.csv"
    new = tmp_path / "new.csv"
    simulate_cohort(80, prevalence=0.5, seed=2).head(5).to_csv(new, index=False)
    code = run_command(predict.main, ["--model", str(tmp_path / "m.skops"), "--data", str(new),
                                      "--manifest", str(tmp_path / "images" / "manifest.csv"),
                                      "--jobs", "1", "--out", str(pred)])
    assert code == 0
    assert len(pd.read_csv(pred)) == 5
