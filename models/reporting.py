"""The evaluation report a reviewer can check: uncertainty, figures, ``report.md``, ``report.html``.

Three public functions:

- :func:`add_uncertainty` adds patient-level bootstrap CIs, paired model-vs-rule
  comparisons and net benefit to a benchmark dict (:func:`models.metrics.benchmark` plus
  whatever :func:`models.training.evaluate` and ``train`` add);
- :func:`write_report` writes ``metrics.json``, ``metrics.md``, the six figures,
  ``report.md`` (figures by relative path), ``report.html`` (one self-contained file:
  figures as base64 PNG data URIs, inline CSS, no script) and ``evaluation_predictions.csv``;
- :func:`report_files` lists those files, so callers can refuse to overwrite an input.

Both report files are rendered (:mod:`models.document`) from one document built
(:mod:`models.report_sections`) from the metrics dict exactly as it is written to
``metrics.json`` (numpy types made plain, nan as None), so every number in them is the one in
``metrics.json``. Sections name the TRIPOD+AI 2024 items (Collins et al., BMJ
2024;385:e078378) and CLEAR items (Kocak et al., Insights Imaging 2023;14:75) they answer;
a closing table says where each TRIPOD+AI item is answered or why it is not.

>>> from models.reporting import add_uncertainty, write_report        # doctest: +SKIP
>>> metrics = add_uncertainty(ev.metrics, ev.frame, model.threshold)   # doctest: +SKIP
>>> paths = write_report("report/", metrics, ev.frame, model=model)    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import ID, LABEL
from models.bundle import TrainedModel
from models.document import render_html_document, render_markdown_document
from models.metrics import to_jsonable
from models.report import (
    DEFAULT_TITLE,
    REPORT_FILES,
    _num,
    atomic_write_bytes,
    atomic_write_text,
    write_metrics_report,
)
from models.report_sections import BAYES_COLUMN, build_document

__all__ = ["BOOTSTRAP_NB_THRESHOLDS", "NB_THRESHOLDS", "add_uncertainty", "report_files",
           "write_report"]

P_COLUMN = "p_pseudoprogression"
RULE_PREFIX = "rule_"
#: Threshold probabilities of the net-benefit table (the model's threshold is added).
NB_THRESHOLDS: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30, 0.50)
#: Threshold probabilities at which the model's net benefit gets a bootstrap CI.
BOOTSTRAP_NB_THRESHOLDS: tuple[float, ...] = (0.10, 0.20, 0.30)
#: Key of the simulator's fidelity table in metrics.json.
FIDELITY_KEY = "simulator_fidelity"
_ABSTENTION = ("Where a rule abstains (an input missing) the lesion is not called "
               "pseudoprogression (treat none), so every strategy has the same n rows, as in "
               "the decision curve.")


# --------------------------------------------------------------------------- inputs


def _labels_and_probabilities(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    missing = [c for c in (LABEL, P_COLUMN) if c not in frame.columns]
    if missing:
        raise ValueError(f"the evaluation frame lacks column(s) {missing}; it must hold "
                         f"'{LABEL}' (0/1) and '{P_COLUMN}' (probability), as "
                         "models.training.evaluate returns.")
    y = pd.to_numeric(frame[LABEL], errors="raise").to_numpy(dtype=float)
    p = pd.to_numeric(frame[P_COLUMN], errors="raise").to_numpy(dtype=float)
    return y, p


def _rules(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``rule_<id>`` columns as a float frame named by rule id (1.0 / 0.0 / NaN)."""
    cols = [c for c in frame.columns if str(c).startswith(RULE_PREFIX)]
    rules = frame[cols].apply(pd.to_numeric, errors="raise").astype(float)
    rules.columns = [str(c)[len(RULE_PREFIX):] for c in cols]
    return rules.reset_index(drop=True)


def _patient_groups(frame: pd.DataFrame) -> tuple[np.ndarray | None, str]:
    """Patient ids to resample by, or None when every patient has one row (rows are then
    patients), with a description of the resampling unit."""
    if ID not in frame.columns:
        return None, "rows (no patient_id column)"
    ids = frame[ID].astype(str).to_numpy()
    if len(set(ids)) < len(ids):
        return ids, f"patients ({len(set(ids))}), each with all of their rows"
    return None, f"patients ({len(ids)}, one row each)"


