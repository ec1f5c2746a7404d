"""The metrics report: ``metrics.json`` and a readable ``metrics.md``, written atomically.

:func:`write_metrics_report` takes the dict of :func:`models.statistics.benchmark` (plus any
extra keys a caller adds, such as ``feature_odds_ratios`` or ``split``) and writes both
files; :func:`format_benchmark_table` gives the benchmark as plain text for a terminal.
Proportions are shown as percentages with their 95% CI in parentheses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from features.article import FIGURES
from features.tables import atomic_write_text
from models.report import format as fmt
from models.statistics import to_jsonable

DEFAULT_TITLE = "Pseudoprogression: the model against the article's rules"
fmt.DASH = "-"
#: Top-level keys of the benchmark dict that have their own section in metrics.md.
_BENCHMARK_KEYS = ("n", "n_positive", "prevalence", "threshold", "model", "rules",
                   "bayes_ceiling")
#: Keys added by :func:`models.report.write.add_uncertainty`, each with its own section.
_UNCERTAINTY_KEYS = ("uncertainty", "bootstrap", "rule_comparisons", "net_benefit")


def _entries(metrics: Mapping) -> list[tuple[str, Mapping]]:
    """("model", model dict) then (rule id, rule dict) for every rule."""
    out = [("model", metrics.get("model") or {})]
    out += list((metrics.get("rules") or {}).items())
    return out


def _rule_figures(rule_id: str) -> list[str]:
    """Ids of the article's figures a rule id names (``Q1a_symptoms`` -> Q1a, Q1a_spec)."""
    prefix = rule_id.split("_", 1)[0]
    return [fid for fid in FIGURES if fid == prefix or fid.startswith(prefix + "_")]


# --------------------------------------------------------------------------- plain text


def format_benchmark_table(metrics: Mapping) -> str:
    """The benchmark as plain text: the model and every rule with n, coverage,
    sensitivity, PPV and diagnostic odds ratio, each with its 95% CI."""
    head = (f"n = {metrics.get('n', fmt.DASH)} ({metrics.get('n_positive', fmt.DASH)} "
            f"pseudoprogression, prevalence {fmt.pct(metrics.get('prevalence'))}); model "
            f"threshold {fmt.g(metrics.get('threshold'))}")
    model = metrics.get("model") or {}
    if "auc" in model:
        head += f"; AUC {fmt.est_ci(model.get('auc'), model.get('auc_ci'))}"
    rows = []
    for name, m in _entries(metrics):
        rows.append([name, fmt.cell(m.get("n")), fmt.pct(m.get("coverage")),
                     fmt.pct_ci(m.get("sensitivity"), m.get("sensitivity_ci")),
                     fmt.pct_ci(m.get("ppv"), m.get("ppv_ci")),
                     fmt.ratio_ci(m.get("dor"), m.get("dor_ci"))])
    table = fmt.text_table(["", "n", "coverage", "sensitivity (95% CI)", "PPV (95% CI)",
                         "odds ratio (95% CI)"], rows)
    return head + "\n" + table


# --------------------------------------------------------------------------- markdown


