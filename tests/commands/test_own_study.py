"""A study with its own label, rules and unlabelled rows, end to end through the command line:
a glioblastoma-like follow-up table (RANO-like ratings, empty at the pre- and post-operative
scans; radiomic columns only; a declared rule). Its terminal output and report speak of its
own classes only, its declared rule is benchmarked with counts a hand count confirms, no
article rule is benchmarked, and failed fits are summarised, never dumped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.description import DeclaredFeature
from features.errors import UserInputError
from models import load_model
from models.classifier import fit_calibrated
from models.rules import RULE_IDS

ROOT = Path(__file__).resolve().parents[2]
#: Words of the simulator's study that a user's own study must never hear.
FOREIGN = re.compile(r"pseudoprogression|melanoma|immunotherapy|lung", re.IGNORECASE)
CUT_OFF = 56.0

DESCRIPTION = """\
patient: PatientID
lesion: Timepoint
label:
  column: Rating3
  positive: Progressive
  negative: [Stable, Response]
  name: progression
  negative_name: stable or responding
  missing: skip
features:
  - {columns: ["original_*"], kind: number, block: radiomic}
ignore: [Scanner]
rules:
  - id: long_axis
    positive_when: "`original_shape_MajorAxisLength` >= 56"
    source: a local cut-off
study:
  reference_standard: RANO rating by two neuroradiologists
  prevalences: {our clinic: 0.3}
"""


def gbm_like_table(n_patients: int = 70, seed: int = 3) -> pd.DataFrame:
    """Five scans per patient; the first two unrated (empty), the others Progressive,
    Stable or Response; twelve first-order columns, one constant, one with no signal, and the
    major axis length with a few values missing."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        base = rng.normal(0, 1, 12)
        for t, name in enumerate(["preop", "postop", "fu1", "fu2", "fu3"]):
            rating = ""
            if t >= 2:
                rating = rng.choice(["Progressive", "Stable", "Response"], p=[0.4, 0.4, 0.2])
            signal = 1.0 if rating == "Progressive" else 0.0
            x = base + rng.normal(0, 1, 12) + signal * (np.arange(12) < 3)
            row = {"PatientID": f"GBM-{p:03d}", "Timepoint": name, "Rating3": rating,
                   "Scanner": "A"}
            row |= {f"original_firstorder_F{i}": float(v) for i, v in enumerate(x)}
            row["original_firstorder_Constant"] = 1.0
            row["original_shape_MajorAxisLength"] = float(48 + 6 * rng.normal() + 9 * signal)
            rows.append(row)
    table = pd.DataFrame(rows)
    table.loc[rng.random(len(table)) < 0.08, "original_shape_MajorAxisLength"] = np.nan
    return table


