"""Every bad input through the command lines: one message naming each problem and its fix,
exit status 2, no traceback, every input file left byte for byte as it was, and (for a
training) no model fitted before the refusal.

Most cases run ``train.main`` and ``predict.main`` through :func:`run_command` in this process
(the command line's own argument parsing and error handling, without paying the imports
again for every case); :func:`test_the_scripts_themselves_exit_2_without_a_traceback` runs
the scripts as programs. Training, where a case needs a model, is kept tiny.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import predict
import train
from commands.run import run_command
from features.synthetic.cohort import simulate_cohort

ROOT = Path(__file__).resolve().parents[2]
#: Options that keep a training run short.
FAST = ["--validation", "holdout", "--no-nested-cv", "--bootstrap", "0", "--no-progress"]


@dataclass
class Outcome:
    """What a command did: its exit status and what it printed on stderr."""

    code: int
    err: str


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def no_model_fitted():
    """Within it, fitting a model fails the test: a bad input must be refused before any
    training (every module of ``models`` that holds ``fit_calibrated`` gets a stand-in)."""
    import models.classifier
    import models.landmarks
    import models.training  # noqa: F401  (loaded, so that their fit_calibrated is replaced)

    original = models.classifier.fit_calibrated

    def refuse(*args, **kwargs):
        raise AssertionError("a model was fitted before the bad input was refused")

    holders = [module for name, module in list(sys.modules.items())
               if name.partition(".")[0] == "models"
               and getattr(module, "fit_calibrated", None) is original]
    with pytest.MonkeyPatch.context() as patch:
        for module in holders:
            patch.setattr(module, "fit_calibrated", refuse)
        yield


def command(main: Callable, argv: list[str], inputs: list[Path],
            may_fit: bool = True) -> Outcome:
    """Run a command line's ``main`` as its script does; check that it left ``inputs`` as
    they were and printed no traceback. Unless ``may_fit``, fitting a model fails the test
    (:func:`no_model_fitted`)."""
    before = {p: digest(p) for p in inputs if p.is_file()}
    err = io.StringIO()
    guard = contextlib.nullcontext() if may_fit else no_model_fitted()
    with guard, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_command(main, [str(a) for a in argv])
    assert {p: digest(p) for p in before} == before, "an input file was modified"
    assert "Traceback" not in err.getvalue()
    return Outcome(code, err.getvalue())


def table(n: int = 40, seed: int = 3) -> pd.DataFrame:
    """A valid labelled table in the contract, both classes present."""
    return simulate_cohort(n, seed=seed, prevalence=0.5)


def write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def train_on(path: Path, tmp: Path, *extra) -> Outcome:
    inputs = [path] + [Path(a) for a in extra if str(a).endswith((".yaml", ".csv"))]
    return command(train.main, ["--data", path, "--out", tmp / "model.skops", *FAST, *extra],
                   inputs, may_fit=False)


def problem_lines(err: str) -> list[str]:
    """The listed problems of an error message (lines starting with '  - ')."""
    return [line[4:] for line in err.splitlines() if line.startswith("  - ")]


def test_a_valid_table_reaches_the_fitting_that_error_cases_forbid(tmp_path):
    """:func:`no_model_fitted` stops a training that gets as far as fitting, so the error
    cases below, which run under it, show that they are refused before any training."""
    with pytest.raises(AssertionError, match="a model was fitted before"):
        train_on(write(table(120), tmp_path / "data.csv"), tmp_path)
    assert not (tmp_path / "model.skops").exists()


# --------------------------------------------------------------------------- the table


def changed(change: Callable[[pd.DataFrame], None]) -> pd.DataFrame:
    df = table()
    change(df)
    return df


def _set(column: str, rows: list[int], values: list) -> Callable[[pd.DataFrame], None]:
    def apply(df: pd.DataFrame) -> None:
        df[column] = df[column].astype(object)
        for row, value in zip(rows, values, strict=True):
            df.loc[row, column] = value
    return apply


def _duplicate_lesion(df: pd.DataFrame) -> None:
    df.insert(1, "lesion_id", "1")
    df.loc[1, "patient_id"] = df.loc[0, "patient_id"]


def _unit_mistakes(df: pd.DataFrame) -> None:
    df["adc"] = df["adc"] / 1000  # mm^2/s instead of 10^-3 mm^2/s
    df["steroid_response_pct"] = df["steroid_response_pct"] / 100  # fractions


#: name -> (how the valid table is spoilt, fragments every one of which the message holds).
TABLE_CASES: dict[str, tuple[Callable[[pd.DataFrame], None], list[str]]] = {
    "label all missing": (
        lambda df: df.__setitem__("pseudoprogression", np.nan),
        ["the label column 'pseudoprogression' is empty in 40 row(s)", "fill them in"]),
    "label of one class": (
        lambda df: df.__setitem__("pseudoprogression", 0),
        ["'pseudoprogression' holds only one class (all 40 row(s) are 0)",
         "need both pseudoprogression (1) and true progression (0)"]),
    "label with other values": (
        _set("pseudoprogression", [3, 5, 7], ["maybe", "maybe", 2]),
        ["holds 'maybe', '2' in 3 row(s)", "'maybe' (2 rows), '2' (1 row)",
         "Set label.positive", "take it out of the table"]),
    "duplicated patient and lesion": (
        _duplicate_lesion,
        ["the pair ('patient_id', 'lesion_id') must be unique",
         "repeated: SIM-melanoma-s3-00001/1", "Give each lesion of a patient its own id"]),
    "text in a number column": (
        _set("rcbv", [0, 1, 2], ["n/a", "<0.5", "1,2"]),
        ["column 'rcbv' (ratio) must be numeric; found '<0.5' (1 row), '1,2' (1 row) "
         "(data rows 2, 3)", "needs --decimal ','", "censored value"]),
    "values out of range": (
        lambda df: (_set("rcbv", [0], [45])(df), _set("weeks_on_treatment", [1], [-3])(df)),
        ["column 'weeks_on_treatment' (weeks) should lie within [0, 520]; 1 value(s) "
         "are outside (e.g. -3; data row 2)",
         "column 'rcbv' (ratio) should lie within [0, 30]; 1 value(s) are outside "
         "(e.g. 45; data row 1)", "check their unit (the contract's is ratio)"]),
    "unit mistakes": (
        _unit_mistakes,
        ["column 'adc' (10^-3 mm^2/s) should lie within [0.05, 5]",
         "look like mm^2/s; give ADC in 10^-3 mm^2/s (multiply by 1000)",
         "column 'steroid_response_pct' (%): all", "they look like fractions. Give percentages "
         "(multiply by 100)"]),
    "a 0/1 column holding 2 and yes": (
        _set("symptomatic", [0, 1], [2, "yes"]),
        ["column 'symptomatic' (0/1) must be 0 or 1; found '2' (1 row), 'yes' (1 row) "
         "(data rows 1, 2)", "Write 1 for yes and 0 for no"]),
}


@pytest.mark.parametrize("case", list(TABLE_CASES))
def test_bad_table_is_refused_with_every_problem_named(case, tmp_path):
    change, fragments = TABLE_CASES[case]
    path = write(changed(change), tmp_path / "data.csv")
    out = train_on(path, tmp_path)
    assert out.code == 2, out.err
    assert out.err.startswith("error: ")
    for fragment in fragments:
        assert fragment in out.err
    assert not (tmp_path / "model.skops").exists()


def test_problems_of_several_columns_come_in_one_message(tmp_path):
    df = table()
    for change in (_set("rcbv", [0], [45]), _unit_mistakes, _set("symptomatic", [4], ["yes"]),
                   _set("ki67_pct", [2], ["<0.5"])):
        change(df)
    out = train_on(write(df, tmp_path / "data.csv"), tmp_path)
    assert out.code == 2
    assert "(5 problem(s))" in out.err
    named = [line.split("'")[1] for line in problem_lines(out.err)]
    assert named == ["symptomatic", "steroid_response_pct", "rcbv", "adc", "ki67_pct"]


def test_description_and_contract_problems_come_in_one_message(tmp_path):
    df = changed(_set("pseudoprogression", [3], ["maybe"]))
    df["adc"] = df["adc"] / 1000
    out = train_on(write(df, tmp_path / "data.csv"), tmp_path)
    assert out.code == 2
    assert "'maybe'" in out.err and "give ADC in 10^-3 mm^2/s" in out.err


def test_missing_markers_are_empty_cells_not_errors(tmp_path):
    df = changed(_set("rcbv", [0, 1, 2], ["n/a", "NA", "<0.5"]))
    out = train_on(write(df, tmp_path / "data.csv"), tmp_path)
    assert out.code == 2
    assert "found '<0.5' (1 row) (data row 3)" in out.err and "n/a" not in out.err


# --------------------------------------------------------------------------- the file


@pytest.mark.parametrize("content, fragments", [
    ("", ["data.csv is empty: no header and no data rows. Export the table again."]),
    ("patient_id,rcbv,adc,pseudoprogression\n",
     ["data.csv has no data rows (only the header: 'patient_id', 'rcbv', 'adc', "
      "'pseudoprogression'); export the table with its rows."]),
    ("patient_id,rcbv,pseudoprogression\np1,1,2,1\np2,0.8,0\n",
     ["some rows have more cells than the header has column names", "--decimal"]),
], ids=["empty file", "header only", "decimal comma in a comma-separated file"])
def test_unreadable_files(content, fragments, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(content)
    out = train_on(path, tmp_path)
    assert out.code == 2
    for fragment in fragments:
        assert fragment in out.err


def test_no_usable_feature_column(tmp_path):
    df = table(120)[["patient_id", "pseudoprogression"]].assign(notes="seen", kps=80)
    with pytest.warns(UserWarning, match="dropping 2 column.s. that the table description "
                                         "does not declare: notes, kps"):
        out = train_on(write(df, tmp_path / "data.csv"), tmp_path)
    assert out.code == 2
    assert "error: the table has no feature columns: none of the contract's, no radiomic " \
        "columns and none declared under 'features'" in out.err


# --------------------------------------------------------------------------- outputs


def test_out_equal_to_an_input(tmp_path):
    data = write(table(), tmp_path / "data.csv")
    out = command(train.main, ["--data", data, "--out", data, *FAST], [data], may_fit=False)
    assert out.code == 2
    assert f"--out {data} is the input table (--data), which this run reads; choose another " \
        "file for the model" in out.err


def _small_table(tmp_path: Path) -> Path:
    """A valid table too small to train on (4 lesions of a class): a command that does not
    check its outputs first fails on it quickly, with another message."""
    df = table(8, seed=1)
    df["pseudoprogression"] = [1, 0] * 4
    return write(df, tmp_path / "data.csv")


def _unwritable_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    (folder / "probe").unlink()
    folder.chmod(0o755)
    if not Path("/proc/self").is_dir():
        pytest.skip("permissions do not stop this user writing, and there is no /proc")
    return Path("/proc")  # no one, root included, creates files there


@pytest.mark.parametrize("option, where", [
    ("--out", "under a regular file"), ("--report", "under a regular file"),
    ("--out", "in a read-only folder"), ("--report", "in a read-only folder")])
def test_output_that_cannot_be_written_is_refused_before_training(option, where, tmp_path):
    data = _small_table(tmp_path)
    parent = data if where == "under a regular file" else _unwritable_folder(tmp_path)
    target = parent / "new" / ("model.skops" if option == "--out" else "report")
    outputs = (["--out", target] if option == "--out"
               else ["--out", tmp_path / "model.skops", "--report", target])
    try:
        out = command(train.main, ["--data", data, *outputs, *FAST], [data], may_fit=False)
    finally:
        if (tmp_path / "read_only").exists():
            (tmp_path / "read_only").chmod(0o755)
    assert out.code == 2
    assert option in out.err and str(parent) in out.err


# --------------------------------------------------------------------------- a model


@pytest.fixture(scope="module")
def kps_model(tmp_path_factory) -> Path:
    """A model trained on a table with a declared extra feature, ``kps``."""
    folder = tmp_path_factory.mktemp("kps_model")
    df = table(120)
    df["kps"] = np.random.default_rng(0).integers(40, 100, len(df))
    data = write(df, folder / "train.csv")
    desc = folder / "kps.yaml"
    desc.write_text("features:\n  - columns: [kps]\n    kind: number\n    range: [0, 100]\n")
    out = command(train.main, ["--data", data, "--table", desc, "--out", folder / "m.skops",
                               *FAST], [data, desc])
    assert out.code == 0, out.err
    return folder / "m.skops"


def _model_copy(model: Path, folder: Path) -> Path:
    """A copy of ``model`` and of its record file beside it."""
    for path in model.parent.glob(model.name + "*"):
        shutil.copy2(path, folder / path.name)
    return folder / model.name


def test_model_made_for_another_table_layout(kps_model, tmp_path):
    """A declared feature the model was trained with, absent from the table, is an error:
    unlike a contract column (where a missing examination is ordinary), a declared column
    missing from a whole table is a layout mistake; treating it as missing would change
    every prediction with only a warning. An empty column is the explicit way to predict
    without it."""
    data = write(table(), tmp_path / "new.csv")
    out = command(predict.main, ["--model", kps_model, "--data", data,
                                 "--out", tmp_path / "pred.csv"], [data, kps_model])
    assert out.code == 2
    assert "does not match the table description stored in the model" in out.err
    assert "features[0].columns: 'kps' matches no column of" in out.err
    assert not (tmp_path / "pred.csv").exists()
    empty = write(table().assign(kps=np.nan), tmp_path / "empty_kps.csv")
    with pytest.warns(UserWarning, match=r"columns absent or empty in every row \(kps\)"):
        out = command(predict.main, ["--model", kps_model, "--data", empty,
                                     "--out", tmp_path / "pred.csv"], [empty, kps_model])
    assert out.code == 0
    assert pd.read_csv(tmp_path / "pred.csv")["p_pseudoprogression"].between(0, 1).all()


def test_model_layout_message_says_what_the_model_was_trained_with(kps_model, tmp_path):
    data = write(table(), tmp_path / "new.csv")
    out = command(predict.main, ["--model", kps_model, "--data", data,
                                 "--out", tmp_path / "pred.csv"], [data, kps_model])
    assert "trained with" in out.err and "remove it" not in out.err


def test_predict_out_equal_to_its_table(kps_model, tmp_path):
    data = write(table().assign(kps=70), tmp_path / "new.csv")
    out = command(predict.main, ["--model", kps_model, "--data", data, "--out", data],
                  [data, kps_model])
    assert out.code == 2
    assert "is the input table (--data), which this run reads; choose another file so your " \
        "data is not overwritten." in out.err


def test_predict_out_equal_to_its_model(kps_model, tmp_path):
    model = _model_copy(kps_model, tmp_path)
    data = write(table().assign(kps=70), tmp_path / "new.csv")
    out = command(predict.main, ["--model", model, "--data", data, "--out", model], [data])
    assert out.code == 2 and "--out" in out.err
    assert digest(model) == digest(kps_model)


def test_predict_output_under_a_regular_file(kps_model, tmp_path):
    data = write(table().assign(kps=70), tmp_path / "new.csv")
    out = command(predict.main, ["--model", kps_model, "--data", data,
                                 "--out", data / "pred.csv"], [data, kps_model])
    assert out.code == 2 and "--out" in out.err


# --------------------------------------------------------------------------- as programs


def test_the_scripts_themselves_exit_2_without_a_traceback(kps_model, tmp_path):
    """The scripts as a user runs them (both at once): status 2, one message, no traceback."""
    data = write(changed(_unit_mistakes), tmp_path / "data.csv")
    new = write(table(), tmp_path / "new.csv")
    before = {p: digest(p) for p in (data, new, kps_model)}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in (["train.py", "--data", data, "--out", tmp_path / "m.skops", *FAST],
                          ["predict.py", "--model", kps_model, "--data", new,
                           "--out", tmp_path / "p.csv"])]
    for proc, fragment in zip(procs, ["give ADC in 10^-3 mm^2/s", "'kps' matches no column"],
                              strict=True):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert "Traceback" not in err and fragment in err
        assert err.startswith("error: ") and out == ""
    assert {p: digest(p) for p in before} == before
