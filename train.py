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
the held-out patients. The same study is importable: ``models.study.run_study``
(a research script calling it gets the same files as this command).
"""

from __future__ import annotations

import sys

from commands.run import run_command
from commands.train_options import build_parser


def main(argv: list[str] | None = None) -> int:
    """Parse the options into a study's settings, run the study, save the model and the
    report, and print the benchmark."""
    args = build_parser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    from models.study import StudySettings, run_study

    settings = StudySettings.from_arguments(args)
    study = run_study(settings, progress=not args.no_progress)
    if settings.report and not args.no_progress:
        print("writing the report (figures, report.html) ...", flush=True)
    study.save()
    from models.report.terminal import study_summary

    print(study_summary(study))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
