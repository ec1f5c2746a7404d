"""The options of ``train.py``, importable without numpy or pandas (``--help`` and an
argument error answer at once); :meth:`models.study.StudySettings.from_arguments` turns
them into a study's settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from commands.table_options import add_table_arguments
from features.choices import COHORTS, add_extraction_arguments
from models.choices import UPDATE_METHODS, VALIDATIONS


def build_parser(description: str = "") -> argparse.ArgumentParser:
    """The options of ``train.py`` (``description`` heads its ``--help``)."""
    p = argparse.ArgumentParser(
        prog="train.py", description=description,
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
    img.add_argument("--params", type=Path,
                     default=None, metavar="P.yaml",
                     help="pyradiomics settings (default: features/params/mri.yaml); stored in "
                          "the model, so predict.py --manifest extracts with the same ones")
    add_extraction_arguments(img, "image synthesis and extraction")
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
                          "Harrell's optimism-corrected bootstrap; loo: leave-one-patient-out "
                          "cross-validation (for the smallest cohorts); auto (default): "
                          "holdout when both sides hold at least 10 lesions of each class, "
                          "else cv")
    val.add_argument("--test-size", type=float, default=0.3,
                     help="holdout: share of patients held out for evaluation (default 0.3)")
    val.add_argument("--folds", type=int, default=5,
                     help="cv: folds (default 5; fewer when a class has fewer patients)")
    val.add_argument("--anticipated-c", type=float, default=None, metavar="C",
                     help="the C statistic (AUC, 0.5-1) expected from earlier studies, behind "
                          "the minimum sample size (Riley et al.); default: their "
                          "conservative choice")
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
    fol.add_argument("--no-followup-sensitivity", action="store_true",
                     help="with --cohort --followup: skip the landmark result under low and "
                          "high measurement error and course variability of the simulated "
                          "scans (two more sets of landmark fits)")
    fol.add_argument("--scans", type=Path, default=None, metavar="S.csv",
                     help="with --data: your follow-up scans, one row per lesion per scan "
                          "(patient and lesion columns, weeks_on_treatment, volume_ml or "
                          "spd_mm2, optional index_scan, rcbv, adc, ...; other names through "
                          "the table description's 'scans: rename:'); implies --followup")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p
