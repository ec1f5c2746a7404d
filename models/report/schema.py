"""The shape of ``metrics.json``: ``metrics.schema.json`` beside this module (JSON Schema,
draft 2020-12), and the check every metrics document passes before it is written."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

#: The schema of ``metrics.json``.
SCHEMA_PATH = Path(__file__).resolve().parent / "metrics.schema.json"


def load_metrics_schema() -> dict:
    """The JSON Schema (draft 2020-12) of ``metrics.json``."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def metrics_validator():
    """A draft 2020-12 validator of the metrics schema (the schema itself checked first)."""
    from jsonschema import Draft202012Validator

    schema = load_metrics_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(document) -> list[str]:
    """Each way ``document`` (metrics as ``metrics.json`` holds them) breaks the schema, as
    ``<json path>: <why>``; empty when it follows it."""
    errors = sorted(metrics_validator().iter_errors(document), key=lambda e: e.json_path)
    return [f"{e.json_path}: {e.message}" for e in errors]


def check_metrics_document(document, shown: int = 8) -> None:
    """Raise ``ValueError`` naming where ``document`` breaks the schema (a fault of the
    code that built it, not of the user's data), before anything is written."""
    errors = schema_errors(document)
    if errors:
        more = len(errors) - shown
        raise ValueError("the metrics document does not follow metrics.schema.json:\n"
                         + "\n".join(f"  {e}" for e in errors[:shown])
                         + (f"\n  ... and {more} more" if more > 0 else ""))
