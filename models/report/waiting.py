"""The report's section and figure on follow-up scans: what each extra scan buys and costs.

Read from metrics.json's ``landmarks`` entry (:func:`models.landmarks.train_landmarks`), never
recomputed: :func:`waiting_section` gives the section (the landmark model and each rule over
time by decision time, and the weeks of untreated true progression per 100 patients accrued
by waiting), :func:`write_waiting_figure` the figure
(:func:`models.report.figures.plot_waiting_cost`). Both give nothing without ``landmarks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from models.report import format as fmt
from models.report.document import Figure, Para, Section, Table
from models.report.figures import FOLLOWUP_FILE_NAMES, plot_waiting_cost
from models.statistics import AUC_CI_METHOD

__all__ = ["FIGURE_KEY", "waiting_section", "write_waiting_figure"]

#: The figure's key in the report (:data:`models.report.figures.FOLLOWUP_FILE_NAMES`).
FIGURE_KEY = "waiting_cost"
_TITLE = "What waiting costs: sensitivity and PPV by decision time"


def _landmarks(data: Mapping) -> Mapping | None:
    entry = data.get("landmarks")
    return entry if isinstance(entry, Mapping) and entry.get("times") else None


def _weeks(t: Mapping) -> str:
    return f"+{fmt.g(t.get('week'))}" if fmt.num(t.get("week")) > 0 else "index (0)"


def _model_table(times: list[Mapping]) -> Table:
    rows = []
    for t in times:
        m, w = t.get("model") or {}, t.get("waiting") or {}
        rows.append([
            _weeks(t), f"{fmt.count(t.get('n'))} ({fmt.count(t.get('n_positive'))}) / "
            f"{fmt.count(t.get('n_patients'))}", str(t.get("family") or ""),
            fmt.est_ci(m.get("auc"), m.get("auc_ci")),
            fmt.pct_ci(m.get("sensitivity"), m.get("sensitivity_ci")),
            fmt.pct_ci(m.get("ppv"), m.get("ppv_ci")),
            fmt.est_ci(w.get("weeks_untreated_per_100_patients"),
                       w.get("weeks_untreated_per_100_patients_ci"), 1),
            fmt.est_ci(w.get("false_reassurance_per_100_patients"),
                       w.get("false_reassurance_per_100_patients_ci"), 1)])
    return Table(["decision time (weeks)", "lesions (pseudoprogression) / patients", "family",
                  "AUC (95% CI)", "sensitivity (95% CI)", "PPV (95% CI)",
                  "weeks of untreated true progression per 100 patients (95% CI)",
                  "false reassurance per 100 patients (95% CI)"], rows,
                 caption="The landmark model at each decision time, on the held-out patients' "
                         "lesions with a scan at that time, pseudoprogression called at its "
                         f"threshold; AUC: {AUC_CI_METHOD}; proportions: Wilson intervals.")


def _rules_table(times: list[Mapping]) -> Table:
    rows = []
    for t in times:
        for rid, r in (t.get("rules") or {}).items():
            at = r.get("model_at_rule_sensitivity") or {}
            covered = fmt.num(r.get("coverage")) > 0
            rows.append([
                _weeks(t), rid, fmt.pct(r.get("coverage")),
                fmt.pct_ci(r.get("sensitivity"), r.get("sensitivity_ci")),
                fmt.pct_ci(r.get("ppv"), r.get("ppv_ci")),
                fmt.est_ci(r.get("auc"), r.get("auc_ci")),
                fmt.pct_ci(at.get("ppv"), at.get("ppv_ci")) if covered else fmt.DASH])
    return Table(["decision time (weeks)", "rule", "coverage", "sensitivity (95% CI)",
                  "PPV (95% CI)", "AUC (95% CI)",
                  "landmark model's PPV at the rule's sensitivity (95% CI)"], rows,
                 caption="Each rule over time read as of the decision time, on the lesions it "
                         "covers (coverage: the share of the evaluated lesions where it does "
                         "not abstain), and the landmark model on the same lesions at the "
                         "highest threshold reaching the rule's sensitivity; a rule's AUC is "
                         "(sensitivity + specificity) / 2.")


def waiting_section(data: Mapping, figures: Mapping[str, str] | None = None) -> Section | None:
    """The section on follow-up scans from ``data["landmarks"]`` (metrics.json as written),
    with the figure when ``figures`` (figure key -> file name) holds :data:`FIGURE_KEY`;
    None when the metrics have no landmarks."""
    lm = _landmarks(data)
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
        _model_table(times),
        _rules_table(times),
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
    lm = _landmarks(data)
    if lm is None:
        return {}
    out = Path(report_dir) / FOLLOWUP_FILE_NAMES[FIGURE_KEY]
    return {FIGURE_KEY: plot_waiting_cost(lm, out)}
