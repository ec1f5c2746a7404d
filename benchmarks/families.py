"""Each model family against the exact posterior, and today's model against the old fixed one.

Two tables whose exact P(pseudoprogression | observed features) is known:

- ``demo``: the demo cohort (``features.synthetic.simulate_cohort``, melanoma, n = 4000,
  seed 0), split by patient as ``models.training.train`` splits it (70% training, 30%
  held out, seed 0); the ceiling is ``features.synthetic.bayes_posterior``;
- ``curved``: the curved table of ``tests/models/test_spline_family.py`` (class-dependent spreads,
  so the true log-odds is quadratic in log rCBV and log ADC): 3,000 training patients
  (seed 0) and 20,000 new ones (seed 1); the ceiling is its exact posterior.

For each family alone (tuned, then calibrated, as ``fit_calibrated`` does it) and for the
chosen one (lowest CV log loss), the table gives the cross-validated log loss on the training
patients, the held-out AUC and log loss, the ceiling's AUC on the same held-out patients and
the gap. Then the chosen model against the old procedure (before tuning and splines:
logistic with C = 0.3 and boosting with fixed settings, 150 trees, radiomic k = 10, the
lower CV log loss kept, calibrated the same way) on the same held-out patients. Prints the
tables and writes them as JSON (``--json``, by default ``benchmarks/results/families.json``)
with the core count and package versions. A measurement, never a test. Run with one
BLAS/OpenMP thread:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/families.py
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

from common import RESULTS, ROOT, run, write_result


def curved_tables(n_train: int, n_new: int):
    """The curved table of ``tests/models/test_spline_family.py``: (training table, its posterior,
    new table, its posterior)."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_spline_family import curved_cohort
    finally:
        sys.path.remove(str(ROOT / "tests"))
    train, p_train = curved_cohort(n_train, seed=0)
    new, p_new = curved_cohort(n_new, seed=1)
    return train, p_train, new, p_new


def demo_tables(n: int, seed: int):
    """The demo cohort split by patient as ``train`` splits it: (training table, its
    posterior, held-out table, its posterior)."""
    from features.synthetic import bayes_posterior, simulate_cohort
    from models.validation import holdout_split

    table = simulate_cohort(n, cohort="melanoma", seed=seed)
    posterior = bayes_posterior(table)
    train_idx, test_idx = holdout_split(table, 0.3, seed)
    return (table.iloc[train_idx], posterior[train_idx], table.iloc[test_idx],
            posterior[test_idx])


def old_fixed_procedure(X, y, groups, seed: int):
    """The procedure before tuning and splines: logistic (C = 0.3) and gradient boosting
    (learning rate 0.08, 15 leaves, 150 trees) with fixed settings, radiomic k = 10, scored
    by the same patient-grouped CV log loss, the better one calibrated the same way.
    Returns (family, calibrated estimator, CV log loss by family)."""
    from sklearn.base import clone
    from sklearn.model_selection import cross_validate
    from threadpoolctl import threadpool_limits

    from features.contract import ID
    from models.classifier import (
        FeatureLayout,
        PatientCalibratedClassifier,
        build_family,
        family_plan,
        patient_folds,
    )

    layout = FeatureLayout.from_columns([c for c in X.columns if c != ID])
    folds = patient_folds(y, groups, 5, seed)
    pipes, losses = {}, {}
    with threadpool_limits(limits=1, user_api="openmp"):
        for family in ("logistic", "gradient_boosting"):
            n_rows, _ = family_plan(family, y, folds)
            if n_rows is None:
                continue
            pipe = build_family(family, layout, seed, n_rows)
            if family == "gradient_boosting":
                pipe.set_params(model__max_iter=150)
            res = cross_validate(pipe, X, y, cv=folds, scoring="neg_log_loss")
            losses[family] = float(-res["test_score"].mean())
            pipes[family] = pipe
        chosen = min(losses, key=losses.get)
        calibrated = PatientCalibratedClassifier(clone(pipes[chosen]), method="sigmoid",
                                                 n_splits=5, random_state=seed)
        calibrated.fit(X, y, groups=groups)
    return chosen, calibrated, losses


def held_out(y, p) -> dict:
    """AUC and log loss (natural log, per row) of probabilities ``p`` against labels ``y``."""
    from sklearn.metrics import log_loss, roc_auc_score

    return {"auc": float(roc_auc_score(y, p)),
            "log_loss": float(log_loss(y, p, labels=[0, 1]))}


