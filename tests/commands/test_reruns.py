"""Interrupted and repeated runs of the command lines.

- An interrupted run (SIGKILL at any moment, or Ctrl-C) leaves each output file either as it
  was or complete and new, never half-written: outputs go through a temporary file renamed
  over the old one.
- The same seed gives the same bytes: a simulated cohort, train.py's report (metrics.json
  with its bootstrap, the evaluated predictions) and predict.py's predictions and report,
  whatever the number of jobs, of BLAS threads, or Python's hash seed.

Every run is a small simulated cohort, and the runs go in two rounds (:func:`runs`): the
shared study trained with the same seed in this process and as a program with other jobs,
threads and hash seed (:func:`shared_fixtures.same_seed_studies`, which the study tests
share); then, side by side over copies of their outputs, two predictions, a training killed
early, one killed while it writes, and a prediction interrupted while it writes its report.
The tests read what the rounds left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shared_fixtures import MODEL, STUDY_ARGS, start_program

from features.synthetic.cohort import simulate_cohort
from features.tables import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[2]
#: A training that reaches its writing quickly: the shared study's cohort and options with a
#: classifier of the user's own (no tuning of the built-in families) and seed 1; it writes
#: the same files as the shared study.
QUICK_TRAIN = ["train.py", *STUDY_ARGS, "--seed", "1", "--estimator",
               "tests/own_estimators.py:stronger_penalty"]
#: Report files whose bytes a rerun with the same seed must reproduce.
SAME_BYTES = ("metrics.json", "metrics.md", "evaluation_predictions.csv", "report.md",
              "report.html", "roc.png")
PNG_END = b"IEND\xaeB`\x82"
TIMEOUT = 300
#: Seconds after its start at which a training is killed before it writes anything.
EARLY = 1.5

def finish(*procs: subprocess.Popen) -> None:
    """Wait for ``procs``; each must succeed."""
    for proc in procs:
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err


def quick_train_args(folder: Path) -> list:
    return [*QUICK_TRAIN, "--jobs", 1, "--out", folder / MODEL,
            "--report", folder / "report"]


def predict_args(model: Path, data: Path, folder: Path, jobs: int = 1) -> list:
    return ["predict.py", "--model", model, "--data", data, "--out", folder / "pred.csv",
            "--report", folder / "report", "--bootstrap", "50", "--jobs", jobs]


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temporaries(folder: Path) -> list[Path]:
    """Temporary files and staging folders (``*.tmp``) under ``folder``."""
    return sorted(folder.rglob("*.tmp"))


def staging_report(folder: Path) -> bool:
    """Whether a report is being written beside ``folder/report`` (its staging folder)."""
    return any(folder.glob(".report.*.tmp"))


def unfinished(name: str) -> bool:
    """Whether a file is a run's work in progress rather than an output: a temporary file,
    anything in a staging folder, or a lock file (an advisory lock, which a killed run
    cannot remove and the next run takes over)."""
    return any(part.endswith(".tmp") for part in name.split("/")) or name.endswith(".lock")


@dataclass
class Interruption:
    """A run stopped by ``sig`` once ``when`` held; what it left."""

    folder: Path
    old: dict[str, bytes]
    sig: int
    when: Callable[[], bool]
    proc: subprocess.Popen
    fired: bool = False
    code: int | None = None
    err: str = ""


def interrupt_all(pending: list[Interruption]) -> None:
    """Poll every run; send its signal as soon as its condition holds, then wait for it."""
    deadline = time.monotonic() + TIMEOUT
    while pending and time.monotonic() < deadline:
        for run in list(pending):
            if run.proc.poll() is None and not run.when():
                continue
            if run.proc.poll() is None:
                run.proc.send_signal(run.sig)
                run.fired = True
            _, run.err = run.proc.communicate(timeout=TIMEOUT)
            run.code = run.proc.returncode
            pending.remove(run)
        time.sleep(0.002)


@pytest.fixture(scope="module")
def runs(same_seed_studies, tmp_path_factory) -> dict:
    """Round 1 (shared): the study with seed 5 trained in this process (--jobs 1, one
    thread) and as a program (--jobs 2, two threads, another hash seed). Round 2, side by
    side: predictions with the program's model (--jobs 1 and 2); over copies of the first
    training's outputs, trainings with seed 1 killed (SIGKILL) after EARLY seconds and when
    their first temporary file appears; over a copy of the program's report (and a
    pred.csv), a prediction interrupted (SIGINT) when its report's staging folder
    appears."""
    root = tmp_path_factory.mktemp("runs")
    a, b = same_seed_studies.cli, same_seed_studies.program
    data = root / "new.csv"
    simulate_cohort(120, seed=5, prevalence=0.3).to_csv(data, index=False)
    for name in ("early", "writing"):
        shutil.copytree(a, root / name)
    shutil.copytree(b / "report", root / "ctrl_c" / "report")
    shutil.copy(b / "report" / "evaluation_predictions.csv", root / "ctrl_c" / "pred.csv")
    predictions = [start_program(predict_args(b / MODEL, data, root / f"p{jobs}", jobs),
                         threads=jobs, hash_seed=jobs) for jobs in (1, 2)]
    began = time.monotonic()
    stops = {
        "early": Interruption(root / "early", files(root / "early"), signal.SIGKILL,
                              lambda: time.monotonic() - began > EARLY,
                              start_program(quick_train_args(root / "early"))),
        "writing": Interruption(root / "writing", files(root / "writing"), signal.SIGKILL,
                                lambda: bool(temporaries(root / "writing")),
                                start_program(quick_train_args(root / "writing"))),
        "ctrl_c": Interruption(root / "ctrl_c", files(root / "ctrl_c"), signal.SIGINT,
                               lambda: staging_report(root / "ctrl_c"),
                               start_program(predict_args(b / MODEL, data, root / "ctrl_c"))),
    }
    interrupt_all(list(stops.values()))
    finish(*predictions)
    return {"a": a, "b": b, "p1": root / "p1", "p2": root / "p2", **stops}


# --------------------------------------------------------------------------- same bytes


def test_simulated_cohort_csv_is_the_same_bytes_in_every_process(tmp_path):
    code = ("import sys; from features.synthetic.cohort import simulate_cohort; "
            "from features.tables import write_table_atomic; "
            "write_table_atomic(simulate_cohort(300, cohort='mixed', seed=7), sys.argv[1])")
    procs = [start_program(["-c", code, tmp_path / f"c{i}.csv"], threads=i, hash_seed=i)
             for i in (1, 2)]
    finish(*procs)
    assert (tmp_path / "c1.csv").read_bytes() == (tmp_path / "c2.csv").read_bytes()
    assert len(pd.read_csv(tmp_path / "c1.csv")) >= 300


def test_training_with_the_same_seed_writes_the_same_bytes(runs):
    a, b = files(runs["a"] / "report"), files(runs["b"] / "report")
    assert sorted(a) == sorted(b)
    for name in SAME_BYTES:
        assert a[name] == b[name], name
    metrics = json.loads(a["metrics.json"])
    assert metrics["uncertainty"]["n_resamples"] == 50 and "bootstrap" in metrics


def test_prediction_with_the_same_model_writes_the_same_bytes(runs):
    p1, p2 = files(runs["p1"]), files(runs["p2"])
    assert sorted(p1) == sorted(p2)
    for name in ("pred.csv", "report/metrics.json", "report/metrics.md", "report/report.html"):
        assert p1[name] == p2[name], name
    assert "bootstrap" in json.loads(p1["report/metrics.json"])


def test_auc_interval_does_not_depend_on_the_blas_thread_count():
    """DeLong's variance on 10,000 lesions of a class and more: a BLAS sum (np.cov) splits
    its work by thread, so its last bits followed the thread count; numpy's own sums do not."""
    from threadpoolctl import threadpool_limits

    from models.statistics import auc_with_ci, bootstrap_metrics, delong_test

    rng = np.random.default_rng(0)
    y = (rng.random(24000) < 0.5).astype(int)
    p = rng.random(y.size) * 0.5 + 0.3 * y
    rule = (p > 0.5).astype(float)
    results = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            results.append(json.dumps([auc_with_ci(y, p), delong_test(y, p, rule),
                                       bootstrap_metrics(y[:2000], p[:2000], 0.5,
                                                         n_resamples=20)]))
    assert results[0] == results[1]


