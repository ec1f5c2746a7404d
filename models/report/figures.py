"""Figures for the benchmark: ROC, precision-recall, calibration, decision curve, forest, PPV/NPV.

Every function takes plain arrays (``y`` 0/1 labels, ``p`` the model's calibrated
P(pseudoprogression), ``rules`` a DataFrame with one column per rule id holding
1.0 / 0.0 / NaN where NaN is an abstention), writes one PNG to ``out`` and returns its
path. Rules are scored on their covered rows only, except in the decision curve (see
:func:`plot_decision_curve`). Drawing uses matplotlib's Agg canvas directly, so the
caller's pyplot backend and state are left alone; files are written atomically.

Two figures are read from metrics.json's records instead: the cost of waiting
(:func:`plot_waiting_cost`, from ``landmarks``) and the partial effects of a spline model's
curved inputs (:func:`plot_partial_effects`, from ``feature_effects``).
:func:`figure_file_names` names every figure a report may hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from features.article import FIGURES, PREVALENCE
from features.contract import BY_NAME
from features.tables import atomic_path
from models.report import format as fmt
from models.report.words import Words
from models.statistics import (
    auc,
    auc_with_ci,
    binary_metrics,
    called,
    clusters,
    diagnostic_odds_ratios,
    net_benefit,
    restate_at_prevalence,
    treat_all_net_benefit,
)

__all__ = [
    "FILE_NAMES",
    "FOLLOWUP_FILE_NAMES",
    "SPLINE_FILE_NAMES",
    "figure_file_names",
    "plot_calibration",
    "plot_decision_curve",
    "plot_odds_ratio_forest",
    "plot_partial_effects",
    "plot_ppv_npv_vs_prevalence",
    "plot_precision_recall",
    "plot_roc",
    "plot_waiting_cost",
    "precision_recall_label",
    "spline_curves",
    "write_all_figures",
    "write_partial_effects_figure",
]

DPI = 120
#: The article's D3 odds ratio as (rule id prefix, OR, CI low, CI high).
ARTICLE_D3: tuple[str, float, float, float] = ("D3", FIGURES["D3"].value, *FIGURES["D3"].ci)
#: Prevalence marks (P1 melanoma, P2 lung) as proportions, with their labels.
PREVALENCE_MARKS: tuple[float, ...] = (PREVALENCE["melanoma"], PREVALENCE["nsclc"])
_MARK_LABELS = {PREVALENCE["melanoma"]: "P1 melanoma", PREVALENCE["nsclc"]: "P2 lung"}
#: File names written by :func:`write_all_figures`.
FILE_NAMES: dict[str, str] = {
    "roc": "roc.png",
    "precision_recall": "precision_recall.png",
    "calibration": "calibration.png",
    "decision_curve": "decision_curve.png",
    "odds_ratio_forest": "odds_ratio_forest.png",
    "ppv_npv_prevalence": "ppv_npv_prevalence.png",
}

#: Figures written only when the metrics hold follow-up scans' landmarks (``landmarks``):
#: the cost of waiting (:func:`plot_waiting_cost`).
FOLLOWUP_FILE_NAMES: dict[str, str] = {"waiting_cost": "waiting_cost.png"}

#: Figures written only for a model with restricted cubic spline terms: each curved
#: column's partial effect (:func:`plot_partial_effects`).
SPLINE_FILE_NAMES: dict[str, str] = {"partial_effects": "partial_effects.png"}


def figure_file_names() -> dict[str, str]:
    """Every figure a report of this project may hold, key -> file name (the six of
    :data:`FILE_NAMES`, then :data:`FOLLOWUP_FILE_NAMES` and :data:`SPLINE_FILE_NAMES`)."""
    return {**FILE_NAMES, **FOLLOWUP_FILE_NAMES, **SPLINE_FILE_NAMES}

_MODEL = dict(color="black", lw=2.0)
_BAYES = dict(color="0.45", lw=1.4, ls="--")
_CHANCE = dict(color="0.6", lw=1.0, ls=":")
_MARKERS = "osD^vPX<>hp*"


# --------------------------------------------------------------------------- plumbing


def _figure(figsize: tuple[float, float] = (8.0, 5.0)):
    """A Figure on an Agg canvas (no pyplot), constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out) -> Path:
    """Write ``fig`` as PNG to ``out`` through a temporary file in the same folder."""
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return out


def _styles(names: Sequence[str]) -> dict[str, dict]:
    """A colour and marker per rule, fixed by position, the same in every figure.

    Colours: the 10 dark hues of matplotlib's tab20, then its 10 light ones, so up to 20
    rules each get their own colour; markers cycle through 12 shapes.
    """
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return {n: dict(color=cmap(order[i % 20]), marker=_MARKERS[i % len(_MARKERS)])
            for i, n in enumerate(names)}


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y has {y.shape[0]} rows, p has {p.shape[0]}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold only 0 and 1")
    return y.astype(int), p


