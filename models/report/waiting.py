"""The report's section and figure on follow-up scans: what each extra scan buys and costs.

Read from metrics.json's ``landmarks`` entry (:func:`models.landmarks.train_landmarks`), never
recomputed: :func:`waiting_section` gives the section (the landmark model and each rule over
time by decision time, and the weeks of untreated true progression per 100 patients accrued
by waiting; the tables are :mod:`models.report.tables`' own, the ones ``metrics.md`` shows),
:func:`write_waiting_figure` the figure
(:func:`models.report.figures.plot_waiting_cost`). Both give nothing without ``landmarks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from models.report import format as fmt
from models.report.document import Figure, Para, Section
from models.report.figures import FOLLOWUP_FILE_NAMES, plot_waiting_cost
from models.report.tables import landmark_model_table, landmark_rules_table, landmarks_entry

__all__ = ["FIGURE_KEY", "waiting_section", "write_waiting_figure"]

#: The figure's key in the report (:data:`models.report.figures.FOLLOWUP_FILE_NAMES`).
FIGURE_KEY = "waiting_cost"
_TITLE = "What waiting costs: sensitivity and PPV by decision time"


def waiting_section(data: Mapping, figures: Mapping[str, str] | None = None) -> Section | None:
    """The section on follow-up scans from ``data["landmarks"]`` (metrics.json as written),
    with the figure when ``figures`` (figure key -> file name) holds :data:`FIGURE_KEY`;
    None when the metrics have no landmarks."""
    lm = landmarks_entry(data)
    if lm is None:
        return None
    times = list(lm["times"])
    split = lm.get("split") or {}
    blocks: list = [
        Para("Follow-up scans. At each decision time (weeks after the index scan, the scan "
             "whose enlargement raised the question) a landmark model was fitted: "
             f"{lm.get('method', '')}. Patients were split once "
             f"({fmt.count(split.get('n_train_patients'))} for fitting, calibrating and "
             f"tuning, {fmt.count(split.get('n_test_patients'))} held out; seed "
             f"{fmt.count(split.get('seed'))}); every figure below is on the held-out "
             f"patients. Scans: {lm.get('scans_source', 'not stated')}. Course features: "
             + ", ".join(f"`{c}`" for c in lm.get("course_features") or []) + "."),
        Para("What waiting costs: " + str(lm.get("waiting_definition", "")) + ". Each extra "
             "scan may make the call surer; the last columns say what it costs."),
        landmark_model_table(times),
        landmark_rules_table(times),
    ]
    if figures and FIGURE_KEY in figures:
        blocks.append(Figure(
            FIGURE_KEY, figures[FIGURE_KEY],
            f"{_TITLE}. Left and middle: the landmark model (at its threshold) and each rule "
            "over time (on the lesions it covers; left out where it abstains on every lesion) "
            "with 95% Wilson intervals, points shifted sideways to stay apart. Right: weeks of "
            "untreated true progression per 100 patients accrued by waiting until the decision "
            "time (95% interval).", title=_TITLE))
    return Section("Follow-up scans: what waiting costs", blocks, tripod="12c, 23a")


def write_waiting_figure(data: Mapping, report_dir: str | Path) -> dict[str, Path]:
    """Write the cost-of-waiting figure into ``report_dir`` when ``data`` (metrics.json as
    written) has ``landmarks``; return ``{FIGURE_KEY: path}``, or {} without them."""
    lm = landmarks_entry(data)
    if lm is None:
        return {}
    out = Path(report_dir) / FOLLOWUP_FILE_NAMES[FIGURE_KEY]
    return {FIGURE_KEY: plot_waiting_cost(lm, out)}
