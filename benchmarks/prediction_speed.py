"""Rows per second of ``predict_table`` against the bare estimator's ``predict_proba``.

A model of each family (logistic, spline, gradient boosting) is trained on a simulated
melanoma cohort (``--train-n`` patients, no nested cross-validation); a second cohort of
``--n`` rows is predicted three ways, taking turns over ``--repeats`` rounds (the fastest of
each kept):

- bare: ``model.estimator.predict_proba`` on the estimator's columns (already selected);
- predict_table, canonical: ``models.predict_table`` on a DescribedTable already in the
  contract's form (the population check, the estimator, the article's rules, the table);
- predict_table, raw: ``models.predict_table`` on the table as read from a file, which also
  applies the model's table description (validation of every cell).

Target: predict_table at most 1.5 times the bare estimator's time (canonical). One BLAS and
OpenMP thread, as ``make bench`` runs it. The table is printed and written with the
machine's core count and package versions to ``benchmarks/results/prediction_speed.json``.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/prediction_speed.py
"""

from __future__ import annotations

import argparse
import time
import warnings

from common import markdown_table, run, write_result

TARGET_RATIO = 1.5


def timed(fn) -> float:
    """Wall-clock seconds of ``fn()``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def trained(family: str, n: int, seed: int):
    """A model of one ``family`` trained on ``n`` simulated melanoma patients."""
    import models.training
    from features.synthetic import simulate_cohort

    fit = models.training.fit_calibrated

    def one_family(*args, **kwargs):
        return fit(*args, **{**kwargs, "families": (family,)})

    models.training.fit_calibrated = one_family
    try:
        return models.training.train(simulate_cohort(n, cohort="melanoma", seed=seed),
                                     validation="holdout", nested_cv=False, progress=False,
                                     seed=seed).model
    finally:
        models.training.fit_calibrated = fit


def main(argv: list[str] | None = None) -> int:
    """Train, time the three ways, print the table, write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="rows to predict (100000)")
    parser.add_argument("--train-n", type=int, default=2000, help="training patients (2000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, fastest kept (3)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (0)")
    parser.add_argument("--families", nargs="+", default=["logistic", "spline",
                                                           "gradient_boosting"],
                        help="model families to time, one model each (all three)")
    parser.add_argument("--out", default=None, help="JSON record (benchmarks/results/...)")
    args = parser.parse_args(argv)

    from features.synthetic import simulate_cohort
    from models import predict_table
    from models.prediction import prepare_for_model

    warnings.simplefilter("ignore")
    raw = simulate_cohort(args.n, cohort="melanoma", seed=args.seed + 1)
    records, lines, all_met = {}, [], True
    for family in args.families:
        t0 = time.perf_counter()
        model = trained(family, args.train_n, args.seed)
        train_s = time.perf_counter() - t0
        described = prepare_for_model(model, raw)
        X = model.align(described.table, warn=False)
        ways = {
            "bare": lambda m=model, X=X: m.estimator.predict_proba(X),
            "canonical": lambda m=model, d=described: predict_table(m, d),
            "raw": lambda m=model: predict_table(m, raw),
        }
        seconds: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(args.repeats):
            for name, fn in ways.items():
                seconds[name].append(timed(fn))
        best = {k: min(v) for k, v in seconds.items()}
        ratio = {k: best[k] / best["bare"] for k in ("canonical", "raw")}
        met = ratio["canonical"] <= TARGET_RATIO
        all_met &= met
        records[family] = {"family": model.family, "train_s": train_s,
                           "seconds_best": best, "seconds_all": seconds, "ratio": ratio,
                           "met": met}
        for name, label in (("bare", "bare estimator predict_proba"),
                            ("canonical", "predict_table, canonical table"),
                            ("raw", "predict_table, raw table (with its validation)")):
            lines.append((model.family, label, f"{best[name]:.3f}",
                          f"{args.n / best[name]:,.0f}", f"{best[name] / best['bare']:.2f}x"))
    text = markdown_table(["family", "way", "seconds", "rows per second", "vs bare"], lines)
    print(f"{args.n} rows; each model trained on {args.train_n} patients\n")
    print(text)
    for family, r in records.items():
        print(f"target predict_table (canonical) at most {TARGET_RATIO}x the bare estimator, "
              f"{family}: {r['ratio']['canonical']:.2f}x, {'met' if r['met'] else 'not met'} "
              f"(raw table {r['ratio']['raw']:.2f}x)")
    out = write_result("prediction_speed", {
        "rows": args.n, "train_patients": args.train_n, "families": records,
        "target": {"ratio_at_most": TARGET_RATIO, "met": all_met}, "table": text}, args.out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    run(main)
