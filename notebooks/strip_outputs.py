"""Clear the outputs of notebooks in place, so they are stored without them.

    python notebooks/strip_outputs.py notebooks/walkthrough.ipynb

Removes every code cell's outputs and execution count, the per-cell metadata front ends
add when running or viewing (timings, collapsed/scrolled state) and the kernel's version
details; leaves the cells' source, tags and the notebook's kernelspec. A file that is
already clean is left untouched. Exit status 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

_CELL_KEYS = ("execution", "collapsed", "scrolled", "ExecuteTime")


def strip(path: str | Path) -> bool:
    """Clear the notebook at ``path``; return True when the file changed."""
    path = Path(path)
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    for cell in nb.cells:
        for key in _CELL_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": nb.metadata["language_info"].get("name",
                                                                                   "python")}
    after = nbformat.writes(nb)
    after += "" if after.endswith("\n") else "\n"
    if after == before:
        return False
    path.write_text(after, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """Strip every notebook named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help=".ipynb files to clear")
    for name in parser.parse_args(argv).notebooks:
        if not name.is_file():
            print(f"{name}: not found", file=sys.stderr)
            return 2
        print(f"{name}: {'outputs cleared' if strip(name) else 'already clean'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