def _rules(rules: pd.DataFrame | None, n: int) -> pd.DataFrame:
    if rules is None:
        return pd.DataFrame(index=range(n))
    if len(rules) != n:
        raise ValueError(f"rules has {len(rules)} rows, y has {n}")
    return rules.apply(pd.to_numeric, errors="raise").reset_index(drop=True).astype(float)


def _outside_legend(fig, ax, order: Sequence[str] = (), fontsize: float = 7.5,
                    title: str | None = None) -> None:
    """Legend right of the axes; entries naming an id in ``order`` come last, in that order."""
    handles, labels = ax.get_legend_handles_labels()

    def rank(label: str) -> int:
        hits = [i for i, rid in enumerate(order) if label.startswith(str(rid))]
        return 1 + max(hits) if hits else 0  # max: the longest of two ids sharing a prefix

    pairs = sorted(zip(handles, labels, strict=True), key=lambda hl: rank(hl[1]))
    handles, labels = [h for h, _ in pairs], [lb for _, lb in pairs]
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, fontsize=fontsize, frameon=False, title=title,
                  title_fontsize=fontsize, alignment="left")


def _err(value: float, ci: Sequence[float]) -> list[list[float]]:
    """Asymmetric error-bar lengths for matplotlib, 0 where the CI is undefined."""
    lo, hi = ci
    return [[max(value - lo, 0.0) if np.isfinite(lo) else 0.0],
            [max(hi - value, 0.0) if np.isfinite(hi) else 0.0]]


def _not_estimable(ax, name: str, style: dict, n: int) -> None:
    ax.plot([], [], ls="none", marker=style["marker"], mfc="none", color=style["color"],
            label=f"{name}: not estimable (n={n})")


def _interval_kind(groups) -> str:
    """How a figure's error bars were formed, in a few words."""
    clustered = groups is not None and clusters(groups, len(groups)) is not None
    return "clustered by patient" if clustered else "Wilson"


# --------------------------------------------------------------------------- ROC


