"""How long training takes: family comparison with tuning, then calibration, on N patients.

Simulates a melanoma cohort (optionally with radiomic columns: a few informative, the rest
noise), fits the training procedure of ``train`` on it (``models.training.fit_model``: every
family tuned on the patient-grouped folds, the best calibrated) and prints the time of each
stage, the total wall-clock and CPU time, and each family's candidates, chosen settings and
cross-validated log loss. ``--no-tuning`` scores each family with its untuned settings only,
for comparison. Also writes the numbers, with the machine's core count, load average and
package versions, as JSON (``--json``, by default
``benchmarks/results/training_speed[_no_tuning][_radiomic<k>].json``). A measurement that
prints, never a test. Run with one BLAS/OpenMP thread, as ``make bench`` does:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/training_speed.py --n 10000
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

from common import run, write_result


def with_radiomic_columns(table, n_columns: int, seed: int):
    """``table`` with ``n_columns`` radiomic columns: the first three shifted by the label,
    the rest noise."""
    import numpy as np
    import pandas as pd

    from features.contract import LABEL

    rng = np.random.default_rng(seed)
    y = table[LABEL].to_numpy()
    values = rng.normal(size=(len(table), n_columns))
    values[:, :3] += 0.6 * y[:, None]
    radiomic = pd.DataFrame(values, index=table.index,
                            columns=[f"t1c_original_firstorder_F{j}" for j in range(n_columns)])
    return pd.concat([table, radiomic], axis=1)


def main(argv: list[str] | None = None) -> int:
    """Print the stage times, totals and each family's tuning for one training run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="patients (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.add_argument("--radiomic", type=int, default=0,
                        help="radiomic columns to add (default 0)")
    parser.add_argument("--no-tuning", action="store_true",
                        help="score each family with its untuned settings only")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the numbers (default benchmarks/results/"
                             "training_speed[_no_tuning][_radiomic<k>].json)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from threadpoolctl import threadpool_limits

    import models.classifier as classifier
    from features.synthetic import simulate_cohort
    from models.training import fit_model

    table = simulate_cohort(args.n, cohort="melanoma", seed=args.seed)
    if args.radiomic:
        table = with_radiomic_columns(table, args.radiomic, args.seed)
    stages: list[tuple[str, float]] = []
    start = time.perf_counter()

    def progress(message: str) -> None:
        stages.append((message, time.perf_counter()))

    if args.no_tuning:
        classifier.TUNING_GRID = {}
        classifier.RADIOMIC_CHOICES = ()
    with threadpool_limits(limits=1):
        cpu = time.process_time()
        model = fit_model(table, seed=args.seed, progress=progress)
        cpu = time.process_time() - cpu
    total = time.perf_counter() - start
    marks = [*stages, ("end", start + total)]
    print(f"{args.n} patients, {table.shape[1]} columns ({args.radiomic} radiomic), "
          f"{'no tuning' if args.no_tuning else 'tuned'}:")
    for (message, t0), (_, t1) in zip(marks, marks[1:], strict=False):
        print(f"  {message:<44} {t1 - t0:6.1f} s")
    print(f"  {'total (wall clock)':<44} {total:6.1f} s")
    print(f"  {'total (CPU, this process)':<44} {cpu:6.1f} s")
    for family, score in model.cv_scores.items():
        chosen = " (chosen)" if family == model.family else ""
        print(f"  {family}{chosen}: log loss {score['log_loss']:.4f}, AUC {score['auc']:.4f}, "
              f"{score.get('n_settings', 0)} candidate(s), best {score.get('best_params')}"
              + (f"; {score['note']}" if score.get("note") else ""))
    result = {
        "n_patients": args.n, "seed": args.seed,
        "n_columns": int(table.shape[1]), "n_radiomic": args.radiomic,
        "tuning": not args.no_tuning,
        "stages_s": {message: round(t1 - t0, 3)
                     for (message, t0), (_, t1) in zip(marks, marks[1:], strict=False)},
        "total_wall_s": round(total, 3), "total_cpu_s": round(cpu, 3),
        "chosen": model.family,
        "families": {f: {k: v for k, v in score.items() if k != "note"}
                     | ({"note": score["note"]} if score.get("note") else {})
                     for f, score in model.cv_scores.items()},
    }
    name = ("training_speed" + ("_no_tuning" if args.no_tuning else "")
            + (f"_radiomic{args.radiomic}" if args.radiomic else ""))
    out = write_result(name, result, args.json)
    print(f"  {os.cpu_count()} core(s), load average {os.getloadavg()[0]:.2f}; wrote {out}")
    return 0


if __name__ == "__main__":
    run(main)
