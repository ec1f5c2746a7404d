"""The metrics report: files written, valid JSON, readable markdown, atomic writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from features import tables as T
from models.report import tables as R
from models.statistics import benchmark, feature_odds_ratios


@pytest.fixture
def metrics() -> dict:
    rng = np.random.default_rng(11)
    n = 400
    y = rng.binomial(1, 0.25, n)
    score = rng.normal(size=n) + 1.5 * y
    p = 1 / (1 + np.exp(-(score - 2)))
    rules = pd.DataFrame({
        "D1_perfusion_diffusion": (score > 1).astype(float),
        "D3_ctdna_clearance": np.where(rng.random(n) < 0.5, np.nan,
                                       (score + rng.normal(size=n) > 1.5).astype(float)),
        "D5_pathology": np.full(n, np.nan),  # no covered rows
    })
    out = benchmark(y, p, 0.3, rules)
    ctdna = pd.Series(np.where(score > 1, -80.0, 10.0))
    out["feature_odds_ratios"] = feature_odds_ratios(
        pd.DataFrame({"ctdna_change_pct": ctdna}), y,
        extra_binary={"ctdna_change_pct < -60 (D3)": (ctdna < -60).astype(float)},
    ).to_dict(orient="records")
    out["split"] = {"n_train": 900, "unit": "patients", "cv": {"auc": [0.8, 0.82]}}
    out["internal_validation"] = {"nested_cv": {"per_fold": [{"fold": 1, "auc": 0.9},
                                                             {"fold": 2, "auc": 0.8}]}}
    return out


def test_report_files_written_and_parse(tmp_path, metrics):
    folder = tmp_path / "new" / "report"  # created on demand
    extra = pd.DataFrame({"feature": ["a|b", "c"], "value": [1.5, np.nan]})
    R.write_metrics_report(folder, metrics, extra_tables={"extra_table": extra}, title="T")
    assert sorted(os.listdir(folder)) == ["metrics.json", "metrics.md"]

    text = (folder / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["n"] == metrics["n"] and data["threshold"] == 0.3
    assert data["rules"]["D5_pathology"]["coverage"] == 0
    assert data["rules"]["D5_pathology"]["sensitivity"] is None
    assert data["extra_table"] == [{"feature": "a|b", "value": 1.5},
                                   {"feature": "c", "value": None}]

    md = (folder / "metrics.md").read_text()
    assert md.startswith("# T")
    for rule_id in metrics["rules"]:
        assert rule_id in md
    for heading in ("## Benchmark", "## Each rule against the model", "AUC", "Brier",
                    "calibration slope", "melanoma", "nsclc", "## Feature odds ratios",
                    "## Split", "## Extra table"):
        assert heading in md, heading
    assert "### nested_cv.per_fold\n\n| fold | auc |" in md  # nested records as a table
    assert "a\\|b" in md  # pipes in cells do not break the table
    assert "4.3 (3.7-5.0) (D3)" in md  # the article's odds ratio beside ours


def test_report_refuses_clashing_extra_table(tmp_path, metrics):
    with pytest.raises(ValueError):
        R.write_metrics_report(tmp_path, metrics, extra_tables={"model": pd.DataFrame()})


def test_format_benchmark_table(metrics):
    text = R.format_benchmark_table(metrics)
    lines = text.splitlines()
    assert len(lines) == 3 + 1 + len(metrics["rules"])  # header, column names, rule, model
    assert lines[3].startswith("model")
    for rule_id in metrics["rules"]:
        assert rule_id in text
    sens = metrics["model"]["sensitivity"]
    assert f"{100 * sens:.1f}%" in text


def test_atomic_write_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    T.atomic_write_text(target, "first")
    T.atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["out.txt"]
    T.atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "out.txt"
    T.atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        T.atomic_write_bytes(target, "not bytes")  # fails while writing the temp file
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
