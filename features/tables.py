"""Reading and writing user tables (CSV or Parquet) with clear errors and atomic writes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from features.errors import UserInputError

READABLE = (".csv", ".parquet", ".pq")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table; raise :class:`UserInputError` when that is not possible."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"table not found: {path}. Check the path.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"patient_id": str})
    except Exception as exc:  # pandas raises many types for a bad file
        raise UserInputError(f"could not read {path} as {suffix[1:]}: {exc}. "
                             "Check that the file is a valid table.") from None
    raise UserInputError(f"{path}: unsupported table format '{suffix}'; use .csv or .parquet.")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, move it over ``path``.

    A crash leaves either the old file or the complete new one, never half of it, and no
    temporary file. The folder is created when needed; a new file gets mode 0644, a
    replaced one keeps its mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
