"""Checks of a command's output paths, made before any input is read: an output must not be
one of the inputs, and its folder must be one the user can create files in.

>>> check_writable("--out", Path("results/model.skops"))        # doctest: +SKIP
>>> check_not_an_input("--out", [Path("pred.csv")], [(Path("data.csv"), "the input table")],
...                    "choose another file.")                    # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from features.errors import UserInputError


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a folder, or a file in the way)."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate
        except OSError:  # e.g. a parent folder that may not be listed
            continue
    return Path(path.anchor or ".")


def check_writable(option: str, path: str | Path, folder: bool = False) -> None:
    """Raise :class:`UserInputError` unless ``path`` (a file, or a folder when ``folder``)
    can be written: the nearest existing folder above it must let the user create a file,
    and no regular file may stand where a folder has to be."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise UserInputError(f"{option} {path} is a file, not a folder; choose a folder name "
                             f"for {option}.")
    if not folder and path.is_dir():
        raise UserInputError(f"{option} {path} is a folder; give a file name for {option}.")
    base = nearest_existing(path if folder else path.parent)
    if not base.is_dir():
        raise UserInputError(f"{option} {path} cannot be written: {base} is a file, not a "
                             f"folder; choose {option} in a folder.")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserInputError(f"{option} {path} cannot be written: no file can be created in "
                             f"{base} ({reason.lower()}); choose {option} in a folder you can "
                             "write to.") from None


#: Input files as (path or None, what the message calls it) pairs; ``None`` paths are skipped.
Inputs = Iterable[tuple["str | Path | None", str]]


def clash(outputs: Iterable[str | Path], inputs: Inputs) -> tuple[Path, str] | None:
    """The first of ``outputs`` that is the same file as one of ``inputs``, with that input's
    name; ``None`` when there is none."""
    given = {Path(p).resolve(): name for p, name in inputs if p is not None}
    for output in outputs:
        name = given.get(Path(output).resolve())
        if name is not None:
            return Path(output), name
    return None


def check_not_an_input(option: str, outputs: Iterable[str | Path],
                       inputs: Inputs, fix: str) -> None:
    """Raise :class:`UserInputError` ``"<option> is <name>; <fix>"`` when one of ``outputs``
    is one of ``inputs`` (:func:`clash`), so writing an output never overwrites an input."""
    found = clash(outputs, inputs)
    if found is not None:
        raise UserInputError(f"{option} is {found[1]}; {fix}")


def check_report_folder(report: str | Path, files: Iterable[str | Path],
                        inputs: Inputs) -> None:
    """Raise :class:`UserInputError` when the report folder cannot be written
    (:func:`check_writable`) or one of its ``files`` would overwrite one of ``inputs``."""
    check_writable("--report", report, folder=True)
    found = clash(files, inputs)
    if found is not None:
        raise UserInputError(f"--report {report} would overwrite {found[1]} "
                             f"({found[0].name}); choose another report folder.")
