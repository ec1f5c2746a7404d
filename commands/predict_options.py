"""The options of ``predict.py``, importable without numpy or pandas (``--help`` and an
argument error answer at once)."""

from __future__ import annotations

import argparse
from pathlib import Path

from commands.table_options import add_table_arguments
from features.choices import add_extraction_arguments


def build_parser(description: str = "", epilog: str = "") -> argparse.ArgumentParser:
    """The options of ``predict.py`` (``description`` and ``epilog`` frame its ``--help``)."""
    p = argparse.ArgumentParser(
        prog="predict.py", description=description, epilog=epilog,
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
    add_extraction_arguments(p)
    p.add_argument("--scans", type=Path, default=None, metavar="S.csv",
                   help="follow-up scans, one row per lesion per scan (a model trained with "
                        "--followup): adds landmark_week, p_<class>_landmark, "
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
