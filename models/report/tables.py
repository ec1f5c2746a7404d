"""Every table of the report, built once; ``metrics.json``, ``metrics.md`` and the terminal table.

Each ``*_table`` function turns the metrics dict (as written to ``metrics.json``) into one
:class:`models.report.document.Table` whose cells are already formatted by
:mod:`models.report.format`. ``metrics.md`` (:func:`render_markdown`), ``report.md`` and
``report.html`` (:mod:`models.report.sections`) and the terminal
(:func:`format_benchmark_table`) all show these same tables, so a number reads the same
everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import pandas as pd

from features.article import FIGURES
from features.contract import BY_NAME, is_radiomic
from models.classifier import settings_text
from models.evaluation import pooled_probabilities
from models.metrics_document import FIDELITY_KEY
from models.report import format as fmt
from models.report.document import Table, table_markdown, table_text
from models.report.words import Words, words_of
from models.statistics import (
    AUC_CI_METHOD,
    CALIBRATION_CI_METHOD,
    HALDANE_NOTE,
    PREVALENCE_CI_METHOD,
    to_jsonable,
)

DEFAULT_TITLE = "Pseudoprogression: the model against the article's rules"
#: The report's files other than figures, by key (figures: ``models.report.figures.FILE_NAMES``).
REPORT_FILES: dict[str, str] = {
    "metrics_json": "metrics.json", "metrics_md": "metrics.md", "report_md": "report.md",
    "report_html": "report.html", "predictions_csv": "evaluation_predictions.csv",
    "lesion_map": "lesions.csv"}
#: How diagnostic odds ratios are computed and when they are corrected or undefined.
DOR_METHOD = (
    f"diagnostic odds ratios with Woolf 95% CIs (a marked ratio: {HALDANE_NOTE}; undefined, "
    "and named so, when a class is absent or the test never or always calls "
    "pseudoprogression)")
#: How the benchmark's intervals are computed, in one sentence.
INTERVALS_NOTE = f"Proportions with Wilson 95% CIs; {DOR_METHOD}."
#: How PPV and NPV are re-stated at another prevalence (shown above that table).
PREVALENCE_NOTE = (
    "PPV and NPV re-stated by Bayes' theorem from each sensitivity and specificity, assuming "
    f"they carry over to the other prevalence; 95% CIs: {PREVALENCE_CI_METHOD}.")
#: The matched-sensitivity exception to "nothing is tuned on the evaluation rows".
MATCHED_SENSITIVITY_EXCEPTION = (
    "one exception by design: the model's threshold matching each rule's sensitivity, used "
    "only to compare the model with that rule, is read on the evaluation rows (and found "
    "again in every bootstrap resample); the stored threshold is never tuned on them")
#: The same as a sentence of its own.
MATCHED_SENSITIVITY_NOTE = (
    f"Nothing is tuned on the evaluation rows, with {MATCHED_SENSITIVITY_EXCEPTION}.")
#: Keys of the metrics dict that metrics.md shows through a table of this module.
SHOWN_KEYS = ("n", "n_positive", "prevalence", "threshold", "model", "rules", "bayes_ceiling",
              "study", "positive_class",
              "average_precision",
              "uncertainty", "bootstrap", "rule_comparisons", "net_benefit",
              "feature_odds_ratios", "feature_effects", "feature_effects_rows",
              "model_selection", "split", "units",
              "internal_validation", "image_features", "landmarks")

#: What the spline family's feature effects are, in a few sentences (metrics.md and report).
SPLINE_EFFECTS_NOTE = (
    "With restricted cubic splines a column's effect is a curve, not one coefficient, so each "
    "table column is summarised by the odds ratio between two lesions that differ only in "
    "that column: at its 75th and at its 25th percentile (the interquartile odds ratio); a "
    "0/1 column: 1 vs 0; a category level: vs the most common level; a missing value: vs the "
    "column's median (a 0/1 column's most common value). The odds ratio is read from the "
    "model's predictions, every other input held fixed (the model is additive, so it does "
    "not matter at which values). One odds ratio can hide a curve that rises and falls, so "
    "the last column says how the curve runs between the column's 5th and 95th percentile. "
    "Largest effect first.")

_FIGURE_SUFFIX = re.compile(r"\(([A-Z][A-Za-z0-9_]*)\)\s*$")
_DEFINED = re.compile(r"(\d+) of (\d+) resamples defined")


# --------------------------------------------------------------------------- helpers


def _entries(metrics: Mapping) -> list[tuple[str, Mapping]]:
    """("model", model dict) then (rule id, rule dict) for every rule."""
    out = [("model", metrics.get("model") or {})]
    out += list((metrics.get("rules") or {}).items())
    return out


def _rule_figures(rule_id: str) -> list[str]:
    """Ids of the article's figures a rule id names (``Q1a_symptoms`` -> Q1a, Q1a_spec)."""
    prefix = rule_id.split("_", 1)[0]
    return [fid for fid in FIGURES if fid == prefix or fid.startswith(prefix + "_")]


def _int(v) -> int | None:
    return int(fmt.num(v)) if fmt.finite(v) else None


def evaluated_units(metrics: Mapping, n_patients: int | None = None) -> tuple[int | None,
                                                                               int | None]:
    """(lesions, patients) behind the evaluated rows: ``metrics["units"]``, else the split's
    ``n_test_patients``, else ``n_patients`` (counted by the caller); patients None when
    unknown."""
    units = metrics.get("units") or {}
    split = metrics.get("split") or {}
    lesions = _int(units.get("n_lesions", metrics.get("n")))
    patients = _int(units.get("n_patients", split.get("n_test_patients", n_patients)))
    return lesions, patients


def validation_scheme(metrics: Mapping) -> str:
    """How the evaluated rows relate to the model: ``holdout`` (patients held out before
    anything was fitted), ``cv`` (out-of-fold, repeated patient-grouped cross-validation),
    ``bootstrap`` (out-of-bag, optimism bootstrap) or ``saved`` (a saved model on a table)."""
    scheme = str((metrics.get("validation") or {}).get("scheme") or "")
    if scheme in ("holdout", "cv", "bootstrap"):
        return scheme
    split = metrics.get("split") or {}
    if not split:
        return "saved"
    iv = metrics.get("internal_validation") or {}
    if split.get("evaluated_on"):
        return "bootstrap" if "optimism_bootstrap" in iv else "cv"
    return "holdout"


#: What the evaluated rows are called, by :func:`validation_scheme`.
EVALUATED_AS = {"holdout": "held-out", "cv": "out-of-fold", "bootstrap": "out-of-bag",
                "saved": "evaluation"}


#: What is computed from the evaluation frame's probabilities (one per lesion), which under
#: cv and bootstrap are not the headline's (:func:`models.evaluation.pooled_probabilities`).
POOLED_USES = ("the curves (ROC, precision-recall, calibration, decision curve), the "
               "average precision, the bootstrap intervals, the paired model-rule comparisons "
               "and the net benefit")


def units_text(lesions, patients) -> str:
    """``360 patients, one lesion each`` or ``412 lesions of 360 patients`` (or ``360 rows``)."""
    if lesions is None:
        return "an unknown number of rows"
    if patients is None:
        return f"{lesions} rows"
    if patients == lesions:
        return f"{patients} patients, one lesion each"
    return f"{lesions} lesions of {patients} patients"


def unit_sentence(lesions, patients) -> str:
    """What one row is, true for the table at hand."""
    base = "One row is one lesion assessment at the scan that shows the enlargement"
    if patients is None or lesions is None:
        return base + "; the number of patients behind the rows is not recorded."
    if patients == lesions:
        return base + "; every patient has one lesion, so lesions and patients coincide."
    return (base + f"; {lesions} lesions come from {patients} patients (some patients have "
            "several), and a patient's lesions always stay together: in the split, the "
            "cross-validation folds and every bootstrap resample.")


# --------------------------------------------------------------------------- benchmark


BENCHMARK_HEADERS = ["", "n", "coverage", "sensitivity (95% CI)", "specificity (95% CI)",
                     "PPV (95% CI)", "NPV (95% CI)", "diagnostic OR (95% CI)"]


