"""The metrics report: files written, valid JSON, readable markdown, atomic writes, and the
shared tables (one formatting path for every number)."""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pandas as pd
import pytest

from features import tables as T
from features.article import PREVALENCE
from features.contract import ID, LABEL
from models.evaluation import add_uncertainty, contract_scales
from models.metrics_document import build_metrics_document, metrics_json
from models.report import format as fmt
from models.report import tables as R
from models.report.document import table_markdown
from models.statistics import (
    AUC_CI_METHOD,
    CALIBRATION_CI_METHOD,
    HALDANE_NOTE,
    PREVALENCE_CI_METHOD,
    benchmark,
    feature_odds_ratios,
)


def _rules(score: np.ndarray, rng) -> pd.DataFrame:
    n = score.shape[0]
    return pd.DataFrame({
        "D1_perfusion_diffusion": (score > 1).astype(float),
        "D3_ctdna_clearance": np.where(rng.random(n) < 0.5, np.nan,
                                       (score + rng.normal(size=n) > 1.5).astype(float)),
        "D5_pathology": np.full(n, np.nan),  # no covered rows
        "Q1c_pet": np.zeros(n),  # never calls pseudoprogression
        "T5_low_risk": (score > 3.2).astype(float),  # few calls: a zero cell
    })


@pytest.fixture
def metrics() -> dict:
    rng = np.random.default_rng(11)
    n = 400
    y = rng.binomial(1, 0.25, n)
    score = rng.normal(size=n) + 1.5 * y
    p = 1 / (1 + np.exp(-(score - 2)))
    out = benchmark(y, p, 0.3, _rules(score, rng), restate_prevalences=PREVALENCE)
    ctdna = pd.Series(np.where(score > 1, -80.0, 10.0))
    out["feature_odds_ratios"] = feature_odds_ratios(
        pd.DataFrame({"ctdna_change_pct": ctdna}), y,
        extra_binary={"ctdna_change_pct < -60 (D3)": (ctdna < -60).astype(float)},
        scales=contract_scales()).to_dict(orient="records")
    out["split"] = {"n_train": 900, "n_train_positive": 200, "n_train_patients": 700,
                    "n_test": 400, "n_test_positive": int(y.sum()), "n_test_patients": 310,
                    "unit": "lesions", "seed": 1}
    out["internal_validation"] = {"nested_cv": {"per_fold": [{"fold": 1, "auc": 0.9},
                                                             {"fold": 2, "auc": 0.8}]}}
    return out


def _md_rows(md: str, first_cell: str) -> list[list[str]]:
    """Cells of every markdown table row of ``md`` whose first cell is ``first_cell``."""
    out = []
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            out.append(cells)
    return out


# --------------------------------------------------------------------------- files


def test_metrics_json_and_markdown_hold_the_document(metrics):
    extra = pd.DataFrame({"feature": ["a|b", "c"], "value": [1.5, np.nan]})
    document = metrics | {"extra_table": extra}
    text = metrics_json(document)
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["n"] == metrics["n"] and data["threshold"] == 0.3
    assert data["rules"]["D5_pathology"]["coverage"] == 0
    assert data["rules"]["D5_pathology"]["sensitivity"] is None
    assert data["extra_table"] == [{"feature": "a|b", "value": 1.5},
                                   {"feature": "c", "value": None}]

    md = R.render_markdown(document, title="T")
    assert md.startswith("# T")
    for rule_id in metrics["rules"]:
        assert rule_id in md
    for heading in ("## Benchmark", "## Each rule against the model", "AUC", "Brier",
                    "calibration slope", "melanoma", "nsclc", "## Feature odds ratios",
                    "## Participants and split", "## Extra table",
                    "### Nested cross-validation folds"):
        assert heading in md, heading
    assert "a\\|b" in md  # pipes in cells do not break the table
    assert "4.3 (3.7-5.0) (D3)" in md  # the article's odds ratio beside ours


def test_metrics_document_puts_each_part_in_its_place(metrics):
    figures = metrics | {"study": {"positive_class": "x"}}
    before = json.dumps(figures, default=str)
    document = build_metrics_document(figures, {"undeclared": ["ward"]}, landmarks={"times": []},
                                validation={"scheme": "cv"}, update=None)
    assert list(document) == [*figures, "validation", "landmarks"]  # update (None) left out
    assert document["study"] == {"positive_class": "x", "undeclared": ["ward"]}
    assert json.dumps(figures, default=str) == before  # nothing given is changed
    again = build_metrics_document(document, feature_effects=[{"feature": "x"}])
    assert list(again) == list(document) + ["feature_effects"]
    with pytest.raises(TypeError, match="report_run"):
        build_metrics_document(metrics, report_run={"id": "x"})  # the report's, not the study's


