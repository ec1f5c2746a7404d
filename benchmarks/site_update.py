"""How well ``train.py --update`` restores calibration at a new site, over several seeds.

A model is trained on a simulated melanoma cohort (2000 patients); the new site is a lung
cancer population (prevalence 15.3%) whose rCBV reads 40% higher in both classes. For each
seed, the model is updated with N local patients and scored on 20000 other patients of the
new site: calibration-in-the-large and slope before and after, the method chosen, and
whether the updated intercept's 95% interval (``--method intercept``) covers the new site's
true calibration-in-the-large of the original model (its value on the 20000 patients). The
table, the coverage and the local patients a +/- 0.1 interval needs are printed and written
with the machine's core count and package versions to ``benchmarks/results/site_update.json``.

    .venv/bin/python benchmarks/site_update.py --seeds 20 --n 1000
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
    """Print one line per seed, the coverage of the intercept's interval and the share of
    seeds meeting |CITL| < 0.1, slope 0.9-1.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds to run (default 20)")
    parser.add_argument("--n", type=int, default=1000, help="local patients (default 1000)")
    parser.add_argument("--method", default="auto", help="update method (default auto)")
    parser.add_argument("--out", default=None, help="JSON record (benchmarks/results/...)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import numpy as np

    from features.contract import LABEL
    from features.synthetic import simulate_cohort
    from models import train
    from models.statistics import calibration_intercept_slope
    from models.updating import update_model

    original = train(simulate_cohort(2000, cohort="melanoma", seed=11), validation="holdout",
                     nested_cv=False, progress=False).model
    elsewhere = shifted_population(20000, seed=13)
    before = calibration_intercept_slope(elsewhere[LABEL],
                                         original.probability(elsewhere, warn=False))
    print(f"before: intercept {before['calibration_intercept']:+.3f}, "
          f"slope {before['calibration_slope']:.3f}")
    truth = before["calibration_intercept"]  # the intercept an update should recover
    ok, covered, rows, runs = 0, 0, [], []
    for seed in range(100, 100 + args.seeds):
        start = time.perf_counter()
        local = shifted_population(args.n, seed)
        ev = update_model(original, local, args.method, repeats=1, progress=False)
        updated = ev.model
        by_intercept = update_model(original, local, "intercept", repeats=1, progress=False)
        low, high = by_intercept.metrics["update"]["intercept_ci"]
        hit = bool(low <= truth <= high)
        covered += hit
        needed = by_intercept.metrics["update"]["local_lesions_for_intercept_within"]["0.1"]
        after = calibration_intercept_slope(elsewhere[LABEL],
                                            updated.probability(elsewhere, warn=False))
        good = (abs(after["calibration_intercept"]) < 0.1
                and 0.9 <= after["calibration_slope"] <= 1.1)
        ok += good
        seconds = time.perf_counter() - start
        chosen = ev.metrics["update"]["chosen"]
        runs.append({"seed": seed, "chosen": chosen, "seconds": seconds, **after,
                     "within_target": bool(good), "intercept_ci": [low, high],
                     "intercept_ci_covers_truth": hit, "lesions_for_0.1": needed})
        rows.append((seed, chosen, f"{after['calibration_intercept']:+.3f}",
                     f"{after['calibration_slope']:.3f}", "yes" if good else "no",
                     f"{low:+.3f} to {high:+.3f}", "yes" if hit else "no",
                     f"{seconds:.0f}"))
        print(f"seed {seed}: {chosen:<9} intercept {after['calibration_intercept']:+.3f}, "
              f"slope {after['calibration_slope']:.3f}{'  ok' if good else ''} "
              f"({seconds:.0f} s)", file=sys.stderr, flush=True)

    text = markdown_table(["seed", "update chosen", "calibration intercept",
                           "calibration slope", "within target",
                           f"intercept 95% CI (truth {truth:+.3f})", "covers", "seconds"], rows)
    print(text)
    print(f"{ok} of {args.seeds} seeds within |intercept| < 0.1 and slope 0.9-1.1")
    print(f"the updated intercept's 95% interval covered the new site's truth in {covered} of "
          f"{args.seeds} seeds; a +/- 0.1 interval needs about "
          f"{int(np.median([r['lesions_for_0.1'] for r in runs]))} local patients")
    out = write_result("site_update", {
        "local_patients": args.n, "method": args.method, "before": before, "runs": runs,
        "within_target": ok, "seeds": args.seeds, "intercept_truth": truth,
        "intercept_ci_covered": covered, "table": text}, args.out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    run(main)