def plot_roc(y, p, rules: pd.DataFrame | None, out, bayes_p=None,
             auc_ci: Sequence[float] | None = None, bayes_auc: float | None = None,
             words: Words | None = None, groups=None) -> Path:
    """ROC curve of the model, each rule as a point with 95% Wilson CIs, to a PNG at ``out``.

    Each rule sits at (1 - specificity, sensitivity) measured on its covered rows; error
    bars are Wilson intervals of specificity (horizontal) and sensitivity (vertical).
    ``bayes_p`` (the true posterior of simulated data) adds the Bayes-optimal curve (its
    AUC ``bayes_auc`` as the report states it, computed when None); ``auc_ci`` (low, high)
    goes into the legend beside the model's AUC. Numbers are formatted as in the report;
    ``words`` name the classes (:class:`models.report.words.Words`); ``groups`` (each
    row's patient) make the rules' intervals the clustered ones the report gives.
    """
    from sklearn.metrics import roc_curve

    w = words or Words()
    y, p = _arrays(y, p)
    rules = _rules(rules, y.shape[0])
    styles = _styles(list(rules.columns))
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="Chance", **_CHANCE)
    if bayes_p is not None:
        _, bp = _arrays(y, bayes_p)
        fpr, tpr, _ = roc_curve(y, bp)
        value = auc(y, bp) if bayes_auc is None else bayes_auc
        ax.plot(fpr, tpr, label=f"Bayes-optimal (true posterior), AUC {fmt.fixed(value)}",
                **_BAYES)
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"Model, AUC {fmt.est_ci(auc(y, p), auc_ci)}", **_MODEL)
    for rid in rules.columns:
        op = binary_metrics(y, rules[rid].to_numpy(dtype=float), groups=groups)
        st = styles[rid]
        if not (np.isfinite(op["sensitivity"]) and np.isfinite(op["specificity"])):
            _not_estimable(ax, rid, st, op['n'])
            continue
        x = 1 - op["specificity"]
        spec_lo, spec_hi = op["specificity_ci"]
        ax.errorbar(x, op["sensitivity"], xerr=_err(x, (1 - spec_hi, 1 - spec_lo)),
                    yerr=_err(op["sensitivity"], op["sensitivity_ci"]), ls="none",
                    marker=st["marker"], color=st["color"], ms=6, capsize=2, lw=1,
                    label=f"{rid} (n={op['n']})", zorder=3)
    ax.set_box_aspect(1)
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01),
           xlabel="1 - specificity (false-positive rate, proportion)",
           ylabel="Sensitivity (true-positive rate, proportion)",
           title=f"ROC: {w.positive} vs {w.negative} (n={y.shape[0]})")
    ax.grid(alpha=0.3)
    ax.text(0.99, 0.01, f"rules on their covered rows; bars: 95% CIs ({_interval_kind(groups)})",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")
    _outside_legend(fig, ax, list(rules.columns))
    return _save(fig, out)


# --------------------------------------------------------------------------- precision-recall


def precision_recall_label(name: str, average_precision: float | None) -> str:
    """The legend entry of a precision-recall curve: its name and average precision, as the
    report's caption states it."""
    return f"{name}, average precision {fmt.fixed(average_precision)}"


def plot_precision_recall(y, p, rules: pd.DataFrame | None, out, bayes_p=None,
                          average_precision: float | None = None,
                          bayes_average_precision: float | None = None,
                          words: Words | None = None, groups=None) -> Path:
    """Precision-recall curve of the model, rules as points with 95% Wilson CIs, to a PNG.

    Each rule sits at (sensitivity, PPV) on its covered rows; the horizontal line is the
    prevalence of all rows, the PPV of calling everyone pseudoprogression. The legend gives
    each curve's average precision (:func:`precision_recall_label`): ``average_precision``
    and ``bayes_average_precision`` as the report states them, computed when None.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y, p = _arrays(y, p)
    rules = _rules(rules, y.shape[0])
    styles = _styles(list(rules.columns))
    fig = _figure()
    ax = fig.add_subplot()
    prev = y.mean() if y.size else np.nan
    ax.axhline(prev, label=f"Prevalence {fmt.pct(prev)}, all rows (no skill)", **_CHANCE)
    both = 0 < y.sum() < y.shape[0]
    if bayes_p is not None and both:
        _, bp = _arrays(y, bayes_p)
        prec, rec, _ = precision_recall_curve(y, bp)
        value = (average_precision_score(y, bp) if bayes_average_precision is None
                 else bayes_average_precision)
        ax.plot(rec, prec, label=precision_recall_label("Bayes-optimal (true posterior)", value),
                **_BAYES)
    if both:
        prec, rec, _ = precision_recall_curve(y, p)
        value = average_precision_score(y, p) if average_precision is None else average_precision
        ax.plot(rec, prec, label=precision_recall_label("Model", value),
                drawstyle="steps-post", **_MODEL)
    for rid in rules.columns:
        op = binary_metrics(y, rules[rid].to_numpy(dtype=float), groups=groups)
        st = styles[rid]
        if not (np.isfinite(op["sensitivity"]) and np.isfinite(op["ppv"])):
            _not_estimable(ax, rid, st, op['n'])
            continue
        ax.errorbar(op["sensitivity"], op["ppv"], xerr=_err(op["sensitivity"],
                    op["sensitivity_ci"]), yerr=_err(op["ppv"], op["ppv_ci"]), ls="none",
                    marker=st["marker"], color=st["color"], ms=6, capsize=2, lw=1,
                    label=f"{rid} (n={op['n']})", zorder=3)
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01),
           xlabel="Sensitivity (recall, proportion)",
           ylabel="Positive predictive value (precision, proportion)",
           title=f"Precision-recall for {(words or Words()).positive} (n={y.shape[0]})")
    ax.grid(alpha=0.3)
    ax.text(0.01, 0.01, f"rules on their covered rows; bars: 95% CIs ({_interval_kind(groups)})",
            transform=ax.transAxes, ha="left", va="bottom", fontsize=7, color="0.35")
    _outside_legend(fig, ax, list(rules.columns))
    return _save(fig, out)


# --------------------------------------------------------------------------- calibration


def _calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int) -> pd.DataFrame:
    """Quantile bins of ``p``: mean predicted, observed fraction and its Wilson CI."""
    from statsmodels.stats.proportion import proportion_confint

    bins = pd.qcut(p, q=n_bins, labels=False, duplicates="drop")
    df = pd.DataFrame({"bin": bins, "y": y, "p": p}).groupby("bin")
    tab = df.agg(predicted=("p", "mean"), events=("y", "sum"), n=("y", "size")).reset_index()
    tab["observed"] = tab["events"] / tab["n"]
    lo, hi = proportion_confint(tab["events"], tab["n"], alpha=0.05, method="wilson")
    tab["ci_low"], tab["ci_high"] = np.asarray(lo), np.asarray(hi)
    return tab


def plot_calibration(y, p, out, n_bins: int = 10, calibration: Mapping | None = None,
                     words: Words | None = None) -> Path:
    """Calibration plot: quantile-binned observed vs predicted with Wilson CIs, to a PNG.

    Adds a lowess smooth (statsmodels), the identity line, a histogram of ``p`` by label
    underneath, and the calibration intercept (calibration-in-the-large, logit(p) as
    offset; 0 is ideal) and slope (logistic regression on logit(p); 1 is ideal) with 95%
    CIs: ``calibration`` (keys as :func:`models.statistics.calibration_intercept_slope`
    returns, e.g. the report's metrics) or computed by that function when None.
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    from models.statistics import calibration_intercept_slope

    y, p = _arrays(y, p)
    fig = _figure((6.0, 6.0))
    gs = fig.add_gridspec(2, 1, height_ratios=(4, 1))
    ax = fig.add_subplot(gs[0])
    axh = fig.add_subplot(gs[1], sharex=ax)
    ax.plot([0, 1], [0, 1], label="Ideal", **_CHANCE)
    if y.size:
        tab = _calibration_bins(y, p, n_bins)
        ax.errorbar(tab["predicted"], tab["observed"],
                    yerr=[np.clip(tab["observed"] - tab["ci_low"], 0, None),
                          np.clip(tab["ci_high"] - tab["observed"], 0, None)],
                    ls="none", marker="o", color="tab:blue", ms=5, capsize=2, lw=1,
                    label=f"Observed, {len(tab)} quantile bins (95% Wilson CI)", zorder=3)
    if y.size >= 10 and np.ptp(p) > 0:
        sm = lowess(y, p, frac=2 / 3, it=0, return_sorted=True)
        ax.plot(sm[:, 0], sm[:, 1], label="Lowess smooth", **_MODEL)
    cal = calibration_intercept_slope(y, p) if calibration is None else calibration

    def text(name: str) -> str:
        return fmt.est_ci(cal.get(name), cal.get(f"{name}_ci"))

    ax.legend(loc="best", fontsize=8, title_fontsize=8, framealpha=0.9,
              title=f"Calibration intercept {text('calibration_intercept')}\n"
                    f"Calibration slope {text('calibration_slope')} (95% CIs)")
    w = words or Words()
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), ylabel=f"Observed proportion of {w.positive}",
           title=f"Calibration of {w.p} (n={y.shape[0]})")
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    edges = np.linspace(0, 1, 41)
    axh.hist([p[y == 0], p[y == 1]], bins=edges, stacked=True,
             color=["0.65", "tab:orange"], label=[w.Negative, w.Positive])
    axh.set(xlabel=f"Predicted {w.p} (probability)", ylabel="Lesions (count)")
    axh.legend(loc="upper right", fontsize=7, frameon=False)
    return _save(fig, out)