# --------------------------------------------------------------------------- uncertainty


def _net_benefit(y: np.ndarray, p: np.ndarray, rules: pd.DataFrame,
                 threshold: float) -> dict:
    """Net benefit (true positives per patient) of the model, treat-all, treat-none and each
    rule at :data:`NB_THRESHOLDS` and the model's threshold."""
    from models.uncertainty import net_benefit, treat_all_net_benefit, treat_none_net_benefit

    pts = set(NB_THRESHOLDS)
    if 0 < threshold < 1:
        pts.add(round(float(threshold), 4))
    pts = np.array(sorted(pts))
    n = y.shape[0]
    return {
        "thresholds": pts, "n": n, "n_positive": int(y.sum()), "abstention": _ABSTENTION,
        "unit": "net true positives per patient",
        "model": net_benefit(y, p, pts),
        "treat_all": treat_all_net_benefit(y, pts),
        "treat_none": treat_none_net_benefit(pts),
        "rules": {rid: net_benefit(y, rules[rid].to_numpy(), pts, abstain="treat-none")
                  for rid in rules.columns},
        "rule_coverage": {rid: float(np.isfinite(rules[rid].to_numpy()).mean()) if n else None
                          for rid in rules.columns},
    }


def add_uncertainty(metrics: dict, frame: pd.DataFrame, threshold: float,
                    n_resamples: int = 1000, seed: int = 0, progress: bool = False) -> dict:
    """A copy of ``metrics`` with bootstrap CIs, paired rule comparisons and net benefit.

    ``frame`` is the evaluation frame (``patient_id``, ``pseudoprogression``,
    ``p_pseudoprogression``, ``rule_<id>`` columns with 1/0/NaN); ``threshold`` the model's
    decision threshold (probability). Resampling is by patient: when a patient has several
    rows they are drawn together, otherwise rows are patients. New keys, already passed
    through :func:`models.metrics.to_jsonable`:

    - ``bootstrap``: :func:`models.uncertainty.bootstrap_metrics`: AUC, Brier, sensitivity,
      specificity, PPV, NPV at ``threshold`` and net benefit at
      :data:`BOOTSTRAP_NB_THRESHOLDS`, each ``{"estimate", "ci", "method"}``;
    - ``rule_comparisons``: per rule, :func:`models.uncertainty.compare_with_rule` (as
      :func:`~models.uncertainty.compare_all_rules`): model minus rule PPV and specificity
      at the rule's sensitivity and AUC difference with paired bootstrap CIs, and DeLong's
      test;
    - ``net_benefit``: model, treat-all, treat-none and every rule (abstention as treat-none)
      at :data:`NB_THRESHOLDS` plus ``threshold``;
    - ``uncertainty``: the settings (resamples, seed, unit, confidence level).

    About 10-20 s for 1300 rows, 12 rules and 1000 resamples on two cores; ``progress``
    shows a bar over the rules.
    """
    from tqdm import tqdm

    from models.uncertainty import bootstrap_metrics, compare_with_rule

    y, p = _labels_and_probabilities(frame)
    rules = _rules(frame)
    groups, unit = _patient_groups(frame)
    threshold = float(threshold)
    bar = tqdm(total=1 + rules.shape[1], disable=not progress, unit="step",
               desc="bootstrap (model)", leave=False)
    try:
        boot = bootstrap_metrics(y, p, threshold, groups=groups, n_resamples=n_resamples,
                                 seed=seed, nb_thresholds=BOOTSTRAP_NB_THRESHOLDS)
        bar.update()
        comparisons = {}
        for rid in rules.columns:
            bar.set_description_str(f"paired bootstrap ({rid})")
            comparisons[rid] = compare_with_rule(y, p, rules[rid].to_numpy(),
                                                 n_resamples=n_resamples, seed=seed,
                                                 groups=groups)
            bar.update()
    finally:
        bar.close()
    out = dict(metrics)
    out.update(to_jsonable({
        "uncertainty": {"n_resamples": int(n_resamples), "seed": int(seed),
                        "confidence_level": 0.95, "resampling_unit": unit,
                        "threshold": threshold, "n": int(y.shape[0]),
                        "n_positive": int(y.sum())},
        "bootstrap": boot,
        "rule_comparisons": comparisons,
        "net_benefit": _net_benefit(y, p, rules, threshold),
    }))
    return out