def benchmark_table(metrics: Mapping) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the benchmark: the model and every rule, proportions with CIs."""
    rows = []
    for name, m in _entries(metrics):
        rows.append([name, fmt.cell(m.get("n")), fmt.pct(m.get("coverage")),
                     fmt.pct_ci(m.get("sensitivity"), m.get("sensitivity_ci")),
                     fmt.pct_ci(m.get("specificity"), m.get("specificity_ci")),
                     fmt.pct_ci(m.get("ppv"), m.get("ppv_ci")),
                     fmt.pct_ci(m.get("npv"), m.get("npv_ci")),
                     fmt.ratio_ci(m.get("dor"), m.get("dor_ci"))])
    return (["", "n", "coverage", "sensitivity", "specificity", "PPV", "NPV",
             "diagnostic OR"], rows)


def _benchmark_md(metrics: Mapping) -> str:
    return fmt.md_table(*benchmark_table(metrics))


def rules_vs_model_tables(metrics: Mapping) -> tuple[tuple[list[str], list[list[str]]],
                                                         tuple[list[str], list[list[str]]]]:
    """Two tables on each rule's covered rows: the model at the rule's sensitivity, and the
    model at its stored threshold. Empty row lists when no rule was evaluated."""
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
    first = (["rule", "n covered", "rule sensitivity", "model threshold",
              "model sensitivity", "rule specificity", "model specificity",
              "rule PPV", "model PPV"], rows)
    second = (["rule", "n covered", "sensitivity", "specificity", "PPV", "NPV"], rows_stored)
    return first, second


def _rules_vs_model_md(metrics: Mapping) -> str:
    first, second = rules_vs_model_tables(metrics)
    if not first[1]:
        return "No rules were evaluated."
    return (
        "On the rows each rule covers, the model at the highest threshold that reaches the "
        "rule's sensitivity:\n\n" + fmt.md_table(*first)
        + f"\n\nThe model at its stored threshold ({fmt.g(metrics.get('threshold'))}) on the "
        "same rows:\n\n" + fmt.md_table(*second))


def model_lines(metrics: Mapping) -> list[str]:
    """The model's discrimination and calibration as short lines of text."""
    m = metrics.get("model") or {}
    lines = [
        f"AUC: {fmt.est_ci(m.get('auc'), m.get('auc_ci'))} (DeLong 95% CI)",
        f"Brier score: {fmt.g(m.get('brier'), 4)}",
        f"calibration intercept (calibration-in-the-large, ideal 0): "
        f"{fmt.est_ci(m.get('calibration_intercept'), m.get('calibration_intercept_ci'))}",
        f"calibration slope (ideal 1; below 1 means over-confident): "
        f"{fmt.est_ci(m.get('calibration_slope'), m.get('calibration_slope_ci'))}",
    ]
    ceiling = metrics.get("bayes_ceiling")
    if isinstance(ceiling, Mapping):
        lines.append(f"ceiling (the simulator's exact posterior on the same rows): AUC "
                     f"{fmt.est_ci(ceiling.get('auc'), ceiling.get('auc_ci'))}, Brier "
                     f"{fmt.g(ceiling.get('brier'), 4)}")
    return lines


def _model_md(metrics: Mapping) -> str:
    return "\n".join(f"- {line}" for line in model_lines(metrics))


#: How PPV and NPV are re-stated at another prevalence (shown above that table).
PREVALENCE_NOTE = (
    "PPV and NPV re-stated by Bayes' theorem from each sensitivity and specificity. The "
    "intervals plug the CI bounds of sensitivity and specificity in together: approximate "
    "and conservative.")


def prevalence_table(metrics: Mapping) -> tuple[list[str], list[list[str]]]:
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
    return headers, rows


def _prevalence_md(metrics: Mapping) -> str:
    headers, rows = prevalence_table(metrics)
    if not rows:
        return "No prevalences were given."
    return PREVALENCE_NOTE + "\n\n" + fmt.md_table(headers, rows)


def article_table(metrics: Mapping) -> tuple[list[str], list[list[str]]]:
    """What the article reports for each evaluated rule (figure id and statement)."""
    rows = []
    for rule_id in metrics.get("rules") or {}:
        for fid in _rule_figures(rule_id):
            rows.append([rule_id, fid, FIGURES[fid].statement])
    return ["rule", "figure", "article"], rows


def _article_md(metrics: Mapping) -> str:
    headers, rows = article_table(metrics)
    if not rows:
        return ""
    return ("What the article reports for each rule (from its own, possibly different, "
            "population):\n\n" + fmt.md_table(headers, rows))


def _pp_ci(v, ci) -> str:
    """A difference of proportions in percentage points with its CI: ``+5.2 pp (-1.0 to 11.3)``."""
    if not fmt.finite(v):
        return fmt.DASH
    lo, hi = (ci or (None, None))[:2]
    text = f"{100 * fmt.num(v):+.1f} pp"
    if fmt.finite(lo, hi):
        text += f" ({100 * fmt.num(lo):+.1f} to {100 * fmt.num(hi):+.1f})"
    return text