# --------------------------------------------------------------------------- interruptions


def complete(path: Path) -> bool:
    """Whether ``path`` holds a whole file of its kind."""
    data = path.read_bytes()
    if path.name == MODEL:
        from models import load_model

        load_model(path)
        return True
    if path.suffix == ".json":
        json.loads(data)
        return True
    if path.suffix == ".csv":
        return len(pd.read_csv(path)) > 0
    if path.suffix == ".png":
        return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(PNG_END)
    if path.suffix == ".html":
        return data.rstrip().endswith(b"</html>")
    return data.endswith(b"\n") and len(data) > 100


def check_old_or_complete(run: Interruption) -> dict[str, str]:
    """Every file the run found is there, with its old bytes or complete; any other file but
    an unfinished one (:func:`unfinished`) is complete. Returns each file's state, "old" or
    "new"."""
    now = {name for name in files(run.folder) if not unfinished(name)}
    assert set(run.old) <= now, set(run.old) - now
    for name in now - set(run.old):
        assert complete(run.folder / name), f"{name} is not a complete file"
    state = {}
    for name, data in run.old.items():
        path = run.folder / name
        same = path.read_bytes() == data
        assert same or complete(path), f"{name} is neither the old file nor a complete one"
        state[name] = "old" if same else "new"
    return state


