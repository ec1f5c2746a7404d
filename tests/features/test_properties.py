"""Properties over drawn inputs (hypothesis): tables drawn from the column contract, spoilt
at random, either validate or raise the one clear :class:`UserInputError`, never another
exception; the statistics keep proportions and intervals in 0-1 with the estimate inside,
do not depend on the order of the rows, and give a perfect classifier PPV and NPV of 1.

Example counts are small (``max_examples``) so the file runs in seconds. No example
database is written (``database=None``): a failure prints the example to reproduce it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from features.contract import COLUMNS, ID, LABEL, LESION, MISSING_MARKERS, validate_table
from features.errors import UserInputError
from models.statistics import (
    auc_with_ci,
    binary_metrics,
    restate_at_prevalence,
    wilson_ci,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FEATURES = [c for c in COLUMNS if c.kind in ("number", "binary", "category")]
NUMBERS = [c for c in COLUMNS if c.kind == "number"]
CHECKED = [c for c in COLUMNS if c.kind in ("number", "binary")]
TABLES = settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
STATS = settings(max_examples=100, deadline=None, database=None)
#: Texts no number column may read as a number (nor as an empty cell).
NOT_NUMBERS = st.one_of(
    st.sampled_from(["<0.5", ">100", "1,2", "high", "n.d.", "?", "yes", "12 %", "1.2.3"]),
    st.text(max_size=8).map(lambda t: "x" + t))


# --------------------------------------------------------------------------- contract tables


def cells(col) -> st.SearchStrategy:
    """A valid cell of contract column ``col``, or an empty one."""
    empty = st.sampled_from([None, np.nan, ""])
    if col.kind == "binary":
        return st.one_of(st.sampled_from([0, 1, 0.0, 1.0, "1", " 0 "]), empty)
    if col.kind == "category":
        return st.one_of(st.sampled_from(["melanoma", "NSCLC ", "other"]), empty)
    number = st.floats(col.low, col.high, allow_nan=False)
    return st.one_of(number, number.map(lambda v: f" {v!r} "), empty)


@st.composite
def contract_tables(draw) -> tuple[pd.DataFrame, bool]:
    """A valid table: unique patient ids (or repeated ones, numbered as lesions), a subset
    of the contract's feature columns with valid values, and a 0/1 label with both
    classes; and whether the label is required."""
    n = draw(st.integers(2, 12))
    ids = [f"p{i}" for i in draw(st.lists(st.integers(0, 30), min_size=n, max_size=n,
                                          unique=True))]
    if draw(st.booleans()):  # several lesions of a patient, without a lesion_id column
        ids[-1] = ids[0]
    columns = draw(st.lists(st.sampled_from(FEATURES), max_size=len(FEATURES), unique=True))
    data: dict = {ID: ids}
    for col in columns:
        data[col.name] = draw(st.lists(cells(col), min_size=n, max_size=n))
    labels = [0, 1] + draw(st.lists(st.sampled_from([0, 1]), min_size=n - 2, max_size=n - 2))
    data[LABEL] = draw(st.permutations(labels))
    return pd.DataFrame(data), draw(st.booleans())


def fraction_like(df: pd.DataFrame) -> bool:
    """Whether a percentage column holds what the contract reads as fractions."""
    for col in NUMBERS:
        if col.unit == "%" and col.name in df:
            v = pd.to_numeric(df[col.name].astype(str).str.strip(), errors="coerce").dropna()
            if len(v) >= 5 and (v.abs() <= 1).all() and (v != v.round()).any():
                return True
    return False


@TABLES
@given(contract_tables())
def test_valid_tables_validate(drawn):
    df, require_label = drawn
    before = df.copy()
    try:
        out = validate_table(df, require_label=require_label)
    except UserInputError as exc:
        assert fraction_like(df), str(exc)
        assert all("they look like fractions" in line
                   for line in str(exc).splitlines()[1:]), str(exc)
        return
    pd.testing.assert_frame_equal(df, before)
    assert len(out) == len(df)
    for col in CHECKED:
        if col.name in out:
            v = out[col.name].dropna()
            assert out[col.name].dtype == float
            assert col.low is None or v.between(col.low, col.high).all()
            assert col.kind != "binary" or v.isin([0.0, 1.0]).all()
    assert not out[[ID, LESION]].duplicated().any() if LESION in out else out[ID].is_unique


CORRUPTIONS = ("out of range", "text in a number column", "duplicated id", "missing column",
               "empty label")


@st.composite
def spoilt_tables(draw) -> tuple[pd.DataFrame, bool, list[tuple[str, str]]]:
    """A valid table with one to three corruptions, and each (corruption, column) made."""
    df, require_label = draw(contract_tables())
    df = df.astype(object)
    n = len(df)
    made: list[tuple[str, str]] = []
    for kind in draw(st.lists(st.sampled_from(CORRUPTIONS), min_size=1, max_size=3)):
        row = draw(st.integers(0, n - 1))
        if kind == "out of range":
            col = draw(st.sampled_from(CHECKED))
            if col.kind == "binary":
                value = draw(st.sampled_from([2, -1, 0.5, 10]))
            else:
                span = col.high - col.low
                value = draw(st.one_of(st.floats(col.high + span * 1e-3 + 1, col.high * 1e3 + 10),
                                       st.floats(col.low - span - 10, col.low - 1e-3 * span - 1),
                                       st.just(math.inf)))
            if col.name not in df:
                df[col.name] = pd.Series([None] * n, index=df.index, dtype=object)
            df.loc[row, col.name] = value
            made.append((kind, col.name))
        elif kind == "text in a number column":
            col = draw(st.sampled_from(CHECKED))
            if col.name not in df:
                df[col.name] = pd.Series([None] * n, index=df.index, dtype=object)
            df.loc[row, col.name] = draw(NOT_NUMBERS)
            made.append((kind, col.name))
        elif kind == "duplicated id" and ID in df:
            df[LESION] = [str(i) for i in range(n)]
            other = (row + 1) % n
            df.loc[other, [ID, LESION]] = df.loc[row, [ID, LESION]].to_numpy()
            made.append((kind, LESION))
        elif kind == "missing column":
            col = draw(st.sampled_from([ID, LABEL]))
            df = df.drop(columns=col, errors="ignore")
            made.append((kind, col))
        elif kind == "empty label" and LABEL in df:
            df.loc[row, LABEL] = draw(st.sampled_from([None, np.nan, "", " "]))
            made.append((kind, LABEL))
    return df, require_label, made


def must_be_caught(df: pd.DataFrame, require_label: bool, kind: str, column: str) -> bool:
    """Whether a corruption is certain to be an error (a later one may have undone it)."""
    if kind == "missing column":
        return column == ID or require_label
    if kind == "empty label":
        return require_label and LABEL in df
    if kind == "duplicated id":
        return ID in df and LESION in df and df[[ID, LESION]].astype(str).duplicated().any()
    if column not in df:
        return False
    values = df[column]
    text = values.map(lambda v: isinstance(v, str) and v.strip().lower() not in MISSING_MARKERS)
    num = pd.to_numeric(values.where(~text), errors="coerce").astype(float)
    if kind == "text in a number column":
        return bool(text.any() & pd.to_numeric(values[text], errors="coerce").isna().any())
    col = next(c for c in CHECKED if c.name == column)
    if col.kind == "binary":
        return bool((num.notna() & ~num.isin([0.0, 1.0])).any())
    return bool(((num < col.low) | (num > col.high)).any())


@TABLES
@given(spoilt_tables())
def test_spoilt_tables_give_the_clear_error_or_a_result(drawn):
    df, require_label, made = drawn
    before = df.copy()
    try:
        validate_table(df, require_label=require_label)
    except UserInputError as exc:
        message = str(exc)
        assert message.startswith("the table does not follow the column contract (")
        for kind, column in made:
            if must_be_caught(df, require_label, kind, column):
                assert f"'{column}'" in message, (kind, message)
    else:
        caught = [m for m in made if must_be_caught(df, require_label, *m)]
        assert not caught, caught
    pd.testing.assert_frame_equal(df, before)


ANY_CELL = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                     NOT_NUMBERS, st.sampled_from(sorted(MISSING_MARKERS)))


@TABLES
@given(st.integers(0, 6).flatmap(lambda n: st.dictionaries(
    st.sampled_from([c.name for c in COLUMNS] + [LESION, "notes", "t1c_original_glcm_Contrast"]),
    st.lists(ANY_CELL, min_size=n, max_size=n), max_size=8)), st.booleans())
def test_any_table_gives_the_clear_error_or_a_result(columns, require_label):
    df = pd.DataFrame(columns)
    try:
        out = validate_table(df, require_label=require_label)
    except UserInputError:
        return
    assert len(out) == len(df) and ID in out


# --------------------------------------------------------------------------- statistics


#: Rounding allowed between a point and its interval: the Wilson bounds at 0/n and n/n come
#: out a unit in the last place inside 0 and 1 (see the expected failure below).
ROUNDING = 1e-12


def inside(point: float, ci, slack: float = ROUNDING) -> bool:
    """``point`` within ``ci`` and both within [0, 1], up to ``slack`` between the point and
    the interval (nan everywhere is allowed)."""
    lo, hi = (float(v) for v in ci)
    if math.isnan(point):
        return math.isnan(lo) and math.isnan(hi)
    if math.isnan(lo) and math.isnan(hi):
        return 0 <= point <= 1
    return 0 <= lo <= point + slack and point - slack <= hi <= 1 and lo <= hi


@st.composite
def labelled(draw, min_size: int = 1, abstain: bool = True):
    """0/1 labels, calls (1, 0 or NaN where abstaining) and scores in 0-1, one per row."""
    n = draw(st.integers(min_size, 60))
    y = np.array(draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n)))
    calls = [0.0, 1.0, np.nan] if abstain else [0.0, 1.0]
    pred = np.array(draw(st.lists(st.sampled_from(calls), min_size=n, max_size=n)))
    scores = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 1.0]))
    p = np.array(draw(st.lists(scores, min_size=n, max_size=n)))
    return y, pred, p


PROPORTIONS = ("sensitivity", "specificity", "ppv", "npv")


@STATS
@given(labelled())
def test_binary_metrics_stay_in_0_1_with_the_point_inside(data):
    y, pred, _ = data
    m = binary_metrics(y, pred)
    for key in PROPORTIONS:
        assert inside(m[key], m[f"{key}_ci"]), (key, m[key], m[f"{key}_ci"])
    assert m["n"] == int((~np.isnan(pred)).sum())
    if not math.isnan(m["dor"]):
        assert m["dor_ci"][0] <= m["dor"] <= m["dor_ci"][1]


@STATS
@given(st.integers(0, 10**6).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_holds_the_proportion(kn):
    k, n = kn
    lo, hi = wilson_ci(k, n)
    if n == 0:
        assert math.isnan(lo) and math.isnan(hi)
    else:
        assert inside(k / n, (lo, hi))


@pytest.mark.parametrize("n", [7, 9, 12, 45])
def test_wilson_interval_holds_0_and_100_percent_exactly(n):
    for k in (0, n):
        lo, hi = wilson_ci(k, n)
        assert lo <= k / n <= hi


@STATS
@given(st.floats(0, 1), st.floats(0, 1), st.floats(1e-4, 1 - 1e-4, exclude_min=True),
       st.integers(1, 5000), st.integers(1, 5000))
def test_restated_ppv_and_npv_stay_in_0_1_with_the_point_inside(se, sp, prev, n1, n0):
    r = restate_at_prevalence(se, sp, prev, n1, n0)
    for key in ("ppv", "npv"):
        assert inside(r[key], r[f"{key}_ci"]), (key, r[key], r[f"{key}_ci"])


@STATS
@given(labelled(min_size=2, abstain=False))
def test_auc_stays_in_0_1_with_the_point_inside(data):
    y, _, p = data
    value, ci = auc_with_ci(y, p)
    if y.min() == y.max():
        assert math.isnan(value)
    else:
        assert inside(value, ci), (value, ci)


@STATS
@given(labelled(min_size=2), st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_the_order_of_rows(data, random):
    y, pred, p = data
    order = np.arange(len(y))
    random.shuffle(order)
    same = json.dumps(binary_metrics(y[order], pred[order]), sort_keys=True)
    assert same == json.dumps(binary_metrics(y, pred), sort_keys=True)
    a, a_ci = auc_with_ci(y, p)
    b, b_ci = auc_with_ci(y[order], p[order])
    assert b == pytest.approx(a, nan_ok=True)
    assert b_ci == pytest.approx(a_ci, rel=1e-9, nan_ok=True)


@STATS
@given(labelled(min_size=2, abstain=False))
def test_a_perfect_classifier_has_ppv_and_npv_of_1(data):
    y, _, _ = data
    assume(0 < y.sum() < len(y))
    m = binary_metrics(y, y.astype(float))
    assert m["ppv"] == 1 and m["npv"] == 1
    assert m["sensitivity"] == 1 and m["specificity"] == 1
    assert inside(1.0, m["ppv_ci"]) and inside(1.0, m["npv_ci"])
    value, _ = auc_with_ci(y, y.astype(float))
    assert value == 1
