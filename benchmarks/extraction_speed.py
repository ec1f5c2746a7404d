"""Seconds per patient of the radiomic extraction, with 1 and with 2 worker processes.

Simulates N patients (features.synthetic.simulate_cohort), writes their synthetic images,
then runs
features.extract.extract with jobs=1 and jobs=2, cache disabled, and prints the wall
time per patient of each (for jobs=2 twice: "cold" includes starting the worker
processes, "warm" reuses them). The table is printed and written with the machine's core
count and package versions to ``benchmarks/results/extraction_speed.json``.

    python benchmarks/extraction_speed.py --n 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import markdown_table, run, write_result


def _cohort(n: int, seed: int):
    from features.synthetic import simulate_cohort

    return simulate_cohort(n, cohort="melanoma", seed=seed), "features.synthetic.simulate_cohort"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print seconds per patient for each number of jobs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="patients to simulate (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of cohort and images")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                        help="worker counts to time (default: 1 2)")
    parser.add_argument("--params", default=None, help="settings YAML (default: mri.yaml)")
    parser.add_argument("--out", default=None, help="JSON record (benchmarks/results/...)")
    args = parser.parse_args(argv)

    from features.choices import DEFAULT_PARAMS
    from features.extract import extract
    from features.synthetic.images import write_synthetic_images

    cohort, source = _cohort(args.n, args.seed)
    with tempfile.TemporaryDirectory(prefix="radiomics-bench-") as tmp:
        t0 = time.perf_counter()
        write_synthetic_images(cohort, tmp, seed=args.seed)
        t_images = time.perf_counter() - t0
        manifest = Path(tmp) / "manifest.csv"
        print(f"cohort: {args.n} patients from {source}; images written in {t_images:.1f} s "
              f"({t_images / args.n:.3f} s per patient)")
        rows, runs = [], []
        for jobs in args.jobs:
            # jobs > 1: the first run starts the worker processes, the second reuses them
            for run in ("cold", "warm") if jobs != 1 else ("",):
                t0 = time.perf_counter()
                result = extract(manifest, params=args.params or DEFAULT_PARAMS, jobs=jobs,
                                 use_cache=False, progress=False)
                seconds = time.perf_counter() - t0
                runs.append({"jobs": jobs, "run": run or "single", "seconds": seconds,
                             "per_patient_s": seconds / args.n,
                             "extracted": len(result.features),
                             "failures": len(result.failures),
                             "features": result.features.shape[1] - 1})
                rows.append((jobs, run or "-", f"{seconds:.1f}", f"{seconds / args.n:.3f}",
                             len(result.features), len(result.failures),
                             result.features.shape[1] - 1))

    text = markdown_table(["jobs", "run", "seconds", "s per patient", "extracted",
                           "failures", "features"], rows)
    print(text)
    out = write_result("extraction_speed", {"patients": args.n, "images_s": t_images,
                                            "runs": runs, "table": text}, args.out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    run(main)
