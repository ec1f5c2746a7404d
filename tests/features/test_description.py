"""Table descriptions: a user's own table (R-style radiomics names, own id and label columns,
several lesions per patient) mapped onto the column contract, and every error message."""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from features.contract import ID, LABEL, LESION, model_columns
from features.description import (
    DeclaredFeature,
    FeatureGroup,
    TableDescription,
    group_columns,
    label_token,
)
from features.errors import UserInputError

DESCRIPTION_YAML = """\
patient: patientName
lesion: lesion_no
label:
  column: statusIfPD
  positive: yes
  negative: no
  name: local failure
rename:
  rCBV_max: rcbv
features:
  - columns: ["original_*", "wavelet.*"]
    kind: number
    block: radiomic
  - columns: [kps]
    kind: number
    range: [0, 100]
  - columns: [sex]
    kind: category
  - columns: [mgmt_methylated]
    kind: binary
ignore: ["Unnamed..0"]
"""

#: DESCRIPTION_YAML as parsed.
DESCRIPTION = {
    "patient": "patientName",
    "lesion": "lesion_no",
    "label": {"column": "statusIfPD", "positive": "yes", "negative": "no",
              "name": "local failure"},
    "rename": {"rCBV_max": "rcbv"},
    "features": [
        {"columns": ["original_*", "wavelet.*"], "kind": "number", "block": "radiomic"},
        {"columns": ["kps"], "kind": "number", "range": [0, 100]},
        {"columns": ["sex"], "kind": "category"},
        {"columns": ["mgmt_methylated"], "kind": "binary"},
    ],
    "ignore": ["Unnamed..0"],
}


def public_table() -> pd.DataFrame:
    """Shaped like a public radiomics table read from an R export: 5 patients, 8 lesions."""
    rng = np.random.default_rng(0)
    n = 8
    return pd.DataFrame({
        "Unnamed..0": np.arange(1, n + 1),
        "patientName": ["P01", "P01", "P02", "P03", "P03", "P03", "P04", "P05"],
        "lesion_no": [1, 2, 1, 1, 2, 3, 1, 1],
        "statusIfPD": ["yes", "no", "No", "yes ", "no", "no", "YES", "no"],
        "rCBV_max": rng.uniform(0.5, 5.0, n),
        "wavelet.LLH_firstorder_Mean": rng.normal(size=n),
        "wavelet.HHH_glcm_Contrast": rng.uniform(size=n),
        "original_shape_Elongation": rng.uniform(size=n),
        "Margin_original_shape_Sphericity": rng.uniform(size=n),
        "kps": [90, 80, 70, 100, 60, 90, 80, 70],
        "sex": ["F", "F", "M", " m", "M", "M", "F", None],
        "mgmt_methylated": ["yes", "yes", "no", 1, 0, "0", "No", np.nan],
        "scanner": ["A"] * n,
        "comment": [""] * n,
    })


def description(**changes) -> TableDescription:
    return TableDescription.from_dict({**DESCRIPTION, **changes})