def _p_value(v) -> str:
    """A p-value: ``<0.001`` below 0.001, else 2 significant digits."""
    if not fmt.finite(v):
        return fmt.DASH
    x = fmt.num(v)
    return "<0.001" if x < 0.001 else f"{x:.2g}"


def _nb(v) -> str:
    """A net benefit (true positives per patient) to 4 decimals."""
    return f"{fmt.num(v):.4f}" if fmt.finite(v) else fmt.DASH


_DEFINED = re.compile(r"(\d+) of (\d+) resamples defined")
#: Display name and formatter for each statistic of the bootstrap dict.
_BOOTSTRAP_ROWS = {
    "auc": ("AUC", fmt.est_ci),
    "brier": ("Brier score", lambda v, ci: fmt.est_ci(v, ci, 4)),
    "sensitivity": ("sensitivity at the threshold", fmt.pct_ci),
    "specificity": ("specificity at the threshold", fmt.pct_ci),
    "ppv": ("PPV at the threshold", fmt.pct_ci),
    "npv": ("NPV at the threshold", fmt.pct_ci),
}


def bootstrap_table(metrics: Mapping) -> tuple[list[str], list[list[str]]]:
    """The model's bootstrap CIs (``metrics["bootstrap"]``): statistic, estimate (95% CI),
    resamples in which the statistic was defined."""
    rows = []
    for key, entry in (metrics.get("bootstrap") or {}).items():
        if not isinstance(entry, Mapping):
            continue
        if key in _BOOTSTRAP_ROWS:
            name, formatter = _BOOTSTRAP_ROWS[key]
        elif key.startswith("net_benefit@"):
            name = f"net benefit at pt = {key.split('@', 1)[1]}"

            def formatter(v, ci):
                return fmt.est_ci(v, ci, 4)
        else:
            name, formatter = key.replace("_", " "), fmt.est_ci
        match = _DEFINED.search(str(entry.get("method", "")))
        rows.append([name, formatter(entry.get("estimate"), entry.get("ci")),
                     f"{match.group(1)} of {match.group(2)}" if match else ""])
    return ["statistic", "estimate (95% CI)", "resamples defined"], rows


def bootstrap_method(metrics: Mapping) -> str:
    """The resampling scheme of the bootstrap, from its first ``method`` string."""
    for entry in (metrics.get("bootstrap") or {}).values():
        if isinstance(entry, Mapping) and entry.get("method"):
            return _DEFINED.sub("", str(entry["method"])).rstrip("; ")
    return ""


def rule_comparison_table(metrics: Mapping) -> tuple[list[str], list[list[str]]]:
    """Model minus rule on each rule's covered rows (``metrics["rule_comparisons"]``), the
    model read at the rule's sensitivity; paired bootstrap CIs and DeLong's test."""
    rows = []
    for rule_id, c in (metrics.get("rule_comparisons") or {}).items():
        rule, model = c.get("rule") or {}, c.get("model") or {}
        ppv_d, spec_d = c.get("ppv_difference") or {}, c.get("specificity_difference") or {}
        auc_d, delong = c.get("auc_difference") or {}, c.get("delong") or {}
        n_pos = c.get("n_positive")
        rows.append([
            rule_id, f"{fmt.cell(c.get('n_covered'))} ({fmt.cell(n_pos)})",
            f"{fmt.pct(rule.get('sensitivity'))} / {fmt.pct(model.get('sensitivity'))}",
            f"{fmt.pct(rule.get('ppv'))} / {fmt.pct(model.get('ppv'))}",
            _pp_ci(ppv_d.get("estimate"), ppv_d.get("ci")),
            _pp_ci(spec_d.get("estimate"), spec_d.get("ci")),
            f"{fmt.g(rule.get('auc'))} / {fmt.g(model.get('auc'))}",
            fmt.est_ci(auc_d.get("estimate"), auc_d.get("ci")),
            fmt.est_ci(delong.get("difference"), delong.get("ci")),
            _p_value(delong.get("p_value"))])
    return (["rule", "n covered (events)", "sensitivity rule / model", "PPV rule / model",
             "PPV difference (95% CI)", "specificity difference (95% CI)",
             "AUC rule / model", "AUC difference, bootstrap (95% CI)",
             "AUC difference, DeLong (95% CI)", "DeLong p"], rows)


