"""No entry point writes over a file it reads: every output is checked against every input
(tables, description, scans, the manifest and every image it lists, settings, the
estimator's module, model files and their records, through symbolic and hard links) before
any work, and refused with exit 2 and the input left byte for byte as it was."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import predict
import train
from commands.run import run_command
from features import extract
from features.synthetic.cohort import simulate_cohort

FAST = ["--validation", "holdout", "--no-nested-cv", "--bootstrap", "0", "--no-progress"]


def run(main: Callable, argv: list, kept: list[Path]) -> tuple[int, str]:
    """Run a command line's ``main``; assert the files ``kept`` are unchanged byte for byte
    and no traceback was printed; return (exit status, stderr)."""
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in kept}
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_command(main, [str(a) for a in argv])
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in kept} == before
    assert "Traceback" not in err.getvalue()
    return code, err.getvalue()


@pytest.fixture()
def manifest(tmp_path) -> tuple[Path, Path, Path]:
    """A manifest listing one image and one mask (files of bytes; the guard refuses before
    anything is read as an image)."""
    images = tmp_path / "images"
    images.mkdir()
    image, mask = images / "p1_t1c.nii.gz", images / "p1_mask.nii.gz"
    image.write_bytes(os.urandom(256))
    mask.write_bytes(os.urandom(256))
    m = tmp_path / "manifest.csv"
    m.write_text("patient_id,mask,t1c\np1,images/p1_mask.nii.gz,images/p1_t1c.nii.gz\n")
    return m, image, mask


@pytest.mark.parametrize("target", ["image", "mask", "manifest", "symlink", "hardlink"])
@pytest.mark.parametrize("option", ["--out", "--failures"])
def test_extract_refuses_an_output_that_is_an_input(manifest, tmp_path, target, option):
    m, image, mask = manifest
    path = {"image": image, "mask": mask, "manifest": m}.get(target)
    if target == "symlink":
        path = tmp_path / "link.csv"
        path.symlink_to(image)
    elif target == "hardlink":
        path = tmp_path / "hard.csv"
        os.link(m, path)
    outputs = (["--out", path] if option == "--out"
               else ["--out", tmp_path / "f.csv", "--failures", path])
    code, err = run(extract.main, ["--manifest", m, *outputs, "--no-cache", "--quiet"],
                    [m, image, mask])
    assert code == 2
    assert option in err and "which this run reads" in err
    assert not (tmp_path / "f.csv").exists()


def test_extract_refuses_failures_equal_to_out(manifest, tmp_path):
    m, image, mask = manifest
    out = tmp_path / "f.csv"
    code, err = run(extract.main, ["--manifest", m, "--out", out, "--failures", out,
                                   "--no-cache", "--quiet"], [m, image, mask])
    assert code == 2 and "--failures" in err and "features file" in err


def test_predict_refuses_a_landmark_model_as_out(tmp_path):
    model = tmp_path / "M.skops"
    landmark = tmp_path / "M.landmark-4w.skops"
    for p in (model, Path(f"{model}.json"), landmark, Path(f"{landmark}.json")):
        p.write_bytes(os.urandom(64))
    data = tmp_path / "d.csv"
    simulate_cohort(20, seed=0).to_csv(data, index=False)
    scans = tmp_path / "s.csv"
    scans.write_text("patient_id,weeks_on_treatment,volume_ml\n")
    for out in (landmark, Path(f"{landmark}.json"), Path(f"{model}.json")):
        code, err = run(predict.main, ["--model", model, "--data", data, "--scans", scans,
                                       "--out", out], [landmark, model, data])
        assert code == 2 and "model (--model)" in err, err


def test_train_refuses_the_estimator_module_and_params_as_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "d.csv"
    simulate_cohort(60, seed=0).to_csv(data, index=False)
    est = tmp_path / "est.py"
    est.write_text("from sklearn.linear_model import LogisticRegression\n"
                   "def make():\n    return LogisticRegression()\n")
    (tmp_path / "mymods.py").write_text(est.read_text())
    for argv, named in ((["--estimator", f"{est}:make", "--out", est], "estimator's module"),
                        (["--estimator", "mymods:make", "--out", "mymods.py"],
                         "estimator's module"),
                        (["--estimator", "mymods:make", "--out", "model.skops", "--report",
                          tmp_path], "holds the input table")):
        code, err = run(train.main, ["--data", data, *argv, *FAST],
                        [est, tmp_path / "mymods.py", data])
        assert code == 2 and named in err, err
    params = tmp_path / "p.yaml"
    params.write_text("version: x\n")
    manifest = tmp_path / "m.csv"
    manifest.write_text("patient_id,mask,t1c\n")
    code, err = run(train.main, ["--data", data, "--manifest", manifest, "--params", params,
                                 "--out", params, *FAST], [params, data])
    assert code == 2 and "settings file (--params)" in err
    code, err = run(predict.main, ["--model", tmp_path / "none.skops", "--data", data,
                                   "--manifest", manifest, "--params", params,
                                   "--out", params], [params, data])
    assert code == 2 and "settings file (--params)" in err


def test_train_refuses_a_hard_link_to_the_table_and_things_in_the_way(tmp_path):
    data = tmp_path / "d.csv"
    simulate_cohort(60, seed=0).to_csv(data, index=False)
    os.link(data, tmp_path / "same.skops")
    code, err = run(train.main, ["--data", data, "--out", tmp_path / "same.skops", *FAST],
                    [data])
    assert code == 2 and "input table (--data)" in err
    (tmp_path / "M.skops.json").mkdir()
    code, err = run(train.main, ["--data", data, "--out", tmp_path / "M.skops", *FAST], [data])
    assert code == 2 and "M.skops.json is a folder" in err
    (tmp_path / "R" / "report.html").mkdir(parents=True)
    code, err = run(train.main, ["--data", data, "--out", tmp_path / "N.skops",
                                 "--report", tmp_path / "R", *FAST], [data])
    assert code == 2 and "report.html in it is a folder" in err
    assert not (tmp_path / "N.skops").exists()


def test_update_refuses_the_model_it_updates_as_out(tmp_path):
    data = tmp_path / "d.csv"
    simulate_cohort(60, seed=0).to_csv(data, index=False)
    model = tmp_path / "M.skops"
    model.write_bytes(os.urandom(64))
    Path(f"{model}.json").write_text("{}")
    for out in (model, Path(f"{model}.json")):
        code, err = run(train.main, ["--update", model, "--data", data, "--out", out, *FAST],
                        [model, data])
        assert code == 2 and "the model to update (--update)" in err, err