# --------------------------------------------------------------------------- decision curve


def plot_decision_curve(y, p, rules: pd.DataFrame | None, out,
                        thresholds=np.linspace(0.01, 0.6, 60),  # noqa: B008
                        words: Words | None = None) -> Path:
    """Decision curve (Vickers & Elkin): net benefit vs threshold probability, to a PNG.

    "Treat" means managing the lesion as pseudoprogression (e.g. continuing treatment).
    Curves: the model (re-thresholded at each pt), every rule, treat-all and treat-none.
    A rule is evaluated on all rows with an abstention falling back to treat-none (the
    lesion is not called pseudoprogression), so every curve shares the denominator n and
    the same prevalence; the legend says so. The y axis starts at -0.05.
    """
    y, p = _arrays(y, p)
    rules = _rules(rules, y.shape[0])
    styles = _styles(list(rules.columns))
    pt = np.asarray(thresholds, dtype=float)
    fig = _figure()
    ax = fig.add_subplot()
    curves = [np.zeros_like(pt)]
    ax.axhline(0.0, color="0.3", lw=1.0, label="Treat none")
    if y.size:
        all_nb = treat_all_net_benefit(y, pt)
        ax.plot(pt, all_nb, color="0.55", lw=1.2, ls="--", label="Treat all")
        nb = net_benefit(y, p, pt)
        curves += [all_nb, nb]
        ax.plot(pt, nb, label="Model", **_MODEL)
        for rid in rules.columns:
            r = rules[rid].to_numpy()
            cov = int(np.isfinite(r).sum())
            st = styles[rid]
            if cov == 0:
                ax.plot([], [], color=st["color"], lw=1.2,
                        label=f"{rid}: never applicable (n covered=0)")
                continue
            rnb = net_benefit(y, r, pt, abstain="treat-none")
            curves.append(rnb)
            ax.plot(pt, rnb, color=st["color"], lw=1.2, marker=st["marker"], ms=3,
                    markevery=max(len(pt) // 8, 1),
                    label=f"{rid} (covers {fmt.pct(cov / y.shape[0])})")
    top = np.nanmax(np.concatenate(curves)) if y.size else 0.1
    ax.set(xlim=(pt.min(), pt.max()), ylim=(-0.05, max(top, 0.02) * 1.1 + 0.005),
           xlabel="Threshold probability pt (probability)",
           ylabel="Net benefit (true positives per lesion)",
           title=f"Decision curve: calling {(words or Words()).positive} (n={y.shape[0]})")
    ax.grid(alpha=0.3)
    _outside_legend(fig, ax, list(rules.columns),
                    title="Rules on all rows; where a rule abstains\nthe lesion is not called "
                          "(treat none)")
    return _save(fig, out)


# --------------------------------------------------------------------------- forest plot


def _matches(label: str, rule_id: str) -> bool:
    return label == rule_id or label.startswith(rule_id + "_") or label.startswith(rule_id + " ")


def plot_odds_ratio_forest(rule_or_table: pd.DataFrame, out,
                           article: tuple[str, float, float, float] | None = ARTICLE_D3,
                           words: Words | None = None) -> Path:
    """Forest plot of diagnostic odds ratios with 95% CIs on a log axis, to a PNG.

    ``rule_or_table`` has one row per rule with columns ``label``, ``odds_ratio``,
    ``ci_low``, ``ci_high``, ``n`` and optionally ``note`` (as from
    :func:`models.statistics.diagnostic_odds_ratios`): an undefined ratio is named with its
    reason, a corrected one gets a marker explained in the legend.
    ``article`` = (rule id prefix, OR, CI low, CI high), by default the article's D3
    (:data:`ARTICLE_D3`), is drawn just below the matching rule in another colour and
    marker (or as its own row when no rule matches); ``None`` leaves it out.
    """
    from matplotlib.ticker import FuncFormatter

    w = words or Words()
    tab = rule_or_table.copy()
    if "label" not in tab.columns:
        tab = tab.reset_index().rename(columns={tab.index.name or "index": "label"})
    tab["label"] = tab["label"].astype(str)
    if "n" not in tab.columns:
        tab["n"] = np.nan
    if "note" not in tab.columns:
        tab["note"] = ""
    tab["note"] = tab["note"].fillna("").astype(str)
    tab = tab[["label", "odds_ratio", "ci_low", "ci_high", "n", "note"]]
    notes = fmt.Footnotes()
    rows = list(tab.itertuples(index=False))
    lines = []  # (y position, label, text)
    fig = _figure((7.5, max(3.0, 0.45 * (len(rows) + 2) + 1.2)))
    ax = fig.add_subplot()
    ax.axvline(1.0, label="OR = 1 (no association)", **_CHANCE)
    xs = [1.0]
    art_drawn = article is None
    ours_label = "This cohort (95% Woolf CI)"
    for i, r in enumerate(rows):
        ypos = len(rows) - i
        ok = all(np.isfinite([r.odds_ratio, r.ci_low, r.ci_high]))
        n_txt = f"n={int(r.n)}" if np.isfinite(r.n) else "n=?"
        if ok:
            ax.errorbar(r.odds_ratio, ypos, xerr=_err(r.odds_ratio, (r.ci_low, r.ci_high)),
                        ls="none", marker="s", color="tab:blue", ms=6, capsize=3, lw=1.2,
                        label=ours_label)
            ours_label = "_nolegend_"
            xs += [r.ci_low, r.ci_high]
        txt = fmt.dor(r.odds_ratio, (r.ci_low, r.ci_high), w.say(r.note), notes)
        txt = f"{txt if txt != fmt.DASH else 'not estimable'}, {n_txt}"
        lines.append((ypos, r.label, txt))
        if not art_drawn and _matches(r.label, article[0]):
            _draw_article(ax, ypos - 0.35, article)
            lines.append((ypos - 0.35, "", f"article {article[0]}: "
                          f"{fmt.article_ratio(article[1], article[2:])}"))
            xs += [article[2], article[3]]
            art_drawn = True
    if not art_drawn and rows:
        _draw_article(ax, 0.0, article)
        lines.append((0.0, f"{article[0]} (article)",
                      fmt.article_ratio(article[1], article[2:])))
        xs += [article[2], article[3]]
    if not lines:
        lines.append((1.0, "", "no rule to show"))
    xs = np.asarray(xs, dtype=float)
    xs = xs[np.isfinite(xs) & (xs > 0)]
    lo, hi = max(xs.min() / 1.6, 1e-2), min(xs.max() * 1.6, 1e3)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ys = [ln[0] for ln in lines]
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_yticks([ln[0] for ln in lines if ln[1]], [ln[1] for ln in lines if ln[1]],
                  fontsize=8)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(ys, [ln[2] for ln in lines], fontsize=7.5)
    right.tick_params(length=0)
    ax.set(xlabel=f"Diagnostic odds ratio for {w.positive} (log scale)",
           title="Diagnostic odds ratio of each rule (covered rows)")
    ax.grid(axis="x", which="both", alpha=0.3)
    for line in notes.lines():
        ax.plot([], [], ls="none", label=line)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=7.5,
               frameon=False)
    return _save(fig, out)


