"""Training time and peak memory at 1,000, 10,000 and 100,000 simulated patients.

Each size runs in a fresh Python process, so its peak memory (the process's maximum
resident set size, ``resource.getrusage``) is its own: the process simulates a melanoma
cohort and runs ``models.train`` on it as ``train.py --cohort melanoma`` does (holdout
validation, every family tuned on the patient-grouped folds, calibration, threshold),
without nested cross-validation unless ``--nested-cv`` (five times the fitting). One BLAS
and OpenMP thread, as ``make bench`` runs it. Reported per size: seconds to simulate, to
train, CPU seconds of training, the peak resident memory and the memory held after the
imports (the peak minus it is what the data and the fitting took).

The table is printed and written with the machine's core count and package versions to
``benchmarks/results/training_scale.json``. The largest size takes minutes.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/training_scale.py
    .venv/bin/python benchmarks/training_scale.py --sizes 1000 10000     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, markdown_table, run, write_result


def peak_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def current_mib() -> float:
    """This process's resident set size now, in MiB (from /proc; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_mib()


def one_size(n: int, seed: int, nested_cv: bool) -> dict:
    """Simulate ``n`` patients and train on them in this process; the measurements."""
    import warnings

    warnings.simplefilter("ignore")
    from features.synthetic import simulate_cohort
    from models import train

    after_imports = current_mib()
    t0 = time.perf_counter()
    table = simulate_cohort(n, cohort="melanoma", seed=seed)
    simulate_s = time.perf_counter() - t0
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = train(table, seed=seed, validation="holdout", nested_cv=nested_cv,
                   progress=False)
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    return {"patients": n, "rows": len(table), "simulate_s": round(simulate_s, 2),
            "train_s": round(train_s, 2), "train_cpu_s": round(cpu_s, 2),
            "peak_rss_mib": round(peak_mib(), 1),
            "rss_after_imports_mib": round(after_imports, 1),
            "family": result.model.family,
            "auc_held_out": round(float(result.evaluation.metrics["model"]["auc"]), 4)}


def main(argv: list[str] | None = None) -> int:
    """Run every size in its own process, print the table, write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000],
                        help="patient counts (default 1000 10000 100000)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (0)")
    parser.add_argument("--nested-cv", action="store_true",
                        help="also nested cross-validation on the training patients")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="JSON record (benchmarks/results/...)")
    args = parser.parse_args(argv)
    if args.one is not None:  # the child process of one size
        print(json.dumps(one_size(args.one, args.seed, args.nested_cv)))
        return 0


    records = []
    for n in args.sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(n),
               "--seed", str(args.seed)] + (["--nested-cv"] if args.nested_cv else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"{n} patients failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            records.append({"patients": n, "error": proc.stderr[-2000:]})
            continue
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        record["process_s"] = round(time.perf_counter() - t0, 2)
        records.append(record)
        print(f"{n} patients: train {record['train_s']} s, peak {record['peak_rss_mib']} MiB",
              file=sys.stderr, flush=True)
    rows = [(r["patients"], r.get("rows", ""), r.get("simulate_s", "failed"),
             r.get("train_s", ""), r.get("train_cpu_s", ""), r.get("peak_rss_mib", ""),
             r.get("rss_after_imports_mib", ""), r.get("family", ""), r.get("auc_held_out", ""))
            for r in records]
    text = markdown_table(["patients", "rows", "simulate s", "train s", "train CPU s",
                           "peak RSS MiB", "RSS after imports MiB", "family chosen",
                           "held-out AUC"], rows)
    print(f"training as train.py does (holdout, tuning, calibration"
          f"{', nested CV' if args.nested_cv else ', no nested CV'}), one process per size:\n")
    print(text)
    out = write_result("training_scale", {"nested_cv": args.nested_cv, "sizes": records,
                                          "table": text}, args.out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    run(main)
