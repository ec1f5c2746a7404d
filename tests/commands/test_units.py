"""A model set (the model, its landmark models, their records) and a report folder are
written as units: every file names its run, a set is renamed into place only when whole,
a reader refuses a mixture naming both runs, and two runs never write one output at once."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier

import predict
import train
from commands.run import run_command
from features.errors import UserInputError
from features.outputs import output_lock
from models.bundle import TrainedModel, load_model, record_path, save_model, save_model_set
from models.landmarks import landmark_path, load_landmarks
from models.report import check_report, write_report

ROOT = Path(__file__).resolve().parents[2]


def tiny_model(threshold: float) -> TrainedModel:
    """A fitted model of one feature (only saved and loaded here, never asked to predict)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 1)), np.r_[np.zeros(20), np.ones(20)]
    estimator = FixedThresholdClassifier(LogisticRegression(), threshold=threshold).fit(X, y)
    return TrainedModel(estimator=estimator, family="logistic", feature_columns=["rcbv"],
                        threshold_source="test", cv_scores={}, training={"n": 40})


def run_id_of(path: Path) -> str:
    return json.loads(record_path(path).read_text())["run"]["id"]


def interrupt_when_renaming_onto(monkeypatch, target: Path) -> None:
    """``os.replace`` raises KeyboardInterrupt when it would put a file at ``target``."""
    real = os.replace

    def replace(src, dst):
        if Path(dst) == target:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def test_interrupted_set_is_refused_naming_both_runs(tmp_path, monkeypatch):
    path = tmp_path / "M.skops"
    members = {landmark_path(path, w): tiny_model(0.4) for w in (0, 4)}
    save_model_set(tiny_model(0.5), path, members)
    first = run_id_of(path)
    assert set(load_landmarks(path)) == {0.0, 4.0}
    interrupt_when_renaming_onto(monkeypatch, path)
    with pytest.raises(KeyboardInterrupt):
        save_model_set(tiny_model(0.6), path, {p: tiny_model(0.3) for p in members})
    monkeypatch.undo()
    assert run_id_of(path) == first  # the main model and its record stay the first run's
    assert load_model(path).threshold == 0.5
    second = run_id_of(landmark_path(path, 0))
    assert second != first
    with pytest.raises(UserInputError, match=f"run {second}.*run {first}"):
        load_landmarks(path)
    scans, data = tmp_path / "s.csv", tmp_path / "d.csv"
    scans.write_text("patient_id,weeks_on_treatment,volume_ml\np1,0,1\n")
    data.write_text("patient_id\np1\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_command(predict.main, [str(a) for a in (
            "--model", path, "--data", data, "--scans", scans, "--out", tmp_path / "p.csv")])
    assert code == 2 and first in err.getvalue() and second in err.getvalue()
    assert not list(tmp_path.glob(".*"))  # no temporary or lock file left


def test_retraining_without_landmarks_disowns_the_old_ones(tmp_path):
    path = tmp_path / "M.skops"
    save_model_set(tiny_model(0.5), path, {landmark_path(path, 4): tiny_model(0.4)})
    save_model(tiny_model(0.5), path)
    with pytest.raises(UserInputError, match="which has no such member"):
        load_landmarks(path)


def test_missing_member_is_named(tmp_path):
    path = tmp_path / "M.skops"
    member = landmark_path(path, 8)
    save_model_set(tiny_model(0.5), path, {member: tiny_model(0.4)})
    member.unlink()
    with pytest.raises(UserInputError, match="M.landmark-8w.skops, a landmark model saved with"):
        load_landmarks(path)


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(int)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    return pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "pseudoprogression": y,
                         "p_pseudoprogression": p, "rule_Q1a_symptoms": (p > 0.5).astype(float)})


