"""The report's section and figure on follow-up scans: what each extra scan buys and costs.

Read from metrics.json's ``landmarks`` entry (:func:`models.landmarks.train_landmarks`), never
recomputed: :func:`waiting_section` gives the section (how the landmark models were
validated, the headline at the simulator's published setting, the landmark model and each
rule over time by decision time, the weeks of untreated true progression per 100 patients
accrued by waiting, and for simulated scans the same across low, published and high
measurement error and course variability with what the result depends on; the tables are
:mod:`models.report.tables`' own, the ones ``metrics.md`` shows), :func:`write_waiting_figure`
the figure (:func:`models.report.figures.plot_waiting_cost`). Both give nothing without
``landmarks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from models.report import format as fmt
from models.report.document import Figure, Para, Section
from models.report.figures import FOLLOWUP_FILE_NAMES, plot_waiting_cost
from models.report.tables import (
    landmark_model_table,
    landmark_rules_table,
    landmark_sensitivity_table,
    landmark_validation_text,
    landmarks_entry,
)
from models.report.words import Words, words_of

__all__ = ["FIGURE_KEY", "depends_on_text", "headline_text", "waiting_section",
           "write_waiting_figure"]

#: The figure's key in the report (:data:`models.report.figures.FOLLOWUP_FILE_NAMES`).
FIGURE_KEY = "waiting_cost"
_TITLE = "What waiting costs: sensitivity and PPV by decision time"


def _rows(sensitivity: Mapping, who: str, week: float) -> dict[str, Mapping]:
    """The sensitivity table's rows of ``who`` at ``week``, by setting."""
    return {r["setting"]: r for r in sensitivity.get("rows") or []
            if r.get("who") == who and fmt.num(r.get("week")) == week}


def headline_text(lm: Mapping) -> str:
    """The follow-up result in one sentence per decision time after the index: the landmark
    model's AUC and PPV (95% CIs) and the rule over time with the highest PPV among those
    deciding on at least half of the lesions; said to be at the simulator's published
    setting when the scans are simulated."""
    sensitivity = lm.get("sensitivity")
    settings = {s.get("setting"): s for s in (sensitivity or {}).get("settings") or []}
    published = settings.get("published")
    lead = ("At the simulator's published setting (sizes measured with a reader-to-reader "
            f"log-SD of {fmt.g(published.get('size_noise_sd'))}), " if published else "")
    parts = []
    for t in lm.get("times") or []:
        if fmt.num(t.get("week")) <= 0:
            continue
        m = t.get("model") or {}
        text = (f"at +{fmt.g(t.get('week'))} weeks the landmark model has AUC "
                f"{fmt.est_ci(m.get('auc'), m.get('auc_ci'))} and PPV "
                f"{fmt.pct_ci(m.get('ppv'), m.get('ppv_ci'))} at sensitivity "
                f"{fmt.pct(m.get('sensitivity'))}")
        rules = [(rid, r) for rid, r in (t.get("rules") or {}).items()
                 if fmt.num(r.get("coverage")) >= 0.5 and fmt.finite(r.get("ppv"))]
        if rules:
            rid, r = max(rules, key=lambda x: fmt.num(x[1].get("ppv")))
            text += (f" ({rid}: PPV {fmt.pct_ci(r.get('ppv'), r.get('ppv_ci'))} at sensitivity "
                     f"{fmt.pct(r.get('sensitivity'))})")
        parts.append(text)
    if not parts:
        return ""
    sentence = lead + "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:]


