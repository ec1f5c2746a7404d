"""Train a calibrated pseudoprogression classifier and benchmark it against the article's rules.

Examples
--------
Simulated melanoma cohort (9.8% pseudoprogression), 4000 patients::

    python train.py --cohort melanoma --n 4000 --seed 0 --out model.joblib --report report/

Your own table in the column contract (CSV or Parquet, with the label column)::

    python train.py --data my_table.csv --out model.joblib --report report/

With images: synthetic MRI for a simulated cohort, or your manifest of images and masks
(pyradiomics features are extracted, joined on patient_id, and the report compares the
model with and without them on the same held-out patients)::

    python train.py --cohort melanoma --n 600 --images --out model.joblib --report report/
    python train.py --data my_table.csv --manifest images/manifest.csv --out model.joblib

Patients are split once into training and evaluation sets (``--test-size``); model choice,
calibration and threshold tuning use only the training patients, and the report describes
the held-out patients. The same steps are importable: ``models.train``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from features.errors import UserInputError, run_command
from features.extract import DEFAULT_PARAMS
from features.tables import read_table

COHORTS = ("melanoma", "nsclc", "mixed")


def build_parser() -> argparse.ArgumentParser:
    """The command line's options."""
    p = argparse.ArgumentParser(
        prog="train.py", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 on success, 2 on a problem with the input (the message says "
               "which and how to fix it).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("data (choose one)")
    one = src.add_mutually_exclusive_group(required=True)
    one.add_argument("--cohort", choices=COHORTS,
                     help="simulate a cohort: melanoma (P1, 9.8%% pseudoprogression), nsclc "
                          "(P2, 15.3%%) or mixed (half each, each with its own prevalence)")
    one.add_argument("--data", type=Path, metavar="TABLE",
                     help="your table (.csv or .parquet) in the column contract, with the "
                          "'pseudoprogression' label (1 pseudoprogression, 0 true progression)")
    sim = p.add_argument_group("simulation (with --cohort)")
    sim.add_argument("--n", type=int, default=4000, help="patients to simulate (default 4000)")
    sim.add_argument("--prevalence", type=float, default=None,
                     help="override the cohort's prevalence of pseudoprogression (0-1)")
    img = p.add_argument_group("images (radiomic features)")
    img.add_argument("--images", action="store_true",
                     help="with --cohort: write synthetic MRI (t1c, flair, adc, rcbv, lesion "
                          "mask) for every simulated patient and extract radiomic features")
    img.add_argument("--manifest", type=Path, metavar="M.csv",
                     help="with --data: image manifest (patient_id, mask, one column per "
                          "sequence; paths relative to the manifest's folder)")
    img.add_argument("--image-dir", type=Path, default=None, metavar="DIR",
                     help="where --images writes the synthetic MRI (default: images/ beside "
                          "--out)")
    img.add_argument("--radiomics-params", type=Path, default=DEFAULT_PARAMS, metavar="P.yaml",
                     help="pyradiomics settings (default: features/params/mri.yaml)")
    img.add_argument("--jobs", type=int, default=2,
                     help="worker processes for image synthesis and extraction (default 2)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for simulation, the patient split and the model (default 0)")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.joblib",
                   help="where to save the trained model")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="folder for the evaluation report: report.html (self-contained), "
                        "report.md, metrics.json, metrics.md, figures, held-out predictions")
    p.add_argument("--test-size", type=float, default=0.3,
                   help="share of patients held out for evaluation (default 0.3)")
    thr = p.add_mutually_exclusive_group()
    thr.add_argument("--threshold", type=float, default=None,
                     help="decision threshold on the calibrated probability (default 0.5: "
                          "predict pseudoprogression when it is the more likely diagnosis)")
    thr.add_argument("--target-sensitivity", type=float, default=None, metavar="S",
                     help="instead, choose the threshold that reaches sensitivity S on "
                          "out-of-fold predictions of the training patients")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="patient-level bootstrap resamples for the report's CIs and paired "
                        "rule comparisons (default 1000; 0 skips them)")
    p.add_argument("--no-nested-cv", action="store_true",
                   help="skip nested cross-validation on the training patients (faster; the "
                        "report then lacks the optimism-corrected figures)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def check_options(args: argparse.Namespace) -> None:
    """Combinations argparse cannot check."""
    if args.images and not args.cohort:
        raise UserInputError("--images synthesises MRI for a simulated cohort; with your own "
                             "data give --manifest instead.")
    if args.manifest and not args.data:
        raise UserInputError("--manifest goes with --data (your table); for a simulated cohort "
                             "use --images.")
    if args.manifest and not args.manifest.is_file():
        raise UserInputError(f"manifest not found: {args.manifest}. Check the path.")
    inputs = {p.resolve() for p in (args.data, args.manifest) if p is not None}
    if args.out.resolve() in inputs:
        raise UserInputError("--out is one of your input files; choose another file for the "
                             "model.")
    if args.report:
        from models.report import report_files

        if inputs & {f.resolve() for f in report_files(args.report)}:
            raise UserInputError(f"--report {args.report} would overwrite one of your input "
                                 "files; choose another report folder.")


def load_training_table(args: argparse.Namespace):
    """The table to train on and, for simulated data, the exact Bayes posterior."""
    if args.cohort:
        from features.synthetic import bayes_posterior, simulate_cohort

        if args.n < 50:
            raise UserInputError(f"--n {args.n} is too small to train and evaluate; use 50 "
                                 "or more (4000 is the demo's size).")
        if args.prevalence is not None and not 0 < args.prevalence < 1:
            raise UserInputError(f"--prevalence must be between 0 and 1, got {args.prevalence}.")
        if args.images:
            from features.synthetic import simulated_cohort_with_images

            image_dir = args.image_dir or args.out.parent / "images"
            table, args.manifest = simulated_cohort_with_images(
                args.n, args.cohort, args.seed, image_dir, prevalence=args.prevalence,
                jobs=args.jobs, progress=not args.no_progress)
        else:
            table = simulate_cohort(args.n, cohort=args.cohort, prevalence=args.prevalence,
                                    seed=args.seed)
        return table, bayes_posterior(table, prevalence=args.prevalence), \
            f"simulated {args.cohort} cohort, n={args.n}, seed={args.seed}"
    return read_table(args.data), None, str(args.data)


def describe_image_contribution(m: dict) -> str:
    """One line: AUC with and without image features on the same held-out patients."""
    w, wo = m["with_images"], m["without_images"]
    return (f"\nimage features, same {m['n']} held-out patients: AUC with "
            f"{w['auc']:.3f} ({w['auc_ci'][0]:.3f}-{w['auc_ci'][1]:.3f}), without "
            f"{wo['auc']:.3f} ({wo['auc_ci'][0]:.3f}-{wo['auc_ci'][1]:.3f}); difference "
            f"{m['auc_difference']:+.3f} ({m['auc_difference_ci'][0]:+.3f} to "
            f"{m['auc_difference_ci'][1]:+.3f}), DeLong p = {m['delong_p_value']:.2g}")


def main(argv: list[str] | None = None) -> int:
    """Parse options, train, save the model, write the report and print the benchmark."""
    args = build_parser().parse_args(argv)
    from models import add_uncertainty, save_model, train, write_report
    from models.report import format_benchmark_table

    check_options(args)
    table, bayes_p, source = load_training_table(args)
    radiomics = None
    if args.manifest:
        from features.join import add_radiomic_features

        radiomics = add_radiomic_features(
            table, args.manifest, params=args.radiomics_params, jobs=args.jobs,
            cache_dir=args.out.parent / ".radiomics_cache", progress=not args.no_progress)
        table = radiomics.table
    options = dict(seed=args.seed, test_size=args.test_size, threshold=args.threshold,
                   target_sensitivity=args.target_sensitivity, bayes_p=bayes_p, source=source,
                   progress=not args.no_progress)
    result = train(table, nested_cv=not args.no_nested_cv, **options)
    if radiomics is not None:
        from models.training import compare_without_images

        print("training the same procedure without image features, for comparison ...")
        metrics = result.evaluation.metrics
        metrics["image_features"] = compare_without_images(table, result, **options)
        metrics["radiomic_extraction"] = radiomics.summary()
        result.model.radiomics_settings = radiomics.settings_text
    if args.report and args.bootstrap > 0:
        result.model.metrics = result.evaluation.metrics = add_uncertainty(
            result.evaluation.metrics, result.evaluation.frame, result.model.threshold,
            n_resamples=args.bootstrap, seed=args.seed, progress=not args.no_progress)
    save_model(result.model, args.out)
    if args.report:
        if not args.no_progress:
            print("writing the report (figures, report.html) ...", flush=True)
        fidelity = None
        if args.cohort:
            from features.synthetic import fidelity_table

            fidelity = fidelity_table(seed=args.seed)
        write_report(args.report, result.evaluation.metrics, result.evaluation.frame,
                     model=result.model, fidelity=fidelity,
                     title=f"Held-out evaluation: {source}")
    print(format_benchmark_table(result.evaluation.metrics))
    if "image_features" in result.evaluation.metrics:
        print(describe_image_contribution(result.evaluation.metrics["image_features"]))
    print(f"\nmodel ({result.model.family}, threshold {result.model.threshold:.3g}) saved to "
          f"{args.out}" + (f"; report: {args.report / 'report.html'}" if args.report else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