def _draw_article(ax, ypos: float, article: tuple[str, float, float, float]) -> None:
    rid, or_, lo, hi = article
    label = f"Article {rid}: OR {fmt.article_ratio(or_, (lo, hi))} (95% CI)"
    ax.errorbar(or_, ypos, xerr=_err(or_, (lo, hi)), ls="none", marker="D",
                color="tab:red", ms=6, capsize=3, lw=1.2, label=label)


# --------------------------------------------------------------------------- PPV / NPV


def plot_ppv_npv_vs_prevalence(operating_points: Mapping[str, tuple[float, float]], out,
                               prevalence_range: tuple[float, float] = (0.05, 0.30),
                               marks: Sequence[float] = PREVALENCE_MARKS,
                               words: Words | None = None,
                               mark_labels: Mapping[float, str] | None = None) -> Path:
    """PPV and NPV against prevalence for fixed (sensitivity, specificity), to a PNG.

    By Bayes' theorem (:func:`models.statistics.restate_at_prevalence`).
    ``operating_points`` maps a name ("Model", a rule id) to its (sensitivity,
    specificity) in 0-1; vertical lines mark ``marks`` (default: P1 melanoma 9.8%, P2
    lung 15.3%), named by ``mark_labels`` (default: the article's).
    """
    mark_labels = _MARK_LABELS if mark_labels is None else mark_labels
    if marks:
        prevalence_range = (min(prevalence_range[0], 0.8 * min(marks)),
                            max(prevalence_range[1], min(1.2 * max(marks), 0.99)))
    pi = np.linspace(*prevalence_range, 200)
    names = list(operating_points)
    styles = _styles([n for n in names if not n.lower().startswith("model")])
    fig = _figure((10.0, 6.0))
    axes = fig.subplots(1, 2, sharex=True)
    npv_min = 1.0
    for name in names:
        se, sp = (float(v) for v in operating_points[name])
        is_model = name.lower().startswith("model")
        kw = dict(_MODEL) if is_model else dict(color=styles[name]["color"], lw=1.2,
                                                marker=styles[name]["marker"], ms=3,
                                                markevery=25)
        if not (np.isfinite(se) and np.isfinite(sp)):
            axes[0].plot([], [], label=f"{name}: not estimable", **kw)
            continue
        restated = restate_at_prevalence(se, sp, pi)
        ppv, npv = restated["ppv"], restated["npv"]
        npv_min = min(npv_min, float(np.nanmin(npv)))
        label = f"{name} (sensitivity {fmt.pct(se)}, specificity {fmt.pct(sp)})"
        axes[0].plot(100 * pi, 100 * ppv, label=label, **kw)
        axes[1].plot(100 * pi, 100 * npv, **kw)
    npv_floor = max(0.0, 10 * np.floor(10 * npv_min - 0.5))
    for ax, what, ylim, top in ((axes[0], "PPV", (0, 101), True),
                                (axes[1], "NPV", (npv_floor, 101), False)):
        for m in marks:
            ax.axvline(100 * m, color="0.4", lw=0.9, ls="--")
            ax.annotate(f"{mark_labels.get(m, 'prevalence')} {fmt.pct(m)}",
                        (100 * m, 1.0 if top else 0.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -3 if top else 3), textcoords="offset points",
                        rotation=90, va="top" if top else "bottom", fontsize=7.5,
                        color="0.3")
        ax.set(xlim=(100 * pi[0], 100 * pi[-1]), ylim=ylim,
               xlabel=f"Prevalence of {(words or Words()).positive} (%)",
               ylabel=f"{what} (%)", title=f"{what} vs prevalence")
        ax.grid(alpha=0.3)
    fig.suptitle("Predictive values re-stated at other prevalences (Bayes' theorem)")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=7.5,
                   frameon=False)
    return _save(fig, out)


