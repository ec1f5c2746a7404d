"""Train a calibrated pseudoprogression classifier and benchmark it against the article's rules.

Examples
--------
Simulated melanoma cohort (9.8% pseudoprogression), 4000 patients::

    python train.py --cohort melanoma --n 4000 --seed 0 --out model.skops --report report/

Your own table in the column contract (CSV or Parquet, with the label column)::

    python train.py --data my_table.csv --out model.skops --report report/

With images: synthetic MRI for a simulated cohort, or your manifest of images and masks
(pyradiomics features are extracted, joined on patient_id, and the report compares the
model with and without them on the same held-out patients)::

    python train.py --cohort melanoma --n 600 --images --out model.skops --report report/
    python train.py --data my_table.csv --manifest images/manifest.csv --out model.skops

Extraction options: ``--params P.yaml`` (pyradiomics settings, stored in the model),
``--cache DIR`` (reused by re-runs, so an interrupted extraction resumes) and
``--scheduler ADDRESS`` (a dask.distributed cluster; ``local`` for one on this machine).
Radiomic columns you extracted yourself can simply be joined into ``--data``.

Follow-up scans: landmark models at the index scan and +4, +8 and +12 weeks, beside the
article's rules over time and what waiting costs (simulated scans for --cohort, your long
scans table with --data)::

    python train.py --cohort melanoma --n 3000 --seed 0 --followup --out M.skops --report R/
    python train.py --data lesions.csv --scans scans.csv --out M.skops --report R/

Your own classifier in place of the built-in families (a factory returning an unfitted
scikit-learn classifier with predict_proba)::

    python train.py --data my_table.csv --estimator my_models.py:make_forest --out M.skops

Patients are split once into training and evaluation sets (``--test-size``); model choice,
calibration and threshold tuning use only the training patients, and the report describes
the held-out patients. The same steps are importable: ``models.train``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from features.description import add_table_arguments, description_from_arguments, text_columns
from features.errors import UserInputError, run_command
from features.extract import (
    CACHE_FOLDER,
    DASK_INSTALL,
    DEFAULT_PARAMS,
    refuse_extraction_options_without_images,
)
from features.scans import LANDMARK_WEEKS
from features.tables import read_table
from models.updating import UPDATE_METHODS
from models.validation import VALIDATIONS

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
                     help="your table (.csv, .tsv, .txt, .xlsx or .parquet), one row per "
                          "lesion, with its label; column names of the contract or as a "
                          "table description (--table) maps them")
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
    img.add_argument("--params", "--radiomics-params", dest="params", type=Path,
                     default=None, metavar="P.yaml",
                     help="pyradiomics settings (default: features/params/mri.yaml); stored in "
                          "the model, so predict.py --manifest extracts with the same ones. "
                          "--radiomics-params is the older name")
    img.add_argument("--jobs", type=int, default=2,
                     help="worker processes for image synthesis and extraction (default 2); "
                          "with --scheduler local, the number of Dask workers")
    img.add_argument("--cache", type=Path, default=None, metavar="DIR",
                     help="radiomic feature cache: a re-run with the same files and settings "
                          "reuses it, so an interrupted extraction resumes, and several "
                          "machines may share one folder (default: .radiomics_cache beside "
                          "--out)")
    img.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="extract on a dask.distributed cluster: its scheduler address "
                          "(tcp://host:8786; the workers must read the manifest's paths), or "
                          "'local' for a cluster of --jobs workers on this machine. Needs "
                          f"Dask: {DASK_INSTALL}")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for simulation, the patient split and the model (default 0)")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL.skops",
                   help="where to save the trained model, with its record (MODEL.skops.json) "
                        "beside it: a skops file, or for a name ending in .joblib a pickle "
                        "(faster, but loading it needs --trust-pickle)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="folder for the evaluation report: report.html (self-contained), "
                        "report.md, metrics.json, metrics.md, figures, held-out predictions")
    add_table_arguments(p)
    val = p.add_argument_group("validation (always by patient: a patient's lesions stay "
                               "together)")
    val.add_argument("--validation", choices=VALIDATIONS, default="auto",
                     help="holdout: fit on part of the patients, evaluate on the rest; cv: "
                          "repeated cross-validation of the whole procedure; bootstrap: "
                          "Harrell's optimism-corrected bootstrap; auto (default): holdout "
                          "when both sides hold at least 10 lesions of each class, else cv")
    val.add_argument("--test-size", type=float, default=0.3,
                     help="holdout: share of patients held out for evaluation (default 0.3)")
    val.add_argument("--folds", type=int, default=5, help="cv: folds (default 5)")
    val.add_argument("--repeats", type=int, default=None,
                     help="cv: repeats (default 10); bootstrap: resamples (default 100)")
    upd = p.add_argument_group("updating a model for a new site")
    upd.add_argument("--update", type=Path, metavar="MODEL",
                     help="update this trained model with --data (local patients) instead of "
                          "training a new one; the report compares the original and the "
                          "updated model on the local patients by cross-validation")
    upd.add_argument("--method", choices=UPDATE_METHODS, default="auto",
                     help="intercept (recalibration in the large), logistic (intercept and "
                          "slope), refit (the same procedure fitted on the local data), or "
                          "auto (default: the closed test of Vergouwe et al. 2017 picks the "
                          "simplest adequate one)")
    upd.add_argument("--trust-pickle", action="store_true",
                     help="allow a .joblib model for --update: a pickle, which can run any "
                          "code when it is loaded; only for a file you made or whose source "
                          "you trust (.skops models never need it)")
    thr = p.add_mutually_exclusive_group()
    thr.add_argument("--threshold", type=float, default=None,
                     help="decision threshold on the calibrated probability (default 0.5: "
                          "predict pseudoprogression when it is the more likely diagnosis)")
    thr.add_argument("--target-sensitivity", type=float, default=None, metavar="S",
                     help="instead, choose the threshold that reaches sensitivity S on "
                          "out-of-fold predictions of the training patients")
    p.add_argument("--estimator", metavar="MODULE:FACTORY",
                   help="your own scikit-learn classifier instead of the built-in families: "
                        "a module importable from the current folder (or path/to/file.py) "
                        "and a function or class in it returning an unfitted classifier with "
                        "predict_proba, e.g. my_models:make_classifier; it is calibrated, "
                        "thresholded, validated and reported like the built-in ones. Its "
                        "types may be ones a .skops file refuses to load: then save it as "
                        "--out model.joblib and predict with --trust-pickle")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="patient-level bootstrap resamples for the report's CIs and paired "
                        "rule comparisons (default 1000; 0 skips them)")
    p.add_argument("--no-nested-cv", action="store_true",
                   help="skip nested cross-validation on the training patients (faster; the "
                        "report then lacks the optimism-corrected figures)")
    fol = p.add_argument_group("follow-up scans (landmark models)")
    fol.add_argument("--followup", action="store_true",
                     help="also fit a calibrated landmark model at the index scan and +4, +8 "
                          "and +12 weeks on the course of the scans, benchmark it against the "
                          "rules over time (T4, iRANO, C4) and report what waiting costs; "
                          "with --cohort the scans are simulated, with --data give --scans. "
                          "The models are saved beside --out (MODEL.landmark-8w.skops, ...)")
    fol.add_argument("--scans", type=Path, default=None, metavar="S.csv",
                     help="with --data: your follow-up scans, one row per lesion per scan "
                          "(patient and lesion columns, weeks_on_treatment, volume_ml or "
                          "spd_mm2, optional index_scan, rcbv, adc, ...; other names through "
                          "the table description's 'scans: rename:'); implies --followup")
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
    if not (args.manifest or args.images):
        refuse_extraction_options_without_images(
            args.params, args.cache, args.scheduler,
            "images: add --manifest M.csv (with --data) or --images (with --cohort), or drop")
    if args.params is not None and not args.params.is_file():
        raise UserInputError(f"--params {args.params}: settings file not found. Check the "
                             "path, or leave --params out for features/params/mri.yaml.")
    if args.update is not None and not args.data:
        raise UserInputError("--update needs --data, the labelled local table to update the "
                             "model with.")
    if args.update is not None and args.estimator:
        raise UserInputError("--estimator trains a new model; --update refits the updated "
                             "model's own procedure. Drop one of them.")
    if args.update is not None and args.manifest:
        raise UserInputError("--update with --manifest is not supported; join the radiomic "
                             "features into --data first (python -m features.extract).")
    if args.scans is not None:
        args.followup = True
        if not args.data:
            raise UserInputError("--scans goes with --data (your table); for a simulated "
                                 "cohort --followup simulates the scans.")
        if not args.scans.is_file():
            raise UserInputError(f"scans table not found: {args.scans}. Check the path.")
    if args.followup and args.data and args.scans is None:
        raise UserInputError("--followup with --data needs your scans: add --scans S.csv "
                             "(one row per lesion per scan).")
    if args.followup and args.update is not None:
        raise UserInputError("--update does not update landmark models; drop --followup and "
                             "--scans, or train anew with them.")
    check_outputs(args)


def check_outputs(args: argparse.Namespace) -> None:
    """The model file, its record and the report folder: writable, and none of them one of
    the inputs (checked before any table is read)."""
    from features.outputs import check_not_an_input, check_report_folder, check_writable
    from models.bundle import record_path
    from models.report import report_files

    inputs = [(p, "one of your input files")
              for p in (args.data, args.manifest, args.table, args.scans)]
    if args.update is not None:
        inputs += [(args.update, "one of your input files"),
                   (record_path(args.update), "one of your input files")]
    check_writable("--out", args.out)
    outputs = [args.out, record_path(args.out)]
    if args.followup:
        from models.landmarks import landmark_path

        outputs += [f(landmark_path(args.out, w)) for w in LANDMARK_WEEKS
                    for f in (Path, record_path)]
    check_not_an_input("--out", outputs, inputs, "choose another file for the model.")
    if args.report:
        check_report_folder(args.report, report_files(args.report),
                            [*inputs, (args.out, "the model file (--out)")])


def load_training_table(args: argparse.Namespace):
    """The table to train on in canonical form (a :class:`DescribedTable`), for simulated data
    the exact Bayes posterior, and a description of the source."""
    from models.training import describe_table

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
        source = f"simulated {args.cohort} cohort, n={args.n}, seed={args.seed}"
        return (describe_table(table, source=source),
                bayes_posterior(table, prevalence=args.prevalence), source)
    stored = None
    if args.update is not None:
        from models import load_model

        args.original_model = load_model(args.update, trust_pickle=args.trust_pickle)
        stored = args.original_model.description
    description = description_from_arguments(args, stored)
    raw = read_table(args.data, sep=args.sep, decimal=args.decimal,
                     text_columns=text_columns(description))
    return describe_table(raw, description, source=str(args.data)), None, str(args.data)


def describe_image_contribution(m: dict, model=None) -> str:
    """One line: AUC with and without image features on the same held-out patients, and how
    many image columns the model's radiomic reduction kept."""
    from models.report.model_features import radiomic_selection

    w, wo = m["with_images"], m["without_images"]
    selection = radiomic_selection(model) if model is not None else None
    kept = ""
    if selection:
        n_kept = len(selection["kept"])
        kept = (f"\nthe radiomic reduction, chosen on the training folds, kept {n_kept} of "
                f"{selection['n_columns']} image columns"
                + (": the model with images is the model without them" if n_kept == 0
                   else ""))
    return kept + (f"\nimage features, same {m['n']} held-out patients: AUC with "
            f"{w['auc']:.3f} ({w['auc_ci'][0]:.3f}-{w['auc_ci'][1]:.3f}), without "
            f"{wo['auc']:.3f} ({wo['auc_ci'][0]:.3f}-{wo['auc_ci'][1]:.3f}); difference "
            f"{m['auc_difference']:+.3f} ({m['auc_difference_ci'][0]:+.3f} to "
            f"{m['auc_difference_ci'][1]:+.3f}), DeLong p = {m['delong_p_value']:.2g}")


