"""Reading and writing user tables (CSV, TSV, Excel or Parquet) with clear errors and atomic
writes.

Hospital exports differ by locale and tool: comma, semicolon or tab separators, decimal
commas, UTF-8 with or without a byte-order mark, or Windows code page 1252.
:func:`sniff_table` detects these; :func:`read_table` reads any supported table.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.errors import UserInputError, listed

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx",)
PARQUET_SUFFIXES = (".parquet", ".pq")
READABLE = TEXT_SUFFIXES + EXCEL_SUFFIXES + PARQUET_SUFFIXES
ID_COLUMNS = ("patient_id",)
STALE_TEMPORARY_S = 600.0  # a temporary output file unchanged this long was left by a killed run
SEPARATORS = (",", ";", "\t")
#: A table with more columns than this is warned about as soon as it is read.
WIDE_COLUMNS = 5000
DECIMALS = (".", ",")

_SAMPLE_CHARS = 64 * 1024  # characters of a text table examined to detect its dialect
_SAMPLE_RECORDS = 200
_SEP_NAMES = {",": "comma ','", ";": "semicolon ';'", "\t": "tab"}
_SEP_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";"}
_COMMA_NUMBER = re.compile(r"[+-]?\d+,\d+(?:[eE][+-]?\d+)?")
_DOT_NUMBER = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_FIX = ("If a detected setting is wrong, give it with the --sep and --decimal options of "
        "train.py and predict.py (e.g. --sep ';' --decimal ',').")


@dataclass(frozen=True)
class TableDialect:
    """How a delimited text table is written.

    ``sep``: field separator (``,``, ``;`` or a tab); ``decimal``: decimal mark (``.`` or
    ``,``); ``encoding``: Python codec name; ``bom``: whether the file starts with a
    byte-order mark.
    """

    sep: str
    decimal: str
    encoding: str
    bom: bool

    def describe(self) -> str:
        """The dialect in words: "separator semicolon ';', decimal ',', encoding utf-8"."""
        sep = _SEP_NAMES.get(self.sep, repr(self.sep))
        bom = " with BOM" if self.bom else ""
        return f"separator {sep}, decimal '{self.decimal}', encoding {self.encoding}{bom}"


def sniff_table(path: str | Path, sep: str | None = None,
                decimal: str | None = None) -> TableDialect:
    """Detect the dialect of a delimited text table (.csv, .tsv, .txt).

    Encoding: a byte-order mark decides (UTF-8, UTF-16); otherwise UTF-8 when the bytes are
    valid UTF-8, else Windows code page 1252 (Latin-1 with the typographic characters Excel
    writes), else Latin-1, which accepts any byte.

    Separator: on the first 200 records (64 KiB at most), the comma, semicolon and tab are
    counted outside double quotes. A candidate must occur in the header; the one that occurs
    the same number of times in the header and in most data rows wins, then the one giving
    more columns, then tab over semicolon over comma (a decimal comma can make the comma
    look regular, never the other two). With no candidate in the header the table has one
    column and the separator is the comma. This is used instead of :class:`csv.Sniffer`,
    which may pick any character (letters included) and fails on short samples.

    Decimal: a comma when the separator is not a comma and, among the sampled data cells,
    numbers written with a comma (``1,25``) outnumber numbers written with a point.

    ``sep`` and ``decimal`` override the detection (``\\t`` or ``tab`` name the tab).
    """
    path = _existing(path)
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise UserInputError(f"{path} is not a delimited text table ({', '.join(TEXT_SUFFIXES)})"
                             "; its dialect cannot be detected.")
    return _sniff(*_decode(path)[1:], sep=sep, decimal=decimal)[0]


def read_table(path: str | Path, sep: str | None = None, decimal: str | None = None,
               sheet: str | int | None = None, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a table as hospitals export them; raise :class:`UserInputError` when impossible.

    ``.csv``, ``.tsv`` and ``.txt`` are read as delimited text whose separator, decimal mark
    and encoding are detected (:func:`sniff_table`; ``sep`` and ``decimal`` override);
    ``.xlsx`` reads the first sheet, or ``sheet`` (a name or a 0-based position);
    ``.parquet``/``.pq`` as stored.

    ``patient_id`` and the columns named in ``text_columns`` stay text, so ``"007"`` keeps
    its zeros. Spaces around column names are removed; rows with every cell empty, and
    columns with neither a name nor a value (a trailing separator), are dropped. A file
    without data rows, duplicated column names or a row with more cells than the header has
    names are errors.
    """
    path = _existing(path)
    suffix = path.suffix.lower()
    text = {_clean(name) for name in (*ID_COLUMNS, *text_columns)}
    if sheet is not None and suffix not in EXCEL_SUFFIXES:
        raise UserInputError(f"--sheet {sheet} is for an .xlsx workbook, and {path} is not "
                             "one; drop --sheet.")
    if suffix in TEXT_SUFFIXES:
        df = _read_text(path, sep, decimal, text)
    elif suffix in EXCEL_SUFFIXES:
        df = _read_excel(path, sheet, text)
    elif suffix in PARQUET_SUFFIXES:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise UserInputError(f"could not read {path} as parquet: {_first_line(exc)}. "
                                 "Check that the file is a valid Parquet table.") from None
        _check_duplicates([_clean(c) for c in df.columns], path)
        df.columns = [_clean(c) for c in df.columns]
        df = _ids_as_text(df, text)
    else:
        raise UserInputError(
            f"{path}: unsupported table format '{suffix}'; use {', '.join(READABLE)} "
            "(save an Excel 97-2003 .xls workbook as .xlsx or CSV).")
    if df.shape[1] == 0:
        raise UserInputError(f"{path} is empty: no header and no data rows. Export the table "
                             "again.")
    if len(df) == 0:
        raise UserInputError(f"{path} has no data rows (only the header: "
                             f"{_examples(list(df.columns))}); export the table with its rows.")
    if df.shape[1] > WIDE_COLUMNS:
        warnings.warn(
            f"{path} has {df.shape[1]:,} columns for {len(df):,} rows ({df.size:,} cells): "
            f"beyond {WIDE_COLUMNS:,} columns, checking them and reducing the radiomic block "
            "inside every fold takes minutes to hours. If most are not features, list the "
            "ones you want under 'features:' in a table description (--table) or drop the "
            "others from the file.", UserWarning, stacklevel=2)
    return df


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"table not found: {path}. Check the path.")
    return path