# --------------------------------------------------------------------------- waiting


def _landmark_points(times: Sequence[Mapping], key: str, rule: str | None
                     ) -> list[tuple[float, float, list[float]]]:
    """(week, value, ci) of the model (``rule`` None) or a rule at each decision time where
    it is estimable (a rule that abstains everywhere there is left out)."""
    out = []
    for t in times:
        m = (t.get("model") if rule is None else (t.get("rules") or {}).get(rule)) or {}
        if rule is not None and not fmt.num(m.get("coverage")) > 0:
            continue
        v = fmt.num(m.get(key))
        if np.isfinite(v):
            ci = [fmt.num(c) for c in (m.get(f"{key}_ci") or [None, None])]
            out.append((fmt.num(t.get("week")), v, ci))
    return out


def plot_waiting_cost(landmarks: Mapping, out, words: Words | None = None) -> Path:
    """What each extra scan buys and what it costs, to a PNG: at each decision time (weeks
    after the index scan), the landmark model's and each rule's sensitivity and PPV with
    their 95% Wilson intervals (each rule on the lesions it covers; left out where it
    abstains on every lesion), beside the weeks of untreated true progression per 100
    patients accrued by waiting (with its interval).

    ``landmarks``: metrics.json's ``landmarks`` entry (:func:`models.landmarks.train_landmarks`);
    ``words`` name the classes.
    """
    w = words or Words()
    times = list(landmarks.get("times") or [])
    weeks = [fmt.num(t.get("week")) for t in times]
    rule_ids = list(landmarks.get("rule_ids") or
                    dict.fromkeys(r for t in times for r in (t.get("rules") or {})))
    styles = _styles(rule_ids)
    fig = _figure((12.0, 4.2))
    axes = fig.subplots(1, 3)
    step = 0.35
    for ax, key, name in ((axes[0], "sensitivity", "Sensitivity"), (axes[1], "ppv", "PPV")):
        series = [(None, "Landmark model", dict(color="black", marker="o"))]
        series += [(rid, rid, styles[rid]) for rid in rule_ids]
        for i, (rid, label, style) in enumerate(series):
            pts = _landmark_points(times, key, rid)
            if not pts:
                continue
            shift = (i - (len(series) - 1) / 2) * step
            xs = [w + shift for w, _, _ in pts]
            ys = [100 * v for _, v, _ in pts]
            err = np.hstack([_err(100 * v, [100 * c for c in ci]) for _, v, ci in pts])
            ax.errorbar(xs, ys, yerr=err, color=style["color"], marker=style["marker"],
                        ms=5, capsize=3, lw=2.0 if rid is None else 1.2, label=label)
        ax.set(xlabel="Decision time (weeks after the index scan)", ylabel=f"{name} (%)",
               title=f"{name} (95% CI)", xticks=weeks, ylim=(0, 105))
        ax.grid(alpha=0.3)
    ax = axes[2]
    cost = [t.get("waiting") or {} for t in times]
    values = [fmt.num(c.get("weeks_untreated_per_100_patients")) for c in cost]
    cis = [[fmt.num(v) for v in (c.get("weeks_untreated_per_100_patients_ci") or [None, None])]
           for c in cost]
    err = np.hstack([_err(v, ci) if np.isfinite(v) else [[0.0], [0.0]]
                     for v, ci in zip(values, cis, strict=True)]) if values else None
    ax.bar(weeks, np.nan_to_num(values), width=2.0, color="tab:red", alpha=0.6, yerr=err,
           capsize=3, label=f"untreated {w.negative}")
    ax.set(xlabel="Decision time (weeks after the index scan)",
           ylabel="Weeks per 100 patients", xticks=weeks,
           title=f"Cost of waiting: weeks of untreated\n{w.negative} per 100 patients")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=len(handles),
                   fontsize=7.5, frameon=False)
    scheme = (landmarks.get("split") or {}).get("scheme", "holdout")
    who = {"holdout": "held-out patients", "cv": "out-of-fold probabilities",
           "bootstrap": "out-of-bag probabilities"}.get(scheme, "evaluated patients")
    fig.suptitle(f"What each extra scan buys and what it costs ({who}, lesions with a scan "
                 "at each decision time)", fontsize=10)
    return _save(fig, out)