def benchmark_table(metrics: Mapping) -> Table:
    """The model and every rule through the same metrics; a corrected or undefined
    diagnostic odds ratio says so (a footnote, or the reason in the cell)."""
    notes = fmt.Footnotes()
    w = words_of(metrics)
    rows = []
    for name, m in _entries(metrics):
        rows.append([name, fmt.cell(m.get("n")), fmt.pct(m.get("coverage")),
                     fmt.pct_ci(m.get("sensitivity"), m.get("sensitivity_ci")),
                     fmt.pct_ci(m.get("specificity"), m.get("specificity_ci")),
                     fmt.pct_ci(m.get("ppv"), m.get("ppv_ci")),
                     fmt.pct_ci(m.get("npv"), m.get("npv_ci")),
                     fmt.dor(m.get("dor"), m.get("dor_ci"), w.say(m.get("dor_note", "")),
                             notes)])
    return Table(BENCHMARK_HEADERS, rows, notes=notes.lines())


def format_benchmark_table(metrics: Mapping) -> str:
    """The benchmark as plain text for a terminal: the columns n, coverage, sensitivity, PPV
    and diagnostic odds ratio of :func:`benchmark_table`, with its notes."""
    data = to_jsonable(metrics)
    w = words_of(data)
    lesions, patients = evaluated_units(data)
    head = (f"n = {data.get('n', fmt.DASH)} ({units_text(lesions, patients)}; "
            f"{data.get('n_positive', fmt.DASH)} {w.positive}, prevalence "
            f"{fmt.pct(data.get('prevalence'))}); model threshold {fmt.g(data.get('threshold'))}")
    model = data.get("model") or {}
    if "auc" in model:
        head += f"; AUC {fmt.est_ci(model.get('auc'), model.get('auc_ci'))}"
    lines = study_lines(data)
    return "\n".join([*lines, head,
                      table_text(benchmark_table(data).columns([0, 1, 2, 3, 5, 7]))]
                     + rule_remarks(data))


def unlabelled_line(metrics: Mapping) -> str:
    """The rows left out for an empty label (``label.missing: skip``), or ''."""
    gone = (metrics.get("study") or {}).get("unlabelled") or {}
    if not gone.get("n"):
        return ""
    values = ", ".join(f"{v} in {n} row{'s' if n != 1 else ''}"
                       for v, n in (gone.get("values") or {}).items())
    return (f"{gone['n']} row(s) with an empty label in column {gone.get('column')} ({values}) "
            "were left out of training and evaluation (label.missing: skip); predict.py "
            "predicts them like any other row.")


def rules_left_out_line(metrics: Mapping) -> str:
    """The article's rules not benchmarked, with the columns each needs, or ''."""
    study = metrics.get("study") or {}
    left = study.get("rules_left_out") or {}
    if not left:
        return ""
    declared = {d.get("id") for d in study.get("declared_rules") or []}
    kept = [r for r in (metrics.get("rules") or {}) if r not in declared]
    needs = "; ".join(f"{rid} needs {cols}" for rid, cols in left.items())
    if not kept:
        return f"The article's rules are not benchmarked: the table lacks their inputs ({needs})."
    return (f"Not benchmarked: {len(left)} of the article's rules, whose inputs are not "
            f"columns of the table ({needs}).")


def failed_fit_lines(metrics: Mapping) -> list[str]:
    """One line per model family with failed fits during model choice (its ``failed_fits``
    record: how many of how many, why, and whether the family was dropped)."""
    cv = (metrics.get("model_selection") or {}).get("cv") or {}
    out = []
    for family, score in cv.items():
        failed = (score or {}).get("failed_fits") or {}
        if failed.get("n"):
            out.append(f"{family.replace('_', ' ')}: {failed['n']} of {failed.get('of')} "
                       f"fits failed: {failed.get('reason')}"
                       + ("; family dropped" if failed.get("dropped") else ""))
    return out


def study_lines(metrics: Mapping) -> list[str]:
    """What the terminal and the report say before the benchmark: rows left out for an empty
    label, failed fits by family, the article's rules left out."""
    return [line for line in (unlabelled_line(metrics), *failed_fit_lines(metrics),
                              rules_left_out_line(metrics)) if line]


def rule_remarks(metrics: Mapping) -> list[str]:
    """A rule that never applies, or says the same for every row it covers, in words."""
    w = words_of(metrics)
    out = []
    for rid, m in (metrics.get("rules") or {}).items():
        n, tp, fp = m.get("n") or 0, m.get("tp") or 0, m.get("fp") or 0
        if n == 0:
            out.append(f"{rid} never applies: no row has every column it reads.")
        elif tp + fp == 0:
            out.append(f"{rid} never says {w.positive} on the {n} rows it covers.")
        elif tp + fp == n:
            out.append(f"{rid} says {w.positive} on every one of the {n} rows it covers.")
    return out


def rules_vs_model_tables(metrics: Mapping) -> tuple[Table, Table]:
    """Two tables on each rule's covered rows: the model at the rule's sensitivity, and the
    model at its stored threshold. No rows when no rule was evaluated."""
    rows, rows_stored = [], []
    for rule_id, m in (metrics.get("rules") or {}).items():
        op = m.get("model_at_rule_sensitivity") or {}
        rows.append([rule_id, fmt.cell(m.get("n")),
                     fmt.pct_ci(m.get("sensitivity"), m.get("sensitivity_ci")),
                     fmt.g(op.get("threshold")),
                     fmt.pct_ci(op.get("sensitivity"), op.get("sensitivity_ci")),
                     fmt.pct_ci(m.get("specificity"), m.get("specificity_ci")),
                     fmt.pct_ci(op.get("specificity"), op.get("specificity_ci")),
                     fmt.pct_ci(m.get("ppv"), m.get("ppv_ci")),
                     fmt.pct_ci(op.get("ppv"), op.get("ppv_ci"))])
        st = m.get("model_on_rule_rows") or {}
        rows_stored.append([rule_id, fmt.cell(st.get("n")),
                            fmt.pct_ci(st.get("sensitivity"), st.get("sensitivity_ci")),
                            fmt.pct_ci(st.get("specificity"), st.get("specificity_ci")),
                            fmt.pct_ci(st.get("ppv"), st.get("ppv_ci")),
                            fmt.pct_ci(st.get("npv"), st.get("npv_ci"))])
    first = Table(["rule", "n covered", "rule sensitivity", "model threshold",
                   "model sensitivity", "rule specificity", "model specificity", "rule PPV",
                   "model PPV"], rows,
                  "On the rows each rule covers (n covered), the model at the highest threshold "
                  "reaching the rule's sensitivity, a threshold read on these evaluation rows "
                  "for this comparison only.")
    second = Table(["rule", "n covered", "sensitivity", "specificity", "PPV", "NPV"],
                   rows_stored,
                   f"The model at its stored threshold ({fmt.g(metrics.get('threshold'))}) on "
                   "the rows each rule covers (n covered).")
    return first, second


def model_lines(metrics: Mapping) -> list[str]:
    """The model's discrimination and calibration as short lines of text."""
    m = metrics.get("model") or {}
    methods = metrics.get("interval_methods") or {}
    lines = [
        f"AUC: {fmt.est_ci(m.get('auc'), m.get('auc_ci'))} "
        f"(95% CI: {methods.get('auc', AUC_CI_METHOD)})",
        f"Brier score: {fmt.brier(m.get('brier'))}",
        f"calibration intercept (calibration-in-the-large, ideal 0): "
        f"{fmt.est_ci(m.get('calibration_intercept'), m.get('calibration_intercept_ci'))}",
        f"calibration slope (ideal 1; below 1 means over-confident): "
        f"{fmt.est_ci(m.get('calibration_slope'), m.get('calibration_slope_ci'))} (95% CIs "
        f"of intercept and slope: {methods.get('calibration', CALIBRATION_CI_METHOD)})",
    ]
    headline = m.get("headline") or {}
    if headline:
        lines.insert(0, f"these figures: {headline.get('figures')}; they describe "
                        f"{headline.get('describes')}; 95% CIs: {headline.get('intervals')}. "
                        "Curves, bootstrap CIs and the comparisons with the rules use each "
                        "lesion's probability averaged over the resampled models (the "
                        "averaged ensemble of the internal validation)")
    if methods.get("unit", "").startswith("lesions clustered"):
        lines.append(f"intervals account for several lesions per patient: proportions by the "
                     f"{methods.get('proportions')}; diagnostic odds ratios by the "
                     f"{methods.get('dor')}; model-rule AUC tests by "
                     f"{methods.get('auc_difference')}")
    ap = metrics.get("average_precision") or {}
    if ap.get("model") is not None:
        lines.append(f"average precision (area under the precision-recall curve): "
                     f"{fmt.fixed(ap.get('model'))}")
    ceiling = metrics.get("bayes_ceiling")
    if isinstance(ceiling, Mapping):
        text = (f"ceiling (the simulator's exact posterior on the same rows): AUC "
                f"{fmt.est_ci(ceiling.get('auc'), ceiling.get('auc_ci'))}, Brier "
                f"{fmt.brier(ceiling.get('brier'))}")
        if ap.get("bayes_ceiling") is not None:
            text += f", average precision {fmt.fixed(ap.get('bayes_ceiling'))}"
        lines.append(text)
    return lines


