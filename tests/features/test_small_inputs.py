"""Smaller ways a table goes quietly wrong: data on another sheet, a column empty
everywhere, thousands separators, and messages that would print the home folder."""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
import pandas as pd
import pytest

from commands.run import run_command
from features import extract
from features.contract import validate_table
from features.errors import UserInputError
from features.synthetic.cohort import simulate_cohort
from features.tables import read_table
from models.rules import RULES
from models.training import describe_table


def test_a_workbook_with_data_on_its_second_sheet(tmp_path):
    path = tmp_path / "t.xlsx"
    data = simulate_cohort(20, seed=0)
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"note": ["exported 2026-01-01"]}).to_excel(book, sheet_name="About",
                                                                 index=False)
        data.to_excel(book, sheet_name="Data", index=False)
    with pytest.warns(UserWarning, match=r"has 2 sheets \('About', 'Data'\); the first, "
                                         r"'About', was read. Choose another with --sheet"):
        assert list(read_table(path).columns) == ["note"]
    for sheet in ("Data", "1", 1):
        assert len(read_table(path, sheet=sheet)) == 20
    with pytest.raises(UserInputError, match="no sheet 'Other'.*give --sheet one of"):
        read_table(path, sheet="Other")
    csv = tmp_path / "t.csv"
    data.to_csv(csv, index=False)
    with pytest.raises(UserInputError, match="--sheet Data is for an .xlsx workbook"):
        read_table(csv, sheet="Data")


def test_a_column_empty_everywhere_names_the_rules_it_disables():
    table = simulate_cohort(60, seed=0)
    table["rcbv"] = np.nan
    expected = sorted(r for r, spec in RULES.items() if "rcbv" in spec.needs)
    assert expected == ["D1_perfusion_diffusion", "Q1b_perfusion", "T5_low_risk"]
    with pytest.warns(UserWarning, match="empty in every row") as caught:
        describe_table(table, source="t.csv")
    message = next(str(w.message) for w in caught if "empty in every row" in str(w.message))
    assert f"rcbv (disables {', '.join(expected)})" in message
    assert "Q1_four_part" not in message  # it still decides from PET and ctDNA


def test_thousands_separators_are_named_not_a_decimal_comma():
    table = simulate_cohort(20, seed=0)
    table["volume_change_pct"] = [f"{1000 + 12.5 * i:,.1f}" for i in range(20)]  # 1,000.0
    with pytest.raises(UserInputError) as err:
        validate_table(table)
    assert "'1,000.0' holds a thousands separator (',' between groups of three digits)" \
        in str(err.value)
    assert "--decimal" not in str(err.value)
    table["volume_change_pct"] = ["1.000,5"] * 20
    with pytest.raises(UserInputError, match=r"thousands separator \('\.' between"):
        validate_table(table)


def test_messages_write_the_home_folder_as_a_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    home = str(tmp_path)

    def main(argv):
        raise UserInputError(f"file not found: {home}{os.sep}scans{os.sep}a.nii.gz")

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run_command(main) == 2
    assert f"~{os.sep}scans{os.sep}a.nii.gz" in err.getvalue() and home not in err.getvalue()
    manifest = tmp_path / "m.csv"
    manifest.write_text("patient_id,mask,t1c\np1,~/none_mask.nii.gz,~/none_t1c.nii.gz\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = run_command(extract.main, ["--manifest", str(manifest), "--out",
                                          str(tmp_path / "f.csv"), "--no-cache", "--quiet"])
    assert code == 1 and "~/none_" in out.getvalue() and home not in out.getvalue()
