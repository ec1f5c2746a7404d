"""What every benchmark records beside its numbers: the machine (cores, load), the package
versions, and a Markdown table; the record is written as JSON under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
#: Packages whose versions a timing depends on.
PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "joblib", "SimpleITK",
            "pyradiomics-bhklab", "dask", "distributed", "skops")


def versions() -> dict[str, str | None]:
    """Python's and the installed :data:`PACKAGES`' versions (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict:
    """Core count (all, and usable by this process), platform, 1/5/15-minute load average."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cores": os.cpu_count(), "cores_usable": usable or os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                            "OPENBLAS_NUM_THREADS")}}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table; floats in 3 significant digits."""
    def cell(v) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, record: dict, out: str | Path | None = None) -> Path:
    """Write ``record`` with the benchmark's name, the time, :func:`machine` and
    :func:`versions` to ``out`` (default ``benchmarks/results/<name>.json``)."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(), "versions": versions(), **record}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(full, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
