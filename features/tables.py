"""Reading and writing user tables (CSV or Parquet) with clear errors and atomic writes."""

from __future__ import annotations

import os
import tempfile
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


def write_table_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV (or Parquet by suffix) through a temp file, so a crash leaves
    either the old file or the complete new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
