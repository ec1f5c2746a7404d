"""Predict pseudoprogression with a model saved by train.py.

Example::

    python predict.py --model model.skops --data new_patients.csv --out predictions.csv

Writes one row per input row: patient_id, p_pseudoprogression (calibrated probability),
prediction (1/0 at the model's stored threshold), risk_group (the article's T5 "low" /
T6 "high" triage where it can be decided) and rule_<id> for every rule of the article
(1, 0, or empty where the rule lacks an input). When the table carries the
'pseudoprogression' label and --report is given, also writes the benchmark report for
exactly those rows. The same steps are importable: ``models.predict_table``.

With --scans (a model trained with --followup): each lesion's probability also from the
landmark model at the latest decision time its scans reach (index, +4, +8 or +12 weeks),
which decision time that is, and the rules over time (T4, iRANO, C4) as of then::

    python predict.py --model M.skops --data lesions.csv --scans scans.csv --out pred.csv

A model with image (radiomic) columns needs them: either in --data (joined on patient_id),
or extracted from --manifest with the settings stored in the model (or --params), using
--cache and --scheduler as train.py does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from features.contract import LABEL
from features.description import add_table_arguments, description_from_arguments, text_columns
from features.errors import UserInputError, run_command
from features.extract import (
    CACHE_FOLDER,
    DASK_INSTALL,
    refuse_extraction_options_without_images,
)
from features.tables import read_table, write_table_atomic


def build_parser() -> argparse.ArgumentParser:
    """The command line's options."""
    p = argparse.ArgumentParser(
        prog="predict.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, metavar="MODEL.skops",
                   help="a model saved by train.py --out, with its record (MODEL.skops.json) "
                        "beside it")
    p.add_argument("--data", type=Path, required=True, metavar="TABLE",
                   help="table (.csv, .tsv, .txt, .xlsx or .parquet), one row per lesion, read "
                        "through the table description stored in the model (or --table); the "
                        "label is optional")
    p.add_argument("--out", type=Path, required=True, metavar="PRED.csv",
                   help="where to write the predictions (must differ from --data)")
    p.add_argument("--manifest", type=Path, metavar="M.csv",
                   help="image manifest (patient_id, mask, one column per sequence): radiomic "
                        "features are extracted with the settings the model was trained with "
                        "(or --params) and joined on patient_id. Without it, a model with "
                        "image columns needs them in --data")
    p.add_argument("--params", type=Path, default=None, metavar="P.yaml",
                   help="with --manifest: pyradiomics settings to extract with (default: those "
                        "stored in the model by train.py; needed for a model whose image "
                        "columns were extracted elsewhere)")
    p.add_argument("--jobs", type=int, default=2,
                   help="worker processes for radiomic extraction (default 2); with "
                        "--scheduler local, the number of Dask workers")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="with --manifest: radiomic feature cache, shared with train.py and "
                        "python -m features.extract (default: .radiomics_cache beside --out)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="with --manifest: extract on a dask.distributed cluster, given by its "
                        "scheduler address (tcp://host:8786), or 'local' for a cluster of "
                        f"--jobs workers on this machine. Needs Dask: {DASK_INSTALL}")
    p.add_argument("--scans", type=Path, default=None, metavar="S.csv",
                   help="follow-up scans, one row per lesion per scan (a model trained with "
                        "--followup): adds landmark_week, p_pseudoprogression_landmark, "
                        "prediction_landmark and the rules over time to the predictions")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="also write the benchmark report for these rows (needs the label): "
                        "report.html, report.md, metrics.json, metrics.md, figures")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                   help="bootstrap resamples for the report's CIs (default 1000; 0 skips)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a .joblib model: a pickle, which can run any code when it is "
                        "loaded; only for a file you made or whose source you trust (.skops "
                        "models never need it)")
    add_table_arguments(p)
    return p


def population_report(model, table, metrics: dict) -> dict:
    """For a labelled table's report: how it differs from the training population, and the
    measured shift in calibration (calibration-in-the-large; 0 is none)."""
    from dataclasses import asdict

    from models.population import TrainingProfile

    shifts = ([] if model.population is None else
              TrainingProfile.from_dict(model.population).compare(table))
    return {"shifts": [asdict(s) for s in shifts],
            "training_prevalence": model.training_prevalence,
            "calibration_intercept": metrics["model"].get("calibration_intercept"),
            "calibration_intercept_ci": metrics["model"].get("calibration_intercept_ci"),
            "remedy": "python train.py --update MODEL --data LOCAL.csv (README: Your own "
                      "data, updating a model for a new site)"}