def net_benefit_table(metrics: Mapping) -> tuple[list[str], list[list[str]]]:
    """Net benefit of the model, treat-all, treat-none and every rule at a few threshold
    probabilities (``metrics["net_benefit"]``)."""
    nb = metrics.get("net_benefit") or {}
    pts = list(nb.get("thresholds") or [])
    headers = ["strategy", *(f"pt = {fmt.num(t):.2f}" for t in pts)]
    rows = []
    for key, name in (("model", "model"), ("treat_all", "treat all"),
                      ("treat_none", "treat none")):
        if key in nb:
            rows.append([name, *(_nb(v) for v in nb[key])])
    coverage = nb.get("rule_coverage") or {}
    for rule_id, values in (nb.get("rules") or {}).items():
        cov = coverage.get(rule_id)
        label = f"{rule_id} (covers {fmt.pct(cov)})" if cov is not None else rule_id
        rows.append([label, *(_nb(v) for v in values)])
    return headers, rows


def _uncertainty_md(metrics: Mapping) -> list[str]:
    """Sections of metrics.md for the keys :func:`models.report.write.add_uncertainty` adds."""
    parts: list[str] = []
    if metrics.get("bootstrap"):
        headers, rows = bootstrap_table(metrics)
        unit = (metrics.get("uncertainty") or {}).get("resampling_unit")
        parts += ["## Bootstrap confidence intervals of the model",
                  f"{bootstrap_method(metrics)}"
                  + (f"; resampling unit: {unit}" if unit else "")
                  + f"; threshold {fmt.g(metrics.get('threshold'))}.\n\n"
                  + fmt.md_table(headers, rows)]
    if metrics.get("rule_comparisons"):
        parts += ["## The model against each rule at the rule's sensitivity (paired)",
                  "Model minus rule on the rows the rule covers, the model read at the highest "
                  "threshold reaching the rule's sensitivity; rule and model resampled "
                  "together. A rule's AUC is (sensitivity + specificity) / 2.\n\n"
                  + fmt.md_table(*rule_comparison_table(metrics))]
    if metrics.get("net_benefit"):
        nb = metrics["net_benefit"]
        parts += ["## Net benefit",
                  f"Net true positives per patient on {fmt.cell(nb.get('n'))} rows "
                  f"({fmt.cell(nb.get('n_positive'))} pseudoprogression). "
                  f"{nb.get('abstention', '')}\n\n" + fmt.md_table(*net_benefit_table(metrics))]
    return parts


_FIGURE_SUFFIX = re.compile(r"\(([A-Z][A-Za-z0-9_]*)\)\s*$")


def _article_or(fig) -> str:
    """An odds ratio the article reports, at its own precision: ``4.3 (3.7-5.0) (D3)``."""
    values = [fig.value, *(fig.ci or ())]
    digits = 1 if min(values) >= 1 else 2
    text = f"{fig.value:.{digits}f}"
    if fig.ci:
        text += f" ({fig.ci[0]:.{digits}f}-{fig.ci[1]:.{digits}f})"
    return f"{text} ({fig.id})"


def _heading(key: str) -> str:
    text = str(key).replace("_", " ")
    return f"## {text[:1].upper()}{text[1:]}"


