"""A small hostile file cannot take gigabytes: YAML aliases that unfold exponentially, a
skops file whose arrays unpack to far more than it weighs, and a very wide table are each
refused or warned about before the work, in one short message; peak memory is measured."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tracemalloc
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import train
from commands.run import run_command
from features.description import TableDescription
from features.errors import UserInputError, quoted
from features.extract import load_settings
from features.tables import WIDE_COLUMNS, read_table
from models.bundle import MAX_UNPACKED_BYTES, load_model

PEAK_LIMIT = 500 * 2**20  # bytes


def laughs(levels: int, top: str = "patient") -> str:
    """A "billion laughs" YAML document: each level a list of 9 aliases of the one below,
    so the top unfolds to 9**levels strings."""
    lines = ['a0: &a0 "lol lol lol lol lol"']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    lines.append(f"{top}: *a{levels}")
    return "\n".join(lines) + "\n"


def peak_of(call) -> tuple[object, int]:
    """``call()``'s result (or the exception it raised) and the peak of memory allocated
    through Python while it ran (tracemalloc), in bytes."""
    tracemalloc.start()
    try:
        try:
            result = call()
        except Exception as exc:  # the refusal is what is measured
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_alias_bomb_in_a_table_description_is_refused_in_little_memory(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs(8))
    assert path.stat().st_size < 600
    result, peak = peak_of(lambda: TableDescription.from_yaml(path))
    assert isinstance(result, UserInputError), result
    assert "aliases" in str(result) and len(str(result)) < 500
    assert peak < PEAK_LIMIT


def test_alias_bomb_in_extraction_settings_is_refused_in_little_memory(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("version: x\n" + laughs(8, top="setting"))
    result, peak = peak_of(lambda: load_settings(path))
    assert isinstance(result, UserInputError) and "aliases" in str(result)
    assert peak < PEAK_LIMIT


def test_a_moderate_bomb_through_the_command_line_gives_a_short_message(tmp_path):
    """Six levels unfold to 531,441 strings, within reach of memory but once a 34 MB message;
    now one short line."""
    data = tmp_path / "d.csv"
    data.write_text("patient_id,pseudoprogression\np1,1\np2,0\n")
    desc = tmp_path / "d.yaml"
    desc.write_text(laughs(6))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_command(train.main, ["--data", str(data), "--table", str(desc),
                                        "--out", str(tmp_path / "m.skops")])
    assert code == 2 and len(err.getvalue()) < 500, err.getvalue()[:1000]


def test_plain_aliases_and_a_repeated_key(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("patient: &p pid\nrename: {x: rcbv}\nignore: [*p]\n")
    assert TableDescription.from_yaml(path).patient_column == "pid"
    path.write_text("patient: pid\nlabel: {column: y}\npatient: other\n")
    with pytest.raises(UserInputError, match=r"'patient' twice \(lines 1 and 3\)"):
        TableDescription.from_yaml(path)
    path.write_text("rename: {a: rcbv, a: adc}\n")
    with pytest.raises(UserInputError, match="'a' twice"):
        TableDescription.from_yaml(path)
    path.write_text("patient: &p [pid, *p]\n")
    with pytest.raises(UserInputError, match="refers to the value that holds it"):
        TableDescription.from_yaml(path)


def test_quoted_values_are_cut():
    assert len(quoted("x" * 10**6)) <= 80
    assert len(quoted([["y" * 1000] * 1000] * 1000)) <= 80


def _bomb_model(tmp_path: Path, n_values: int, written: int) -> Path:
    """A skops file whose one array's header declares ``n_values`` float64 values, of which
    ``written`` zeros follow (compressed), with a record re-signed to match it (as a forger
    would)."""
    import skops.io as sio

    small = zipfile.ZipFile(io.BytesIO(sio.dumps({"estimator": np.zeros(3)})))
    path = tmp_path / "bomb.skops"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for info in small.infolist():
            if not info.filename.endswith(".npy"):
                out.writestr(info.filename, small.read(info))
                continue
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f8", "fortran_order": False, "shape": (n_values,)})
            with out.open(info.filename, "w", force_zip64=True) as member:
                member.write(header.getvalue())
                chunk = bytes(2**22)
                for _ in range(8 * written // len(chunk)):
                    member.write(chunk)
    data = path.read_bytes()
    record = {"record_version": 1, "model_file": path.name, "format": "skops",
              "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
              "versions": {"scikit-learn": metadata.version("scikit-learn")}}
    Path(f"{path}.json").write_text(json.dumps(record))
    return path


def test_skops_array_declaring_640_mb_is_refused_before_unpacking(tmp_path):
    """numpy allocates an array as its header declares before reading it: the header is
    checked first, so the refusal takes little memory."""
    path = _bomb_model(tmp_path, 80 * 2**20, written=0)
    assert path.stat().st_size < 4096
    result, peak = peak_of(lambda: load_model(path))
    assert isinstance(result, UserInputError), result
    assert "would unpack to 640 MB" in str(result)
    assert peak < PEAK_LIMIT


def test_compressed_skops_bomb_is_refused_before_unpacking(tmp_path, monkeypatch):
    """A member of 64 MB of zeros packed into 64 KB, against a limit lowered to 16 MB (the
    same check as 2 GB packed into 2 MB against the real limit, in a fraction of the
    time)."""
    import models.bundle

    monkeypatch.setattr(models.bundle, "MAX_UNPACKED_BYTES", 16 * 2**20)
    path = _bomb_model(tmp_path, 8 * 2**20, written=8 * 2**20)
    assert path.stat().st_size < 128 * 2**10
    result, peak = peak_of(lambda: load_model(path))
    assert isinstance(result, UserInputError) and "would unpack to 64 MB" in str(result)
    assert peak < 16 * 2**20
    assert MAX_UNPACKED_BYTES == 256 * 2**20


def test_a_very_wide_table_is_warned_about_when_read(tmp_path):
    path = tmp_path / "wide.csv"
    n = WIDE_COLUMNS + 1
    path.write_text(",".join(["patient_id", *(f"original_f{i}" for i in range(n - 1))]) + "\n"
                    + ",".join(["p1", *["1"] * (n - 1)]) + "\n")
    with pytest.warns(UserWarning, match=f"has {n:,} columns for 1 rows"):
        read_table(path)