def prevalence_table(metrics: Mapping) -> Table:
    """PPV and NPV of the model and every rule at each restated prevalence; no rows when
    no prevalence was given."""
    entries = _entries(metrics)
    names: list[str] = []
    prevs: dict[str, object] = {}
    for _, m in entries:
        for k, v in (m.get("at_prevalence") or {}).items():
            if k not in prevs:
                names.append(k)
                prevs[k] = (v or {}).get("prevalence")
    headers = [""]
    for k in names:
        headers += [f"PPV at {k} ({fmt.pct(prevs[k])})", f"NPV at {k} ({fmt.pct(prevs[k])})"]
    rows = []
    for name, m in entries if names else []:
        at = m.get("at_prevalence") or {}
        row = [name]
        for k in names:
            r = at.get(k) or {}
            row += [fmt.pct_ci(r.get("ppv"), r.get("ppv_ci")),
                    fmt.pct_ci(r.get("npv"), r.get("npv_ci"))]
        rows.append(row)
    return Table(headers, rows)


def article_table(metrics: Mapping) -> Table:
    """What the article reports for each evaluated rule (figure id and statement)."""
    rows = []
    declared = {d.get("id") for d in (metrics.get("study") or {}).get("declared_rules") or []}
    for rule_id in metrics.get("rules") or {}:
        for fid in _rule_figures(rule_id) if rule_id not in declared else []:
            rows.append([rule_id, fid, FIGURES[fid].statement])
    return Table(["rule", "figure", "article"], rows,
                 "What the article reports for each rule, from its own, possibly different, "
                 "population (no n given).")


# --------------------------------------------------------------------------- uncertainty


def _nb_pt(key: str) -> float:
    return fmt.num(key.split("@", 1)[1])


def bootstrap_row_name(key: str) -> str:
    """The row name of one statistic of ``metrics["bootstrap"]``."""
    names = {"auc": "AUC", "brier": "Brier score",
             "sensitivity": "sensitivity at the threshold",
             "specificity": "specificity at the threshold",
             "ppv": "PPV at the threshold", "npv": "NPV at the threshold"}
    if key.startswith("net_benefit@"):
        return f"net benefit at pt = {fmt.pt(_nb_pt(key))} (decision curve: calls at p >= pt)"
    return names.get(key, key.replace("_", " "))


def _bootstrap_cell(key: str, entry: Mapping) -> str:
    v, ci = entry.get("estimate"), entry.get("ci")
    if key in ("sensitivity", "specificity", "ppv", "npv"):
        return fmt.pct_ci(v, ci)
    if key == "brier":
        return fmt.brier(v, ci)
    if key.startswith("net_benefit@"):
        return fmt.net_benefit(v, ci)
    return fmt.est_ci(v, ci)


def bootstrap_table(metrics: Mapping) -> Table:
    """The model's bootstrap CIs (``metrics["bootstrap"]``): statistic, estimate (95% CI),
    resamples in which the statistic was defined. Net benefit is the decision curve's
    quantity at each pt (calls at p >= pt), the same as in :func:`net_benefit_table`."""
    rows = []
    for key, entry in (metrics.get("bootstrap") or {}).items():
        if not isinstance(entry, Mapping):
            continue
        match = _DEFINED.search(str(entry.get("method", "")))
        rows.append([bootstrap_row_name(key), _bootstrap_cell(key, entry),
                     f"{match.group(1)} of {match.group(2)}" if match else ""])
    return Table(["statistic", "estimate (95% CI)", "resamples defined"], rows)


def bootstrap_method(metrics: Mapping) -> str:
    """The resampling scheme of the bootstrap, from its first ``method`` string."""
    for entry in (metrics.get("bootstrap") or {}).values():
        if isinstance(entry, Mapping) and entry.get("method"):
            return _DEFINED.sub("", str(entry["method"])).rstrip("; ")
    return ""


def rule_comparison_table(metrics: Mapping) -> Table:
    """Model minus rule on each rule's covered rows (``metrics["rule_comparisons"]``), the
    model read at the rule's sensitivity; paired bootstrap CIs and DeLong's test."""
    rows = []
    for rule_id, c in (metrics.get("rule_comparisons") or {}).items():
        rule, model = c.get("rule") or {}, c.get("model") or {}
        ppv_d, spec_d = c.get("ppv_difference") or {}, c.get("specificity_difference") or {}
        auc_d, delong = c.get("auc_difference") or {}, c.get("delong") or {}
        rows.append([
            rule_id, f"{fmt.cell(c.get('n_covered'))} ({fmt.cell(c.get('n_positive'))})",
            f"{fmt.pct(rule.get('sensitivity'))} / {fmt.pct(model.get('sensitivity'))}",
            f"{fmt.pct(rule.get('ppv'))} / {fmt.pct(model.get('ppv'))}",
            fmt.pp_ci(ppv_d.get("estimate"), ppv_d.get("ci")),
            fmt.pp_ci(spec_d.get("estimate"), spec_d.get("ci")),
            f"{fmt.fixed(rule.get('auc'))} / {fmt.fixed(model.get('auc'))}",
            fmt.est_ci(auc_d.get("estimate"), auc_d.get("ci")),
            fmt.est_ci(delong.get("difference"), delong.get("ci")),
            fmt.p_value(delong.get("p_value"))])
    return Table(["rule", "n covered (events)", "sensitivity rule / model", "PPV rule / model",
                  "PPV difference (95% CI)", "specificity difference (95% CI)",
                  "AUC rule / model", "AUC difference, bootstrap (95% CI)",
                  "AUC difference, DeLong (95% CI)", "DeLong p"], rows,
                 "Model minus rule on the rows each rule covers (n covered, events in "
                 "parentheses), the model read at the highest threshold reaching the rule's "
                 "sensitivity (found on these rows, and again in every resample); rule and "
                 "model resampled together. A rule's AUC is (sensitivity + specificity) / 2.")


def net_benefit_table(metrics: Mapping) -> Table:
    """Net benefit of the model, treat-all, treat-none and every rule at a few threshold
    probabilities (``metrics["net_benefit"]``); the model's row is the decision curve."""
    nb = metrics.get("net_benefit") or {}
    pts = list(nb.get("thresholds") or [])
    headers = ["strategy", *(f"pt = {fmt.pt(t)}" for t in pts)]
    rows = []
    for key, name in (("model", "model (calls at p >= pt)"), ("treat_all", "treat all"),
                      ("treat_none", "treat none")):
        if key in nb:
            rows.append([name, *(fmt.net_benefit(v) for v in nb[key])])
    coverage = nb.get("rule_coverage") or {}
    for rule_id, values in (nb.get("rules") or {}).items():
        cov = coverage.get(rule_id)
        label = f"{rule_id} (covers {fmt.pct(cov)})" if cov is not None else rule_id
        rows.append([label, *(fmt.net_benefit(v) for v in values)])
    return Table(headers, rows)


# --------------------------------------------------------------------------- predictors


def odds_ratio_cell(r: Mapping) -> str:
    """A univariable odds ratio with its CI, or why it could not be fitted."""
    if not r:
        return ""
    if not fmt.finite(r.get("odds_ratio")):
        return str(r.get("note") or "")
    return fmt.ratio_ci(r.get("odds_ratio"), [r.get("ci_low"), r.get("ci_high")])


def _article_or(fig) -> str:
    """An odds ratio the article reports, at its own precision: ``4.3 (3.7-5.0) (D3)``."""
    return f"{fmt.article_ratio(fig.value, fig.ci)} ({fig.id})"


def feature_odds_ratio_table(metrics: Mapping) -> Table:
    """Univariable odds ratios of pseudoprogression (``metrics["feature_odds_ratios"]``), with
    the article's odds ratio beside a predictor named after one of its figures."""
    rows = []
    for r in metrics.get("feature_odds_ratios") or []:
        if not isinstance(r, Mapping):
            continue
        match = _FIGURE_SUFFIX.search(str(r.get("feature", "")))
        fig = FIGURES.get(match.group(1)) if match else None
        rows.append([str(r.get("feature", "")), str(r.get("scale") or ""),
                     f"{fmt.cell(r.get('n'))} ({fmt.cell(r.get('n_positive'))})",
                     odds_ratio_cell(r), fmt.p_value(r.get("p_value")),
                     _article_or(fig) if fig is not None and fig.unit == "odds ratio" else ""])
    return Table(["feature", "scale", "rows with a value (events)", "univariable OR (95% CI)",
                  "p", "article"], rows,
                 f"Univariable odds ratio of {words_of(metrics).positive} per feature, one "
                 "logistic "
                 "regression each on the evaluated rows with that feature.")