def one_table(name: str, train, new, p_new, seed: int) -> dict:
    """Every family alone and the chosen one on one table (see the module docstring)."""
    from threadpoolctl import threadpool_limits

    from features.contract import ID, LABEL
    from models.classifier import FAMILIES, fit_calibrated
    from models.training import feature_columns

    columns = feature_columns(train)
    X, y, groups = train[[*columns, ID]], train[LABEL].to_numpy().astype(int), \
        train[ID].to_numpy()
    X_new, y_new = new[[*columns, ID]], new[LABEL].to_numpy().astype(int)
    ceiling = held_out(y_new, p_new)
    rows: dict[str, dict] = {}
    for family in FAMILIES:
        start = time.perf_counter()
        with threadpool_limits(limits=1):
            fitted = fit_calibrated(X, y, groups, seed=seed, families=(family,))
        score = fitted.cv_scores[family]
        p = fitted.estimator.predict_proba(X_new)[:, 1]
        rows[family] = {"cv_log_loss": score["log_loss"], "cv_auc": score["auc"],
                        "best_params": score.get("best_params"),
                        "n_settings": score.get("n_settings"), **held_out(y_new, p),
                        "seconds": round(time.perf_counter() - start, 2),
                        "probabilities": p}
    scored = {f: r for f, r in rows.items() if math.isfinite(r["cv_log_loss"])}
    chosen = min(scored, key=lambda f: scored[f]["cv_log_loss"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old_family, old_model, old_losses = old_fixed_procedure(X, y, groups, seed)
    p_old = old_model.predict_proba(X_new)[:, 1]
    out = {"table": name, "n_train": int(len(train)), "n_train_positive": int(y.sum()),
           "n_held_out": int(len(new)), "n_held_out_positive": int(y_new.sum()),
           "ceiling": ceiling, "chosen": chosen, "families": {},
           "old_fixed": {"family": old_family, "cv_log_loss": old_losses, **held_out(y_new,
                                                                                    p_old)}}
    for family, r in rows.items():
        out["families"][family] = {k: v for k, v in r.items() if k != "probabilities"} | {
            "auc_gap_to_ceiling": ceiling["auc"] - r["auc"]}
    from models.statistics import delong_test

    test = delong_test(y_new, rows[chosen]["probabilities"], p_old)
    out["chosen_vs_old"] = {"auc_difference": test["difference"],
                            "auc_difference_ci": list(test["ci"]),
                            "delong_p_value": test["p_value"],
                            "log_loss_difference": rows[chosen]["log_loss"]
                            - out["old_fixed"]["log_loss"]}
    return out


def print_table(result: dict) -> None:
    """One table's numbers as aligned text."""
    c = result["ceiling"]
    print(f"\n{result['table']}: {result['n_train']} training patients "
          f"({result['n_train_positive']} pseudoprogression), {result['n_held_out']} held out "
          f"({result['n_held_out_positive']}); ceiling AUC {c['auc']:.4f}, log loss "
          f"{c['log_loss']:.4f}")
    print(f"  {'family':<32}{'CV log loss':>12}{'AUC':>8}{'log loss':>10}{'gap':>8}  settings")
    for family, r in result["families"].items():
        mark = " (chosen)" if family == result["chosen"] else ""
        print(f"  {family + mark:<32}{r['cv_log_loss']:>12.4f}{r['auc']:>8.4f}"
              f"{r['log_loss']:>10.4f}{r['auc_gap_to_ceiling']:>8.4f}  {r['best_params']}")
    old = result["old_fixed"]
    print(f"  {'old fixed (' + old['family'] + ')':<32}{old['cv_log_loss'][old['family']]:>12.4f}"
          f"{old['auc']:>8.4f}{old['log_loss']:>10.4f}{c['auc'] - old['auc']:>8.4f}  "
          "C=0.3 / boosting fixed, no spline, no tuning")
    d = result["chosen_vs_old"]
    print(f"  chosen minus old: AUC {d['auc_difference']:+.4f} (95% CI "
          f"{d['auc_difference_ci'][0]:+.4f} to {d['auc_difference_ci'][1]:+.4f}, DeLong p = "
          f"{d['delong_p_value']:.2g}), log loss {d['log_loss_difference']:+.4f}")


def main(argv: list[str] | None = None) -> int:
    """Run both tables, print them and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-demo", type=int, default=4000, help="demo patients (4000)")
    parser.add_argument("--n-curved", type=int, default=3000,
                        help="curved-table training patients (3000)")
    parser.add_argument("--n-new", type=int, default=20000,
                        help="curved-table held-out patients (20000)")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")
    parser.add_argument("--json", type=Path, default=RESULTS / "families.json",
                        help="where to write the numbers")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    train, _, new, p_new = demo_tables(args.n_demo, args.seed)
    results = [one_table(f"demo (melanoma n={args.n_demo}, seed {args.seed}, patient "
                         "holdout 30%)", train, new, p_new, args.seed)]
    train, _, new, p_new = curved_tables(args.n_curved, args.n_new)
    results.append(one_table(f"curved (tests/models/test_spline_family.py, n={args.n_curved} "
                             f"training, {args.n_new} new)", train, new, p_new, args.seed))
    for result in results:
        print_table(result)
    total = round(time.perf_counter() - start, 1)
    out = write_result("families", {"tables": results, "total_wall_s": total}, args.json)
    print(f"\n{os.cpu_count()} core(s); {total} s; wrote {out}")
    return 0


if __name__ == "__main__":
    run(main)
