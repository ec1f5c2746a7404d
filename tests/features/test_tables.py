"""Reading tables as hospitals export them: separators, decimal commas, encodings, Excel."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import UserInputError
from features.tables import (
    TableDialect,
    atomic_write_bytes,
    atomic_write_text,
    read_table,
    sniff_table,
)

ROWS = [
    # patient_id, lesion, rcbv, adc (10^-3 mm^2/s), age (years), label, city
    ("007", "L1", 1.25, 0.85, 54, "yes", "Zürich"),
    ("012", "L2", None, 1.1, 61, "no", "Genève"),
    ("100", "L1", 2.5, 0.9, 47, "no", "Bern"),
]
COLUMNS = ["patient_id", "lesion", "rcbv", "adc", "age", "label", "city"]


def expected() -> pd.DataFrame:
    """The table every file below must read back to."""
    df = pd.DataFrame(ROWS, columns=COLUMNS)
    for col in ("patient_id", "lesion", "label", "city"):
        df[col] = df[col].astype(str)
    return df


def delimited(sep: str, decimal: str = ".") -> str:
    """The table as text with ``sep`` between cells and ``decimal`` as decimal mark."""
    lines = [sep.join(COLUMNS)]
    for row in ROWS:
        cells = ["" if v is None else str(v).replace(".", decimal) if isinstance(v, float)
                 else str(v) for v in row]
        lines.append(sep.join(cells))
    return "\n".join(lines) + "\n"


WRITERS = {
    "comma.csv": lambda p: p.write_text(delimited(","), encoding="utf-8"),
    "semicolon_decimal_comma.csv": lambda p: p.write_text(delimited(";", ","), encoding="utf-8"),
    "tab.tsv": lambda p: p.write_text(delimited("\t"), encoding="utf-8"),
    "tab.txt": lambda p: p.write_text(delimited("\t", ","), encoding="utf-8"),
    "bom.csv": lambda p: p.write_text(delimited(";", ","), encoding="utf-8-sig"),
    "windows.csv": lambda p: p.write_bytes(delimited(";", ",").replace("\n", "\r\n")
                                           .encode("cp1252")),
    "excel_unicode.txt": lambda p: p.write_text(delimited("\t"), encoding="utf-16"),
    "table.xlsx": lambda p: expected().to_excel(p, index=False, engine="openpyxl"),
    "table.parquet": lambda p: expected().to_parquet(p, index=False),
}
DIALECTS = {
    "comma.csv": TableDialect(",", ".", "utf-8", False),
    "semicolon_decimal_comma.csv": TableDialect(";", ",", "utf-8", False),
    "tab.tsv": TableDialect("\t", ".", "utf-8", False),
    "tab.txt": TableDialect("\t", ",", "utf-8", False),
    "bom.csv": TableDialect(";", ",", "utf-8", True),
    "windows.csv": TableDialect(";", ",", "cp1252", False),
    "excel_unicode.txt": TableDialect("\t", ".", "utf-16-le", True),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_export_reads_back_to_the_same_table(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](path)
    got = read_table(path, text_columns=["lesion"])
    assert got.columns[0] == "patient_id"  # no byte-order mark left in the first name
    assert got["patient_id"].tolist() == ["007", "012", "100"]
    pd.testing.assert_frame_equal(got, expected())  # dtypes included
    if name in DIALECTS:
        assert sniff_table(path) == DIALECTS[name]


def test_overrides_win_over_detection(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(delimited(";", ","), encoding="utf-8")
    assert sniff_table(path, sep="\\t", decimal=".") == TableDialect("\t", ".", "utf-8", False)
    kept = read_table(path, decimal=".")
    assert kept["rcbv"].tolist()[0] == "1,25"  # not read as a number when told so
    one_column = read_table(path, sep="|")
    assert one_column.shape == (3, 1)
    with pytest.raises(UserInputError, match="decimal mark"):
        read_table(path, decimal=";")
    with pytest.raises(UserInputError, match="separator"):
        read_table(path, sep="::")


def test_ambiguous_cases_resolve_as_documented(tmp_path):
    path = tmp_path / "t.csv"
    # a comma inside a column name and one decimal comma per row: both separators look
    # regular, the semicolon wins
    path.write_text("patient_id;dose (mg, total)\n007;2,5\n008;3,5\n", encoding="utf-8")
    assert sniff_table(path) == TableDialect(";", ",", "utf-8", False)
    assert read_table(path)["dose (mg, total)"].tolist() == [2.5, 3.5]
    # quoted separators do not count; a semicolon inside a comma table's text stays text
    path.write_text('patient_id,notes,x\n007,"a;b;c",1.5\n008,plain,2\n', encoding="utf-8")
    assert sniff_table(path).sep == ","
    assert read_table(path)["notes"].tolist() == ["a;b;c", "plain"]
    # a single column has no separator to find
    path.write_text("patient_id\n007\n", encoding="utf-8")
    assert read_table(path)["patient_id"].tolist() == ["007"]


def test_header_spaces_empty_rows_and_trailing_separators(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(" patient_id ; rcbv ;\n007;1,5;\n;;\n008;2;\n", encoding="utf-8")
    got = read_table(path)
    assert list(got.columns) == ["patient_id", "rcbv"]
    assert got["patient_id"].tolist() == ["007", "008"]
    assert got["rcbv"].tolist() == [1.5, 2.0]


def test_excel_sheet_by_name_or_position(tmp_path):
    path = tmp_path / "t.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(writer, sheet_name="about", index=False)
        expected().to_excel(writer, sheet_name="data", index=False)
    assert list(read_table(path).columns) == ["note"]
    for sheet in ("data", 1):
        pd.testing.assert_frame_equal(read_table(path, sheet=sheet), expected())
    with pytest.raises(UserInputError, match="'about', 'data'"):
        read_table(path, sheet="Sheet1")


def test_empty_and_header_only_files_are_errors(tmp_path):
    for name, content in (("empty.csv", ""), ("blank.csv", "\n \n")):
        (tmp_path / name).write_text(content)
        with pytest.raises(UserInputError, match="is empty"):
            read_table(tmp_path / name)
    (tmp_path / "header.csv").write_text("patient_id;rcbv\n")
    with pytest.raises(UserInputError, match="has no data rows.*'patient_id', 'rcbv'"):
        read_table(tmp_path / "header.csv")
    expected().iloc[:0].to_excel(tmp_path / "header.xlsx", index=False)
    with pytest.raises(UserInputError, match="has no data rows"):
        read_table(tmp_path / "header.xlsx")


def test_unreadable_file_names_file_dialect_and_fix(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("patient_id;rcbv\n007;1,5\n008;2,5;x;y\n", encoding="utf-8")
    with pytest.raises(UserInputError) as err:
        read_table(path)
    message = str(err.value)
    for part in ("ragged.csv", "separator semicolon ';'", "decimal ','", "encoding utf-8",
                 "--sep", "--decimal"):
        assert part in message
    path.write_text("patient_id;rcbv\n007;1,5;lost\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="more cells than the header"):
        read_table(path)
    (tmp_path / "bad.xlsx").write_text("not a workbook")
    with pytest.raises(UserInputError, match="bad.xlsx as an Excel"):
        read_table(tmp_path / "bad.xlsx")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(UserInputError, match="unsupported table format"):
        read_table(tmp_path / "old.xls")


def test_duplicated_column_names_are_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("patient_id,rcbv, rcbv,adc,adc\n007,1,2,3,4\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="duplicated column names: 'adc', 'rcbv'"):
        read_table(path)
    pd.DataFrame([["007", 1, 2]], columns=["patient_id", "x", "x"]).to_excel(
        tmp_path / "t.xlsx", index=False)
    with pytest.raises(UserInputError, match="duplicated column names: 'x'"):
        read_table(tmp_path / "t.xlsx")


def test_numeric_ids_in_parquet_become_text(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"patient_id": [7, 12], "lesion": [1.0, None]}).to_parquet(path)
    got = read_table(path, text_columns=["lesion"])
    assert got["patient_id"].tolist() == ["7", "12"]
    assert got["lesion"].tolist()[0] == "1" and pd.isna(got["lesion"].tolist()[1])


def test_atomic_writes(tmp_path):
    text = atomic_write_text(tmp_path / "sub" / "a.txt", "Zürich\r\nline\n")
    assert text.read_bytes() == "Zürich\r\nline\n".encode()
    data = atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert data.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.bin", "sub"]