def run(script: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The table trained and predicted once, through train.py and predict.py."""
    root = tmp_path_factory.mktemp("own_study")
    table = gbm_like_table()
    table.to_csv(root / "gbm.csv", index=False)
    (root / "gbm.yaml").write_text(DESCRIPTION)
    trained = run("train.py", "--data", root / "gbm.csv", "--table", root / "gbm.yaml",
                  "--validation", "holdout", "--no-nested-cv", "--bootstrap", "20",
                  "--out", root / "model.skops", "--report", root / "report")
    predicted = run("predict.py", "--model", root / "model.skops", "--data", root / "gbm.csv",
                    "--out", root / "pred.csv")
    return root, table, trained, predicted


def test_trains_in_one_command_without_a_traceback_or_a_foreign_word(study):
    root, table, trained, predicted = study
    assert trained.returncode == 0, trained.stderr
    assert predicted.returncode == 0, predicted.stderr
    for out in (trained, predicted):
        text = out.stdout + out.stderr
        assert "Traceback" not in text and "FitFailedWarning" not in text
        assert not FOREIGN.search(text), FOREIGN.search(text)
    for name in ("report.md", "report.html", "metrics.md", "metrics.json",
                 "evaluation_predictions.csv"):
        text = (root / "report" / name).read_text()
        found = FOREIGN.search(text)
        assert found is None, (name, text[max(found.start() - 150, 0):found.end() + 50])
    report = (root / "report" / "report.md").read_text()
    assert "progression (label 1) against stable or responding (label 0)" in report
    assert "RANO rating by two neuroradiologists" in report
    assert "our clinic" in report


def test_unlabelled_rows_are_counted_left_out_and_predicted(study):
    root, table, trained, _ = study
    metrics = json.loads((root / "report" / "metrics.json").read_text())
    empty = int((table["Rating3"] == "").sum())
    assert metrics["study"]["unlabelled"] == {"n": empty, "column": "Rating3",
                                              "values": {"(empty cell)": empty}}
    split = metrics["split"]
    assert split["n_train"] + split["n_test"] == len(table) - empty
    assert f"{empty} row(s) with an empty label in column Rating3" in trained.stdout
    pred = pd.read_csv(root / "pred.csv")
    assert len(pred) == len(table)  # the unrated scans too
    assert pred["p_progression"].between(0, 1).all()
    assert "risk_group" not in pred.columns and "p_pseudoprogression" not in pred.columns


def test_the_declared_rule_is_benchmarked_and_no_article_rule(study):
    root, table, trained, _ = study
    metrics = json.loads((root / "report" / "metrics.json").read_text())
    assert list(metrics["rules"]) == ["long_axis"]
    assert set(metrics["study"]["rules_left_out"]) == set(RULE_IDS)
    for rule_id in RULE_IDS:
        assert f"\n{rule_id} " not in trained.stdout  # no row of the benchmark table
    assert "The article's rules are not benchmarked" in trained.stdout
    # the 2x2 on the held-out rows, counted by hand from the raw table
    held = pd.read_csv(root / "report" / "evaluation_predictions.csv", dtype={"lesion_id": str})
    raw = table.rename(columns={"PatientID": "patient_id", "Timepoint": "lesion_id"})
    rows = held.merge(raw, on=["patient_id", "lesion_id"], how="left", validate="1:1")
    length = rows["original_shape_MajorAxisLength"]
    covered = length.notna()
    says = length >= CUT_OFF
    truth = rows["Rating3"] == "Progressive"
    m = metrics["rules"]["long_axis"]
    assert m["tp"] == int((covered & says & truth).sum())
    assert m["fp"] == int((covered & says & ~truth).sum())
    assert m["fn"] == int((covered & ~says & truth).sum())
    assert m["tn"] == int((covered & ~says & ~truth).sum())
    assert m["coverage"] == pytest.approx(covered.mean())
    assert 0 < m["coverage"] < 1
    assert metrics["study"]["declared_rules"] == [
        {"id": "long_axis", "positive_when": "`original_shape_MajorAxisLength` >= 56",
         "source": "a local cut-off"}]
    assert set(metrics["rule_comparisons"]) == {"long_axis"}
    assert set(metrics["net_benefit"]["rules"]) == {"long_axis"}
    assert set(metrics["model"]["at_prevalence"]) == {"our clinic"}


def test_the_declared_rule_round_trips_through_the_saved_model_and_predict(study):
    root, table, _, _ = study
    model = load_model(root / "model.skops")
    assert model.table_description().rules[0].positive_when == \
        "`original_shape_MajorAxisLength` >= 56"
    pred = pd.read_csv(root / "pred.csv")
    length = table["original_shape_MajorAxisLength"]
    expected = np.where(length.isna(), np.nan, (length >= CUT_OFF).astype(float))
    np.testing.assert_array_equal(pred["rule_long_axis"].to_numpy(dtype=float), expected)


def test_unused_columns_and_outcome_steps_are_stated(study):
    root, _, _, _ = study
    report = (root / "report" / "report.md").read_text()
    assert "`original_firstorder_Constant`" in report
    assert "constant (or empty) on the training rows" in report
    assert "Steps that look at the outcome" in report
    assert "Radiomic selection" in report and "inside the folds" in report
    metrics = json.loads((root / "report" / "metrics.json").read_text())
    with_or = {r["feature"] for r in metrics["feature_odds_ratios"]
               if r["odds_ratio"] is not None}
    assert "original_firstorder_F0" in with_or  # the study's own inputs have their ratio


def test_failed_fits_are_counted_per_family_without_a_warning():
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"f{i}" for i in range(6)])
    X["patient_id"] = [f"p{i}" for i in range(n)]
    y = (rng.random(n) < 0.4).astype(int)
    declared = {f"f{i}": DeclaredFeature("number", "radiomic") for i in range(6)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning, a FitFailedWarning above all, fails
        fitted = fit_calibrated(X, y, X["patient_id"].to_numpy(), declared=declared,
                                families=("logistic",))
    failed = fitted.cv_scores["logistic"]["failed_fits"]
    assert failed["reason"] == "the radiomic selection kept no feature"
    assert 0 < failed["n"] < failed["of"] and failed["dropped"] is False
    # a block that keeps nothing anywhere: every family dropped, said in one message
    constant = X.assign(**{f"f{i}": 1.0 for i in range(6)})
    with pytest.raises(UserInputError) as caught:
        fit_calibrated(constant, y, X["patient_id"].to_numpy(), declared=declared,
                       families=("logistic",))
    text = str(caught.value)
    assert ("logistic: failed: no cross-validation fit succeeded (every column of the "
            "radiomic block is constant (or empty)); family dropped") in text
    assert "Traceback" not in text
