"""What every benchmark records beside its numbers: the machine (cores, load), the package
versions, and a Markdown table; the record is written as JSON under benchmarks/results/."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Packages whose versions a timing depends on.
PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "joblib", "SimpleITK",
            "pyradiomics-bhklab", "dask", "distributed", "skops")


def versions() -> dict[str, str]:
    """Python's and the installed :data:`PACKAGES`' versions ("not installed" when absent)."""
    from models.bundle import package_versions

    return package_versions(PACKAGES)


def machine() -> dict:
    """Core count (all, and usable by this process), platform, 1/5/15-minute load average."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cores": os.cpu_count(), "cores_usable": usable or os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
            "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                            "OPENBLAS_NUM_THREADS")}}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table (:func:`features.tables.markdown_table`); floats in 3 significant
    digits."""
    from features.tables import markdown_table as table

    return table(header, [[f"{v:.3g}" if isinstance(v, float) else v for v in row]
                          for row in rows])


def write_result(name: str, record: dict, out: str | Path | None = None) -> Path:
    """Write ``record`` with the benchmark's name, the time, :func:`machine` and
    :func:`versions` to ``out`` (default ``benchmarks/results/<name>.json``)."""
    from features.tables import atomic_write_text

    path = Path(out) if out else RESULTS / f"{name}.json"
    full = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(), "versions": versions(), **record}
    atomic_write_text(path, json.dumps(full, indent=2, default=_plain) + "\n")
    return path


def _plain(value):
    """JSON for what :mod:`json` does not know: a numpy scalar as its number, else text."""
    return value.item() if hasattr(value, "item") else str(value)


def run(main: Callable[[], int]) -> None:
    """Run a benchmark's ``main`` as a script: the checkout's root importable (so the project
    need not be installed), ``main``'s return value the exit status."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    sys.exit(main())