def depends_on_text(lm: Mapping, index_auc: float | None = None,
                    words: Words | None = None) -> str:
    """What the follow-up result depends on, in words, with the model's AUC at each decision
    time under each setting of the sensitivity table when it has one. The two kinds of
    course are named as the article describes them only in its own context (``words``)."""
    w = words or Words()
    overlap = ("pseudoprogression that keeps enlarging for weeks, true progression that grows "
               "slowly, steroids that shrink both" if w.article else
               f"{w.positive} and {w.negative} whose size, rCBV and ADC change alike")
    times = list(lm.get("times") or [])
    index = next((t for t in times if fmt.num(t.get("week")) <= 0), None)
    if index_auc is None and index is not None:
        index_auc = (index.get("model") or {}).get("auc")
    text = ("What the follow-up result depends on. The landmark models add the course of the "
            "scans to the lesion's own features, which alone give the index model an AUC of "
            f"{fmt.g(index_auc)}: the follow-up can only add what is left. What it adds depends "
            "on how precisely a size is measured from scan to scan, on how far the courses of "
            f"the two kinds overlap ({overlap}), and on how many lesions "
            "have a scan at each decision time (missed and irregular scans thin them).")
    sensitivity = lm.get("sensitivity")
    if not isinstance(sensitivity, Mapping) or not sensitivity.get("rows"):
        return text
    settings = [s.get("setting") for s in sensitivity.get("settings") or []]
    by_week = []
    for t in times:
        week = fmt.num(t.get("week"))
        if week <= 0:
            continue
        rows = _rows(sensitivity, "model", week)
        by_week.append(f"+{fmt.g(week)} weeks " + ", ".join(
            f"{fmt.fixed(rows[s].get('auc'))} ({s})" for s in settings if s in rows))
    return (text + " In the simulated scans the published setting takes the reader-to-reader "
            "error of a volume from brain metastases contoured by eight physicians (a median "
            "factor of 1.68 between the largest and smallest contour), and 2D and 1D readings "
            "as much noisier as their published ICCs say; the shares of prolonged "
            "pseudoprogression and slow true progression, the steroid effect, the missed "
            "and irregular scans and the spread and error of the rCBV and ADC courses are "
            "assumptions, halved and doubled with the size error in the low and high "
            "settings; the growth of true progression (its own enlargement's pace, from the "
            "article's medians) and the median rCBV and ADC courses (T4, C3) are not varied. "
            "The landmark model's AUC by setting: " + "; ".join(by_week) + ". A "
            "result that holds only at the low setting is a property of the simulator, not a "
            "clinical claim.")


def waiting_section(data: Mapping, figures: Mapping[str, str] | None = None) -> Section | None:
    """The section on follow-up scans from ``data["landmarks"]`` (metrics.json as written),
    with the figure when ``figures`` (figure key -> file name) holds :data:`FIGURE_KEY`;
    None when the metrics have no landmarks."""
    lm = landmarks_entry(data)
    if lm is None:
        return None
    w = words_of(data)
    times = list(lm["times"])
    blocks: list = [
        Para("Follow-up scans. At each decision time (weeks after the index scan, the scan "
             "whose enlargement raised the question) a landmark model was fitted: "
             f"{lm.get('method', '')}. Validation: "
             f"{landmark_validation_text(lm.get('split') or {})}. Scans: "
             f"{lm.get('scans_source', 'not stated')}. Course features: "
             + ", ".join(f"`{c}`" for c in lm.get("course_features") or []) + "."),
    ]
    headline = headline_text(lm)
    if headline:
        blocks.append(Para(headline))
    blocks += [
        Para("What waiting costs: " + str(lm.get("waiting_definition", "")) + ". Each extra "
             "scan may make the call surer; the last columns say what it costs."),
        landmark_model_table(times, w),
        landmark_rules_table(times),
    ]
    sensitivity = lm.get("sensitivity")
    if isinstance(sensitivity, Mapping) and sensitivity.get("rows"):
        blocks.append(landmark_sensitivity_table(sensitivity, w))
    blocks.append(Para(depends_on_text(lm, words=w)))
    if figures and FIGURE_KEY in figures:
        blocks.append(Figure(
            FIGURE_KEY, figures[FIGURE_KEY],
            f"{_TITLE}. Left and middle: the landmark model (at its threshold) and each rule "
            "over time (on the lesions it covers; left out where it abstains on every lesion) "
            "with 95% Wilson intervals, points shifted sideways to stay apart. Right: weeks of "
            f"untreated {w.negative} per 100 patients accrued by waiting until the decision "
            "time (95% interval).", title=_TITLE))
    return Section("Follow-up scans: what waiting costs", blocks, tripod="12c, 23a")


def write_waiting_figure(data: Mapping, report_dir: str | Path) -> dict[str, Path]:
    """Write the cost-of-waiting figure into ``report_dir`` when ``data`` (metrics.json as
    written) has ``landmarks``; return ``{FIGURE_KEY: path}``, or {} without them."""
    lm = landmarks_entry(data)
    if lm is None:
        return {}
    out = Path(report_dir) / FOLLOWUP_FILE_NAMES[FIGURE_KEY]
    return {FIGURE_KEY: plot_waiting_cost(lm, out, words_of(data))}


