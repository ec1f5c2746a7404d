"""How well ``train.py --update`` restores calibration at a new site, over several seeds.

A model is trained on a simulated melanoma cohort (2000 patients); the new site is a lung
cancer population (prevalence 15.3%) whose rCBV reads 40% higher in both classes. For each
seed, the model is updated with N local patients and scored on 6000 other patients of the
new site: calibration-in-the-large and slope before and after, and the method chosen. The
table is printed and written with the machine's core count and package versions to
``benchmarks/results/site_update.json``.

    .venv/bin/python benchmarks/site_update.py --seeds 10 --n 1000
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace

from common import markdown_table, run, write_result


def shifted_population(n: int, seed: int):
    """The new site: nsclc prevalence, rCBV 40% higher in both classes."""
    from features.synthetic import DEFAULT_PARAMETERS, simulate_cohort
    from features.synthetic.parameters import Marginal

    p = DEFAULT_PARAMETERS
    params = replace(p, rcbv=Marginal(p.rcbv.median_pp * 1.4, p.rcbv.median_tp * 1.4,
                                      p.rcbv.sd_pp, p.rcbv.sd_tp, p.rcbv.noise_sd))
    return simulate_cohort(n, cohort="nsclc", seed=seed, params=params)


def main(argv: list[str] | None = None) -> int:
    """Print one line per seed and the share of seeds meeting |CITL| < 0.1, slope 0.9-1.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds to run (default 10)")
    parser.add_argument("--n", type=int, default=1000, help="local patients (default 1000)")
    parser.add_argument("--method", default="auto", help="update method (default auto)")
    parser.add_argument("--out", default=None, help="JSON record (benchmarks/results/...)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from features.contract import LABEL
    from features.synthetic import simulate_cohort
    from models import train
    from models.statistics import calibration_intercept_slope
    from models.updating import update_model

    original = train(simulate_cohort(2000, cohort="melanoma", seed=11), validation="holdout",
                     nested_cv=False, progress=False).model
    elsewhere = shifted_population(6000, seed=13)
    before = calibration_intercept_slope(elsewhere[LABEL],
                                         original.probability(elsewhere, warn=False))
    print(f"before: intercept {before['calibration_intercept']:+.3f}, "
          f"slope {before['calibration_slope']:.3f}")
    ok, rows, runs = 0, [], []
    for seed in range(100, 100 + args.seeds):
        start = time.perf_counter()
        updated, ev = update_model(original, shifted_population(args.n, seed), args.method,
                                   repeats=1, progress=False)
        after = calibration_intercept_slope(elsewhere[LABEL],
                                            updated.probability(elsewhere, warn=False))
        good = (abs(after["calibration_intercept"]) < 0.1
                and 0.9 <= after["calibration_slope"] <= 1.1)
        ok += good
        seconds = time.perf_counter() - start
        chosen = ev.metrics["update"]["chosen"]
        runs.append({"seed": seed, "chosen": chosen, "seconds": seconds, **after,
                     "within_target": bool(good)})
        rows.append((seed, chosen, f"{after['calibration_intercept']:+.3f}",
                     f"{after['calibration_slope']:.3f}", "yes" if good else "no",
                     f"{seconds:.0f}"))
        print(f"seed {seed}: {chosen:<9} intercept {after['calibration_intercept']:+.3f}, "
              f"slope {after['calibration_slope']:.3f}{'  ok' if good else ''} "
              f"({seconds:.0f} s)", file=sys.stderr, flush=True)

    text = markdown_table(["seed", "update chosen", "calibration intercept",
                           "calibration slope", "within target", "seconds"], rows)
    print(text)
    print(f"{ok} of {args.seeds} seeds within |intercept| < 0.1 and slope 0.9-1.1")
    out = write_result("site_update", {
        "local_patients": args.n, "method": args.method, "before": before, "runs": runs,
        "within_target": ok, "seeds": args.seeds, "table": text}, args.out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    run(main)
