"""Predict pseudoprogression with a model saved by train.py.

Example::

    python predict.py --model model.skops --data new_patients.csv --out predictions.csv

Writes one row per input row: patient_id, p_pseudoprogression (calibrated probability;
p_<name> for a positive class the table description names otherwise), prediction (1/0 at
the model's stored threshold), risk_group (the article's T5 "low" / T6 "high" triage where
it can be decided) and rule_<id> for every article rule whose inputs the table has and every
rule the table description declares (1, 0, or empty where the rule lacks an input). When
the table carries its label and --report is given, also writes the benchmark report for
exactly those (labelled) rows. The same steps are importable: ``models.scoring.run_prediction``
(and ``models.predict_table`` on a DataFrame).

With --scans (a model trained with --followup): each lesion's probability also from the
landmark model at the latest decision time its scans reach (index, +4, +8 or +12 weeks),
which decision time that is, and the rules over time (T4, iRANO, C4) as of then::

    python predict.py --model M.skops --data lesions.csv --scans scans.csv --out pred.csv

A model with image (radiomic) columns needs them: either in --data (joined on patient_id),
or extracted from --manifest with the settings stored in the model (or --params), using
--cache and --scheduler as train.py does.
"""

from __future__ import annotations

import sys

from commands.predict_options import build_parser
from commands.run import run_command


def main(argv: list[str] | None = None) -> int:
    """Parse the options, predict, write the predictions and, if asked, the report."""
    args = build_parser(description=__doc__.split("\n\n")[0],
                        epilog=__doc__.split("\n\n", 2)[2]).parse_args(argv)
    from models.scoring import PredictionSettings, run_prediction

    settings = PredictionSettings.from_arguments(args)
    scoring = run_prediction(settings)
    scoring.save()
    predictions, model = scoring.predictions, scoring.model
    positive = model.table_description().positive_name
    print(f"{len(predictions)} prediction(s) written to {settings.out} "
          f"({int(predictions['prediction'].sum())} predicted {positive} at threshold "
          f"{model.threshold:.3g})")
    if scoring.metrics is not None:
        from models.report import format_benchmark_table

        print(format_benchmark_table(scoring.metrics))
        print(f"report: {settings.report / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