# --------------------------------------------------------------------------- spline curves

#: At most this many curves in the partial-effect figure (the strongest ones).
MAX_CURVES = 4


def spline_curves(effects: Sequence[Mapping], limit: int = MAX_CURVES) -> list[Mapping]:
    """The records of ``effects`` (metrics.json's ``feature_effects``, largest effect first)
    that hold a partial-effect curve, the first ``limit`` of them."""
    out = [r for r in effects if isinstance(r, Mapping)
           and isinstance(r.get("partial_effect"), Mapping)
           and len(r["partial_effect"].get("value") or []) > 1]
    return out[:limit]


def plot_partial_effects(effects: Sequence[Mapping], out) -> Path:
    """The partial effect of each curved column (:func:`spline_curves`), to a PNG: one panel
    per column, the odds ratio against a lesion at the column's median (log scale; on the
    calibrated probability when the calibration is known, else on the model's own log-odds)
    over its 5th to 95th percentile, every other input held fixed, the 25th and 75th
    percentiles (the interquartile odds ratio's two values) marked."""
    curves = spline_curves(effects)
    if not curves:
        raise ValueError("no feature effect holds a partial-effect curve")
    fig = _figure((3.3 * len(curves) + 0.6, 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(curves), sharey=True, squeeze=False)[0])
    calibrated = all(r["partial_effect"].get("log_odds_calibrated") for r in curves)
    key = "log_odds_calibrated" if calibrated else "log_odds"
    for ax, r in zip(axes, curves, strict=True):
        curve = r["partial_effect"]
        x = np.asarray([fmt.num(v) for v in curve["value"]])
        y = np.exp(np.asarray([fmt.num(v) for v in curve[key]]))
        ax.plot(x, y, **_MODEL)
        ax.axhline(1.0, **_CHANCE)
        for v in (r.get("reference_value"), r.get("compared_value")):
            if fmt.finite(v):
                ax.axvline(fmt.num(v), color="0.55", lw=0.9, ls="--")
        column = str(r.get("column") or r.get("feature"))
        unit = getattr(BY_NAME.get(column), "unit", "")
        ax.set(yscale="log", xlabel=f"{column} ({unit})" if unit else column,
               title=f"{column}: {r.get('shape') or ''}".rstrip(": "))
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Odds ratio vs a lesion at the median\n"
                       + ("(calibrated probability, log scale)" if calibrated
                          else "(model's log-odds, log scale)"))
    fig.suptitle("Partial effect of each curved input (spline model; dashed: 25th and 75th "
                 "percentile)", fontsize=10)
    return _save(fig, out)