# --------------------------------------------------------------------------- write


def _odds_ratio_table(data: Mapping) -> pd.DataFrame:
    """Each rule's diagnostic odds ratio from the metrics, for the forest plot."""
    rows = []
    for rid, m in (data.get("rules") or {}).items():
        ci = m.get("dor_ci") or [None, None]
        rows.append({"label": rid, "odds_ratio": _num(m.get("dor")), "ci_low": _num(ci[0]),
                     "ci_high": _num(ci[1]), "n": _num(m.get("n"))})
    return pd.DataFrame(rows, columns=["label", "odds_ratio", "ci_low", "ci_high", "n"])


def report_files(report_dir: str | Path) -> list[Path]:
    """Every file :func:`write_report` writes into ``report_dir``."""
    from models.figures import FILE_NAMES

    return [Path(report_dir) / n for n in (*REPORT_FILES.values(), *FILE_NAMES.values())]


def write_report(report_dir: str | Path, metrics: dict, frame: pd.DataFrame,
                 model: TrainedModel | None = None,
                 fidelity: pd.DataFrame | None = None,
                 title: str = DEFAULT_TITLE) -> dict[str, Path]:
    """Write the full report into ``report_dir`` (created if needed); return name -> path.

    Files: ``metrics.json`` and ``metrics.md`` (:func:`models.report.write_metrics_report`,
    with ``fidelity`` as the extra table ``simulator_fidelity``), the six figures of
    :func:`models.figures.write_all_figures` (the simulator's posterior from
    ``frame["bayes_posterior"]`` when present), ``report.md``, ``report.html`` and
    ``evaluation_predictions.csv`` (``frame``). Every file is written atomically.

    ``metrics`` is the benchmark dict, ideally through :func:`add_uncertainty`; missing
    parts (no bootstrap, no internal validation, no Bayes ceiling) are left out or said
    to be missing. ``model`` is the :class:`models.bundle.TrainedModel` behind it, or None
    (then versions and the training data hash are not shown).
    """
    from models.figures import write_all_figures

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    extra = {FIDELITY_KEY: fidelity} if fidelity is not None else None
    write_metrics_report(report_dir, metrics, extra_tables=extra, title=title)
    data = to_jsonable(metrics)  # the numbers exactly as metrics.json holds them
    y, p = _labels_and_probabilities(frame)
    rules = _rules(frame)
    threshold = data.get("threshold")
    if threshold is None:
        threshold = getattr(model, "threshold", None)
    if threshold is None:
        raise ValueError("metrics has no 'threshold' and no model was given.")
    bayes = (frame[BAYES_COLUMN].to_numpy(dtype=float) if BAYES_COLUMN in frame.columns
             else None)
    auc_ci = (data.get("model") or {}).get("auc_ci")
    fig_metrics = {"odds_ratios": _odds_ratio_table(data)}
    if auc_ci and all(v is not None for v in auc_ci):
        fig_metrics["auc_ci"] = auc_ci
    paths: dict[str, Path] = {k: report_dir / REPORT_FILES[k]
                              for k in ("metrics_json", "metrics_md")}
    figure_paths = write_all_figures(report_dir, y.astype(int), p, float(threshold), rules,
                                     bayes_p=bayes, metrics=fig_metrics)
    paths.update(figure_paths)
    fid_records = to_jsonable(fidelity) if fidelity is not None else None
    fid_n = fidelity.attrs.get("n") if fidelity is not None else None
    sections = build_document(data, frame, model, fid_records,
                              {k: Path(v).name for k, v in figure_paths.items()}, fid_n)
    images = {k: Path(v).read_bytes() for k, v in figure_paths.items()}
    paths["report_md"] = atomic_write_text(report_dir / REPORT_FILES["report_md"],
                                           render_markdown_document(title, sections))
    paths["report_html"] = atomic_write_text(report_dir / REPORT_FILES["report_html"],
                                             render_html_document(title, sections, images))
    paths["predictions_csv"] = atomic_write_bytes(
        report_dir / REPORT_FILES["predictions_csv"],
        frame.to_csv(index=False).encode("utf-8"))
    return paths