def _decode(path: Path) -> tuple[bytes, str, str, bool]:
    """The bytes of ``path`` after any byte-order mark, the start of its text (one character
    more than the sample, to tell a cut sample), the codec that decodes it and whether a
    byte-order mark was present."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"could not read {path}: {exc.strerror}.") from None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body = data[len(bom):]
            try:
                return body, body.decode(encoding)[:_SAMPLE_CHARS + 1], encoding, True
            except UnicodeDecodeError as exc:
                raise UserInputError(
                    f"{path} starts with a {encoding} byte-order mark but byte {exc.start} is "
                    f"not {encoding}; save the table again as UTF-8.") from None
    if b"\x00" in data[:4096]:
        raise UserInputError(f"{path} contains NUL bytes: it is not a text table (a binary "
                             "file, or UTF-16 without a byte-order mark); save it as UTF-8 CSV.")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data, data.decode(encoding)[:_SAMPLE_CHARS + 1], encoding, False
        except UnicodeDecodeError:
            pass
    return data, data[:_SAMPLE_CHARS + 1].decode("latin-1"), "latin-1", False


def _sniff(text: str, encoding: str, bom: bool, sep: str | None = None,
           decimal: str | None = None) -> tuple[TableDialect, list[list[str]]]:
    """The dialect of a table whose text starts with ``text``, and its sampled records split
    into cells (header first)."""
    sample = text[:_SAMPLE_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > _SAMPLE_CHARS and "\n" in sample:
        sample = sample[:sample.rindex("\n")]  # drop the record cut in the middle
    sep = _sep_option(sep) if sep is not None else _detect_sep(_count_separators(sample))
    rows = [row for row in csv.reader(io.StringIO(sample), delimiter=sep)
            if any(cell.strip() for cell in row)][:_SAMPLE_RECORDS]
    if decimal is None:
        decimal = _detect_decimal(rows[1:]) if sep != "," else "."
    elif decimal not in DECIMALS:
        raise UserInputError(f"decimal mark {decimal!r} is not supported; use '.' or ','.")
    return TableDialect(sep, decimal, encoding, bom), rows


def _sep_option(sep: str) -> str:
    sep = _SEP_ALIASES.get(sep.lower(), sep)
    if len(sep) != 1 or sep in "\"\r\n":
        raise UserInputError(f"separator {sep!r} is not supported; give one character such as "
                             "',', ';' or '\\t' (tab).")
    return sep


def _count_separators(sample: str) -> list[dict[str, int]]:
    """For each non-blank record of ``sample``, how often each separator occurs outside
    double quotes (a quoted field may span lines)."""
    records: list[dict[str, int]] = []
    counts, in_quotes, blank = dict.fromkeys(SEPARATORS, 0), False, True
    for ch in sample + "\n":
        if ch == '"':
            in_quotes, blank = not in_quotes, False
        elif in_quotes:
            continue
        elif ch == "\n":
            if not blank:
                records.append(counts)
                if len(records) == _SAMPLE_RECORDS:
                    break
            counts, blank = dict.fromkeys(SEPARATORS, 0), True
        elif ch in counts:
            counts[ch] += 1
            blank = False
        elif not ch.isspace():
            blank = False
    return records


def _detect_sep(records: list[dict[str, int]]) -> str:
    if not records:
        return ","
    header, rows = records[0], records[1:]
    best, best_key = ",", None
    for rank, sep in enumerate(("\t", ";", ",")):
        if header[sep] == 0:
            continue
        agree = sum(row[sep] == header[sep] for row in rows) / len(rows) if rows else 1.0
        key = (agree, header[sep], -rank)
        if best_key is None or key > best_key:
            best, best_key = sep, key
    return best


def _detect_decimal(rows: list[list[str]]) -> str:
    cells = [cell.strip() for row in rows for cell in row]
    comma = sum(bool(_COMMA_NUMBER.fullmatch(c)) for c in cells)
    point = sum(bool(_DOT_NUMBER.fullmatch(c)) for c in cells)
    return "," if comma > point else "."


def _read_text(path: Path, sep: str | None, decimal: str | None, text: set[str]) -> pd.DataFrame:
    data, start, encoding, bom = _decode(path)
    if not start.strip():
        raise UserInputError(f"{path} is empty: no header and no data rows. Export the table "
                             "again.")
    dialect, rows = _sniff(start, encoding, bom, sep, decimal)
    header = rows[0] if rows else []
    _check_duplicates([_clean(h) for h in header], path)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "Length of header", pd.errors.ParserWarning)
        try:
            df = pd.read_csv(io.BytesIO(data), sep=dialect.sep, decimal=dialect.decimal,
                             encoding=encoding,
                             dtype={h: str for h in header if _clean(h) in text},
                             index_col=False)
        except pd.errors.ParserWarning:
            raise UserInputError(
                f"could not read {path} ({dialect.describe()}): some rows have more cells "
                f"than the header has column names, and the extra cells would be lost. "
                f"{_FIX}") from None
        except Exception as exc:  # pandas raises many types for a bad file
            raise UserInputError(f"could not read {path} ({dialect.describe()}): "
                                 f"{_first_line(exc)}. {_FIX}") from None
    return _tidy(df, header)


def _read_excel(path: Path, sheet: str | int | None, text: set[str]) -> pd.DataFrame:
    import openpyxl  # only needed for Excel workbooks

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl errors for a bad file
        raise UserInputError(f"could not read {path} as an Excel .xlsx workbook: "
                             f"{_first_line(exc)}. Save it from Excel as .xlsx or as CSV."
                             ) from None
    try:
        names = book.sheetnames
        if isinstance(sheet, str) and sheet not in names and sheet.strip().isdigit():
            sheet = int(sheet)
        if sheet is None:
            sheet = 0
            if len(names) > 1:
                warnings.warn(f"{path} has {len(names)} sheets ({_examples(names)}); the first, "
                              f"{names[0]!r}, was read. Choose another with --sheet NAME (or "
                              "its position from 0; in Python, read_table(path, sheet=...)).",
                              UserWarning, stacklevel=4)
        if isinstance(sheet, int) and not 0 <= sheet < len(names) or (
                isinstance(sheet, str) and sheet not in names):
            raise UserInputError(f"{path} has no sheet {sheet!r}; its sheets are "
                                 f"{_examples(names)}: give --sheet one of the names, or a "
                                 "position from 0.")
        name = names[sheet] if isinstance(sheet, int) else sheet
        first = next(book[name].iter_rows(max_row=1, values_only=True), ())
    finally:
        book.close()
    header = list(first)
    if not any(h is not None and str(h).strip() for h in header):
        raise UserInputError(f"sheet {name!r} of {path} is empty or its first row (the column "
                             "names) is blank; put the column names in the first row.")
    _check_duplicates([_clean(h) for h in header if h is not None], path)
    try:
        df = pd.read_excel(path, sheet_name=name, engine="openpyxl",
                           dtype={h: str for h in header if h is not None and _clean(h) in text})
    except Exception as exc:  # openpyxl and pandas raise many types for a bad sheet
        raise UserInputError(f"could not read sheet {name!r} of {path}: {_first_line(exc)}. "
                             "Save it from Excel as CSV and read that.") from None
    return _tidy(df, ["" if h is None else h for h in header])


def _tidy(df: pd.DataFrame, header: list) -> pd.DataFrame:
    """Strip the column names; drop empty rows and the empty columns that have no name."""
    unnamed = [df.columns[i] for i, h in enumerate(header[:df.shape[1]])
               if _clean(h) == "" and df.iloc[:, i].isna().all()]
    df = df.drop(columns=unnamed).dropna(how="all").reset_index(drop=True)
    df.columns = [_clean(c) for c in df.columns]
    return df


def _ids_as_text(df: pd.DataFrame, text: set[str]) -> pd.DataFrame:
    """Identifier columns stored as numbers become text (``7.0`` becomes ``"7"``)."""
    for col in text & set(df.columns):
        values = df[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            whole = values.dropna()
            if (whole == whole.round()).all():
                values = values.astype("Int64")
            df[col] = values.astype(str).where(values.notna())
    return df


def _clean(name) -> str:
    """A column name without surrounding spaces or a stray byte-order mark."""
    return str(name).strip().strip("\ufeff").strip()


def _check_duplicates(names: list[str], path: Path) -> None:
    dup = sorted({n for n in names if n and names.count(n) > 1})
    if dup:
        raise UserInputError(f"{path} has duplicated column names: {_examples(dup)}; give each "
                             "column its own name.")


def _examples(names: list, limit: int = 8) -> str:
    return listed((f"'{n}'" for n in names), limit)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].rstrip(".") if lines else type(exc).__name__


def remove_stale_temporaries(folder: Path, pattern: str) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` (those matching the glob
    ``pattern``, unchanged for :data:`STALE_TEMPORARY_S` seconds); return those removed. A
    younger one may belong to a writer still running, and is left alone."""
    removed = []
    now = time.time()
    for tmp in Path(folder).glob(pattern):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMPORARY_S:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    return removed


@contextmanager
def atomic_path(path: str | Path, remove_stale: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, move it over ``path``.

    A crash leaves either the old file or the complete new one, never half of it, and no
    temporary file. A killed process (SIGKILL) cannot clean up, so the temporary files of
    ``path`` older than :data:`STALE_TEMPORARY_S` are removed first, unless
    ``remove_stale`` is False (a writer of many files in one folder, which cleans the folder
    once instead of listing it at every write). The folder is created when needed; a new
    file gets mode 0644, a replaced one keeps its mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if remove_stale:
        remove_stale_temporaries(path.parent, f".{glob.escape(path.name)}.*.tmp")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV (or Parquet by suffix) atomically (see :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`), flushed to disk."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` as UTF-8 atomically; newlines are written as given."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def markdown_table(headers, rows) -> str:
    """A GitHub markdown table from already formatted cells; ``|`` and newlines escaped.

    Hand-written: pandas' ``to_markdown`` needs tabulate, which is not a dependency.
    """
    def clean(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(clean(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
