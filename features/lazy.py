"""Packages whose public names are imported on first use, so that importing a package (or
running one of its modules with ``python -m``) loads nothing it does not need."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``package``: each name of ``where`` (public name ->
    the module that defines it) is imported from its module when first asked for; any other
    name is an AttributeError, as for a plain module."""

    def __getattr__(name: str):
        if name in where:
            return getattr(import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
