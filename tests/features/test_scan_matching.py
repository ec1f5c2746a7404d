"""Scans are matched to lesions before anything is fitted: every lesion of either table,
the index scan's time against the lesion table's, and ids that differ only in letter case
or spaces, in every table."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

import train
from commands.run import run_command
from features.contract import similar_ids, validate_table
from features.errors import UserInputError
from features.scans import INDEX_TOLERANCE_WEEKS, read_scans
from features.synthetic.cohort import simulate_cohort


def lesion_table(n: int) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)], "lesion_id": "1",
                         "weeks_on_treatment": 8.0})


def scans_of(lesions: pd.DataFrame, index_week: float = 8.0) -> pd.DataFrame:
    """Three scans per lesion, the index at ``index_week``."""
    rows = []
    for pid in lesions["patient_id"]:
        for week, flag in ((0.0, 0), (index_week, 1), (index_week + 4, 0)):
            rows.append({"patient_id": pid, "lesion_id": "1", "weeks_on_treatment": week,
                         "volume_ml": 1.0 + week / 10, "index_scan": flag})
    return pd.DataFrame(rows)


def test_matched_tables_read_quietly():
    lesions = lesion_table(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_scans(scans_of(lesions), lesions=lesions).n_lesions == 5


def test_ten_percent_case_different_ids_are_one_error_before_any_fitting():
    lesions = lesion_table(60)
    scans = scans_of(lesions)
    changed = scans["patient_id"].isin(lesions["patient_id"][:6])
    scans.loc[changed, "patient_id"] = scans.loc[changed, "patient_id"].str.lower()
    with pytest.raises(UserInputError) as err:
        read_scans(scans, lesions=lesions)
    message = str(err.value)
    assert "6 lesion(s) of the scans table are not in the per-lesion table: p000/1" in message
    assert "6 of them differ from a lesion of the other table only in letter case" in message
    assert "e.g. p000/1 and P000/1" in message


def test_lesions_without_scans_are_one_warning_with_counts():
    lesions = lesion_table(10)
    scans = scans_of(lesions.iloc[:7])
    with pytest.warns(UserWarning, match=r"3 of 10 lesion\(s\) of the per-lesion table have no "
                                         r"scan in the scans table \(P007/1, P008/1, P009/1\)"):
        read_scans(scans, lesions=lesions)


def test_a_complete_mismatch_is_an_error():
    lesions = lesion_table(4)
    scans = scans_of(lesion_table(4).assign(patient_id=lambda d: "X" + d["patient_id"]))
    with pytest.raises(UserInputError, match="no lesion of the per-lesion table has a scan"):
        read_scans(scans, lesions=lesions)


@pytest.mark.parametrize("shift, fails", [(INDEX_TOLERANCE_WEEKS, False),
                                          (INDEX_TOLERANCE_WEEKS + 0.5, True),
                                          (-INDEX_TOLERANCE_WEEKS - 0.5, True)])
def test_index_time_agrees_with_the_lesion_table(shift, fails):
    lesions = lesion_table(3)
    scans = scans_of(lesions, index_week=8.0 + shift)
    if not fails:
        read_scans(scans, lesions=lesions)
        return
    with pytest.raises(UserInputError, match=rf"3 lesion\(s\) have an index scan more than "
                                             rf"{INDEX_TOLERANCE_WEEKS:g} weeks from"):
        read_scans(scans, lesions=lesions)


def test_an_index_before_treatment_is_an_error():
    lesions = lesion_table(2).assign(weeks_on_treatment=-1.0)
    scans = scans_of(lesions, index_week=-1.0)
    scans["weeks_on_treatment"] -= 4  # scans at -5, -1 (index) and +3 weeks
    scans.loc[scans["index_scan"] == 1, "weeks_on_treatment"] = -1.0
    with pytest.raises(UserInputError, match="index scan before the start of treatment"):
        read_scans(scans, lesions=lesions)


def test_ids_differing_in_case_or_spaces_are_warned_about_in_every_table():
    assert similar_ids(pd.Series(["P1", "p1", " P2", "P2", "P3"])) == [("P1", "p1"),
                                                                      (" P2", "P2")]
    lesions = lesion_table(3)
    scans = scans_of(lesions)
    scans.loc[0, "patient_id"] = "p000"
    with pytest.warns(UserWarning, match="differ only in letter case or surrounding spaces"):
        with pytest.raises(UserInputError):
            read_scans(scans, lesions=lesions)
    table = simulate_cohort(20, seed=0)
    table.loc[1, "patient_id"] = table.loc[0, "patient_id"].lower()
    with pytest.warns(UserWarning, match=r"1 patient_id value\(s\) are written in several ways"):
        validate_table(table)


def test_train_refuses_case_different_scans_before_fitting(tmp_path):
    cohort = simulate_cohort(60, seed=0)
    lesions = tmp_path / "l.csv"
    cohort.to_csv(lesions, index=False)
    table = cohort[["patient_id", "weeks_on_treatment"]].copy()
    table["volume_ml"], table["index_scan"] = 2.0, 1
    table["patient_id"] = np.where(np.arange(len(table)) % 10 == 0,
                                   table["patient_id"].str.lower(), table["patient_id"])
    scans = tmp_path / "s.csv"
    table.to_csv(scans, index=False)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_command(train.main, [str(a) for a in (
            "--data", lesions, "--scans", scans, "--out", tmp_path / "m.skops",
            "--no-progress")])
    assert code == 2 and "not in the per-lesion table" in err.getvalue()
    assert "only in letter case" in err.getvalue()
    assert not (tmp_path / "m.skops").exists()