@pytest.fixture(scope="module")
def report_inputs():
    from models.statistics import benchmark

    frame = _frame()
    rules = frame[["rule_Q1a_symptoms"]].rename(columns=lambda c: c[len("rule_"):])
    return benchmark(frame["pseudoprogression"].to_numpy(),
                     frame["p_pseudoprogression"].to_numpy(), 0.5, rules), frame


def test_a_written_report_names_its_run_and_every_file(tmp_path, report_inputs):
    metrics, frame = report_inputs
    folder = tmp_path / "R"
    paths = write_report(folder, metrics, frame)
    run = json.loads((folder / "metrics.json").read_text())["report_run"]
    assert check_report(folder) == run["id"]
    assert set(run["files"]) == {p.name for k, p in paths.items() if k != "metrics_json"}
    assert f"<!-- report run {run['id']} -->" in (folder / "report.html").read_text()
    (folder / "roc.png").write_bytes(b"another figure")
    with pytest.raises(UserInputError, match="roc.png is not the file that run wrote"):
        check_report(folder)


@pytest.fixture()
def quick_files(monkeypatch):
    """write_report with its files reduced to report.md and metrics.json (the figures take
    seconds; the staging, lock and publication around them are what is tested)."""
    import models.report.write as write
    from models.statistics import to_jsonable

    def files(report_dir, metrics, frame, model, title, predictions, threshold, run_id,
              lesion_map=None):
        md = report_dir / "report.md"
        md.write_text(f"{title}\n<!-- report run {run_id} -->\n")
        digest = hashlib.sha256(md.read_bytes()).hexdigest()
        js = report_dir / "metrics.json"
        js.write_text(json.dumps(to_jsonable(metrics) | {
            "report_run": {"id": run_id, "files": {"report.md": digest}}}))
        return {"report_md": md, "metrics_json": js}

    monkeypatch.setattr(write, "_write_files", files)


def test_a_rewritten_report_folder_is_replaced_whole(tmp_path, report_inputs, quick_files):
    metrics, frame = report_inputs
    folder = tmp_path / "R"
    write_report(folder, metrics, frame, title="first")
    first = check_report(folder)
    (folder / "waiting_cost.png").write_bytes(b"an earlier report's figure")
    write_report(folder, metrics, frame, title="second")
    assert check_report(folder) != first
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "report.md"]
    assert "second" in (folder / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]  # no staging, no lock left


def test_an_interrupted_report_beside_other_files_is_told_apart(tmp_path, report_inputs,
                                                                quick_files, monkeypatch):
    """A folder holding a file of the user is written file by file, metrics.json last: an
    interruption leaves a mixture that check_report names, with both runs."""
    metrics, frame = report_inputs
    folder = tmp_path / "R"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    write_report(folder, metrics, frame)
    first = check_report(folder)
    interrupt_when_renaming_onto(monkeypatch, folder / "metrics.json")
    with pytest.raises(KeyboardInterrupt):  # another run: other content, so another id
        write_report(folder, metrics, frame, title="Another evaluation")
    monkeypatch.undo()
    with pytest.raises(UserInputError,
                       match=rf"metrics.json is of run {first}, but report.md is of run \S+"):
        check_report(folder)
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]


def test_a_second_run_into_a_locked_output_is_refused_before_any_work(tmp_path):
    folder = tmp_path / "R"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom features.outputs import output_lock\n"
         f"with output_lock({str(folder)!r}, '--report'):\n    print('held', flush=True)\n"
         "    sys.stdin.read()"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserInputError, match=f"another run \\(process {holder.pid}\\)"):
            with output_lock(folder, "--report"):
                pass
        data = tmp_path / "d.csv"
        data.write_text("patient_id,pseudoprogression\np1,1\n")
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = run_command(train.main, [str(a) for a in (
                "--data", data, "--out", tmp_path / "m.skops", "--report", folder)])
        assert code == 2 and "being written by another run" in err.getvalue()
        assert not (tmp_path / "m.skops").exists()
    finally:
        holder.communicate("")
    with output_lock(folder, "--report"):  # released when its holder ended
        pass
