"""The column contract: validation messages, unit checks, radiomic names, table I/O."""

import warnings

import numpy as np
import pandas as pd
import pytest

from features.contract import (
    FEATURE_COLUMNS,
    LESION,
    check_table,
    checked_ids,
    is_radiomic,
    lesion_numbers,
    model_columns,
    validate_table,
    warn_extra_columns,
)
from features.errors import UserInputError
from features.tables import read_table, write_table_atomic


def small_table(**over) -> pd.DataFrame:
    df = pd.DataFrame({
        "patient_id": ["a", "b", "c"],
        "cancer_type": ["Melanoma", "nsclc", None],
        "adc": [1.1, "", 0.9],
        "rcbv": [1.2, 2.5, np.nan],
        "symptomatic": [0, 1, 1],
        "pseudoprogression": [1, 0, 0],
    })
    for k, v in over.items():
        df[k] = v
    return df


def test_valid_table_is_cleaned_and_input_untouched():
    df = small_table()
    before = df.copy()
    out = validate_table(df, require_label=True)
    pd.testing.assert_frame_equal(df, before)
    assert out["adc"].isna().tolist() == [False, True, False]
    assert out["adc"].dtype == float
    assert out["cancer_type"].tolist()[:2] == ["melanoma", "nsclc"]


@pytest.mark.parametrize("change, message", [
    ({"adc": [0.0011, 0.0009, 0.001]}, "mm\\^2/s"),
    ({"symptomatic": [0, 2, 1]}, "must be 0 or 1"),
    ({"rcbv": ["high", 1.0, 1.0]}, "must be numeric"),
    ({"patient_id": ["a", "a", "c"], "lesion_id": [1, 1, 1]},
     "duplicated patient_id/lesion_id: a/1"),
    ({"patient_id": ["a", "b", "c"], "lesion_id": [1, " ", 1]},
     "'lesion_id' is empty in 1 row\\(s\\) \\(data row 2\\)"),
    ({"patient_id": ["a", "  ", None]},
     "'patient_id' is empty in 2 row\\(s\\) \\(data rows 2, 3\\)"),
    ({"ki67_pct": [0.05, 0.2, 0.1], "steroid_response_pct": [0.8, 0.1, 200.0]},
     "steroid_response_pct"),
])
def test_bad_tables_raise_one_clear_message(change, message):
    with pytest.raises(UserInputError, match=message):
        validate_table(small_table(**change))


def test_missing_id_and_label():
    with pytest.raises(UserInputError, match="patient_id"):
        validate_table(small_table().drop(columns="patient_id"))
    with pytest.raises(UserInputError, match="label"):
        validate_table(small_table().drop(columns="pseudoprogression"), require_label=True)
    with pytest.raises(UserInputError, match="only one class"):
        validate_table(small_table(pseudoprogression=[0, 0, 0]), require_label=True)


def test_radiomic_names_and_model_columns():
    assert is_radiomic("t1c_original_glcm_Contrast")
    assert is_radiomic("adc_wavelet-LLH_firstorder_Mean")
    assert is_radiomic("flair_log-sigma-2-0-mm-3D_glszm_ZoneEntropy")
    assert not is_radiomic("t1c_diagnostics_Mask-original_VoxelNum")
    assert not is_radiomic("notes")
    cols = ["patient_id", "rcbv", "notes", "t1c_original_shape_Sphericity", "pseudoprogression"]
    assert model_columns(cols) == ["rcbv", "t1c_original_shape_Sphericity"]
    cols += ["lesion_id", "kps"]
    assert model_columns(cols, declared=["kps", "lesion_id", "pseudoprogression"]) == [
        "rcbv", "t1c_original_shape_Sphericity", "kps"]
    assert model_columns(cols, declared={"kps": None}) == model_columns(cols, ["kps"])
    assert "pseudoprogression" not in FEATURE_COLUMNS and "patient_id" not in FEATURE_COLUMNS


def test_tables_round_trip_and_errors(tmp_path):
    df = small_table()
    for name in ("t.csv", "t.parquet"):
        path = write_table_atomic(validate_table(df), tmp_path / name)
        back = read_table(path)
        assert back["patient_id"].tolist() == ["a", "b", "c"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(UserInputError, match="not found"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "t.json").write_text("x")
    with pytest.raises(UserInputError, match="unsupported"):
        read_table(tmp_path / "t.json")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserInputError, match="could not read"):
        read_table(tmp_path / "bad.parquet")


def test_several_lesions_per_patient():
    df = small_table(patient_id=["a", " a ", "c"])
    out = validate_table(df)
    assert list(out.columns[:2]) == ["patient_id", LESION]
    assert out["patient_id"].tolist() == ["a", "a", "c"]
    assert out[LESION].tolist() == ["1", "2", "1"]
    assert LESION not in df.columns
    given = validate_table(small_table(patient_id=["a", "a", "c"], lesion_id=[2.0, 7.0, 2.0]))
    assert given[LESION].tolist() == ["2", "7", "2"]
    assert LESION not in validate_table(small_table()).columns


