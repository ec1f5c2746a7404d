"""The column contract: validation messages, unit checks, radiomic names, table I/O."""

import warnings

import numpy as np
import pandas as pd
import pytest

from features.contract import (
    FEATURE_COLUMNS,
    LESION,
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
