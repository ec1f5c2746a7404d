"""Do the internal-validation schemes agree? The same simulated cohort validated by repeated
cross-validation and by the optimism bootstrap, side by side.

Both schemes estimate how the fitting procedure performs on new patients; on one cohort
their headline figures should agree within their noise. The acceptance line for the
calibration slope is 0.1 (cross-validation's slope against the bootstrap's). For each
scheme the table gives the headline AUC, Brier score, calibration intercept and slope,
sensitivity and PPV, where each comes from (``metrics["model"]["headline"]``), and the
bootstrap's refits by family; written with the machine's core count and package versions
to ``benchmarks/results/validation_agreement.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/validation_agreement.py --n 800 --seed 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from common import markdown_table, run, write_result

FIGURES = ("auc", "brier", "calibration_intercept", "calibration_slope", "sensitivity", "ppv")
#: The largest difference of calibration slopes the schemes may show.
SLOPE_AGREEMENT = 0.1


def headline(validation: str, n: int, seed: int, repeats: int | None) -> tuple[dict, dict, float]:
    """The study's headline model figures, its internal-validation record and the seconds
    it took, for one validation scheme."""
    from models import StudySettings, run_study

    with tempfile.TemporaryDirectory() as tmp:
        settings = StudySettings(cohort="melanoma", n=n, seed=seed, validation=validation,
                                 repeats=repeats, bootstrap=0, out=Path(tmp) / "m.skops")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the sample-size and family warnings
            study = run_study(settings, progress=False)
        seconds = time.perf_counter() - start
    metrics = study.metrics
    return metrics["model"], metrics.get("internal_validation") or {}, seconds


def main(argv: list[str] | None = None) -> int:
    """Print the two schemes' headline figures, their differences and whether the slopes
    agree within :data:`SLOPE_AGREEMENT`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=800, help="patients (default 800)")
    parser.add_argument("--seed", type=int, default=3, help="cohort and model seed (3)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="cv repeats and bootstrap resamples (default: each scheme's)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args(argv)
    results = {}
    for scheme in ("cv", "bootstrap"):
        print(f"{scheme}: training and validating {args.n} patients (seed {args.seed}) ...",
              flush=True)
        model, internal, seconds = headline(scheme, args.n, args.seed, args.repeats)
        results[scheme] = {"figures": {k: model.get(k) for k in FIGURES},
                           "source": (model.get("headline") or {}).get("figures", ""),
                           "refit_families": {
                               f: v["n_resamples"] for f, v in
                               ((internal.get("by_family") or {}).get("families") or {}).items()},
                           "seconds": round(seconds, 1)}
    cv, boot = (results[s]["figures"] for s in ("cv", "bootstrap"))
    rows = [[k, cv[k], boot[k], boot[k] - cv[k]] for k in FIGURES]
    print(markdown_table(["figure", "cv", "bootstrap", "bootstrap - cv"], rows))
    for scheme, r in results.items():
        print(f"\n{scheme} ({r['seconds']} s): {r['source']}")
    families = results["bootstrap"]["refit_families"]
    if families:
        print(f"\nbootstrap refits by family: {families}")
    gap = abs(boot["calibration_slope"] - cv["calibration_slope"])
    agree = gap <= SLOPE_AGREEMENT
    print(f"\ncalibration slopes differ by {gap:.3f}: "
          + ("within" if agree else "OUTSIDE") + f" the {SLOPE_AGREEMENT} agreement line")
    path = write_result("validation_agreement", {
        "n": args.n, "seed": args.seed, "schemes": results, "slope_gap": gap,
        "slopes_agree": agree}, args.out)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    run(main)
