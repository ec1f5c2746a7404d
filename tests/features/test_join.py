"""Joining clinical and radiomic tables on patient_id."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from features.errors import UserInputError
from features.join import join_features


def _clinical():
    return pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "adc": [1.0, 1.2, np.nan, 0.9],
                         "pseudoprogression": [1, 0, 1, 0]})


def _radiomic():
    return pd.DataFrame({"patient_id": ["b", "a", "x"],
                         "t1c_original_glcm_Contrast": [2.0, 3.0, 4.0]})


def test_left_join_keeps_every_clinical_row_and_reports_one_sided_ids():
    with pytest.warns(UserWarning) as record:
        result = join_features(_clinical(), _radiomic())
    table = result.table
    assert table["patient_id"].tolist() == ["a", "b", "c", "d"]
    assert table["t1c_original_glcm_Contrast"].tolist()[:2] == [3.0, 2.0]
    assert table["t1c_original_glcm_Contrast"].iloc[2:].isna().all()
    assert result.only_in_clinical == ["c", "d"]
    assert result.only_in_radiomic == ["x"]
    assert result.duplicated == []
    messages = " ".join(str(w.message) for w in record)
    assert "2 of 4 clinical row(s)" in messages and "c, d" in messages
    assert "1 radiomic row(s)" in messages and "x" in messages


def test_no_warning_when_ids_match():
    radiomic = _radiomic().iloc[:2]
    clinical = _clinical().iloc[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = join_features(clinical, radiomic)
    assert result.only_in_clinical == [] and result.only_in_radiomic == []
    assert len(result.table) == 2


def test_ids_compared_as_text():
    clinical = pd.DataFrame({"patient_id": [1, 2], "adc": [1.0, 1.1]})
    radiomic = pd.DataFrame({"patient_id": ["1", "2"], "adc_original_firstorder_Mean": [1, 2]})
    result = join_features(clinical, radiomic)
    assert result.table["adc_original_firstorder_Mean"].tolist() == [1, 2]


@pytest.mark.parametrize("which", ["clinical", "radiomic"])
def test_duplicated_ids_raise_naming_them(which):
    clinical, radiomic = _clinical(), _radiomic()
    if which == "clinical":
        clinical.loc[3, "patient_id"] = "a"
    else:
        radiomic.loc[2, "patient_id"] = "b"
    with pytest.raises(UserInputError, match=rf"{which} table has duplicated .*: "
                                             rf"{'a' if which == 'clinical' else 'b'}"):
        join_features(clinical, radiomic)


def test_missing_id_column_raises():
    with pytest.raises(UserInputError, match="radiomic table has no 'patient_id'"):
        join_features(_clinical(), _radiomic().drop(columns="patient_id"))


def test_shared_columns_keep_clinical_copy():
    radiomic = _radiomic().assign(adc=[9.0, 9.0, 9.0])
    with pytest.warns(UserWarning) as record:
        result = join_features(_clinical(), radiomic)
    assert any("both tables" in str(w.message) for w in record)
    assert result.duplicated == ["adc"]
    assert result.table["adc"].tolist()[:2] == [1.0, 1.2]


def test_add_radiomic_features_passes_options_and_reports_provenance(monkeypatch, tmp_path):
    import json

    import features.join as fj
    from features.extract import ExtractionResult

    seen = {}

    def fake_extract(manifest, **kwargs):
        seen.update(kwargs)
        return ExtractionResult(
            features=_radiomic().iloc[:2], failures=pd.DataFrame(
                columns=["patient_id", "sequence", "reason"]), n_patients=2, version="1",
            mask_resampled=pd.DataFrame([("a", "flair", "mask", "grid note")],
                                        columns=["patient_id", "sequence", "mask", "reason"]),
            series=pd.DataFrame([("b", "t1c", "1.2.3", np.int64(12))],
                                columns=["patient_id", "column", "series_uid", "files"]))

    monkeypatch.setattr(fj, "extract", fake_extract)
    params = tmp_path / "p.yaml"
    params.write_text("version: 1\n")
    with pytest.warns(UserWarning, match="no radiomic features"):
        result = fj.add_radiomic_features(_clinical(), "m.csv", params=params,
                                          scheduler="tcp://127.0.0.1:8786", use_cache=False,
                                          sequences=["t1c"])
    assert seen["scheduler"] == "tcp://127.0.0.1:8786" and seen["use_cache"] is False
    assert seen["sequences"] == ["t1c"]
    provenance = json.loads(json.dumps(result.provenance()))
    assert provenance["mask_resampled"][0]["sequence"] == "flair"
    assert provenance["dicom_series"] == [
        {"patient_id": "b", "column": "t1c", "series_uid": "1.2.3", "files": 12}]
    assert set(result.summary()) >= {"n_manifest", "failures", "settings_version"}


def _lesion_tables():
    clinical = pd.DataFrame({"patient_id": ["a", "a", "b", "d"], "lesion_id": [1, 2, 1, 1],
                             "pseudoprogression": [1, 0, 1, 0]})
    radiomic = pd.DataFrame({"patient_id": ["a", "b", "a", "c"],
                             "lesion_id": ["2", "2", "1", "1"],
                             "t1c_original_glcm_Contrast": [20.0, 30.0, 10.0, 40.0]})
    return clinical, radiomic


def test_per_lesion_join_matches_patient_and_lesion_and_lists_one_sided_lesions():
    clinical, radiomic = _lesion_tables()
    with pytest.warns(UserWarning) as record:
        result = join_features(clinical, radiomic)
    expected = clinical.merge(radiomic.astype({"lesion_id": int}), how="left",
                              on=["patient_id", "lesion_id"])
    np.testing.assert_array_equal(result.table["t1c_original_glcm_Contrast"],
                                  expected["t1c_original_glcm_Contrast"])
    assert result.only_in_clinical == ["b/1", "d/1"]
    assert result.only_in_radiomic == ["b/2", "c/1"]
    (message,) = [str(w.message) for w in record]  # one warning for both sides
    assert "2 of 4 clinical lesion(s)" in message and "2 radiomic lesion(s)" in message


def test_clinical_rows_without_lesion_ids_are_each_patient_s_lesion_1():
    clinical = pd.DataFrame({"patient_id": ["a", "b"], "adc": [1.0, 1.1]})
    _, radiomic = _lesion_tables()
    with pytest.warns(UserWarning, match="a/2"):
        result = join_features(clinical, radiomic)
    assert result.table["t1c_original_glcm_Contrast"].tolist()[0] == 10.0
    assert np.isnan(result.table["t1c_original_glcm_Contrast"].iloc[1])
    assert "lesion_id" not in result.table.columns


def test_features_per_patient_cannot_join_several_lesions_of_a_patient():
    clinical, radiomic = _lesion_tables()
    with pytest.raises(UserInputError, match="several lesions for 1 patient.*lesion_id"):
        join_features(clinical, radiomic.drop(columns="lesion_id").iloc[1:2])