def predictor_table(metrics: Mapping, columns: Sequence[str]) -> Table:
    """The non-radiomic predictors: unit, meaning, article figure, availability on the
    evaluated rows and univariable odds ratio (radiomic columns: :func:`radiomic_table`)."""
    ors = {str(r.get("feature")): r for r in (metrics.get("feature_odds_ratios") or [])
           if isinstance(r, Mapping)}
    n = metrics.get("n")
    rows = []
    for c in columns:
        if is_radiomic(c):
            continue
        col = BY_NAME.get(c)
        r = ors.get(c) or {}
        avail = r.get("n")
        share = f" ({fmt.pct(avail / n)})" if avail is not None and n else ""
        rows.append([c, col.unit if col else "", col.meaning if col else "declared feature",
                     col.figures if col else "",
                     f"{fmt.cell(avail)}{share}" if avail is not None else "",
                     odds_ratio_cell(r)])
    return Table(["predictor", "unit", "meaning", "article", "rows with a value",
                  "univariable OR (95% CI)"], rows)


#: How many columns of a wide block the predictors' odds-ratio table shows.
WIDE_BLOCK_SHOWN = 20


def wide_block_table(metrics: Mapping, columns: Sequence[str],
                     limit: int = WIDE_BLOCK_SHOWN) -> tuple[Table, int]:
    """The ``limit`` columns of a wide (radiomic) block with the smallest univariable p value
    (``metrics["feature_odds_ratios"]``): rows with a value and odds ratio per SD; and how
    many more columns the block has (with or without an odds ratio)."""
    ors = {str(r.get("feature")): r for r in (metrics.get("feature_odds_ratios") or [])
           if isinstance(r, Mapping)}
    n = metrics.get("n")
    found = [ors[c] for c in columns if c in ors]
    ranked = sorted(found, key=lambda r: (not fmt.finite(r.get("p_value")),
                                          fmt.num(r.get("p_value"))
                                          if fmt.finite(r.get("p_value")) else 0.0))
    rows = []
    for r in ranked[:limit]:
        avail = r.get("n")
        share = f" ({fmt.pct(avail / n)})" if avail is not None and n else ""
        rows.append([str(r.get("feature")), f"{fmt.cell(avail)}{share}", odds_ratio_cell(r),
                     fmt.p_value(r.get("p_value"))])
    return (Table(["radiomic-block column", "rows with a value", "univariable OR per SD "
                   "(95% CI)", "p"], rows), max(len(columns) - len(rows), 0))


def radiomic_table(columns: Sequence[str], selection: Mapping | None = None) -> Table:
    """Radiomic columns counted by sequence (rows) and pyradiomics feature class (columns):
    each cell ``columns`` or ``columns (k kept)`` when the reduction kept k of them
    (``selection`` from :func:`models.inspection.radiomic_selection`), blank
    when the sequence has no feature of that class; image types and totals per sequence."""
    from models.inspection import radiomic_summary

    kept = list((selection or {}).get("kept") or [])
    summary = radiomic_summary(columns, kept)
    classes = list(dict.fromkeys(summary["feature_class"]))

    def cell(n_columns, n_kept) -> str:
        return f"{int(n_columns)} ({int(n_kept)} kept)" if n_kept else str(int(n_columns))

    rows = []
    for sequence, part in summary.groupby("sequence", sort=False):
        by_class = {r.feature_class: r for r in part.itertuples(index=False)}
        types = ", ".join(dict.fromkeys(t for r in part.itertuples(index=False)
                                        for t in r.image_types.split(", ")))
        rows.append([sequence, types,
                     *(cell(by_class[c].n_columns, by_class[c].n_kept) if c in by_class else ""
                       for c in classes),
                     cell(part["n_columns"].sum(), part["n_kept"].sum())])
    return Table(["sequence", "image types", *classes, "all classes"], rows)


def radiomic_selection_table(selection: Mapping) -> Table:
    """The radiomic columns the reduction kept, with their univariate F on the training rows."""
    kept = list(selection.get("kept") or [])
    f = list(selection.get("f_statistic") or []) + [None] * len(kept)
    return Table(["kept radiomic column", "F statistic (training rows)"],
                 [[name, fmt.g(v)] for name, v in zip(kept, f, strict=False)])


def _contrast_cell(r: Mapping) -> str:
    """The two values an effect compares: ``75th vs 25th percentile: 4.02 vs 1.33``."""
    scale = str(r.get("scale") or "")
    low, high = r.get("reference_value"), r.get("compared_value")
    if fmt.finite(low, high) and scale != "1 vs 0":
        return f"{scale}: {fmt.g(high)} vs {fmt.g(low)}"
    if fmt.finite(low) and not fmt.finite(high):
        return f"{scale} ({fmt.g(low)})"
    return scale


def feature_effects_table(metrics: Mapping) -> Table | None:
    """What each feature does in the fitted model (``metrics["feature_effects"]``), or None.

    Logistic family: coefficient per SD (1 vs 0 for a category level), odds ratio =
    exp(coefficient), and the odds ratio on the calibrated probability. Spline family: one
    row per table column, the odds ratio between two of its values (75th vs 25th
    percentile, 1 vs 0, a level vs the most common one, missing vs the median) and the
    shape of its curve. Other families: permutation importance (AUC drop, mean ± SD over
    the shuffles)."""
    records = [r for r in (metrics.get("feature_effects") or []) if isinstance(r, Mapping)]
    if not records:
        return None
    method = str(records[0].get("method", ""))
    records = [r for r in records if str(r.get("method", "")) == method]
    if "coefficient" in method:
        rows = [[str(r.get("feature", "")), str(r.get("block", "")), str(r.get("scale", "")),
                 fmt.fixed(r.get("coefficient")), fmt.g(r.get("odds_ratio")),
                 fmt.g(r.get("odds_ratio_calibrated"))] for r in records]
        table = Table(["feature", "kind", "per", "coefficient (log-odds)",
                       "odds ratio = exp(coefficient)", "odds ratio, calibrated probability"],
                      rows)
        calibrated = any(fmt.finite(r.get("odds_ratio_calibrated")) for r in records)
        return table if calibrated else table.columns(range(5))
    if "spline" in method:
        rows = [[str(r.get("feature", "")), str(r.get("block", "")), _contrast_cell(r),
                 fmt.fixed(r.get("coefficient")), fmt.g(r.get("odds_ratio")),
                 fmt.g(r.get("odds_ratio_calibrated")), str(r.get("shape") or fmt.DASH)]
                for r in records]
        table = Table(["feature", "kind", "contrast (compared vs reference)",
                       "log-odds difference", "odds ratio", "odds ratio, calibrated probability",
                       "shape of the curve (5th to 95th percentile)"], rows)
        calibrated = any(fmt.finite(r.get("odds_ratio_calibrated")) for r in records)
        return table if calibrated else table.columns([0, 1, 2, 3, 4, 6])
    rows = [[str(r.get("feature", "")), str(r.get("block", "")),
             fmt.mean_sd(r.get("auc_drop"), r.get("auc_drop_sd"))] for r in records]
    return Table(["feature", "kind", "AUC drop when shuffled (mean ± SD)"], rows)


# --------------------------------------------------------------------------- data and validation