def main(argv: list[str] | None = None) -> int:
    """Parse options, train (or update), save the model, write the report, print the
    benchmark."""
    args = build_parser().parse_args(argv)
    from models import add_uncertainty, save_model, train, write_report
    from models.report import format_benchmark_table

    check_options(args)
    estimator = None
    if args.estimator:  # read before the table, so a wrong name fails at once
        from models.classifier import load_estimator

        estimator = load_estimator(args.estimator)
    described, bayes_p, source = load_training_table(args)
    scans = load_scans(args, described) if args.followup else None
    radiomics = None
    if args.manifest:
        from features.join import add_radiomic_features

        radiomics = add_radiomic_features(
            described.table, args.manifest, params=args.params or DEFAULT_PARAMS,
            jobs=args.jobs, cache_dir=args.cache or args.out.parent / CACHE_FOLDER,
            scheduler=args.scheduler,
            progress=not args.no_progress)
        described.table = radiomics.table
    if args.update is not None:
        from models.updating import update_model

        model, evaluation = update_model(args.original_model, described.table,
                                         method=args.method, seed=args.seed, folds=args.folds,
                                         repeats=args.repeats or 5, source=source,
                                         progress=not args.no_progress)
        title = f"Update of {args.update.name} with {source}"
    else:
        options = dict(seed=args.seed, test_size=args.test_size, threshold=args.threshold,
                       target_sensitivity=args.target_sensitivity, bayes_p=bayes_p,
                       source=source, progress=not args.no_progress,
                       validation=args.validation, folds=args.folds, repeats=args.repeats,
                       estimator=estimator)
        result = train(described, nested_cv=not args.no_nested_cv, **options)
        model, evaluation = result.model, result.evaluation
        scheme = evaluation.metrics["validation"]
        print(f"validation: {scheme['scheme']} ({scheme['reason']})")
        if radiomics is not None:
            from models.training import compare_without_images

            print("training the same procedure without image features, for comparison ...")
            evaluation.metrics["image_features"] = compare_without_images(
                described, result, **options)
            evaluation.metrics["radiomic_extraction"] = radiomics.summary()
            model.radiomics_settings = radiomics.settings_text
        title = (f"Held-out evaluation: {source}" if scheme["scheme"] == "holdout" else
                 f"Internal validation ({scheme['scheme']}): {source}")
    if args.report and args.bootstrap > 0:
        model.metrics = evaluation.metrics = add_uncertainty(
            evaluation.metrics, evaluation.frame, model.threshold,
            n_resamples=args.bootstrap, seed=args.seed, progress=not args.no_progress)
    landmarks = fit_landmarks(args, described, scans, source) if args.followup else None
    if landmarks is not None:
        from models.statistics import to_jsonable

        evaluation.metrics["landmarks"] = to_jsonable(landmarks.metrics)
        model.metrics = evaluation.metrics  # the model file keeps what the report shows
    save_model(model, args.out)
    if landmarks is not None:
        from models.landmarks import save_landmarks

        save_landmarks(landmarks.models, args.out)
    if args.report:
        if not args.no_progress:
            print("writing the report (figures, report.html) ...", flush=True)
        fidelity = None
        if args.cohort:
            from features.synthetic import fidelity_table

            fidelity = fidelity_table(seed=args.seed)
        write_report(args.report, evaluation.metrics, evaluation.frame, model=model,
                     fidelity=fidelity, title=title, predictions=evaluation.predictions)
    print(format_benchmark_table(evaluation.metrics))
    if "image_features" in evaluation.metrics:
        print(describe_image_contribution(evaluation.metrics["image_features"], model))
    if "update" in evaluation.metrics:
        print(describe_update(evaluation.metrics["update"]))
    if landmarks is not None:
        from models.report import format_landmark_table

        print("\n" + format_landmark_table(evaluation.metrics))
    print(f"\nmodel ({model.family}, threshold {model.threshold:.3g}) saved to "
          f"{args.out}" + (f"; report: {args.report / 'report.html'}" if args.report else ""))
    return 0


