"""Model files: skops by default, checked against their record, and never a way to run code.

Every file here that could run code, if it were ever unpickled or built, would create a
marker file; each test checks that the marker is still absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.dummy import DummyClassifier

import predict
from commands.run import run_command
from features.contract import ID, LABEL
from features.errors import UserInputError
from features.synthetic import simulate_cohort
from models.bundle import (
    TRUSTED_TYPES,
    TrainedModel,
    is_pickle_path,
    load_model,
    record_path,
    save_model,
)
from models.classifier import FAMILIES, fit_calibrated, with_threshold
from models.training import train

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ("skops", "joblib")


@pytest.fixture(scope="module")
def models() -> dict[str, TrainedModel]:
    """A trained model, the same at another threshold, and one model of every family."""
    table = simulate_cohort(300, prevalence=0.3, seed=1)
    with pytest.warns(UserWarning, match="minimum sample size"):
        trained = train(table, seed=1, validation="holdout", nested_cv=False,
                        progress=False).model
    out = {"trained": trained, trained.family: trained, "other": dataclasses.replace(
        trained, estimator=with_threshold(trained.estimator.estimator, 0.3))}
    X, y = table[[*trained.feature_columns, ID]], table[LABEL].to_numpy()
    for family in FAMILIES:
        if family not in out:
            fitted = fit_calibrated(X, y, table[ID].to_numpy(), seed=1, n_splits=3,
                                    families=(family,))
            out[family] = dataclasses.replace(
                trained, estimator=with_threshold(fitted.estimator, 0.4), family=family)
    return out


@pytest.fixture(scope="module")
def probe():
    return simulate_cohort(60, prevalence=0.3, seed=7)


@pytest.fixture(scope="module")
def saved(models, tmp_path_factory) -> dict[str, Path]:
    """The trained model saved once in each format, and the other one as ``other.<format>``
    (tests copy these, never change them)."""
    folder = tmp_path_factory.mktemp("saved")
    for fmt in FORMATS:
        save_model(models["other"], folder / f"other.{fmt}")
    return {fmt: save_model(models["trained"], folder / f"model.{fmt}") for fmt in FORMATS}


def copy_pair(source: Path, target: Path) -> Path:
    """Copy a model file and its record to ``target`` (and ``target``'s record)."""
    target.write_bytes(source.read_bytes())
    record_path(target).write_bytes(record_path(source).read_bytes())
    return target


def forge_record(path: Path, like: Path) -> None:
    """Write a record for ``path`` with its own hash and size, the rest copied from the record
    of ``like``: what anyone can do for a file of their own making."""
    record = json.loads(record_path(like).read_text())
    data = path.read_bytes()
    record.update(model_file=path.name, sha256=hashlib.sha256(data).hexdigest(),
                  size_bytes=len(data), format="joblib" if is_pickle_path(path) else "skops")
    record_path(path).write_text(json.dumps(record))


class RunsCommand:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class TouchesOnBuild:
    """Building this from saved state (as skops builds an object) creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).touch()
        self.__dict__.update(state)


def crafted_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(RunsCommand(marker)))
    return path


def test_crafted_pickle_would_run_a_command(tmp_path):
    """The control: unpickled directly, the crafted file does create its marker."""
    marker = tmp_path / "pwned"
    pickle.loads(crafted_pickle(tmp_path / "m.joblib", marker).read_bytes())
    assert marker.exists()


def test_record_carries_hash_columns_threshold_description_training_versions(models, saved):
    model = models["trained"]
    for fmt, path in saved.items():
        record = json.loads(record_path(path).read_text())
        assert record_path(path).name == f"model.{fmt}.json"
        assert record["format"] == fmt and record["model_file"] == path.name
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert record["size_bytes"] == path.stat().st_size
        assert record["feature_columns"] == model.feature_columns
        assert record["threshold"] == model.threshold
        assert record["description"] == model.description
        assert record["training"] == model.training
        assert record["versions"]["scikit-learn"] == model.versions["scikit-learn"]
        assert record["versions"]["skops"] != "not installed"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_saved_and_loaded_model_predicts_the_same(models, probe, tmp_path, family, fmt):
    model = models[family]
    again = load_model(save_model(model, tmp_path / f"m.{fmt}"), trust_pickle=True)
    assert again.family == model.family and again.feature_columns == model.feature_columns
    assert again.threshold == model.threshold and again.training == model.training
    np.testing.assert_array_equal(again.probability(probe, warn=False),
                                  model.probability(probe, warn=False))
    np.testing.assert_array_equal(again.predict(probe, warn=False),
                                  model.predict(probe, warn=False))


def test_skops_needs_no_trust_and_a_pickle_needs_it(models, saved):
    family = models["trained"].family
    assert load_model(saved["skops"]).family == family
    with pytest.raises(UserInputError, match="--trust-pickle") as err:
        load_model(saved["joblib"])
    assert str(saved["joblib"]) in str(err.value)
    assert load_model(saved["joblib"], trust_pickle=True).family == family


def test_any_other_name_is_saved_as_skops(models, tmp_path):
    path = save_model(models["trained"], tmp_path / "model.bin")
    assert json.loads(record_path(path).read_text())["format"] == "skops"
    assert load_model(path).threshold == models["trained"].threshold


@pytest.mark.parametrize("content, named", [
    (lambda marker: {"estimator": TouchesOnBuild(marker)},
     f"{TouchesOnBuild.__module__}.TouchesOnBuild"),
    (lambda marker: {"estimator": os.system}, f"{os.system.__module__}.system"),
    (lambda marker: {"estimator": DummyClassifier()}, "sklearn.dummy.DummyClassifier"),
])
def test_skops_file_with_an_untrusted_type_is_refused_and_nothing_built(saved, tmp_path,
                                                                        content, named):
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.skops"
    sio.dump(content(marker), path)
    forge_record(path, saved["skops"])
    assert named not in TRUSTED_TYPES
    with pytest.raises(UserInputError, match="refused") as err:
        load_model(path, trust_pickle=True)
    assert named in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["no record", "forged record, not trusted",
                                  "record of another file", "named .skops"])
def test_crafted_pickle_is_never_unpickled(saved, tmp_path, case):
    marker = tmp_path / "pwned"
    path = crafted_pickle(tmp_path / ("m.skops" if case == "named .skops" else "m.joblib"),
                          marker)
    expected = {"no record": "has no record", "forged record, not trusted": "--trust-pickle",
                "record of another file": "Copy the model file and its record",
                "named .skops": "not a skops model file"}[case]
    if case == "record of another file":
        record_path(path).write_text(record_path(saved["joblib"]).read_text())
    elif case != "no record":
        forge_record(path, saved["skops"])
    with pytest.raises(UserInputError, match=expected) as err:
        load_model(path, trust_pickle=case != "forged record, not trusted")
    assert str(path) in str(err.value)
    assert not marker.exists()


def damage(path: Path, how: str, other: Path) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "bit flipped":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1:])
    else:  # swapped with another valid model file; the records stay where they were
        path.write_bytes(other.read_bytes())
        other.write_bytes(data)


@pytest.mark.parametrize("how", ["truncated", "bit flipped", "swapped"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_or_swapped_file_is_refused_naming_it(saved, tmp_path, fmt, how):
    path = copy_pair(saved[fmt], tmp_path / f"a.{fmt}")
    other = copy_pair(saved[fmt].with_name(f"other.{fmt}"), tmp_path / f"b.{fmt}")
    damage(path, how, other)
    for victim in (path, other) if how == "swapped" else (path,):
        with pytest.raises(UserInputError, match="Copy the model file and its record") as err:
            load_model(victim, trust_pickle=True)
        assert str(victim) in str(err.value)
        assert "truncated" in str(err.value) or how != "truncated"


def test_file_renamed_to_the_other_format_is_refused(saved, tmp_path):
    path = copy_pair(saved["joblib"], tmp_path / "m.skops")
    with pytest.raises(UserInputError, match="named as a skops file"):
        load_model(path, trust_pickle=True)


def test_unreadable_record_is_refused(saved, tmp_path):
    path = tmp_path / "m.skops"
    path.write_bytes(saved["skops"].read_bytes())
    record_path(path).write_text("{not json")
    with pytest.raises(UserInputError, match="not a readable record") as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_other_scikit_learn_version_warns(models, saved, tmp_path):
    path = tmp_path / "m.skops"
    path.write_bytes(saved["skops"].read_bytes())
    record = json.loads(record_path(saved["skops"]).read_text())
    record["versions"]["scikit-learn"] = "0.1.0"
    record_path(path).write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="saved with scikit-learn 0.1.0"):
        assert load_model(path).family == models["trained"].family


def test_boosted_tree_pointing_outside_itself_is_refused(models, tmp_path):
    model = models["gradient_boosting"]
    hgb = model.estimator.estimator.fitted_pipeline.steps[-1][1]
    tree = hgb._predictors[0][0]
    saved_nodes = tree.nodes.copy()
    try:
        tree.nodes["left"][0] = 10 ** 6
        path = save_model(model, tmp_path / "m.skops")
    finally:
        tree.nodes = saved_nodes
    with pytest.raises(UserInputError, match="boosted tree") as err:
        load_model(path)
    assert str(path) in str(err.value)


def crash_on_renaming(monkeypatch, path: Path) -> list[Path]:
    """Make the rename onto ``path`` fail as an interruption would; returns every rename
    target, in order."""
    real_replace, targets = os.replace, []

    def replace(src, dst):
        targets.append(Path(dst))
        if Path(dst) == path:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return targets


@pytest.mark.parametrize("fmt", FORMATS)
def test_interrupted_save_keeps_the_previous_pair(models, saved, tmp_path, monkeypatch,
                                                  fmt):
    path = copy_pair(saved[fmt], tmp_path / f"m.{fmt}")
    before = path.read_bytes(), record_path(path).read_bytes()
    targets = crash_on_renaming(monkeypatch, path)
    with pytest.raises(KeyboardInterrupt):
        save_model(models["other"], path)
    monkeypatch.undo()
    assert targets[0] == record_path(path)  # the new record was in place before the crash
    assert (path.read_bytes(), record_path(path).read_bytes()) == before
    assert load_model(path, trust_pickle=True).threshold == models["trained"].threshold
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, record_path(path).name]


@pytest.mark.parametrize("fmt", FORMATS)
def test_interrupted_first_save_leaves_nothing(models, tmp_path, monkeypatch, fmt):
    path = tmp_path / f"m.{fmt}"
    crash_on_renaming(monkeypatch, path)
    with pytest.raises(KeyboardInterrupt):
        save_model(models["trained"], path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_new_record_beside_the_old_model_is_refused(saved, tmp_path, fmt):
    """What a hard crash between the two renames of a save leaves."""
    path = copy_pair(saved[fmt], tmp_path / f"m.{fmt}")
    record_path(path).write_bytes(record_path(saved[fmt].with_name(f"other.{fmt}")).read_bytes())
    with pytest.raises(UserInputError, match="Copy the model file and its record"):
        load_model(path, trust_pickle=True)


def test_predict_with_a_crafted_model_exits_2_with_one_message(saved, tmp_path):
    marker = tmp_path / "pwned"
    model = crafted_pickle(tmp_path / "model.joblib", marker)
    forge_record(model, saved["skops"])
    data = tmp_path / "new.csv"
    simulate_cohort(5, seed=3).to_csv(data, index=False)
    proc = subprocess.run([sys.executable, str(ROOT / "predict.py"), "--model", str(model),
                           "--data", str(data), "--out", str(tmp_path / "p.csv")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("error:") == 1 and "--trust-pickle" in proc.stderr
    assert "Traceback" not in proc.stderr and str(model) in proc.stderr
    assert not marker.exists() and not (tmp_path / "p.csv").exists()
    record_path(model).unlink()  # with --trust-pickle but no record: still never unpickled
    code = run_command(predict.main, ["--model", str(model), "--data", str(data),
                                      "--out", str(tmp_path / "p.csv"), "--trust-pickle"])
    assert code == 2 and not marker.exists()