def check_outputs(args: argparse.Namespace) -> None:
    """The predictions file and the report folder: writable, and none of them one of the
    inputs (the table, the model and its record, --table, --manifest); checked before any
    input is read."""
    from features.outputs import check_not_an_input, check_report_folder, check_writable
    from models.bundle import record_path
    from models.report import report_files

    inputs = [(args.data, "the input table"), (args.model, "the model file (--model)"),
              (record_path(args.model), "the model's record (--model's .json)"),
              (args.table, "the table description (--table)"),
              (args.manifest, "the image manifest (--manifest)"),
              (args.scans, "the scans table (--scans)")]
    check_writable("--out", args.out)
    check_not_an_input("--out", [args.out], inputs,
                       "choose another file so your data is not overwritten.")
    if args.report:
        check_report_folder(args.report, report_files(args.report),
                            [*inputs, (args.out, "the predictions file (--out)")])


def load_landmark_models(args: argparse.Namespace) -> dict:
    """The landmark models saved beside --model by ``train.py --followup``; an error saying
    so when there are none."""
    from models.landmarks import load_landmarks

    landmarks = load_landmarks(args.model, trust_pickle=args.trust_pickle)
    if not landmarks:
        raise UserInputError(f"--scans needs the landmark models of {args.model.name} "
                             f"({args.model.stem}.landmark-0w{args.model.suffix}, ...), which "
                             "train.py --followup writes beside the model; none were found "
                             f"in {args.model.parent}. Train with --followup, or drop --scans.")
    return landmarks


def with_landmark_predictions(predictions, landmarks: dict, described, args: argparse.Namespace):
    """``predictions`` with, per lesion, the landmark model's probability and call at the
    latest decision time the scans reach (``landmark_week``) and the rules over time as of
    then (:func:`models.landmarks.predict_landmarks`; rows in the same order)."""
    from models.landmarks import predict_landmarks

    description = described.description
    scans = read_table(args.scans, sep=args.sep, decimal=args.decimal,
                       text_columns=text_columns(description))
    by_landmark = predict_landmarks(landmarks, described, scans, description=description)
    keys = list(by_landmark.columns[:2])
    added = by_landmark.drop(columns=keys).rename(columns={
        "p_pseudoprogression": "p_pseudoprogression_landmark",
        "prediction": "prediction_landmark"})
    return predictions.join(added.set_axis(predictions.index))


def main(argv: list[str] | None = None) -> int:
    """Load the model and table, write predictions and, if asked, the report."""
    args = build_parser().parse_args(argv)
    from models import load_model, predict_table
    from models.prediction import prepare_for_model, with_radiomic_features

    check_outputs(args)
    if not args.manifest:
        refuse_extraction_options_without_images(args.params, args.cache, args.scheduler,
                                                 "--manifest M.csv; add it or drop")
    if args.scans is not None and not args.scans.is_file():
        raise UserInputError(f"scans table not found: {args.scans}. Check the path.")
    model = load_model(args.model, trust_pickle=args.trust_pickle)
    landmarks = load_landmark_models(args) if args.scans is not None else None
    description = description_from_arguments(args, model.description)
    raw = read_table(args.data, sep=args.sep, decimal=args.decimal,
                     text_columns=text_columns(description or model.table_description()))
    described = prepare_for_model(model, raw, description, source=str(args.data))
    if args.manifest:
        described.table = with_radiomic_features(
            model, described.table, args.manifest, args.jobs,
            cache_dir=args.cache or args.out.parent / CACHE_FOLDER, params=args.params,
            scheduler=args.scheduler)
    table = described.table
    predictions = predict_table(model, described, source=str(args.data))
    if landmarks is not None:
        predictions = with_landmark_predictions(predictions, landmarks, described, args)
    write_table_atomic(predictions, args.out)
    print(f"{len(predictions)} prediction(s) written to {args.out} "
          f"({int(predictions['prediction'].sum())} predicted pseudoprogression at threshold "
          f"{model.threshold:.3g})")
    if args.report:
        if LABEL not in table.columns:
            label = (description or model.table_description()).label_column
            raise UserInputError(f"--report needs the label column '{label}' in {args.data}; "
                                 "drop --report to predict without evaluating, or name the "
                                 "label column with --label-column.")
        from models import add_uncertainty, evaluate, write_report
        from models.report import format_benchmark_table

        evaluation = evaluate(model, table, warn=False)
        metrics = evaluation.metrics
        metrics["population_shift"] = population_report(model, table, metrics)
        if args.bootstrap > 0:
            metrics = add_uncertainty(metrics, evaluation.frame, model.threshold,
                                      n_resamples=args.bootstrap)
        write_report(args.report, metrics, evaluation.frame, model=model,
                     title=f"Evaluation of {args.model.name} on {args.data.name}")
        print(format_benchmark_table(metrics))
        print(f"report: {args.report / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