def _records_md(records: Sequence[Mapping]) -> str:
    """A list of records as a markdown table. Odds-ratio tables whose ``feature`` ends in
    ``(<figure id>)`` get the article's odds ratio beside ours."""
    if not records:
        return "(empty)"
    headers: list[str] = []
    for r in records:
        headers += [k for k in r if k not in headers]
    rows = [[r.get(h) for h in headers] for r in records]
    if "feature" in headers and "odds_ratio" in headers:
        headers = [*headers, "article"]
        for row, r in zip(rows, records, strict=True):
            match = _FIGURE_SUFFIX.search(str(r.get("feature", "")))
            fig = FIGURES.get(match.group(1)) if match else None
            row.append(_article_or(fig) if fig is not None and fig.unit == "odds ratio"
                       else "")
    return fmt.md_table(headers, rows)


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


def render_markdown(metrics: Mapping, extra_tables: Mapping[str, pd.DataFrame] | None = None,
                    title: str = DEFAULT_TITLE) -> str:
    """The text of ``metrics.md`` for a benchmark dict (see :func:`write_metrics_report`)."""
    n, prev = metrics.get("n"), metrics.get("prevalence")
    parts = [
        f"# {title}",
        f"- evaluated rows: {fmt.cell(n)} ({fmt.cell(metrics.get('n_positive'))} "
        "pseudoprogression, "
        f"prevalence {fmt.pct(prev)})\n"
        f"- model threshold: {fmt.g(metrics.get('threshold'))} (pseudoprogression when the "
        "model's probability is at or above it)\n"
        "- positive class: pseudoprogression. Proportions with Wilson 95% CIs, diagnostic "
        "odds ratios with Woolf 95% CIs (0.5 added to every cell when one is 0). A rule "
        "abstains where an input it needs is missing; it is scored on the rows it covers "
        "(coverage = covered rows / all rows).",
        "## Benchmark",
        _benchmark_md(metrics),
        "## Each rule against the model on the same rows",
        _rules_vs_model_md(metrics),
        "## Model discrimination and calibration",
        _model_md(metrics),
        "## PPV and NPV at other prevalences",
        _prevalence_md(metrics),
    ]
    article = _article_md(metrics)
    if article:
        parts += ["## The article's figures for the rules", article]
    parts += _uncertainty_md(metrics)
    for key, value in metrics.items():
        if key in _BENCHMARK_KEYS or key in _UNCERTAINTY_KEYS:
            continue
        parts += [_heading(key), _other_md(key, value)]
    for key, table in (extra_tables or {}).items():
        parts += [_heading(key), _records_md(to_jsonable(table))]
    return "\n\n".join(parts) + "\n"


#: The report's files other than figures, by key (figures: ``models.report.figures.FILE_NAMES``).
REPORT_FILES: dict[str, str] = {
    "metrics_json": "metrics.json", "metrics_md": "metrics.md", "report_md": "report.md",
    "report_html": "report.html", "predictions_csv": "evaluation_predictions.csv"}


def write_metrics_report(report_dir: str | Path, metrics: dict,
                         extra_tables: dict[str, pd.DataFrame] | None = None,
                         title: str = DEFAULT_TITLE) -> None:
    """Write ``metrics.json`` and ``metrics.md`` into ``report_dir`` (created if needed).

    ``metrics.json`` holds ``metrics`` with numpy types made plain and nan as null, plus
    each extra table as a list of records under its key (a key already in ``metrics`` is
    an error). ``metrics.md`` is the same content for reading: the benchmark table, each
    rule against the model, discrimination and calibration, PPV/NPV at each prevalence,
    and every extra key and table. Both files are written atomically.
    """
    report_dir = Path(report_dir)
    payload = dict(metrics)
    for key, table in (extra_tables or {}).items():
        if key in payload:
            raise ValueError(f"extra table '{key}' clashes with a key of the metrics dict.")
        payload[key] = table
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False)
    markdown = render_markdown(metrics, extra_tables, title)
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_dir / REPORT_FILES["metrics_json"], text + "\n")
    atomic_write_text(report_dir / REPORT_FILES["metrics_md"], markdown)