def applied(df=None, desc=None, require_label=True):
    """Apply, returning the result and the warnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = (desc or description()).apply(public_table() if df is None else df,
                                            require_label=require_label, source="cohort.csv")
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def table_error(df=None, desc=None, require_label=True) -> str:
    with pytest.raises(UserInputError) as info:
        applied(df, desc, require_label)
    return str(info.value)


def schema_error(d: dict) -> str:
    with pytest.raises(UserInputError) as info:
        TableDescription.from_dict(d, source="desc.yaml")
    return str(info.value)


# --------------------------------------------------------------------------- applying


def test_public_table_in_canonical_form():
    df = public_table()
    before = df.copy()
    out, warned = applied(df)
    pd.testing.assert_frame_equal(df, before)
    t = out.table
    assert list(t.columns) == [
        ID, LESION, "rcbv", "wavelet.LLH_firstorder_Mean", "wavelet.HHH_glcm_Contrast",
        "original_shape_Elongation", "Margin_original_shape_Sphericity", "kps", "sex",
        "mgmt_methylated", LABEL]
    assert t[ID].tolist() == ["P01", "P01", "P02", "P03", "P03", "P03", "P04", "P05"]
    assert t[LESION].tolist() == ["1", "2", "1", "1", "2", "3", "1", "1"]
    assert t[LABEL].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert t["rcbv"].tolist() == df["rCBV_max"].tolist()
    assert t["kps"].dtype == float
    assert t["sex"].tolist()[:4] == ["f", "f", "m", "m"] and pd.isna(t["sex"].iloc[-1])
    assert t["mgmt_methylated"].tolist()[:7] == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert (out.n_patients, out.n_lesions, out.positive_name) == (5, 8, "local failure")
    assert out.features["wavelet.LLH_firstorder_Mean"] == DeclaredFeature("number", "radiomic")
    assert out.features["kps"] == DeclaredFeature("number", None, (0.0, 100.0))
    assert out.features["sex"].kind == "category"
    assert out.features["mgmt_methylated"].kind == "binary"
    # the project's own radiomic naming counts as declared, in the radiomic block
    assert out.features["Margin_original_shape_Sphericity"].block == "radiomic"
    assert out.undeclared == ["scanner", "comment"]
    assert len(warned) == 1 and "scanner, comment" in warned[0] and "Unnamed" not in warned[0]
    assert "'features'" in warned[0] and "'ignore'" in warned[0]
    cols = model_columns(t.columns, declared=out.features)
    assert LESION not in cols and ID not in cols and LABEL not in cols
    assert cols == list(t.columns[2:-1])


def test_lesions_numbered_in_order_without_a_lesion_column():
    df = public_table().drop(columns="lesion_no")
    df["patientName"] = ["P03", "P01", "P03", "P02", "P01", "P03", "P04", "P05"]
    d = description()
    d = TableDescription.from_dict({**d.to_dict(), "lesion": None})
    out, _ = applied(df, d)
    assert out.table[LESION].tolist() == ["1", "1", "2", "1", "2", "3", "1", "1"]
    assert out.n_lesions == 8 and out.n_patients == 5


@pytest.mark.parametrize("positive, values", [
    ("yes", ["Yes", "yes ", True, 1, "1", 1.0, "TRUE"]),
    (1, ["Yes", True, "1", 1.0, " 1.0"]),
    ("PsP", ["psp", " PSP"]),
])
def test_label_values_compare_as_stripped_case_insensitive_text(positive, values):
    assert {label_token(v) for v in values} == {label_token(positive)}
    assert label_token("no") == label_token(0) == label_token(False) == "0"
    assert label_token(None) is None and label_token(np.nan) is None and label_token(" ") is None


def test_label_mapping_accepts_booleans_numbers_and_text():
    df = public_table()
    df["statusIfPD"] = [True, False, 0, "1", 1.0, "No", "YES", "0"]
    out, _ = applied(df)
    assert out.table[LABEL].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]


def test_default_description_takes_a_contract_table_as_it_is():
    df = pd.DataFrame({ID: ["a", "a", "b", "c"], "rcbv": [1.0, 2.0, 3.0, 1.5],
                       "t1c_original_glcm_Contrast": [0.1, 0.2, 0.3, 0.4],
                       LABEL: [1, 0, 0, 1]})
    out, warned = applied(df, TableDescription())
    assert warned == []
    assert list(out.table.columns) == [ID, LESION, "rcbv", "t1c_original_glcm_Contrast", LABEL]
    assert out.table[LESION].tolist() == ["1", "2", "1", "1"]
    assert out.positive_name == "pseudoprogression"
    assert list(out.features) == ["t1c_original_glcm_Contrast"]
    # a contract table's own lesion_id is used
    out, warned = applied(df.assign(lesion_id=["x", "y", "x", "x"]), TableDescription())
    assert out.table[LESION].tolist() == ["x", "y", "x", "x"] and warned == []
    # prediction tables have no label
    out, _ = applied(df.drop(columns=LABEL), TableDescription(), require_label=False)
    assert LABEL not in out.table.columns


def test_undeclared_columns_warned_once_grouped_by_prefix_when_many():
    df = public_table()
    extra = {f"wavelet.LLH_glrlm_F{i}": 0.0 for i in range(311)}
    extra.update({f"diagnostics_Mask_{i}": 0.0 for i in range(5)})
    df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    d = description(features=[{"columns": ["kps"]}])
    out, warned = applied(df, d)
    assert len(warned) == 1
    assert "wavelet.LLH_* (312 columns)" in warned[0]
    assert "diagnostics_* (5 columns)" in warned[0] and "scanner" in warned[0]
    assert len(out.undeclared) == 323
    assert group_columns(["a_1", "a_2", "b"], limit=2) == "a_* (2 columns), b"


def test_contract_checks_apply_to_renamed_columns():
    df = public_table()
    df["rCBV_max"] = 45.0
    message = table_error(df)
    assert "'rcbv'" in message and "'rCBV_max' in the table" in message


# --------------------------------------------------------------------------- table errors


def test_every_mismatch_with_the_table_listed_at_once():
    d = description(patient="patient_name", lesion="lesionNo",
                    label={"column": "status", "positive": "yes", "negative": "no"},
                    rename={"rCBV": "rcbv"},
                    features=[{"columns": ["orignal_*"]}, {"columns": ["KPS"]}])
    message = table_error(desc=d)
    assert "(6 problem(s))" in message
    for key, fix in [("patient:", "Did you mean 'patientName'?"),
                     ("lesion:", "Did you mean 'lesion_no'?"),
                     ("label.column:", "Did you mean 'statusIfPD'?"),
                     ("rename.rCBV:", "Did you mean 'rCBV_max'?"),
                     ("features[0].columns:", "Did you mean 'original_*'?"),
                     ("features[1].columns:", "Did you mean 'kps'?")]:
        line = next(x for x in message.splitlines() if x.startswith(f"  - {key}"))
        assert fix in line and "Columns found: Unnamed..0, patientName" in line


def test_label_value_neither_positive_nor_negative():
    df = public_table()
    df.loc[2, "statusIfPD"] = "maybe"
    message = table_error(df)
    assert "label:" in message and "'maybe'" in message
    assert "Values found: 'no' (4 rows), 'yes' (2 rows), 'maybe' (1 row)" in message
    assert "label.negative" in message and "label.positive" in message
    assert "leave" not in message and "empty" not in message


def test_empty_labels_when_training():
    df = public_table()
    df.loc[[1, 4], "statusIfPD"] = ""
    message = table_error(df)
    assert "'statusIfPD' is empty in 2 row(s) (patients P01, P03)" in message
    assert "fill them in" in message
    out, _ = applied(df, require_label=False)
    assert out.table[LABEL].isna().sum() == 2


@pytest.mark.parametrize("column, values, key, fix", [
    ("kps", ["90", "x", 80, 70, 100, "n/a", 90, 80], "features[1]:",
     "must be numeric (kind: number); found 'x', 'n/a' in 2 row(s)"),
    ("kps", [90, 80, 70, 100, 160, 90, 80, 70], "features[1].range:",
     "'kps' has 1 value(s) outside [0, 100] (e.g. 160); correct them, or widen range"),
    ("mgmt_methylated", ["a", "b", "c", "a", "a", "b", "a", "c"], "features[3]:",
     "holds 3 different values ('a', 'b', 'c')"),
    ("mgmt_methylated", ["M", "F", "M", "F", "M", "F", "M", "F"], "features[3]:",
     "declare it with kind: category"),
])
def test_declared_columns_checked_against_their_kind(column, values, key, fix):
    df = public_table()
    df[column] = values
    message = table_error(df)
    line = next(x for x in message.splitlines() if x.startswith(f"  - {key}"))
    assert fix in line and f"'{column}'" in line


def test_rename_onto_a_column_the_table_already_has():
    df = public_table()
    df["rcbv"] = 1.0
    assert "rename.rCBV_max: the table already has a column 'rcbv'" in table_error(df)
    out, _ = applied(df, description(ignore=["Unnamed..0", "rcbv"]))
    assert out.table["rcbv"].tolist() == df["rCBV_max"].tolist()


def test_repeated_patient_lesion_pair():
    df = public_table()
    df.loc[1, "lesion_no"] = 1
    message = table_error(df)
    assert "lesion: the pair ('patientName', 'lesion_no') must be unique" in message
    assert "repeated: P01/1" in message


def test_pattern_matching_only_taken_columns():
    d = description(features=[{"columns": ["Unnamed*"]}])
    assert "matches only Unnamed..0, already" in table_error(desc=d)


# --------------------------------------------------------------------------- schema errors


@pytest.mark.parametrize("change, key, fix", [
    ({"patiant": "x"}, "patiant:", "Did you mean 'patient'?"),
    ({"label": {"colum": "x"}}, "label.colum:", "Did you mean 'column'?"),
    ({"features": [{"columns": ["kps"], "kinds": "number"}]}, "features[0].kinds:",
     "Did you mean 'kind'?"),
    ({"patient": 3}, "patient:", 'quote it: patient: "3"'),
    ({"label": {"positive": []}}, "label.positive:", "one value or a list"),
    ({"rename": ["rCBV_max", "rcbv"]}, "rename:", "rename: {rCBV_max: rcbv}"),
    ({"features": {"columns": "kps"}}, "features:", "give a list of groups"),
    ({"features": [{"kind": "number"}]}, "features[0].columns:", "missing"),
    ({"features": [{"columns": ["kps"], "kind": "numeric"}]}, "features[0].kind:",
     "use number, binary, category. Did you mean 'number'?"),
    ({"features": [{"columns": ["kps"], "block": "radiomics"}]}, "features[0].block:",
     "Did you mean 'radiomic'?"),
    ({"features": [{"columns": ["sex"], "kind": "category", "block": "radiomic"}]},
     "features[0].block:", "set kind: number"),
    ({"features": [{"columns": ["kps"], "range": [100, 0]}]}, "features[0].range:",
     "two increasing numbers"),
    ({"features": [{"columns": ["kps"], "range": [0, 50, 100]}]}, "features[0].range:",
     "two numbers [low, high]"),
    ({"features": [{"columns": ["kps"], "range": ["low", "high"]}]}, "features[0].range:",
     "two numbers [low, high]"),
    ({"features": [{"columns": ["sex"], "kind": "category", "range": [0, 1]}]},
     "features[0].range:", "only a number has a range"),
    ({"features": [{"columns": ["adc", "kps"]}]}, "features[0].columns:",
     "'adc' is a contract column"),
    ({"features": [{"columns": ["patientName"]}]}, "features[0].columns:",
     "'patientName' is the patient column"),
    ({"features": [{"columns": ["rCBV_max"]}]}, "features[0].columns:",
     "renamed to 'rcbv' under rename"),
    ({"rename": {"rCBV_max": "rcbvv"}}, "rename.rCBV_max:",
     "'rcbvv' is not a contract column. Did you mean 'rcbv'?"),
    ({"rename": {"patientName": "patient_id"}}, "rename.patientName:",
     "write patient: patientName"),
    ({"label": {"positive": ["yes", "1"], "negative": [1, "no"]}}, "label.negative:",
     "give label.positive and label.negative different values"),
    ({"lesion": "patientName"}, "lesion:", "already the patient column"),
])
def test_schema_problems_name_the_key_and_the_fix(change, key, fix):
    d = {"patient": "patientName", "rename": {"rCBV_max": "rcbv"}}
    d.update(change)
    message = schema_error(d)
    assert message.startswith("desc.yaml has problems")
    line = next(x for x in message.splitlines() if x.startswith(f"  - {key}"))
    assert fix in line


def test_schema_problems_collected_in_one_error():
    message = schema_error({"patiant": 1, "label": {"column": 2},
                            "features": [{"columns": "a", "kind": "numeric", "range": [1]}]})
    assert "(4 problem(s))" in message
    assert [x.split(":")[0] for x in message.splitlines()[1:]] == [
        "  - patiant", "  - label.column", "  - features[0].range", "  - features[0].kind"]
    with pytest.raises(UserInputError, match="mapping of keys"):
        TableDescription.from_dict(["patient"])


def test_direct_construction_is_checked_too():
    with pytest.raises(UserInputError, match="features\\[0\\].kind"):
        TableDescription(features=(FeatureGroup(("kps",), kind="text"),))
    assert TableDescription(positive="yes").positive == ("yes",)


# --------------------------------------------------------------------------- files


def test_yaml_file_round_trips_and_keeps_yes_as_text(tmp_path):
    path = tmp_path / "desc.yaml"
    path.write_text(DESCRIPTION_YAML)
    d = TableDescription.from_yaml(path)
    assert d == description()
    assert d.positive == ("yes",) and d.negative == ("no",)
    assert d.features[0] == FeatureGroup(("original_*", "wavelet.*"), "number", "radiomic")
    plain = d.to_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert TableDescription.from_dict(plain) == d
    assert TableDescription.from_dict(yaml.safe_load(yaml.safe_dump(plain))) == d
    assert TableDescription.from_dict(TableDescription().to_dict()) == TableDescription()
    out, _ = applied(desc=d)
    assert out.table[LABEL].sum() == 3


def test_yaml_file_errors(tmp_path):
    with pytest.raises(UserInputError, match="table description not found: .*Check the path"):
        TableDescription.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("patient: patientName\nlabel:\n  column: [statusIfPD\n  positive: yes\n")
    with pytest.raises(UserInputError, match=r"not valid YAML at line \d+, column \d+"):
        TableDescription.from_yaml(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- patient: x\n")
    with pytest.raises(UserInputError, match="must be a mapping of keys"):
        TableDescription.from_yaml(listed)
    typo = tmp_path / "typo.yaml"
    typo.write_text("patient: patientName\nlabels: statusIfPD\n")
    with pytest.raises(UserInputError, match=re.escape(f"{typo} has problems")) as info:
        TableDescription.from_yaml(typo)
    assert "labels: unknown key. Did you mean 'label'?" in str(info.value)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert TableDescription.from_yaml(empty) == TableDescription()


# --------------------------------------------------------------------------- overrides


def test_command_line_overrides():
    df = public_table().rename(columns={"patientName": "pid", "statusIfPD": "y"})
    df["y"] = [1, 0, 0, 1, 0, 0, 1, 0]
    d = description().with_overrides(patient_column="pid", label_column="y", positive="1")
    assert (d.patient_column, d.label_column, d.positive) == ("pid", "y", ("1",))
    assert d.negative == ("no",)  # no and 0 compare alike
    out, _ = applied(df, d)
    assert out.table[LABEL].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert description().with_overrides() == description()
    plain = TableDescription().with_overrides(positive="yes")
    assert plain.positive == ("yes",)
    with pytest.raises(UserInputError, match="--positive") as info:
        TableDescription().with_overrides(positive="0")
    assert "label.negative" in str(info.value)


def test_label_tokens_equal_label_token_row_by_row():
    """The column-wise conversion (each distinct value once) gives what the value-wise one
    gives, on mixed types, empty markers and values equal across types (1, 1.0, True)."""
    from features.description import label_token, label_tokens

    values = pd.Series([1, 0, "yes", "No", None, np.nan, 1.0, True, " 1 ", "maybe", pd.NA,
                        False, "0.0", 2], dtype=object, index=range(10, 24))
    expected = values.map(label_token)
    got = label_tokens(values)
    assert list(got.index) == list(values.index)
    assert got.fillna("-").tolist() == expected.fillna("-").tolist()


def test_a_description_read_back_from_a_model_advises_renaming_the_tables_column():
    """Whether a description came from a model file is a field of it, not its wording."""
    table = pd.DataFrame({"patient_id": ["a", "b"], "pseudoprogression": [0, 1]})
    stored = TableDescription.stored_in_model({"patient": "PID"})
    with pytest.raises(UserInputError, match="The model was trained with the column 'PID'"):
        stored.apply(table)
    same_words = TableDescription.from_dict({"patient": "PID"}, source=stored.source)
    with pytest.raises(UserInputError) as caught:
        same_words.apply(table)
    assert "The model was trained with" not in str(caught.value)
