"""Follow-up scans: reading and checking a scans table, changes over time, the simulated
follow-up and the rules over time (T4 trend, iRANO confirmation, C4 shrinkage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.article import FIGURES, THRESHOLDS
from features.choices import LANDMARK_WEEKS
from features.description import TableDescription
from features.errors import UserInputError
from features.scans import (
    CANONICAL,
    ScansTable,
    baseline_volume,
    change_from_baseline,
    change_from_index,
    read_scans,
)
from models.rules import RULE_IDS
from models.scan_rules import (
    SCAN_RULE_IDS,
    apply_scan_rules,
    c4_shrinkage,
    describe_scan_rules,
    irano_confirmation,
    scan_rules_at_landmarks,
    t4_perfusion_diffusion_trend,
)

NAN = np.nan
RISE = THRESHOLDS["rcbv_rise"].value           # %
FALL = THRESHOLDS["adc_fall"].value            # %
GROW_VOL = THRESHOLDS["confirm_volume_growth"].value
GROW_SPD = THRESHOLDS["confirm_spd_growth"].value


def scans(rows: list[tuple], columns=("patient_id", "lesion_id", "weeks_on_treatment",
                                       "index_scan", "volume_ml", "rcbv", "adc")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns))


def by_lesion(series: pd.Series) -> dict[str, float]:
    return {p: v for (p, _), v in series.items()}


def same(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert (np.isnan(got[k]) and np.isnan(v)) or got[k] == v, (k, got[k], v)


# --------------------------------------------------------------------------- reading


def test_canonical_form_order_and_weeks_from_index():
    df = scans([("B", "1", 14.0, 0, 2.0, NAN, NAN), ("A", "1", 10.0, 0, 1.2, 1.1, 1.0),
                ("A", "1", 6.0, 1, 1.5, 1.3, 1.1), ("B", "1", 6.0, 1, 1.0, NAN, NAN),
                ("A", "1", 2.0, 0, 1.0, NAN, NAN)])
    s = read_scans(df)
    t = s.table
    assert list(t.columns) == [*CANONICAL, "rcbv", "adc"]
    assert list(t["patient_id"]) == ["B", "B", "A", "A", "A"]  # order of first appearance
    assert list(t["weeks_from_index"]) == [0.0, 8.0, -4.0, 0.0, 4.0]
    assert set(t["size_kind"]) == {"volume_ml"} and t["index_scan"].sum() == 2
    assert (s.n_patients, s.n_lesions) == (2, 2)
    assert list(df["patient_id"]) == ["B", "A", "A", "B", "A"]  # input untouched


def test_every_problem_is_reported_at_once():
    df = pd.DataFrame({
        "patient_id": ["P1", "P1", "P1", "P2", "P2", "", "P3", "P3", "P4"],
        "lesion_id": ["1"] * 9,
        "weeks_on_treatment": [6, 6, 10, 6, "x", 8, 6, 10, 600],
        "index_scan": [1, 0, 0, 1, 1, 1, 0, 0, "maybe"],
        "volume_ml": [1.0, 1.1, -0.5, 1.0, 1.0, 1.0, 1.0, NAN, 1.0],
        "spd_mm2": [NAN, NAN, NAN, NAN, NAN, NAN, NAN, 90.0, NAN],
        "rcbv": [1.2, 1.2, 45.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "symptomatic": [0, 0, 2, 0, 0, 0, 0, 0, 0],
    })
    with pytest.raises(UserInputError) as err:
        read_scans(df)
    msg = str(err.value)
    for part in ("'weeks_on_treatment' (weeks) must be numeric", "'x'",
                 "'weeks_on_treatment' should be in weeks within [-52, 520]",
                 "'volume_ml' should be in ml above 0", "'rcbv' should be in ratio",
                 "'symptomatic' must be 0 or 1", "'patient_id' is empty in",
                 "same lesion at the same time", "P1/1 at 6 weeks",
                 "measured as volume_ml at some scans and as spd_mm2", "P3/1",
                 "no index scan", "several index scans", "P2/1", "'maybe'"):
        assert part in msg, part
    assert msg.count("\n  - ") >= 11


def test_missing_columns_and_no_index_are_named():
    df = pd.DataFrame({"patient_id": ["P1"], "vol": [1.0]})
    with pytest.warns(UserWarning, match="vol"):
        with pytest.raises(UserInputError) as err:
            read_scans(df)
    assert "no 'weeks_on_treatment' column" in str(err.value)
    assert "no 'index_scan' column" in str(err.value)
    with pytest.warns(UserWarning, match="vol"):
        with pytest.raises(UserInputError, match="rename: 'volume' .* neither a scan column"):
            read_scans(df, rename={"vol": "volume"})


def test_index_from_the_per_lesion_table():
    df = scans([("A", "1", 2.0, NAN, 1.0, NAN, NAN), ("A", "1", 6.5, NAN, 1.5, NAN, NAN),
                ("A", "1", 10.5, NAN, 1.4, NAN, NAN), ("B", "1", 5.0, NAN, 1.0, NAN, NAN)]
               ).drop(columns="index_scan")
    lesions = pd.DataFrame({"patient_id": ["A", "B"], "weeks_on_treatment": [6.0, 3.0],
                            "volume_change_pct": [50.0, 20.0]})
    t = read_scans(df, lesions=lesions).table
    assert list(t["index_scan"]) == [0, 1, 0, 1]
    assert list(t["weeks_from_index"]) == [-4.5, 0.0, 4.0, 0.0]
    late = lesions.assign(weeks_on_treatment=[12.0, 3.0])
    with pytest.raises(UserInputError, match="no scan at or after"):
        read_scans(df, lesions=late)
    with pytest.raises(UserInputError, match="not in the per-lesion table"):
        read_scans(df, lesions=lesions.iloc[:1])


def test_a_users_long_table_through_a_description():
    """Own names for patient, lesion and rCBV (the description), and for the time, the size
    and the index flag (rename); extra columns named under ignore, the label dropped."""
    desc = TableDescription.from_dict({
        "patient": "Pat", "lesion": "Les", "rename": {"rCBV_max": "rcbv", "KPS_x": "adc"},
        "label": {"column": "status", "positive": "pp", "negative": "tp"},
        "ignore": ["comment*"]})
    df = pd.DataFrame({
        "Pat": ["007", "007", "007", "007"], "Les": ["a", "a", "b", "b"],
        "wk": [6, 10, 7, 11], "first_pd": ["yes", "", "yes", "no"],
        "SPD": [100.0, 130.0, 50.0, 52.0], "rCBV_max": [2.0, 2.6, 1.2, 1.1],
        "status": ["tp", "tp", "pp", "pp"], "comment_radiologist": ["", "", "", ""]})
    s = read_scans(df, desc, rename={"wk": "weeks_on_treatment", "SPD": "spd_mm2",
                                     "first_pd": "index_scan"})
    t = s.table
    assert list(t["patient_id"]) == ["007"] * 4 and list(t["lesion_id"]) == ["a", "a", "b", "b"]
    assert list(t["size_kind"]) == ["spd_mm2"] * 4 and "rcbv" in t.columns
    assert "adc" not in t.columns  # KPS_x is not in this table: the description's pair is skipped
    np.testing.assert_allclose(change_from_index(s, "size"), [0, 30, 0, 4])
    assert irano_confirmation(s).xs("007").to_dict() == {"a": 0.0, "b": 1.0}


def test_scan_column_names_given_in_the_description():
    """``scans: rename:`` in the description names the scan columns, as rename= does; it is
    kept through to_dict, and a name that is no scan column is refused with a suggestion."""
    desc = TableDescription.from_dict({
        "patient": "Pat", "scans": {"rename": {"wk": "weeks_on_treatment", "vol": "volume_ml",
                                               "first_pd": "index_scan"}}})
    assert TableDescription.from_dict(desc.to_dict()) == desc
    df = pd.DataFrame({"Pat": ["p1", "p1", "p2", "p2"], "wk": [6, 10, 7, 11],
                       "first_pd": [1, 0, 1, 0], "vol": [2.0, 3.0, 4.0, 2.0]})
    t = read_scans(df, desc).table
    assert list(t["size_kind"]) == ["volume_ml"] * 4
    np.testing.assert_allclose(t["weeks_from_index"], [0, 4, 0, 4])
    with pytest.raises(UserInputError, match="scans.rename.vol: 'volume' is not a scan "
                                             "column.*Did you mean 'volume_ml'"):
        TableDescription.from_dict({"scans": {"rename": {"vol": "volume"}}})
    with pytest.raises(UserInputError, match="rename: the scans table has no column 'wk'"):
        read_scans(df.drop(columns="wk"), desc)


def test_baseline_from_the_index_row_the_lesion_table_or_a_scan_before_treatment():
    df = pd.DataFrame({
        "patient_id": ["A", "A", "B", "B", "C", "C", "D"],
        "weeks_on_treatment": [6, 14, 6, 14, 0, 6, 6], "index_scan": [1, 0, 1, 0, 0, 1, 1],
        "volume_ml": [1.5, 0.9, 2.0, 1.8, 0.8, 1.2, 1.0],
        "volume_change_pct": [50.0, NAN, NAN, NAN, NAN, NAN, NAN]})
    s = read_scans(df)
    lesions = pd.DataFrame({"patient_id": ["B"], "volume_change_pct": [100.0]})
    base = by_lesion(baseline_volume(s, lesions))
    same(base, {"A": 1.0, "B": 1.0, "C": 0.8, "D": NAN})
    np.testing.assert_allclose(change_from_baseline(s, lesions),
                               [50, -10, 100, 80, 0, 50, NAN])


def test_as_of_keeps_every_lesion_and_refuses_a_later_time():
    s = read_scans(scans([("A", "1", 6, 1, 1.0, NAN, NAN), ("A", "1", 10, 0, 1.1, NAN, NAN)]))
    cut = s.as_of(0)
    assert len(cut.table) == 1 and cut.n_lesions == 1 and isinstance(cut, ScansTable)
    with pytest.raises(ValueError, match="cut at 0"):
        cut.as_of(4)


# --------------------------------------------------------------------------- rules


def test_t4_trend_thresholds_abstention_and_until_week():
    r, a = 2.0, 1.0
    df = scans([
        ("up", "1", 6, 1, 1, r, a), ("up", "1", 10, 0, 1, r * (1 + RISE / 100) + 0.01, a),
        ("edge", "1", 6, 1, 1, r, a), ("edge", "1", 10, 0, 1, r * (1 + RISE / 100), a),
        ("adc", "1", 6, 1, 1, r, a), ("adc", "1", 10, 0, 1, r, a * (1 + FALL / 100) - 0.01),
        ("late", "1", 6, 1, 1, r, a), ("late", "1", 10, 0, 1, r, a),
        ("late", "1", 14, 0, 1, r * 2, a),
        ("noadc", "1", 6, 1, 1, r, a), ("noadc", "1", 10, 0, 1, r * 3, NAN),
        ("noidx", "1", 6, 1, 1, NAN, a), ("noidx", "1", 10, 0, 1, r, a)])
    s = read_scans(df)
    same(by_lesion(t4_perfusion_diffusion_trend(s)),
         {"up": 0.0, "edge": 1.0, "adc": 0.0, "late": 0.0, "noadc": NAN, "noidx": NAN})
    same(by_lesion(t4_perfusion_diffusion_trend(s, until_week=4)),
         {"up": 0.0, "edge": 1.0, "adc": 0.0, "late": 1.0, "noadc": NAN, "noidx": NAN})
    assert by_lesion(t4_perfusion_diffusion_trend(s, as_of=4))["late"] == 1.0
    assert np.isnan(list(by_lesion(t4_perfusion_diffusion_trend(s, as_of=0)).values())).all()
    no_perfusion = read_scans(df.drop(columns=["rcbv"]))
    assert t4_perfusion_diffusion_trend(no_perfusion).isna().all()


def test_irano_confirmation_window_thresholds_and_as_of():
    low, high = FIGURES["iRANO"].range
    v = 1.0
    rows = [
        ("grow", "1", 6, 1, v), ("grow", "1", 6 + low, 0, v * (1 + GROW_VOL / 100)),
        ("slow", "1", 6, 1, v), ("slow", "1", 6 + low, 0, v * 1.3),
        ("slow", "1", 6 + high, 0, v * (1 + GROW_VOL / 100) * 1.01),
        ("early", "1", 6, 1, v), ("early", "1", 6 + low - 1, 0, v * 3),
        ("after", "1", 6, 1, v), ("after", "1", 6 + high + 4, 0, v * 3),
    ]
    s = read_scans(scans(rows, ("patient_id", "lesion_id", "weeks_on_treatment", "index_scan",
                                "volume_ml")))
    same(by_lesion(irano_confirmation(s)), {"grow": 0.0, "slow": 0.0, "early": NAN, "after": NAN})
    same(by_lesion(irano_confirmation(s, as_of=low)),
         {"grow": 0.0, "slow": 1.0, "early": NAN, "after": NAN})
    assert irano_confirmation(s, as_of=0).isna().all()
    spd = read_scans(pd.DataFrame({
        "patient_id": ["a", "a", "b", "b"], "weeks_on_treatment": [6, 10, 6, 10],
        "index_scan": [1, 0, 1, 0],
        "spd_mm2": [100.0, 100.0 + GROW_SPD, 100.0, 100.0 + GROW_SPD - 0.1]}))
    same(by_lesion(irano_confirmation(spd)), {"a": 0.0, "b": 1.0})


def test_c4_shrinkage_window_baseline_and_as_of():
    low, high = FIGURES["C4"].range
    cols = ("patient_id", "lesion_id", "weeks_on_treatment", "index_scan", "volume_ml",
            "volume_change_pct")
    rows = [
        ("back8", "1", 6, 1, 1.5, 50.0), ("back8", "1", 6 + low, 0, 1.0, NAN),
        ("back12", "1", 6, 1, 1.5, 50.0), ("back12", "1", 6 + low, 0, 1.2, NAN),
        ("back12", "1", 6 + high, 0, 0.9, NAN),
        ("stays", "1", 6, 1, 1.5, 50.0), ("stays", "1", 6 + low, 0, 1.01, NAN),
        ("only16", "1", 6, 1, 1.5, 50.0), ("only16", "1", 6 + high + 4, 0, 0.5, NAN),
        ("nobase", "1", 6, 1, 1.5, NAN), ("nobase", "1", 6 + low, 0, 0.5, NAN),
    ]
    s = read_scans(scans(rows, cols))
    same(by_lesion(c4_shrinkage(s)),
         {"back8": 1.0, "back12": 1.0, "stays": 0.0, "only16": NAN, "nobase": NAN})
    same(by_lesion(c4_shrinkage(s, as_of=low)),
         {"back8": 1.0, "back12": 0.0, "stays": 0.0, "only16": NAN, "nobase": NAN})
    assert c4_shrinkage(s, as_of=low - 4).isna().all()
    lesions = pd.DataFrame({"patient_id": ["nobase"], "volume_change_pct": [100.0]})
    assert by_lesion(c4_shrinkage(s, lesions=lesions))["nobase"] == 1.0


def test_rule_tables_and_landmarks():
    assert LANDMARK_WEEKS == (0.0, 4.0, 8.0, 12.0)
    assert set(SCAN_RULE_IDS) == {"T4_perfusion_diffusion_trend", "iRANO_confirmation",
                                  "C4_shrinkage"}
    assert not set(SCAN_RULE_IDS) & set(RULE_IDS)
    d = describe_scan_rules()
    assert list(d["rule"]) == list(SCAN_RULE_IDS)
    for rule, figure in zip(d["rule"], d["figure"], strict=True):
        assert rule.split("_")[0] in FIGURES and figure.split(",")[0] in FIGURES
    s = read_scans(scans([("A", "1", 6, 1, 1.5, 2.0, 1.0), ("A", "1", 10, 0, 1.6, 2.0, 1.0)]))
    lm = scan_rules_at_landmarks(s)
    assert list(lm.columns) == ["patient_id", "lesion_id", "as_of_week", *SCAN_RULE_IDS]
    assert list(lm["as_of_week"]) == list(LANDMARK_WEEKS)
    assert lm.iloc[0][list(SCAN_RULE_IDS)].isna().all()  # nothing to go on at the index
    assert lm.iloc[1]["T4_perfusion_diffusion_trend"] == 1.0
    with pytest.raises(ValueError, match="unknown rule"):
        apply_scan_rules(s, rule_ids=["nope"])
