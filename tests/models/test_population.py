"""Recognising tables from outside the training population (models.population)."""

from __future__ import annotations

import itertools
import json
import warnings
from math import comb

import numpy as np
import pandas as pd
import pytest

from features.contract import FEATURE_COLUMNS
from features.synthetic import simulate_cohort
from models.population import (
    SHOWN_COLUMNS,
    Shift,
    TrainingProfile,
    chance_beyond,
    warn_population_shift,
)

FEATURES = list(FEATURE_COLUMNS)


@pytest.fixture(scope="module")
def train_table() -> pd.DataFrame:
    return simulate_cohort(2000, cohort="melanoma", seed=0)


@pytest.fixture(scope="module")
def profile(train_table) -> TrainingProfile:
    return TrainingProfile.from_table(train_table, FEATURES)


def recorded(profile: TrainingProfile, table: pd.DataFrame) -> tuple[list[Shift], list]:
    """The shifts and every warning issued by one :func:`warn_population_shift` call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shifts = warn_population_shift(profile, table, "new.csv")
    return shifts, caught


def test_profile_holds_ranges_percentiles_presence_and_categories():
    table = pd.DataFrame({"rcbv": [1.0, 2.0, np.nan, 4.0], "cancer_type": [" Melanoma", "nsclc",
                                                                         None, "melanoma"],
                          "site": ["a", "b", "a", ""]})
    p = TrainingProfile.from_table(table, ["rcbv", "cancer_type", "site", "adc"])
    assert p.n_rows == 4
    assert p.present == {"rcbv": 0.75, "cancer_type": 0.75, "site": 0.75, "adc": 0.0}
    r = p.numeric["rcbv"]
    assert (r.low, r.high) == (1.0, 4.0)
    assert r.p01 == pytest.approx(np.percentile([1, 2, 4], 1))
    assert r.p99 == pytest.approx(np.percentile([1, 2, 4], 99))
    assert p.numeric["adc"].low is None
    assert p.categories == {"cancer_type": ["melanoma", "nsclc"], "site": ["a", "b"]}
    assert p.missing_share("rcbv") == 0.25
    assert p.columns == ["rcbv", "cancer_type", "site", "adc"]


def test_nsclc_table_is_an_unseen_category_of_every_row(profile):
    nsclc = simulate_cohort(150, cohort="nsclc", seed=1)
    shifts = profile.compare(nsclc)
    assert [(s.kind, s.column, s.n_rows) for s in shifts] == \
        [("unseen_category", "cancer_type", 150)]
    assert "'nsclc' (150)" in shifts[0].detail


def test_mixed_table_counts_only_the_unseen_rows(profile):
    mixed = simulate_cohort(400, cohort="mixed", seed=2)
    n_nsclc = int((mixed["cancer_type"] == "nsclc").sum())
    assert 0 < n_nsclc < 400
    (shift,) = [s for s in profile.compare(mixed) if s.kind == "unseen_category"]
    assert shift.n_rows == n_nsclc


def test_categories_compare_as_stripped_lower_case_text(profile, train_table):
    table = train_table.iloc[:50].copy()
    table["cancer_type"] = [" MELANOMA ", "Melanoma"] * 25
    assert profile.compare(table) == []


def test_values_beyond_the_range_are_counted_exactly(profile, train_table):
    table = train_table.iloc[:300].copy()  # training rows: every value within the range
    r = profile.numeric["rcbv"]
    rows = table.index[table["rcbv"].notna()]
    table.loc[rows[:5], "rcbv"] = r.high * 3
    table.loc[rows[5:7], "rcbv"] = r.low / 3
    (shift,) = profile.compare(table)
    assert (shift.kind, shift.column, shift.n_rows) == ("out_of_range", "rcbv", 7)
    assert "(2 below, 5 above;" in shift.detail


def test_one_value_far_beyond_the_range_is_reported_one_just_beyond_is_not(profile,
                                                                            train_table):
    row = train_table.iloc[[0]].copy()
    row["adc"] = profile.numeric["adc"].high * 1.01
    assert profile.compare(row) == []  # chance 2/(n+1) for a row of the training population
    row["adc"] = profile.numeric["adc"].high * 10
    assert [(s.kind, s.column, s.n_rows) for s in profile.compare(row)] == \
        [("out_of_range", "adc", 1)]


def test_columns_the_model_relied_on_missing_entirely(profile, train_table):
    table = train_table.iloc[:200].drop(columns=["rcbv", "cd8_tumor_ratio"])
    table["adc"] = np.nan
    shifts = profile.compare(table)
    # cd8_tumor_ratio was present in under 20% of training rows: not relied on
    assert [(s.kind, s.column, s.n_rows) for s in shifts] == \
        [("column_missing", "rcbv", 200), ("column_missing", "adc", 200)]
    assert "absent from the table" in shifts[0].detail
    assert "empty in every row" in shifts[1].detail


def test_column_present_in_far_fewer_rows(profile, train_table):
    table = train_table.iloc[:200].copy()
    table.loc[table.index[:180], "weeks_on_treatment"] = np.nan
    assert [(s.kind, s.column, s.n_rows) for s in profile.compare(table)] == \
        [("mostly_missing", "weeks_on_treatment", 180)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 300])
def test_same_population_gives_no_warning(profile, n, seed):
    shifts, caught = recorded(profile, simulate_cohort(n, cohort="melanoma", seed=seed))
    assert shifts == [] and caught == []


def test_exactly_one_warning_per_call(profile):
    nsclc = simulate_cohort(150, cohort="nsclc", seed=4).drop(columns=["rcbv"])
    nsclc.loc[nsclc.index[:3], "adc"] = 40.0
    for _ in range(2):
        shifts, caught = recorded(profile, nsclc)
        assert len(caught) == 1 and caught[0].category is UserWarning
        assert {s.kind for s in shifts} == {"unseen_category", "out_of_range", "column_missing"}
    message = str(caught[0].message)
    assert message.startswith("new.csv: 150 of 150 row(s)")
    for text in ("cancer_type", "adc", "rcbv", "miscalibrated", "train.py --update",
                 "Your own data"):
        assert text in message


def test_warning_names_a_few_columns_then_how_many_more():
    names = [f"x{i}" for i in range(20)]
    train = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 20)), columns=names)
    p = TrainingProfile.from_table(train, names)
    shifts, caught = recorded(p, pd.DataFrame({"other": range(10)}))
    assert len(shifts) == 20 and len(caught) == 1
    message = str(caught[0].message)
    assert f"x{SHOWN_COLUMNS - 1})" in message and f"x{SHOWN_COLUMNS}" not in message
    assert f"... and {20 - SHOWN_COLUMNS} more" in message


def test_round_trip_through_plain_types(profile, train_table):
    table = train_table.assign(empty=np.nan)
    p = TrainingProfile.from_table(table, [*FEATURES, "empty"])
    data = json.loads(json.dumps(p.to_dict()))
    back = TrainingProfile.from_dict(data)
    assert back == p
    nsclc = simulate_cohort(100, cohort="nsclc", seed=5)
    assert back.compare(nsclc) == p.compare(nsclc)


def test_from_dict_rejects_what_to_dict_did_not_write(profile):
    with pytest.raises(ValueError, match="version"):
        TrainingProfile.from_dict({"version": 99})
    data = profile.to_dict()
    del data["numeric"]["rcbv"]
    with pytest.raises(ValueError, match="exactly one"):
        TrainingProfile.from_dict(data)


def test_chance_beyond_matches_enumerating_every_order():
    n, m = 3, 4
    orders = list(itertools.combinations(range(n + m), n))  # training positions
    outside = [min(pos) + (n + m - 1 - max(pos)) for pos in orders]
    for k in range(m + 2):
        assert chance_beyond(k, m, n) == pytest.approx(
            sum(o >= k for o in outside) / comb(n + m, n))
    assert chance_beyond(1, 1, 2799) == pytest.approx(2 / 2800)


def test_long_tailed_columns_outside_the_contract_are_judged_by_count_alone():
    rng = np.random.default_rng(1)
    names = [f"t1c_original_glcm_F{i}" for i in range(30)]
    p = TrainingProfile.from_table(
        pd.DataFrame(rng.lognormal(sigma=1.5, size=(2000, 30)), columns=names), names)
    new = pd.DataFrame(rng.lognormal(sigma=1.5, size=(500, 30)), columns=names)
    assert p.compare(new) == []
    new.iloc[:10, 0] = p.numeric[names[0]].high * 2
    assert [(s.kind, s.column, s.n_rows) for s in p.compare(new)] == \
        [("out_of_range", names[0], 10)]
