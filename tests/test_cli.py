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
#: A classifier of the user's own: no grid to tune.
OWN_ESTIMATOR = f"{Path(__file__).with_name('own_estimators.py')}:stronger_penalty"


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
#: the other names are files :func:`start_user_error` writes into the case's folder.
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
#: The cases whose error is not about the model: they get no trained model, so they show
#: that the check comes before any training.
WITHOUT_A_MODEL = [case for case, (_, args, _) in USER_ERRORS.items()
                   if "{model}" not in args]
WITH_A_MODEL = [case for case in USER_ERRORS if case not in WITHOUT_A_MODEL]
#: The input files of a case, which must stay byte for byte as they were.
INPUTS = ("data.csv", "evaluation_predictions.csv")


def start_user_error(case: str, folder: Path, model: Path | None) -> subprocess.Popen:
    """Write a case's input files into ``folder`` and start its script as a program."""
    folder.mkdir()
    for name in INPUTS:
        simulate_cohort(60, seed=1).to_csv(folder / name, index=False)
    nolabel = folder / "nolabel.csv"
    simulate_cohort(60, seed=1).drop(columns="pseudoprogression").to_csv(nolabel, index=False)
    bad = folder / "bad.joblib"
    bad.write_bytes(b"not a model")
    fill = {"bad": bad, "data": folder / "data.csv", "nolabel": nolabel, "tmp": folder,
            "model": model}
    script, args, _ = USER_ERRORS[case]
    return subprocess.Popen([sys.executable, str(ROOT / script),
                             *[a.format(**fill) for a in args]],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def run_user_errors(cases: list[str], root: Path, model: Path | None) -> dict:
    """Run the scripts of ``cases`` side by side; case -> (exit status, stderr, the bytes
    of its input files before and after)."""
    before, procs = {}, {}
    for case in cases:
        folder = root / case.replace(" ", "_")
        procs[case] = start_user_error(case, folder, model)
        before[case] = {name: (folder / name).read_bytes() for name in INPUTS}
    results = {}
    for case, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        folder = root / case.replace(" ", "_")
        after = {name: (folder / name).read_bytes() for name in INPUTS}
        results[case] = (proc.returncode, err, before[case], after)
    return results


@pytest.fixture(scope="module")
def errors_without_a_model(tmp_path_factory) -> dict:
    """What every case of :data:`WITHOUT_A_MODEL` did (no training waited for)."""
    return run_user_errors(WITHOUT_A_MODEL, tmp_path_factory.mktemp("errors"), None)


@pytest.fixture(scope="module")
def errors_with_a_model(trained, tmp_path_factory) -> dict:
    """What every case of :data:`WITH_A_MODEL` did, given the shared trained model."""
    return run_user_errors(WITH_A_MODEL, tmp_path_factory.mktemp("errors"),
                           trained / "model.skops")


def check_user_error(case: str, runs: dict) -> None:
    """The case's script exited 2 with its one message and left its inputs as they were."""
    code, err, before, after = runs[case]
    assert code == 2, err
    assert USER_ERRORS[case][2] in err
    assert "Traceback" not in err
    assert after == before


@pytest.mark.parametrize("case", WITHOUT_A_MODEL)
def test_user_errors_exit_2_with_one_message(case, errors_without_a_model):
    check_user_error(case, errors_without_a_model)


@pytest.mark.parametrize("case", WITH_A_MODEL)
def test_user_errors_with_a_model_exit_2_with_one_message(case, errors_with_a_model):
    check_user_error(case, errors_with_a_model)


@pytest.mark.parametrize("script", ["train.py", "predict.py"])
def test_help_explains_every_option(script):
    proc = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0
    for option in (["--cohort", "--data", "--out", "--report", "--threshold",
                    "--target-sensitivity", "--images", "--manifest"] if script == "train.py"
                   else ["--model", "--data", "--out", "--report", "--manifest"]):
        assert option in proc.stdout


#: pyradiomics settings for the image path's test: no resampling, five features of two
#: classes per sequence (the project's settings compute about a hundred per sequence).
FEW_FEATURES = """\
version: "test-few"
setting:
  label: 1
  normalize: true
  normalizeScale: 100
  voxelArrayShift: 300
  binWidth: 10
  minimumROISize: 20
featureClass:
  firstorder: [Mean, Variance, Skewness]
  glcm: [Contrast, Correlation]
"""


def test_train_with_synthetic_images_compares_with_and_without(tmp_path):
    """The image path end to end: synthetic MRI, extraction with the given settings, the
    model with and without the image features (a classifier of the user's own, so that no
    grid is tuned twice), and a prediction that extracts with the stored settings."""
    params = tmp_path / "few.yaml"
    params.write_text(FEW_FEATURES)
    code = run_command(train.main, ["--cohort", "melanoma", "--n", "80", "--prevalence", "0.5",
                                    "--images", "--jobs", "1", "--seed", "2",
                                    "--params", str(params),
                                    "--estimator", OWN_ESTIMATOR,
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
    # 4 sequences x 5 features of the given settings
    assert extraction["settings_version"] == "test-few"
    assert extraction["n_radiomic_columns"] == 4 * 5
    assert "What the image features add" in (tmp_path / "rep" / "report.md").read_text()
    pred = tmp_path / "pred.csv"
    new = tmp_path / "new.csv"
    simulate_cohort(80, prevalence=0.5, seed=2).head(5).to_csv(new, index=False)
    code = run_command(predict.main, ["--model", str(tmp_path / "m.skops"), "--data", str(new),
                                      "--manifest", str(tmp_path / "images" / "manifest.csv"),
                                      "--jobs", "1", "--out", str(pred)])
    assert code == 0
    assert len(pd.read_csv(pred)) == 5