def write_partial_effects_figure(data: Mapping, out_dir) -> dict[str, Path]:
    """Write the partial-effect figure into ``out_dir`` when ``data`` (metrics.json as
    written) has feature effects with curves; return ``{"partial_effects": path}``, else
    {}."""
    effects = data.get("feature_effects") or []
    if not spline_curves(effects):
        return {}
    key = "partial_effects"
    return {key: plot_partial_effects(effects, Path(out_dir) / SPLINE_FILE_NAMES[key])}


# --------------------------------------------------------------------------- all at once


def write_all_figures(out_dir, y, p, threshold: float, rules: pd.DataFrame | None,
                      bayes_p=None, metrics: Mapping | None = None,
                      words: Words | None = None, groups=None) -> dict[str, Path]:
    """Write the six figures into ``out_dir`` under :data:`FILE_NAMES`; return name -> path.

    ``threshold`` (probability) fixes the model's operating point in the PPV/NPV figure.
    ``metrics`` may supply ``"auc"`` as ``{"ci": [low, high]}`` (as from
    :func:`models.statistics.bootstrap_metrics`) or ``"auc_ci"``, ``"odds_ratios"`` (a
    forest-plot table), ``"model"`` (the report's model metrics: average precision,
    calibration intercept and slope with CIs) and ``"bayes_ceiling"`` (its AUC and average
    precision), so that legends state the numbers the report states; what is missing is
    computed here (the AUC CI by :func:`models.statistics.auc_with_ci`). ``words`` name
    the classes and say whether the article's context (its D3 odds ratio, the P1 and P2
    prevalence marks) applies; otherwise the study's own prevalences are marked.
    ``groups`` (each row's patient): intervals clustered by patient, as the report's.
    """
    w = words or Words()
    y, p = _arrays(y, p)
    rules = _rules(rules, y.shape[0])
    metrics = dict(metrics or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = {k: out_dir / v for k, v in FILE_NAMES.items()}

    if isinstance(metrics.get("auc"), Mapping) and "ci" in metrics["auc"]:
        auc_ci = metrics["auc"]["ci"]
    elif "auc_ci" in metrics:
        auc_ci = metrics["auc_ci"]
    else:
        auc_ci = auc_with_ci(y, p, groups=groups)[1] if 0 < y.sum() < y.shape[0] else None
    table = metrics.get("odds_ratios")
    if table is None:
        table = diagnostic_odds_ratios(y, rules)
    model_m = metrics.get("model") or {}
    ceiling = metrics.get("bayes_ceiling") or {}
    calibration = model_m if "calibration_slope" in model_m else None

    model = binary_metrics(y, called(p, threshold).astype(float))
    points = {f"Model (p >= {fmt.g(threshold)})": (model["sensitivity"], model["specificity"])}
    for rid in rules.columns:
        op = binary_metrics(y, rules[rid].to_numpy(dtype=float), groups=groups)
        points[str(rid)] = (op["sensitivity"], op["specificity"])

    if w.article:
        marks, mark_labels = PREVALENCE_MARKS, None
    else:
        own = dict(w.study.get("prevalences") or {})
        marks, mark_labels = tuple(own.values()), {v: k for k, v in own.items()}
    return {
        "roc": plot_roc(y, p, rules, path["roc"], bayes_p=bayes_p, auc_ci=auc_ci,
                        bayes_auc=ceiling.get("auc"), words=w, groups=groups),
        "precision_recall": plot_precision_recall(
            y, p, rules, path["precision_recall"], bayes_p=bayes_p,
            average_precision=model_m.get("average_precision"),
            bayes_average_precision=ceiling.get("average_precision"), words=w,
            groups=groups),
        "calibration": plot_calibration(y, p, path["calibration"], calibration=calibration,
                                        words=w),
        "decision_curve": plot_decision_curve(y, p, rules, path["decision_curve"], words=w),
        "odds_ratio_forest": plot_odds_ratio_forest(
            table, path["odds_ratio_forest"], article=ARTICLE_D3 if w.article else None,
            words=w),
        "ppv_npv_prevalence": plot_ppv_npv_vs_prevalence(
            points, path["ppv_npv_prevalence"], marks=marks, words=w,
            mark_labels=mark_labels),
    }
