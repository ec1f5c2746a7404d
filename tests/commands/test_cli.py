"""train.py and predict.py end to end: outputs, reports, user errors and exit codes."""

import contextlib
import io
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

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(same_seed_studies) -> Path:
    """A folder with a model (``model.skops``) and its report (``report/``) written by
    ``train.py``: the shared study's command-line run (read only)."""
    return same_seed_studies.cli


def test_train_writes_model_and_report(trained):
    assert (trained / "model.skops").is_file()
    metrics = json.loads((trained / "report" / "metrics.json").read_text())
    assert metrics["n"] == 90 and 0 < metrics["prevalence"] < 1  # 30% of 300 held out
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
    code = run_command(predict.main, ["--model", str(trained / "model.skops"), "--data", str(data),
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
    code = run_command(predict.main, ["--model", str(trained / "model.skops"), "--data", str(data),
                                      "--out", str(tmp_path / "p.csv"), "--report",
                                      str(tmp_path / "r")])
    assert code == 2
    assert "label" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()  # refused before anything is written


#: case -> (script, options, a fragment of its one message). ``{model}`` is a trained model;
#: the other names are files :func:`run_user_error` writes into the case's folder. (The
#: scripts as programs, exit status and all, are tests/commands/test_bad_inputs.py's.)
USER_ERRORS = {
    "corrupted model": (
        "predict.py", ["--model", "{bad}", "--data", "{data}", "--out", "{tmp}/p.csv"],
        "corrupted"),
    "predictions over the table": (
        "predict.py", ["--model", "{model}", "--data", "{data}", "--out", "{data}"],
        "overwritten"),
    "no label": ("train.py", ["--data", "{nolabel}", "--out", "{tmp}/m.skops"], "label"),
    "missing table": (
        "train.py", ["--data", "{tmp}/missing.csv", "--out", "{tmp}/m.skops"], "not found"),
    "images without manifest": (
        "train.py", ["--data", "{data}", "--images", "--out", "{tmp}/m.skops"], "--manifest"),
    "model over the table": (
        "train.py", ["--data", "{data}", "--out", "{data}"], "input files"),
    "report over the table": (
        "predict.py", ["--model", "{model}", "--data", "{tmp}/evaluation_predictions.csv",
                       "--out", "{tmp}/p.csv", "--report", "{tmp}"],
        "holds the input table"),
}
#: The cases whose error is not about the model: they get no trained model, and training
#: fails the test if it starts, so they show that the check comes before any training.
WITHOUT_A_MODEL = [case for case, (_, args, _) in USER_ERRORS.items()
                   if "{model}" not in args]
WITH_A_MODEL = [case for case in USER_ERRORS if case not in WITHOUT_A_MODEL]
#: The input files of a case, which must stay byte for byte as they were.
INPUTS = ("data.csv", "evaluation_predictions.csv")
MAINS = {"train.py": train.main, "predict.py": predict.main}


def run_user_error(case: str, folder: Path, model: Path | None) -> None:
    """Write a case's input files into ``folder``, run its command line as its script does,
    and check the outcome: status 2, its one message, no traceback, inputs unchanged."""
    for name in INPUTS:
        simulate_cohort(60, seed=1).to_csv(folder / name, index=False)
    nolabel = folder / "nolabel.csv"
    simulate_cohort(60, seed=1).drop(columns="pseudoprogression").to_csv(nolabel, index=False)
    bad = folder / "bad.joblib"
    bad.write_bytes(b"not a model")
    fill = {"bad": bad, "data": folder / "data.csv", "nolabel": nolabel, "tmp": folder,
            "model": model}
    script, args, fragment = USER_ERRORS[case]
    before = {name: (folder / name).read_bytes() for name in INPUTS}
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = run_command(MAINS[script], [a.format(**fill) for a in args])
    err = err.getvalue()
    assert code == 2, err
    assert fragment in err
    assert "Traceback" not in err
    assert {name: (folder / name).read_bytes() for name in INPUTS} == before


@pytest.mark.parametrize("case", WITHOUT_A_MODEL)
def test_user_errors_exit_2_with_one_message(case, tmp_path, monkeypatch):
    import models

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the error was found")

    monkeypatch.setattr(models, "train", no_training)
    run_user_error(case, tmp_path, None)


@pytest.mark.parametrize("case", WITH_A_MODEL)
def test_user_errors_with_a_model_exit_2_with_one_message(case, trained, tmp_path):
    run_user_error(case, tmp_path, trained / "model.skops")


@pytest.mark.parametrize("script", ["train.py", "predict.py"])
def test_help_explains_every_option(script):
    proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0
    for option in (["--cohort", "--data", "--out", "--report", "--threshold",
                    "--target-sensitivity", "--images", "--manifest"] if script == "train.py"
                   else ["--model", "--data", "--out", "--report", "--manifest"]):
        assert option in proc.stdout