def test_format_benchmark_table(metrics):
    text = R.format_benchmark_table(metrics)
    lines = text.splitlines()
    notes = R.benchmark_table(metrics).notes
    remarks = R.rule_remarks(metrics)
    assert len(lines) == 3 + 1 + len(metrics["rules"]) + len(notes) + len(remarks)
    assert lines[3].startswith("model")
    # a rule covering no row, or never calling the positive class, is said so in words
    for rule_id, m in metrics["rules"].items():
        if m["n"] == 0:
            assert f"{rule_id} never applies: no row has every column it reads." in remarks
        elif m["tp"] + m["fp"] == 0:
            assert f"{rule_id} never says pseudoprogression on the {m['n']} rows it " \
                   "covers." in remarks
    assert any("never applies" in r for r in remarks)
    for rule_id in metrics["rules"]:
        assert rule_id in text
    sens = metrics["model"]["sensitivity"]
    assert f"{100 * sens:.1f}%" in text
    assert "sensitivity (95% CI)" in text and "PPV (95% CI)" in text


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


# --------------------------------------------------------------------------- DOR notes


def test_undefined_and_corrected_odds_ratios_say_so(metrics):
    rules = metrics["rules"]
    assert rules["Q1c_pet"]["dor_note"].startswith("undefined: never calls")
    assert rules["T5_low_risk"]["dor_note"] == HALDANE_NOTE
    table = R.benchmark_table(metrics)
    cells = {row[0]: row[-1] for row in table.rows}
    assert cells["Q1c_pet"] == rules["Q1c_pet"]["dor_note"]  # "undefined: never calls ..."
    assert cells["Q1c_pet"].startswith("undefined")
    marker = fmt.Footnotes().mark(HALDANE_NOTE)
    assert cells["T5_low_risk"].endswith(f" {marker}")
    assert f"{marker} {HALDANE_NOTE}" in table.notes
    assert not any(c.endswith(marker) for rid, c in cells.items()
                   if not rules.get(rid, metrics["model"]).get("dor_note"))
    md = R.render_markdown(metrics)
    terminal = R.format_benchmark_table(metrics)
    for text in (md, terminal):
        assert "undefined: never calls pseudoprogression" in text
        assert f"{marker} {HALDANE_NOTE}" in text


def test_terminal_and_markdown_show_the_same_cells(metrics):
    md = R.render_markdown(metrics)
    terminal = R.format_benchmark_table(metrics).splitlines()
    keep = [0, 1, 2, 3, 5, 7]
    for name in ["model", *metrics["rules"]]:
        md_row = _md_rows(md, name)[0]
        line = next(ln for ln in terminal if ln.startswith(name + " "))
        for i in keep[1:]:
            if md_row[i]:
                assert md_row[i] in line, (name, md_row[i])


# --------------------------------------------------------------------------- method words


def test_interval_methods_are_named_truthfully(metrics):
    md = R.render_markdown(metrics)
    assert AUC_CI_METHOD in md and CALIBRATION_CI_METHOD in md and PREVALENCE_CI_METHOD in md
    assert "profile" not in md.lower()
    assert "plug" not in md.lower()  # the old conservative plug-in PPV interval is gone
    assert R.MATCHED_SENSITIVITY_NOTE in md


def test_no_number_formatter_outside_format_module():
    """Tables and sections format numbers only through models.report.format."""
    from pathlib import Path

    root = Path(R.__file__).parent
    pattern = re.compile(r":\.\d+[fge%]|:[+]\.\d")
    for name in ("tables.py", "sections.py", "model_card.py", "write.py"):
        hits = [ln for ln in (root / name).read_text().splitlines() if pattern.search(ln)]
        assert hits == [], (name, hits)


# --------------------------------------------------------------------------- net benefit