def participant_table(metrics: Mapping, n_patients: int | None = None,
                      training: Mapping | None = None) -> Table:
    """Participant flow: patients, lesions and events in each set. ``n_patients``: patients
    among the evaluated rows when the metrics do not say; ``training``: the model bundle's
    training record, used when there was no split."""
    split = metrics.get("split") or {}
    training = training or {}
    rows = []

    def row(name, patients, lesions, events, use):
        lesions, events = _int(lesions), _int(events)
        negatives = lesions - events if lesions is not None and events is not None else None
        rows.append([name, fmt.cell(_int(patients)), fmt.cell(lesions), fmt.cell(events),
                     fmt.cell(negatives), use])

    resampled = bool(split.get("evaluated_on"))
    if split:
        p_train, p_test = split.get("n_train_patients"), split.get("n_test_patients")
        if split.get("unit") == "patients" and p_train is None:  # rows were patients
            p_train, p_test = split.get("n_train"), split.get("n_test")
        all_patients = (_int(p_train) + _int(p_test) if fmt.finite(p_train) and
                        fmt.finite(p_test) and not split.get("evaluated_on") else None)
        if not split.get("evaluated_on"):
            row("all", all_patients,
                (_int(split.get("n_train")) or 0) + (_int(split.get("n_test")) or 0),
                (_int(split.get("n_train_positive")) or 0)
                + (_int(split.get("n_test_positive")) or 0),
                "split once by patient, stratified by the label"
                + (f" (seed {split.get('seed')})" if "seed" in split else ""))
        row("training", p_train, split.get("n_train"), split.get("n_train_positive"),
            "the final model (model choice, calibration, threshold), refitted in every "
            "resample of the validation" if resampled else
            "model choice, calibration, threshold, nested cross-validation")
    elif training.get("n") is not None:
        row("training (from the model bundle)", training.get("n_patients"), training.get("n"),
            training.get("n_positive"), "fitting the model (not evaluated here)")
    lesions, patients = evaluated_units(metrics, n_patients)
    use = "every performance figure below unless stated"
    if split.get("evaluated_on"):
        use += f" ({split['evaluated_on']})"
    row("held-out evaluation" if split and not split.get("evaluated_on") else "evaluation",
        patients, lesions, metrics.get("n_positive"), use)
    w = words_of(metrics)
    return Table(["set", "patients", "lesions (rows)", w.positive,
                  w.negative, "used for"], rows,
                 "Participant flow: patients, lesions and events (lesions) in each set.")


def sample_size_lines(metrics: Mapping) -> list[str]:
    """Events per candidate feature and, when recorded, the minimum sample size (Riley et
    al.), as sentences; empty when the metrics hold neither."""
    epv = (metrics.get("internal_validation") or {}).get("events_per_feature") or {}
    if not isinstance(epv, Mapping) or epv.get("events_per_feature") is None:
        return []
    lines = [
        f"Events per candidate feature: {fmt.g(epv.get('events_per_feature'))} "
        f"({fmt.cell(epv.get('events'))} events of the rarer class among the training lesions, "
        f"{fmt.cell(epv.get('candidate_features'))} candidate features counting a "
        "missing-value indicator for every column with missing values and each category "
        f"level beyond the first). Floor used: {fmt.g(epv.get('minimum'))}."]
    riley = epv.get("riley") or {}
    if isinstance(riley, Mapping) and riley.get("method"):
        lines.append(str(riley["method"]))
    return lines


def selection_settings_cell(score: Mapping) -> str:
    """A family's chosen settings in words and how many were compared
    (``best_params``, ``n_settings``), then its note (adapted, skipped, failed); '—' when
    none is recorded."""
    parts = []
    if isinstance(score.get("best_params"), Mapping):
        text = settings_text(score["best_params"])
        n = score.get("n_settings")
        if isinstance(n, int) and n > 1:
            text += f" (best of {n})"
        parts.append(text)
    if score.get("note"):
        parts.append(str(score["note"]))
    failed = score.get("failed_fits") or {}
    if failed.get("n") and not failed.get("dropped"):
        parts.append(f"{failed['n']} of {failed.get('of')} fits failed: {failed.get('reason')}")
    elif failed.get("n"):
        parts.append(f"{failed['n']} of {failed.get('of')} fits failed")
    return "; ".join(parts) or "—"


def model_selection_table(cv: Mapping, chosen: str | None = None) -> Table:
    """Model families compared by grouped cross-validation: log loss and AUC over folds at
    each family's chosen settings, and those settings (:func:`selection_settings_cell`)."""
    rows = []
    for fam, s in (cv or {}).items():
        s = s or {}
        rows.append([fam + (" (chosen)" if fam == chosen else ""),
                     fmt.mean_sd(s.get("log_loss"), s.get("log_loss_sd"), 4),
                     fmt.fixed(s.get("auc")), selection_settings_cell(s)])
    return Table(["family", "log loss, mean ± SD over folds", "AUC, mean over folds",
                  "settings chosen by the same folds"], rows)


#: Statistics of the internal-validation table: (name, key, formatter of one value).
_IV_STATS = (("AUC", "auc", fmt.fixed), ("Brier score", "brier", fmt.brier),
             ("calibration intercept", "calibration_intercept", fmt.fixed),
             ("calibration slope", "calibration_slope", fmt.fixed),
             ("sensitivity at the threshold", "sensitivity", fmt.pct),
             ("PPV at the threshold", "ppv", fmt.pct))


def internal_validation_table(metrics: Mapping) -> Table:
    """Apparent figures, the resampled ones (nested cross-validation, repeated
    cross-validation as mean ± SD over repeats, or the optimism bootstrap:
    :func:`bootstrap_validation_table`) and the evaluated rows' figures side by side."""
    iv = metrics.get("internal_validation") or {}
    if iv.get("optimism_bootstrap"):
        return bootstrap_validation_table(metrics)
    apparent = iv.get("apparent") or {}
    scheme = validation_scheme(metrics)
    nested = iv.get("nested_cv") or iv.get("cross_validation") or {}
    summary = nested.get("summary") or {}
    m = metrics.get("model") or {}
    # under cv the headline is the middle column; the last shows the pooled probabilities
    # under their own name (the averaged ensemble)
    pooled = pooled_probabilities(metrics)
    if pooled:
        m = pooled[1].get("model") or {}
    rows = []
    for name, key, f in _IV_STATS:
        if summary.get(key):
            s = summary[key]
            middle = (fmt.pct_mean_sd(s.get("mean"), s.get("sd")) if f is fmt.pct else
                      fmt.mean_sd(s.get("mean"), s.get("sd"), 4 if key == "brier" else 3))
        else:
            middle = "not run"
        rows.append([name, f(apparent.get(key)) if apparent else "not run", middle,
                     f(m.get(key))])
    behind = f"{fmt.cell(nested.get('n'))} ({fmt.cell(nested.get('n_positive'))})"
    if "n_repeats" in nested:
        behind += (f", {fmt.cell(nested.get('n_repeats'))} x {fmt.cell(nested.get('n_folds'))} "
                   "folds")
    elif nested:
        behind += f", {fmt.cell(nested.get('n_outer_folds'))} folds"
    rows.append([f"rows ({words_of(metrics).positive})",
                 f"{fmt.cell(apparent.get('n'))} ({fmt.cell(apparent.get('n_positive'))})"
                 if apparent else fmt.DASH, behind if nested else fmt.DASH,
                 f"{fmt.cell(metrics.get('n'))} ({fmt.cell(metrics.get('n_positive'))})"])
    middle_name = ("repeated cross-validation (mean ± SD over repeats; the headline)"
                   if scheme == "cv" else "nested cross-validation (training patients)")
    caption = ("Internal validation; the last row gives the rows and events behind each "
               "column.")
    return Table(["statistic", "apparent (training patients)", middle_name,
                  "averaged ensemble of the repeats' models (flatters; for comparison)"
                  if pooled else
                  EVALUATED_AS[scheme] if scheme != "saved" else "this evaluation"], rows,
                 caption)


#: What each source of a bootstrap headline figure is called in the report.
_SOURCE_NAMES = {"harrell": "Harrell-corrected", "out_of_bag": "pooled out-of-bag"}
#: Statistics named as the report writes them where the key would not do.
_STAT_NAMES = {"auc": "AUC", "brier": "Brier score", "ppv": "PPV", "npv": "NPV"}