def load_scans(args: argparse.Namespace, described):
    """The follow-up scans, checked (:func:`features.scans.read_scans`) before any training:
    the simulator's for a simulated cohort, else the table given with --scans, read through
    the same table description."""
    from features.scans import read_scans

    if args.cohort:
        from features.synthetic import simulate_followup

        return read_scans(simulate_followup(described.table, seed=args.seed),
                          lesions=described.table)
    raw = read_table(args.scans, sep=args.sep, decimal=args.decimal,
                     text_columns=text_columns(described.description))
    return read_scans(raw, described.description, lesions=described.table,
                      source=f"the scans table {args.scans}")


def fit_landmarks(args: argparse.Namespace, described, scans, source: str):
    """The landmark models on the follow-up ``scans``
    (:func:`models.landmarks.train_landmarks`), on the same patient split as the main model's
    holdout."""
    from models.landmarks import train_landmarks

    if not args.no_progress:
        print("fitting landmark models on the follow-up scans ...", flush=True)
    return train_landmarks(described, scans, seed=args.seed, test_size=args.test_size,
                           threshold=0.5 if args.threshold is None else args.threshold,
                           description=described.description, source=source,
                           progress=None if args.no_progress else _progress_line)


def _progress_line(text: str) -> None:
    print(f"  {text}", flush=True)


def describe_update(m: dict) -> str:
    """Lines: the update chosen and calibration before and after, on the local patients."""
    o, u = m["original"], m["updated_cross_validated"]

    def line(name: str, d: dict) -> str:
        return (f"  {name:<34} AUC {d['auc']:.3f}, calibration intercept "
                f"{d['calibration_intercept']:+.2f}, slope {d['calibration_slope']:.2f}, "
                f"Brier {d['brier']:.4f}")

    tests = "; ".join(f"{t['comparison']}: LR {t['lr']:.1f} on {t['df']} df, p = "
                      f"{t['p_value']:.2g}" for t in m.get("tests") or [])
    return "\n".join([f"\nupdate: {m['chosen']} (asked: {m['requested']})"
                      + (f"; closed test: {tests}" if tests else ""),
                      line("original model, local patients", o),
                      line("updated model, cross-validated", u)])


if __name__ == "__main__":
    sys.exit(run_command(main))
