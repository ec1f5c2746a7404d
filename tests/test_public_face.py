"""What a research script imports: ``features`` and ``models`` export it, every exported name
resolves, and the notebook uses nothing else of the project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import features
import models

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"


@pytest.mark.parametrize("package", [features, models], ids=["features", "models"])
def test_every_exported_name_resolves(package):
    missing = [n for n in package.__all__ if getattr(package, n, None) is None]
    assert missing == []
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_the_notebook_imports_only_the_exported_names():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    modules = set(re.findall(r"^\s*from ((?:features|models)[\w.]*) import", code, re.M))
    assert modules == {"features", "models"}
    names = re.findall(r"^from (features|models) import \(([^)]*)\)", code, re.M)
    for package, listed in names:
        exported = {"features": features, "models": models}[package].__all__
        assert set(re.findall(r"\w+", listed)) <= set(exported)