def test_training_killed_before_it_writes_leaves_every_output_as_it_was(runs):
    run = runs["early"]
    assert run.fired and run.code == -signal.SIGKILL, run.err
    assert set(check_old_or_complete(run).values()) == {"old"}
    assert temporaries(run.folder) == []


def test_training_killed_while_it_writes_leaves_old_or_complete_outputs(runs):
    run = runs["writing"]
    assert run.fired and run.code == -signal.SIGKILL, run.err
    check_old_or_complete(run)
    # a SIGKILL gives no chance to remove the temporary file or the report's staging folder
    # being written (see below); what is inside a staging folder is its own
    left = [t for t in temporaries(run.folder)
            if not any(unfinished(p.as_posix()) for p in t.relative_to(run.folder).parents
                       if p.name)]
    assert len(left) <= 1, left


def test_prediction_interrupted_while_it_writes_leaves_old_or_complete_outputs(runs):
    """Ctrl-C: status 130, one line saying so, every output old or complete, and no
    temporary file left."""
    run = runs["ctrl_c"]
    assert run.fired and run.code == 130, run.err
    assert run.err.strip().splitlines()[-1] == "interrupted; no output was half-written."
    assert "Traceback" not in run.err
    state = check_old_or_complete(run)
    assert state["pred.csv"] == "new"  # written before the report
    assert temporaries(run.folder) == []


def test_a_later_write_removes_the_temporary_file_a_killed_run_left(tmp_path):
    target = tmp_path / "pred.csv"
    stale = tmp_path / ".pred.csv.k1ll3d_x.tmp"
    stale.write_bytes(b"patient_id,p_pseud")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    atomic_write_bytes(target, b"patient_id\n1\n")
    assert temporaries(tmp_path) == []


def test_a_write_leaves_a_recent_temporary_file_of_another_writer(tmp_path):
    """A temporary file changed a moment ago may belong to a run still writing: kept."""
    other = tmp_path / ".pred.csv.w0rk1ng.tmp"
    other.write_bytes(b"patient_id,p_pseud")
    unrelated = tmp_path / ".metrics.json.old.tmp"
    unrelated.write_bytes(b"{")
    an_hour_ago = time.time() - 3600
    os.utime(unrelated, (an_hour_ago, an_hour_ago))
    atomic_write_bytes(tmp_path / "pred.csv", b"patient_id\n1\n")
    assert sorted(temporaries(tmp_path)) == sorted([other, unrelated])