def bootstrap_validation_table(metrics: Mapping) -> Table:
    """Under the optimism bootstrap: the saved model's apparent figures, Harrell's corrected
    figures (the saved model), the refits' pooled out-of-bag figures and the averaged
    out-of-bag ensemble side by side, the headline's figure of each statistic marked †."""
    iv = metrics.get("internal_validation") or {}
    boot = iv.get("optimism_bootstrap") or {}
    apparent = iv.get("apparent") or boot.get("apparent") or {}
    corrected = boot.get("corrected") or {}
    pooled = boot.get("out_of_bag") or {}
    averaged = (metrics.get("out_of_bag") or {}).get("model") or {}
    source = boot.get("headline_source") or {}
    rows = []
    for name, key, f in _IV_STATS:
        def marked(value, method, key=key, f=f):
            return f(value) + (" †" if source.get(key) == method else "")
        rows.append([name, f(apparent.get(key)), marked(corrected.get(key), "harrell"),
                     marked(pooled.get(key), "out_of_bag"), f(averaged.get(key))])
    rows.append([f"rows ({words_of(metrics).positive})",
                 f"{fmt.cell(apparent.get('n'))} ({fmt.cell(apparent.get('n_positive'))})",
                 f"{fmt.cell(boot.get('n'))} ({fmt.cell(boot.get('n_positive'))}), "
                 f"{fmt.cell(boot.get('n_fitted'))} resamples",
                 f"{fmt.cell(pooled.get('n_predictions'))} predictions of "
                 f"{fmt.cell(pooled.get('n'))} lesions ({fmt.cell(pooled.get('n_positive'))})",
                 f"{fmt.cell(averaged.get('n'))} ({fmt.cell(averaged.get('n_positive'))})"])
    headline = {}
    for key, method in source.items():
        headline.setdefault(method, []).append(_STAT_NAMES.get(key, key.replace("_", " ")))
    caption = ("Internal validation by the optimism bootstrap; † marks the figure the headline "
               "takes: " + "; ".join(f"{', '.join(keys)} {_SOURCE_NAMES.get(m, m)}"
                                      for m, keys in headline.items())
               + ". Harrell-corrected figures describe the saved model; out-of-bag ones "
               "the refits, each scored on the patients its resample left out. A refit's "
               "calibration on its own resample does not exist when it (nearly) separates "
               "its rows, so the calibration comes out of bag (the optimism by family shows "
               "why). The last row gives the rows and events behind each column.")
    if boot.get("n_skipped") or boot.get("undefined"):
        caption += (f" {fmt.cell(boot.get('n_fitted'))} of "
                    f"{fmt.cell(boot.get('n_resamples'))} resamples fitted "
                    f"({fmt.cell(boot.get('n_skipped'))} skipped: "
                    f"{boot.get('skipped_because', 'too unbalanced')})"
                    + "".join(f"; {u}" for u in boot.get("undefined") or []) + ".")
    return Table(["statistic", "apparent (saved model, its training patients)",
                  "Harrell-corrected (saved model)", "pooled out-of-bag (the refits)",
                  "averaged out-of-bag ensemble (flatters; for comparison)"], rows, caption)


#: The optimism-by-family table's statistics: (name, key, formatter of one value).
_FAMILY_STATS = (("AUC", "auc", fmt.fixed), ("Brier", "brier", fmt.brier),
                 ("cal. intercept", "calibration_intercept", fmt.fixed),
                 ("cal. slope", "calibration_slope", fmt.fixed),
                 ("sensitivity", "sensitivity", fmt.fixed))


def optimism_by_family_table(metrics: Mapping) -> Table:
    """The optimism bootstrap's refits by the family each chose: how many, and the mean and
    median optimism of each statistic over them; the saved model's family marked (no rows
    without an optimism bootstrap)."""
    boot = (metrics.get("internal_validation") or {}).get("optimism_bootstrap") or {}
    by = boot.get("by_family") or {}
    final = by.get("final_family")
    rows = []
    for family, entry in (by.get("families") or {}).items():
        opt = entry.get("optimism") or {}
        rows.append([family + (" (the saved model's)" if family == final else ""),
                     fmt.cell(entry.get("n_resamples"))]
                    + [f"{f((opt.get(k) or {}).get('mean'))} / "
                       f"{f((opt.get(k) or {}).get('median'))}" for _, k, f in _FAMILY_STATS])
    caption = ("Optimism (a refit's figure on its own resample minus its figure on every "
               "patient) by the family each refit chose: mean / median over those refits.")
    if final is not None and rows:
        caption += (f" {fmt.cell(by.get('n_other_family'))} of {fmt.cell(boot.get('n_fitted'))}"
                    f" refits chose another family than the saved model's ({final}).")
    return Table(["family chosen", "refits", *(f"{name} optimism" for name, *_ in
                                               _FAMILY_STATS)], rows, caption)


def nested_folds_table(metrics: Mapping) -> Table:
    """Each outer fold of the nested cross-validation, or each repeat of the repeated
    cross-validation (no rows when neither was run)."""
    iv = metrics.get("internal_validation") or {}
    nested = iv.get("nested_cv") or {}
    repeats = (iv.get("cross_validation") or {}).get("per_repeat") or []
    rows = []
    for r in nested.get("per_fold") or repeats:
        rows.append([fmt.cell(r.get("fold", r.get("repeat"))), fmt.cell(r.get("n")),
                     fmt.cell(r.get("n_positive")), fmt.fixed(r.get("auc")),
                     fmt.brier(r.get("brier")), fmt.fixed(r.get("calibration_intercept")),
                     fmt.fixed(r.get("calibration_slope")), fmt.pct(r.get("sensitivity")),
                     fmt.pct(r.get("ppv"))])
    if nested.get("per_fold") or not repeats:
        return Table(["fold", "n", "events", "AUC", "Brier", "cal. intercept", "cal. slope",
                      "sensitivity", "PPV"], rows,
                     "Nested cross-validation, each outer fold (n rows and events per fold).")
    return Table(["repeat", "n", "events", "AUC", "Brier", "cal. intercept", "cal. slope",
                  "sensitivity", "PPV"], rows,
                 "Repeated cross-validation, each repeat scored on its pooled out-of-fold "
                 "probabilities of every lesion.")


def image_features_table(metrics: Mapping) -> Table:
    """The model with and without image features on the same evaluated rows."""
    img = metrics.get("image_features") or {}
    rows = []
    for label, key in (("with image features", "with_images"),
                       ("without image features", "without_images")):
        m = img.get(key) or {}
        rows.append([label, fmt.cell(m.get("n_features")), str(m.get("family", "")),
                     fmt.est_ci(m.get("auc"), m.get("auc_ci")), fmt.brier(m.get("brier")),
                     fmt.fixed(m.get("calibration_slope")), fmt.pct(m.get("sensitivity")),
                     fmt.pct(m.get("ppv"))])
    return Table(["model", "feature columns", "family", "AUC (DeLong 95% CI)", "Brier",
                  "calibration slope", "sensitivity", "PPV"], rows,
                 "The model with and without image features on the same evaluated lesions.")


def image_difference_text(metrics: Mapping) -> str:
    """The AUC difference with minus without image features, with DeLong's test."""
    img = metrics.get("image_features") or {}
    return (f"AUC difference (with minus without) "
            f"{fmt.est_ci(img.get('auc_difference'), img.get('auc_difference_ci'))}, "
            f"DeLong's test for two correlated AUCs p = {fmt.p_value(img.get('delong_p_value'))}.")


def fidelity_table(records: Sequence[Mapping]) -> Table:
    """The simulator's fidelity to the article: each targeted figure, its simulated value
    with a 95% CI, the target and whether it is met and honoured."""
    rows = []
    for r in records:
        rows.append([
            str(r.get("figure_id", "")), str(r.get("quantity", "")),
            fmt.g(r.get("article_value")) if r.get("article_value") is not None
            else str(r.get("article_ci_or_range") or ""),
            fmt.est_ci(r.get("simulated_value"), [r.get("simulated_ci_low"),
                                                  r.get("simulated_ci_high")]),
            _target_text(r.get("target")),
            "yes" if r.get("within_target") else "no",
            "yes" if r.get("honoured", True) else "no (see the note)",
            str(r.get("note") or "")])
    return Table(["figure", "quantity", "article", "simulated (95% CI)", "target", "within",
                  "honoured", "note"], rows,
                 "The simulator's fidelity to the article, and for the follow-up scans to the "
                 "published figures they are sized from (features.synthetic.cohort."
                 "fidelity_table; the 'article' column then holds the published value); each "
                 "simulated value with its 95% CI on the simulated cohort it was measured on.")


def _target_text(target) -> str:
    lo, hi = (list(target or []) + [None, None])[:2]
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f">= {fmt.g(lo)}"
    if lo is None:
        return f"<= {fmt.g(hi)}"
    return f"{fmt.g(lo)} to {fmt.g(hi)}"


# --------------------------------------------------------------------------- follow-up landmarks


def landmarks_entry(metrics: Mapping) -> Mapping | None:
    """``metrics["landmarks"]`` (:func:`models.landmarks.train_landmarks`) when it holds at
    least one decision time, else None."""
    entry = metrics.get("landmarks")
    return entry if isinstance(entry, Mapping) and entry.get("times") else None


