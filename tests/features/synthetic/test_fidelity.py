"""The simulator against the article: every honoured figure within its target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.article import FIGURES
from features.synthetic.cohort import fidelity_table, main, to_markdown
from features.synthetic.parameters import PUBLISHED

COLUMNS = ["figure_id", "quantity", "article_value", "article_ci_or_range", "simulated_value",
           "simulated_ci_low", "simulated_ci_high", "target", "target_basis", "within_target",
           "honoured", "note"]
REQUIRED = {"P1", "P2", "P3", "C1", "C2", "C3", "C4", "Q1b", "Q1a", "Q1a_spec", "M3", "M4",
            "D1", "D2", "D3", "D4", "D5", "Q1c", "Q1d", "T4"}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return fidelity_table(n=100_000, seed=0)


def test_columns_and_figures(table):
    assert list(table.columns) == COLUMNS
    assert REQUIRED <= set(table["figure_id"])
    assert set(table["figure_id"]) <= set(FIGURES) | set(PUBLISHED)


def test_every_honoured_figure_is_within_target(table):
    honoured = table[table["honoured"]]
    off = honoured[~honoured["within_target"]]
    assert off.empty, off[["figure_id", "quantity", "simulated_value", "target"]].to_string()
    for row in honoured.itertuples():
        low, high = row.target
        assert low <= row.simulated_value <= high


def test_contradicted_figures_are_flagged_with_a_note(table):
    flagged = table[~table["honoured"]]
    assert {"D1", "M4", "Q1c"} <= set(flagged["figure_id"])
    assert (flagged["note"].str.len() > 20).all()
    d1 = flagged[flagged["figure_id"] == "D1"].iloc[0]
    assert "prevalence of" in d1["note"] and not d1["within_target"]
    assert "D3" in flagged[flagged["figure_id"] == "M4"].iloc[0]["note"]
    assert "M3" in flagged[flagged["figure_id"] == "Q1c"].iloc[0]["note"]


def test_confidence_intervals_hold_the_value(table):
    assert (table["simulated_ci_low"] <= table["simulated_value"]).all()
    assert (table["simulated_value"] <= table["simulated_ci_high"]).all()
    d3 = table[table["figure_id"] == "D3"].iloc[0]
    assert d3["target"] == FIGURES["D3"].ci
    assert np.isclose(d3["article_value"], FIGURES["D3"].value)


def test_markdown_and_command_line(table, capsys):
    md = to_markdown(table)
    assert md.count("\n") == len(table) + 1 and md.startswith("| figure_id")
    assert main(["--fidelity", "--n", "20000"]) == 0
    assert "| D3 |" in capsys.readouterr().out


def test_followup_figures_come_from_simulated_followup(table):
    c4 = table[table["figure_id"] == "C4"].iloc[0]
    assert c4["article_value"] == FIGURES["C4"].value
    assert c4["target"] == pytest.approx((0.715, 0.755)) and c4["within_target"]
    assert "8-12 weeks after the index scan" in c4["quantity"]
    t4 = table[table["figure_id"] == "T4"].iloc[0]
    assert t4["simulated_ci_low"] > 1 and "true progression" in t4["note"]
    c3 = table[(table["figure_id"] == "C3") & table["quantity"].str.contains("follow-up")]
    assert len(c3) == 2 and c3["within_target"].all()


def test_followup_measurement_and_course_figures_beside_the_published_ones(table):
    rows = table.set_index("figure_id")
    factor = rows.loc["contour_factor"]
    assert factor["article_value"] == PUBLISHED["contour_factor"].value
    assert factor["honoured"] and factor["within_target"]
    assert "doi:" in factor["note"]
    icc = {m: rows.loc[f"ICC_{m}"] for m in ("volume", "2d", "1d")}
    assert [icc[m]["article_value"] for m in icc] == [0.97, 0.61, 0.42]
    # the order of the methods is kept, not the ICCs themselves (flagged, with the reason)
    assert icc["volume"]["simulated_value"] > icc["2d"]["simulated_value"] \
        > icc["1d"]["simulated_value"]
    assert not any(icc[m]["honoured"] for m in icc)
    assert all("spread" in icc[m]["note"] for m in icc)
    rule = rows.loc["volumetric_rule"]
    assert rule["article_value"] == 0.49 and not rule["honoured"]
    assert 0 < rows.loc["PP_late", "simulated_value"] < 1