def test_lesion_numbers_follow_order_of_appearance():
    ids = pd.Series(["p2", "p1", "p2", "p3", "p1", "p2"])
    assert lesion_numbers(ids).tolist() == ["1", "1", "2", "1", "2", "3"]


def test_tables_keyed_by_patient_still_refuse_repeated_ids():
    with pytest.raises(UserInputError, match="must be unique \\(one row per image set\\)"):
        checked_ids(pd.Series(["a", " a ", "b"]), "the manifest", "one row per image set")
    assert checked_ids(pd.Series([1.0, 2.0]), "t").tolist() == ["1", "2"]


def test_lesion_column_is_not_an_extra_column():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_extra_columns(pd.DataFrame(columns=["patient_id", "lesion_id", "rcbv"]), ["rcbv"])
    with pytest.warns(UserWarning, match="notes"):
        warn_extra_columns(pd.DataFrame(columns=["patient_id", "notes", "rcbv"]), ["rcbv"])


def test_every_problem_is_reported_at_once():
    df = small_table(patient_id=["a", " ", "c"], adc=[0.0011, 0.0009, 0.001],
                     symptomatic=[0, 2, "yes"], rcbv=["high", "<0.5", 1.0],
                     pseudoprogression=[1, 1, None])
    before = df.copy()
    with pytest.raises(UserInputError) as info:
        validate_table(df, require_label=True, source="t.csv")
    message = str(info.value)
    assert message.startswith("t.csv does not follow the column contract (5 problem(s)):\n")
    lines = message.splitlines()[1:]
    assert lines == [
        "  - 'patient_id' is empty in 1 row(s) (data row 2); give every row an id.",
        "  - column 'symptomatic' (0/1) must be 0 or 1; found 2 (1 row), 'yes' (1 row) (data "
        "rows 2, 3). Write 1 for yes and 0 for no.",
        "  - column 'rcbv' (ratio) must be numeric; found 'high' (1 row), '<0.5' (1 row) (data "
        "rows 1, 2). A censored value ('<0.5') is not a number: give the value, or leave the "
        "cell empty.",
        "  - column 'adc' (10^-3 mm^2/s) should lie within [0.05, 5]; 3 value(s) "
        "are outside (e.g. 0.0011, 0.0009, 0.001; data rows 1, 2, 3). The values look like "
        "mm^2/s; give ADC in 10^-3 mm^2/s (multiply by 1000).",
        "  - 'pseudoprogression' is empty in 1 row(s) (data row 3). Every row used for training "
        "or evaluation needs its label: fill them in, or take those rows out of the table.",
    ]
    pd.testing.assert_frame_equal(df, before)


def test_check_table_collects_without_raising():
    checked = check_table(small_table(rcbv=[1.0, 45.0, 50.0]))
    assert len(checked.problems) == 1 and "2 value(s) are outside" in checked.problems[0]
    assert checked.table["rcbv"].tolist() == [1.0, 45.0, 50.0]  # left as given
    assert check_table(small_table()).problems == []
    doubled = pd.concat([small_table(), small_table()[["rcbv"]]], axis=1)
    assert "several columns are named 'rcbv'" in check_table(doubled).problems[0]
    assert "no 'patient_id' column" in check_table(small_table().drop(columns="patient_id")
                                                   ).problems[0]


def test_missing_markers_are_empty_cells():
    out = validate_table(small_table(rcbv=["n/a", "NA", " "], adc=["null", "None", 1.0]))
    assert out["rcbv"].isna().all() and out["adc"].isna().tolist() == [True, True, False]
    with pytest.raises(UserInputError, match="Leave the cell empty \\(or write n/a\\)"):
        validate_table(small_table(rcbv=["?", 1.0, 1.0]))
    with pytest.raises(UserInputError, match="needs --decimal ','"):
        validate_table(small_table(rcbv=["1,2", 1.0, 1.0]))


@pytest.mark.parametrize("values, refused", [
    ([0.05, 0.2, 0.1, 0.3, 0.9], True),  # five fractions
    ([0.05, 0.2, 0.1, 0.3], False),  # too few to tell
    ([0, 1, 1, 0, 1], False),  # whole numbers: percentages of 0 and 1
    ([0.5, 20, 35, 60, 0.8], False),  # percentages
])
def test_percentage_column_holding_fractions(values, refused):
    df = pd.DataFrame({"patient_id": list("abcde")[:len(values)], "ki67_pct": values})
    problems = check_table(df).problems
    assert bool(problems) == refused
    if refused:
        assert problems[0].startswith("column 'ki67_pct' (%): all 5 values lie within [-1, 1]")
        assert problems[0].endswith("Give percentages (multiply by 100).")