def _decision_time(t: Mapping) -> str:
    """A decision time's label: ``+8`` weeks after the index scan, or ``index (0)``."""
    return f"+{fmt.g(t.get('week'))}" if fmt.num(t.get("week")) > 0 else "index (0)"


def landmark_model_table(times: Sequence[Mapping], words: Words | None = None) -> Table:
    """The landmark model by decision time (``metrics["landmarks"]["times"]``): held-out
    lesions, family, AUC, sensitivity and PPV at its threshold, and what waiting until then
    costs (weeks of untreated true progression and false reassurance, per 100 patients),
    the classes named as ``words`` name them."""
    w = words or Words()
    methods = next((t["interval_methods"] for t in times if t.get("interval_methods")), {})
    rows = []
    for t in times:
        m, cost = t.get("model") or {}, t.get("waiting") or {}
        rows.append([
            _decision_time(t), f"{fmt.count(t.get('n'))} ({fmt.count(t.get('n_positive'))}) / "
            f"{fmt.count(t.get('n_patients'))}", str(t.get("family") or ""),
            fmt.est_ci(m.get("auc"), m.get("auc_ci")),
            fmt.pct_ci(m.get("sensitivity"), m.get("sensitivity_ci")),
            fmt.pct_ci(m.get("ppv"), m.get("ppv_ci")),
            fmt.est_ci(cost.get("weeks_untreated_per_100_patients"),
                       cost.get("weeks_untreated_per_100_patients_ci"), 1),
            fmt.est_ci(cost.get("false_reassurance_per_100_patients"),
                       cost.get("false_reassurance_per_100_patients_ci"), 1)])
    return Table(["decision time (weeks)", f"lesions ({w.positive}) / patients", "family",
                  "AUC (95% CI)", "sensitivity (95% CI)", "PPV (95% CI)",
                  f"weeks of untreated {w.negative} per 100 patients (95% CI)",
                  "false reassurance per 100 patients (95% CI)"], rows,
                 caption="The landmark model at each decision time, on the evaluated lesions "
                         "with a scan at that time (held-out patients, or every patient's "
                         "out-of-fold or out-of-bag probability under cv or bootstrap), "
                         f"{w.positive} called at its threshold; AUC: "
                         f"{methods.get('auc', AUC_CI_METHOD)}; proportions: "
                         f"{methods.get('proportions', 'Wilson intervals')}.")


