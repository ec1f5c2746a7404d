"""The follow-up result across the simulator's uncertainty: the landmark models and the rules
over time at the index scan and +4, +8, +12 weeks, under low, published and high measurement
error and course variability of the simulated scans (features.synthetic.followup.SETTINGS),
with 95% intervals, beside the weeks of untreated true progression that waiting accrues.

A simulated melanoma cohort (seed fixed) is split once by patient; for each setting its
follow-up is drawn again and the landmark models fitted on the training patients and scored
on the held-out ones (models.landmarks.followup_sensitivity, the table the report shows).
``--measurement 2d`` or ``1d`` measures sizes by 2D products or diameters instead of volumes
(their published reader-to-reader error). The table is printed and written with the
machine's core count and package versions to ``benchmarks/results/followup_sensitivity.json``.

    .venv/bin/python benchmarks/followup_sensitivity.py --n 4000 --seed 0
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import replace

from common import markdown_table, run, write_result


def _ci(v, ci, pct: bool = False) -> str:
    """An estimate and its interval as text ('-' when undefined)."""
    def one(x) -> str:
        if x is None or x != x:
            return "-"
        return f"{100 * x:.1f}%" if pct else f"{x:.3f}"

    lo, hi = (list(ci or []) + [None, None])[:2]
    interval = "no interval" if one(lo) == one(hi) == "-" else f"{one(lo)}-{one(hi)}"
    return f"{one(v)} ({interval})"


def main(argv: list[str] | None = None) -> int:
    """Print the sensitivity table (one line per setting, decision time, model or rule)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="patients (default 4000)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--measurement", default="volume", choices=("volume", "2d", "1d"),
                        help="how sizes are measured (default volume)")
    parser.add_argument("--out", default=None, help="JSON record (benchmarks/results/...)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from features.synthetic import DEFAULT_PARAMETERS, simulate_cohort
    from models.landmarks import followup_sensitivity
    from models.training import describe_table

    params = None
    if args.measurement != "volume":
        params = replace(DEFAULT_PARAMETERS, followup=replace(
            DEFAULT_PARAMETERS.followup, measurement=args.measurement))
    cohort = simulate_cohort(args.n, "melanoma", seed=args.seed)
    start = time.perf_counter()
    out = followup_sensitivity(describe_table(cohort, source="simulated melanoma cohort"),
                               seed=args.seed, params=params,
                               progress=lambda text: print(f"  {text}", flush=True))
    seconds = time.perf_counter() - start
    rows = sorted(out["rows"], key=lambda r: (r["week"], r["who"] != "model", r["who"],
                                              ["low", "published", "high"].index(r["setting"])))
    table = [[f"+{r['week']:g}" if r["week"] else "index", r["who"], r["setting"], r["n"],
              _ci(r["auc"], r["auc_ci"]), _ci(r["sensitivity"], r["sensitivity_ci"], True),
              _ci(r["ppv"], r["ppv_ci"], True),
              _ci(r["weeks_untreated_per_100_patients"],
                  r["weeks_untreated_per_100_patients_ci"])]
             for r in rows]
    print(markdown_table(["decision time (weeks)", "model or rule", "setting", "lesions",
                          "AUC (95% CI)", "sensitivity (95% CI)", "PPV (95% CI)",
                          "weeks untreated per 100 patients (95% CI)"], table))
    for s in out["settings"]:
        print(f"{s['setting']}: size log-SD {s['size_noise_sd']:.3f} ({s['measurement']}), "
              f"prolonged pseudoprogression {s['pp_prolonged_share']:.0%}, slow true "
              f"progression {s['tp_slow_share']:.0%}, steroids "
              f"{s['steroid_volume_change_pct']:+.0f}%, missed scans {s['missing_visit']:.0%}, "
              f"timing +-{s['scan_jitter_weeks']:g} weeks")
    print(f"{seconds:.0f} s")
    path = write_result("followup_sensitivity" + ("" if args.measurement == "volume"
                                                  else f"_{args.measurement}"),
                        {"n": args.n, "seed": args.seed, "measurement": args.measurement,
                         "seconds": seconds, **out}, args.out)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    run(main)