def test_bootstrap_and_decision_curve_net_benefit_agree():
    rng = np.random.default_rng(5)
    n = 240
    y = rng.binomial(1, 0.3, n)
    p = np.clip(rng.beta(2, 5, n) + 0.3 * y, 0, 1)
    frame = pd.DataFrame({ID: [f"p{i}" for i in range(n)], LABEL: y,
                          "p_pseudoprogression": p,
                          "rule_Q1a_symptoms": (p > 0.4).astype(float)})
    rules = pd.DataFrame({"Q1a_symptoms": frame["rule_Q1a_symptoms"]})
    metrics = add_uncertainty(benchmark(y, p, 0.5, rules), frame, 0.5, n_resamples=20)
    nb = metrics["net_benefit"]
    keys = [k for k in metrics["bootstrap"] if k.startswith("net_benefit@")]
    assert keys
    boot_table = {row[0]: row[1] for row in R.bootstrap_table(metrics).rows}
    nb_table = R.net_benefit_table(metrics)
    model_row = nb_table.rows[0]
    for key in keys:
        pt = float(key.split("@")[1])
        j = [i for i, t in enumerate(nb["thresholds"]) if math.isclose(t, pt)]
        assert j, pt
        assert metrics["bootstrap"][key]["estimate"] == pytest.approx(nb["model"][j[0]],
                                                                      abs=1e-12)
        shown = model_row[1 + j[0]]
        assert nb_table.headers[1 + j[0]] == f"pt = {fmt.pt(pt)}"
        assert boot_table[R.bootstrap_row_name(key)].startswith(shown + " (")
        assert "decision curve" in R.bootstrap_row_name(key)


# --------------------------------------------------------------------------- units


def test_participant_table_counts_patients_and_lesions(metrics):
    table = R.participant_table(metrics)
    rows = {r[0]: r for r in table.rows}
    assert table.headers[1:3] == ["patients", "lesions (rows)"]
    assert rows["training"][1:3] == ["700", "900"]
    assert rows["held-out evaluation"][1:3] == ["310", str(metrics["n"])]
    assert rows["all"][1:3] == ["1010", str(900 + metrics["n"])]
    assert R.units_text(400, 310) == "400 lesions of 310 patients"
    assert R.units_text(300, 300) == "300 patients, one lesion each"
    several = R.unit_sentence(400, 310)
    assert "310 patients" in several and "one lesion each" not in several
    assert "coincide" not in several
    assert "lesions and patients coincide" in R.unit_sentence(300, 300)
    assert "400 lesions of 310 patients" in R.render_markdown(metrics)


def test_old_split_without_patient_counts(metrics):
    m = dict(metrics)
    m["split"] = {"n_train": 900, "n_train_positive": 200, "n_test": 400,
                  "n_test_positive": 88, "unit": "patients"}
    rows = {r[0]: r for r in R.participant_table(m, n_patients=400).rows}
    assert rows["held-out evaluation"][1:3] == ["400", "400"]
    assert rows["training"][1:3] == ["900", "900"]  # the unit says a row was a patient
    m["split"] = dict(m["split"], unit="lesions")
    rows = {r[0]: r for r in R.participant_table(m).rows}
    assert rows["training"][1] == ""  # unknown, not guessed


# --------------------------------------------------------------------------- formatting


def test_format_helpers():
    notes = fmt.Footnotes()
    assert notes.mark("") == ""
    assert notes.mark("a") == fmt.MARKERS[0] and notes.mark("b") == fmt.MARKERS[1]
    assert notes.mark("a") == fmt.MARKERS[0]
    assert notes.lines() == [f"{fmt.MARKERS[0]} a", f"{fmt.MARKERS[1]} b"]
    assert fmt.dor(float("nan"), [None, None], "undefined: one class only") == \
        "undefined: one class only"
    assert fmt.dor(4.0, [2, 8], "") == "4 (2-8)"
    assert fmt.dor(4.0, [2, 8], "x") == "4 (2-8) (x)"
    assert fmt.brier(0.037091) == "0.0371" and fmt.net_benefit(0.06421) == "0.0642"
    assert fmt.mean_sd(0.95, 0.02) == "0.950 ± 0.020"
    assert fmt.pct_mean_sd(0.618, 0.05) == "61.8% ± 5.0%"
    assert fmt.pt(0.1) == "0.10" and fmt.p_value(0.0004) == "<0.001"
    assert fmt.pp_ci(0.052, [-0.01, 0.113]) == "+5.2 pp (-1.0 to +11.3)"
    t = R.Table(["a", "b"], [["x", "1"]], notes=["† n"])
    assert table_markdown(t).endswith("† n.")
    assert t.columns([1]).headers == ["b"] and t.columns([1]).notes == ["† n"]