def landmark_rules_table(times: Sequence[Mapping]) -> Table:
    """Each rule over time by decision time (``metrics["landmarks"]["times"]``): coverage,
    sensitivity, PPV and AUC on the lesions it covers, and the landmark model's PPV at the
    rule's sensitivity."""
    rows = []
    for t in times:
        for rid, r in (t.get("rules") or {}).items():
            at = r.get("model_at_rule_sensitivity") or {}
            covered = fmt.num(r.get("coverage")) > 0
            rows.append([
                _decision_time(t), rid, fmt.pct(r.get("coverage")),
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


def format_landmark_table(metrics: Mapping) -> str:
    """The landmark model by decision time as plain text for a terminal (decision time,
    lesions, AUC, sensitivity, PPV, weeks of untreated true progression per 100 patients),
    then each rule's PPV beside the model's at the rule's sensitivity; '' without
    landmarks."""
    lm = landmarks_entry(to_jsonable(metrics))
    if lm is None:
        return ""
    times = lm["times"]
    model = table_text(landmark_model_table(times, words_of(metrics)).columns(
        [0, 1, 3, 4, 5, 6]))
    rules = table_text(landmark_rules_table(times).columns([0, 1, 2, 3, 4, 6]))
    return (f"follow-up landmarks ({landmark_validation_text(lm.get('split') or {})}):\n"
            + model + "\n\nrules over time:\n" + rules)


def _landmarks_md(metrics: Mapping) -> list[str]:
    """The section of metrics.md on follow-up landmarks: how they were fitted, then the
    model's and the rules' tables by decision time; nothing without landmarks."""
    lm = landmarks_entry(metrics)
    if lm is None:
        return []
    times = list(lm["times"])
    split = lm.get("split") or {}
    facts = [
        "decision times (weeks after the index scan): "
        + ", ".join(_decision_time(t) for t in times),
        f"a lesion is at a decision time with a scan within {fmt.g(lm.get('window_weeks'))} "
        "weeks before it",
        landmark_validation_text(split),
        f"scans: {lm.get('scans_source', 'not stated')}",
        "course features: " + ", ".join(str(c) for c in lm.get("course_features") or []),
        f"method: {lm.get('method', '')}",
        f"what waiting costs: {lm.get('waiting_definition', '')}"]
    w = words_of(metrics)
    model, rules = landmark_model_table(times, w), landmark_rules_table(times)
    parts = ["## Follow-up landmarks by decision time", "\n".join(f"- {f}" for f in facts),
             "### The landmark model", f"{model.caption}\n\n{table_markdown(model)}"]
    if rules.rows:
        parts += ["### Each rule over time", f"{rules.caption}\n\n{table_markdown(rules)}"]
    sens = lm.get("sensitivity")
    if isinstance(sens, Mapping) and sens.get("rows"):
        table = landmark_sensitivity_table(sens, w)
        parts += ["### Across the simulator's uncertainty",
                  f"{table.caption}\n\n{table_markdown(table)}"]
    return parts


def landmark_validation_text(split: Mapping) -> str:
    """How the landmark models were validated, in words, from ``landmarks["split"]``."""
    scheme = split.get("scheme", "holdout")
    if scheme == "holdout":
        return (f"patients split once: {fmt.count(split.get('n_train_patients'))} for fitting, "
                f"calibrating and tuning, {fmt.count(split.get('n_test_patients'))} held out "
                f"(seed {fmt.count(split.get('seed'))}); every figure is on the held-out "
                "patients")
    if scheme == "cv":
        return (f"{fmt.count(split.get('n_repeats'))} x {fmt.count(split.get('n_folds'))}-fold "
                "patient-grouped cross-validation of each landmark's whole fitting procedure "
                f"on {fmt.count(split.get('n_test_patients'))} patients (seed "
                f"{fmt.count(split.get('seed'))}); every figure is each repeat's, on "
                "out-of-fold probabilities at each fold model's threshold, combined over the "
                "repeats (mean; intervals by Rubin's rules); the saved models are fitted on "
                "every patient")
    return (f"optimism-corrected bootstrap of each landmark's fitting procedure over "
            f"{fmt.count(split.get('n_repeats'))} resamples of "
            f"{fmt.count(split.get('n_test_patients'))} patients (seed "
            f"{fmt.count(split.get('seed'))}); the landmark model's figures are the saved "
            "model's Harrell-corrected ones (calibration: the refits' pooled out-of-bag "
            "predictions), the rules' and the model's at each rule's sensitivity are on "
            "out-of-bag probabilities averaged over the resamples; the saved models are "
            "fitted on every patient")


def landmark_sensitivity_table(sensitivity: Mapping, words: Words | None = None) -> Table:
    """The landmark model and each rule over time under each setting of the follow-up
    simulator (``metrics["landmarks"]["sensitivity"]``): by decision time, the model's or
    rule's lesions, AUC, sensitivity and PPV with 95% intervals, and the weeks of untreated
    true progression per 100 patients (the class as ``words`` name it)."""
    w = words or Words()
    settings = {s.get("setting"): s for s in sensitivity.get("settings") or []}
    rows = []
    for r in sorted(sensitivity.get("rows") or [],
                    key=lambda r: (fmt.num(r.get("week")), r.get("who") != "model",
                                   str(r.get("who")),
                                   list(settings).index(r.get("setting"))
                                   if r.get("setting") in settings else 0)):
        s = settings.get(r.get("setting")) or {}
        rows.append([
            _decision_time(r), str(r.get("who")),
            f"{r.get('setting')} (size log-SD {fmt.g(s.get('size_noise_sd'))})",
            fmt.count(r.get("n")), fmt.est_ci(r.get("auc"), r.get("auc_ci")),
            fmt.pct_ci(r.get("sensitivity"), r.get("sensitivity_ci")),
            fmt.pct_ci(r.get("ppv"), r.get("ppv_ci")),
            fmt.est_ci(r.get("weeks_untreated_per_100_patients"),
                       r.get("weeks_untreated_per_100_patients_ci"), 1)])
    return Table(["decision time (weeks)", "model or rule", "setting", "lesions",
                  "AUC (95% CI)", "sensitivity (95% CI)", "PPV (95% CI)",
                  f"weeks of untreated {w.negative} per 100 patients (95% CI)"], rows,
                 caption="The landmark model and each rule over time under low, published and "
                         "high measurement error and course variability of the simulated "
                         "follow-up (" + str(sensitivity.get("method") or "") + "). A rule "
                         "is shown where it decides on some lesions; its AUC is "
                         "(sensitivity + specificity) / 2.")


# --------------------------------------------------------------------------- metrics.md


def _section(title: str, table: Table, intro: str = "") -> list[str]:
    """A metrics.md section: heading, the table's caption (or ``intro``) and the table."""
    text = " ".join(t for t in (intro, table.caption) if t)
    return [f"## {title}", (f"{text}\n\n" if text else "") + table_markdown(table)]


def pooled_note(pooled: tuple[str, Mapping]) -> str:
    """A sentence naming the pooled probabilities
    (:func:`models.evaluation.pooled_probabilities`) and what is computed from them."""
    return (f"{POOLED_USES[0].upper()}{POOLED_USES[1:]} are computed from one probability "
            f"per lesion, {pooled[1].get('describes')}; not from the headline figures of the "
            "tables (the repeats' own under cross-validation, the saved model's corrected ones "
            "under the bootstrap).")


def _uncertainty_md(metrics: Mapping) -> list[str]:
    """Sections of metrics.md for the keys :func:`models.evaluation.add_uncertainty` adds."""
    parts: list[str] = []
    pooled = pooled_probabilities(metrics)
    if pooled and any(metrics.get(k) for k in ("bootstrap", "rule_comparisons",
                                                "net_benefit")):
        parts += ["## Which probabilities", pooled_note(pooled)]
    if metrics.get("bootstrap"):
        unit = (metrics.get("uncertainty") or {}).get("resampling_unit")
        parts += _section("Bootstrap confidence intervals of the model", bootstrap_table(metrics),
                          f"{bootstrap_method(metrics)}"
                          + (f"; resampling unit: {unit}" if unit else "")
                          + f"; threshold {fmt.g(metrics.get('threshold'))}.")
    if metrics.get("rule_comparisons"):
        parts += _section("The model against each rule at the rule's sensitivity (paired)",
                          rule_comparison_table(metrics))
    if metrics.get("net_benefit"):
        nb = metrics["net_benefit"]
        parts += _section("Net benefit", net_benefit_table(metrics),
                          "Decision-curve net benefit (net true positives per evaluated lesion)"
                          f" on {fmt.cell(nb.get('n'))} rows ({fmt.cell(nb.get('n_positive'))} "
                          f"{words_of(metrics).positive}); the model calls "
                          f"{words_of(metrics).positive} at p >= pt. "
                          f"{nb.get('abstention', '')}")
    return parts


def _model_md(metrics: Mapping) -> list[str]:
    """Sections of metrics.md on the fitted model and its validation."""
    parts: list[str] = []
    effects = feature_effects_table(metrics)
    if effects is not None:
        rows = metrics.get("feature_effects_rows")
        intro = (f"Permutation importance measured on the {rows} lesions."
                 if rows and "AUC drop" in effects.headers[-1] else "")
        if "contrast" in effects.headers[2]:
            intro = SPLINE_EFFECTS_NOTE + (f" Percentiles of the {rows} lesions." if rows
                                           else "")
        parts += _section("Feature effects in the fitted model", effects, intro)
    if metrics.get("feature_odds_ratios"):
        parts += _section("Feature odds ratios", feature_odds_ratio_table(metrics))
    if metrics.get("split"):
        parts += _section("Participants and split", participant_table(metrics))
    cv = (metrics.get("model_selection") or {}).get("cv")
    if cv:
        parts += _section("Model selection", model_selection_table(
            cv, (metrics.get("model_selection") or {}).get("chosen")))
    iv = metrics.get("internal_validation") or {}
    shown_iv = ("apparent", "nested_cv", "cross_validation", "optimism_bootstrap")
    if any(iv.get(k) for k in shown_iv):
        parts += _section("Internal validation", internal_validation_table(metrics))
        families = optimism_by_family_table(metrics)
        if families.rows:
            parts += ["### Optimism by refitted family", table_markdown(families)]
        folds = nested_folds_table(metrics)
        if folds.rows:
            title = "Nested cross-validation folds" if folds.headers[0] == "fold" else \
                "Cross-validation repeats"
            parts += [f"### {title}", table_markdown(folds)]
    size = sample_size_lines(metrics)
    if size:
        parts += ["## Sample size", "\n".join(f"- {line}" for line in size)]
    rest = {k: v for k, v in iv.items()
            if k not in (*shown_iv, "events_per_feature" if size else "")}
    if rest:
        parts += ["### Other internal-validation records", _other_md("internal_validation", rest)]
    if metrics.get("image_features"):
        parts += _section("Image features", image_features_table(metrics),
                          image_difference_text(metrics))
    return parts


def _heading(key: str) -> str:
    text = str(key).replace("_", " ")
    return f"## {text[:1].upper()}{text[1:]}"


def _records_md(records: Sequence[Mapping]) -> str:
    """A list of records as a markdown table (any record; cells by :func:`fmt.cell`)."""
    if not records:
        return "(empty)"
    headers: list[str] = []
    for r in records:
        headers += [k for k in r if k not in headers]
    return fmt.md_table(headers, [[r.get(h) for h in headers] for r in records])


def _other_md(key: str, value) -> str:
    """A section for an extra key of the metrics dict: records as a table, else a list."""
    if isinstance(value, pd.DataFrame):
        value = to_jsonable(value)
    if _is_records(value):
        return _records_md(value)
    if isinstance(value, Mapping):
        bullets, tables = [], []
        for k, v in _flatten(value):
            if _is_records(v):
                tables.append(f"### {k}\n\n{_records_md(v)}")
            else:
                bullets.append(f"- {k}: {fmt.cell(v)}")
        return "\n\n".join(["\n".join(bullets)] * bool(bullets) + tables)
    return f"- {key}: {fmt.cell(value)}"


def _is_records(value) -> bool:
    """True for a non-empty list of dicts (a table as records)."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, Mapping) for v in value))


def _flatten(d: Mapping, prefix: str = ""):
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from _flatten(v, name + ".")
        else:
            yield name, v


def render_markdown(metrics: Mapping, title: str = DEFAULT_TITLE) -> str:
    """The text of ``metrics.md`` for a metrics document
    (:func:`models.metrics_document.metrics_document`): the tables report.md shows, then
    every other key of the document, the simulator's fidelity as its table."""
    data = to_jsonable(metrics)
    w = words_of(data)
    lesions, patients = evaluated_units(data)
    first, second = rules_vs_model_tables(data)
    prevalence = prevalence_table(data)
    notes = "".join(f"\n- {line}" for line in [*study_lines(data), *rule_remarks(data)])
    parts = [
        f"# {title}",
        f"- evaluated rows: {fmt.cell(data.get('n'))} ({units_text(lesions, patients)}; "
        f"{fmt.cell(data.get('n_positive'))} {w.positive}, prevalence "
        f"{fmt.pct(data.get('prevalence'))})\n"
        f"- model threshold: {fmt.g(data.get('threshold'))} ({w.positive} when the "
        "model's probability is at or above it)\n"
        f"- positive class: {w.positive} (label 1; label 0: {w.negative}). "
        f"{w.say(INTERVALS_NOTE)} A rule abstains where an "
        "input it needs is missing; it is scored on the rows it covers (coverage = covered "
        "rows / all rows)." + notes,
        "## Benchmark",
        table_markdown(benchmark_table(data)),
        "## Each rule against the model on the same rows",
        (f"{first.caption}\n\n{table_markdown(first)}\n\n{second.caption}\n\n"
         f"{table_markdown(second)}\n\n{MATCHED_SENSITIVITY_NOTE}") if first.rows
        else "No rules were evaluated.",
        "## Model discrimination and calibration",
        "\n".join(f"- {line}" for line in model_lines(data)),
        "## PPV and NPV at other prevalences",
        f"{PREVALENCE_NOTE}\n\n{table_markdown(prevalence)}" if prevalence.rows
        else "No prevalences were given.",
    ]
    article = article_table(data)
    if article.rows:
        parts += _section("The article's figures for the rules", article)
    parts += _uncertainty_md(data)
    parts += _model_md(data)
    parts += _landmarks_md(data)
    for key, value in data.items():
        if key == FIDELITY_KEY:
            parts += _section("Simulator fidelity", fidelity_table(value))
        elif key not in SHOWN_KEYS:
            parts += [_heading(key), _other_md(key, value)]
    return "\n\n".join(parts) + "\n"
