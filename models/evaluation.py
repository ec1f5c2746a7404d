"""Evaluation on labelled rows: the benchmark of the model and every rule on the same rows,
its uncertainty, and what image features add.

:func:`evaluate` scores a trained model and the article's rules on a labelled table and
returns the evaluation frame (one row per evaluated lesion: ``patient_id``, the label,
``p_pseudoprogression``, ``rule_<id>`` calls) with the metrics dict that ``metrics.json``
holds; :func:`add_uncertainty` adds patient-level bootstrap intervals, paired model-vs-rule
comparisons and net benefit; :func:`image_contribution` compares two models on the same
patients. Used by training (held-out patients) and by prediction on a labelled table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from scipy import stats

from features.article import THRESHOLDS
from features.contract import (
    BY_NAME,
    ID,
    KEY_COLUMNS,
    LABEL,
    LESION,
    MODEL_SCALE_EXPRESSIONS,
    NUMERIC_FEATURES,
    to_model_scale,
    validate_table,
)
from models.bundle import TrainedModel
from models.inspection import feature_effects
from models.report.words import restated_prevalences, study_metrics, words_of
from models.rules import study_rules
from models.statistics import (
    FeatureScale,
    auc_with_ci,
    benchmark,
    bootstrap_metrics,
    brier_score,
    compare_with_rule,
    feature_odds_ratios,
    net_benefit,
    restate_at_prevalence,
    to_jsonable,
    treat_all_net_benefit,
    treat_none_net_benefit,
)

P_COLUMN = "p_pseudoprogression"
#: The column of the simulator's exact posterior in an evaluation frame.
BAYES_COLUMN = "bayes_posterior"
RULE_PREFIX = "rule_"
#: Threshold probabilities of the net-benefit table (the model's threshold is added).
NB_THRESHOLDS: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30, 0.50)
#: Threshold probabilities at which the model's net benefit gets a bootstrap CI.
BOOTSTRAP_NB_THRESHOLDS: tuple[float, ...] = (0.10, 0.20, 0.30)
_ABSTENTION = ("Where a rule abstains (an input missing) the lesion is not called "
               "pseudoprogression (treat none), so every strategy has the same n rows, as in "
               "the decision curve.")



@dataclass
class Evaluation:
    """Predictions and metrics on evaluation rows.

    frame: one row per evaluated lesion: ``patient_id``, ``lesion_id`` (when the table has
    it), the label, ``p_pseudoprogression``, one ``rule_<id>`` column per rule (1/0/NaN)
    and, for simulated data, ``bayes_posterior``. predictions: every prediction behind
    ``frame`` when a lesion was predicted more than once (repeated cross-validation,
    bootstrap), with ``repeat`` and ``fold``; otherwise None.
    """

    frame: pd.DataFrame
    metrics: dict
    predictions: pd.DataFrame | None = None


def evaluate(model: TrainedModel, table: pd.DataFrame, bayes_p: np.ndarray | None = None,
             restate_prevalences: dict[str, float] | None = None,
             warn: bool = True) -> Evaluation:
    """Benchmark the model and every rule on exactly the rows of a labelled table (already in
    the contract's canonical form, as :meth:`features.description.TableDescription.apply`
    gives it).

    ``warn``: warn about columns the model ignores or misses (off when the caller already
    did).
    """
    table = validate_table(table, require_label=True, source="the evaluation table")
    p = model.probability(table, warn=warn)
    evaluation = evaluate_predictions(table, p, model.threshold, bayes_p, restate_prevalences,
                                      description=model.table_description())
    return Evaluation(frame=evaluation.frame,
                      metrics=evaluation.metrics
                      | feature_effect_parts(model, table, rows="evaluated"))


def feature_effect_parts(model: TrainedModel, table: pd.DataFrame, rows: str,
                         seed: int = 0) -> dict:
    """What each feature does in the fitted model (:func:`feature_effects`), as
    ``feature_effects`` (records) and ``feature_effects_rows``: which lesions a permutation
    importance was measured on ("evaluated", or "training" when there are no held-out
    lesions)."""
    effects = feature_effects(model, table, table[LABEL].to_numpy().astype(int), seed=seed)
    return {"feature_effects": effects.to_dict(orient="records"), "feature_effects_rows": rows}


def evaluate_predictions(table: pd.DataFrame, p: np.ndarray, threshold: float,
                         bayes_p: np.ndarray | None = None,
                         restate_prevalences: dict[str, float] | None = None,
                         description=None) -> Evaluation:
    """Benchmark probabilities ``p`` (aligned with the validated, labelled ``table``), called
    at ``threshold``, and the rules on the same rows: the article's rules whose inputs are
    columns of the table and the rules ``description`` (the table description,
    :class:`features.description.TableDescription`) declares
    (:func:`models.rules.study_rules`). PPV and NPV are restated at
    ``restate_prevalences``, by default the study's
    (:func:`models.report.words.restated_prevalences`). ``metrics["study"]`` names the
    classes and the rules left out (:func:`models.report.words.study_metrics`)."""
    y = table[LABEL].to_numpy().astype(int)
    p = np.asarray(p, dtype=float)
    rules, left_out = study_rules(table, description)
    if restate_prevalences is None:
        restate_prevalences = restated_prevalences(description)
    groups = table[ID].astype(str).to_numpy()
    benchmarked = benchmark(y, p, threshold, rules, restate_prevalences=restate_prevalences,
                            groups=groups)
    metrics = benchmarked | {"study": study_metrics(description, left_out)}
    _in_study_words(metrics)
    keys = {ID: table[ID].to_numpy()}
    if LESION in table.columns:
        keys[LESION] = table[LESION].to_numpy()
    frame = pd.DataFrame(keys | {LABEL: y, P_COLUMN: p})
    frame = pd.concat([frame, rules.add_prefix(RULE_PREFIX).reset_index(drop=True)], axis=1)
    if bayes_p is not None:
        bayes_p = np.asarray(bayes_p, dtype=float)
        auc, ci = auc_with_ci(y, bayes_p, groups=groups)
        metrics |= {"bayes_ceiling": {"auc": auc, "auc_ci": ci,
                                      "brier": brier_score(y, bayes_p)}}
        frame[BAYES_COLUMN] = bayes_p
    ctdna = THRESHOLDS["ctdna_clearance"]
    extra = {}
    if ctdna.column in table.columns:
        extra[f"{ctdna.column} < {ctdna.value:g} ({ctdna.figure})"] = (
            (table[ctdna.column] < ctdna.value).astype(float).where(table[ctdna.column].notna()))
    ors = feature_odds_ratios(table, y, columns=odds_ratio_columns(table), extra_binary=extra,
                              groups=groups, scales=contract_scales())
    return Evaluation(frame=frame, metrics=metrics | {
        "feature_odds_ratios": ors.to_dict(orient="records"),
        "units": {"n_lesions": int(len(table)), "n_patients": int(table[ID].nunique())}})


def _in_study_words(metrics: dict) -> None:
    """The benchmark's notes (``dor_note``: "never calls pseudoprogression") with the
    study's class names (:meth:`models.report.words.Words.say`)."""
    w = words_of(metrics)
    for m in [metrics["model"], *metrics["rules"].values()]:
        for entry in (m, m.get("model_on_rule_rows") or {}):
            if entry.get("dor_note"):
                entry["dor_note"] = w.say(entry["dor_note"])


def contract_scales() -> dict[str, FeatureScale]:
    """The contract's numeric and binary features (in the contract's order) as their
    univariable odds ratios take them (:func:`models.statistics.feature_odds_ratios`): a
    binary one per unit, a continuous one per SD on the scale models use
    (:func:`features.contract.to_model_scale`)."""
    def scale(name: str) -> FeatureScale:
        column = BY_NAME[name]
        return FeatureScale(binary=column.kind == "binary",
                            transform=partial(to_model_scale, name),
                            expression=MODEL_SCALE_EXPRESSIONS.get(column.transform, "{c}"))

    return {name: scale(name) for name in NUMERIC_FEATURES}


def odds_ratio_columns(table: pd.DataFrame) -> list[str]:
    """The columns given a univariable odds ratio: the contract's numeric features (in the
    contract's order), then every other numeric column the model may use (declared and
    radiomic columns, in table order)."""
    contract = [c for c in NUMERIC_FEATURES if c in table.columns]
    others = [c for c in table.columns if c not in KEY_COLUMNS and c not in contract
              and c != "cancer_type" and pd.api.types.is_numeric_dtype(table[c])]
    return contract + others


# --------------------------------------------------------------------------- inputs


def labels_and_probabilities(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    missing = [c for c in (LABEL, P_COLUMN) if c not in frame.columns]
    if missing:
        raise ValueError(f"the evaluation frame lacks column(s) {missing}; it must hold "
                         f"'{LABEL}' (0/1) and '{P_COLUMN}' (probability), as "
                         "models.training.evaluate returns.")
    y = pd.to_numeric(frame[LABEL], errors="raise").to_numpy(dtype=float)
    p = pd.to_numeric(frame[P_COLUMN], errors="raise").to_numpy(dtype=float)
    return y, p


def rule_calls(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``rule_<id>`` columns as a float frame named by rule id (1.0 / 0.0 / NaN)."""
    cols = [c for c in frame.columns if str(c).startswith(RULE_PREFIX)]
    rules = frame[cols].apply(pd.to_numeric, errors="raise").astype(float)
    rules.columns = [str(c)[len(RULE_PREFIX):] for c in cols]
    return rules.reset_index(drop=True)


def patient_groups(frame: pd.DataFrame) -> tuple[np.ndarray | None, str]:
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
    """Net benefit (true positives per evaluated lesion) of the model, treat-all, treat-none
    and each rule at :data:`NB_THRESHOLDS` and the model's threshold."""
    pts = set(NB_THRESHOLDS)
    if 0 < threshold < 1:
        pts.add(round(float(threshold), 4))
    pts = np.array(sorted(pts))
    n = y.shape[0]
    return {
        "thresholds": pts, "n": n, "n_positive": int(y.sum()), "abstention": _ABSTENTION,
        "unit": "net true positives per evaluated lesion",
        "model": net_benefit(y, p, pts),
        "treat_all": treat_all_net_benefit(y, pts),
        "treat_none": treat_none_net_benefit(pts),
        "rules": {rid: net_benefit(y, rules[rid].to_numpy(), pts, abstain="treat-none")
                  for rid in rules.columns},
        "rule_coverage": {rid: float(np.isfinite(rules[rid].to_numpy()).mean()) if n else None
                          for rid in rules.columns},
    }


#: The names of the probabilities pooled into one per lesion, by the key of ``metrics``
#: holding their figures (:func:`pooled_probabilities`).
POOLED_NAMES: dict[str, str] = {
    "ensemble": "averaged ensemble of the repeats' models",
    "out_of_bag": "out-of-bag models, averaged over those that left the patient out"}


def pooled_probabilities(metrics: Mapping) -> tuple[str, Mapping] | None:
    """Under cv and bootstrap, the evaluation frame's probabilities are not the headline's
    but one pooled probability per lesion: the averaged ensemble (``metrics["ensemble"]``)
    or the out-of-bag models (``metrics["out_of_bag"]``); the curves, the bootstrap
    intervals, the paired model-rule comparisons and the net benefit are computed from them.
    Their name (:data:`POOLED_NAMES`) and entry (``describes``, ``model``), or None where
    the frame's probabilities are the headline's (holdout, a saved model's evaluation)."""
    for key, name in POOLED_NAMES.items():
        entry = metrics.get(key)
        if isinstance(entry, Mapping) and entry.get("model"):
            return name, entry
    return None


def add_uncertainty(metrics: dict, frame: pd.DataFrame, threshold: float,
                    n_resamples: int = 1000, seed: int = 0, progress: bool = False) -> dict:
    """A copy of ``metrics`` (an evaluation's figures) followed by
    :func:`uncertainty_parts`, in the study's words (``metrics["study"]``)."""
    return metrics | uncertainty_parts(frame, threshold, n_resamples=n_resamples, seed=seed,
                                       progress=progress, figures=metrics)


def uncertainty_parts(frame: pd.DataFrame, threshold: float, n_resamples: int = 1000,
                      seed: int = 0, progress: bool = False,
                      figures: Mapping | None = None) -> dict:
    """Bootstrap CIs, paired rule comparisons and net benefit: parts of the metrics
    document (:func:`models.metrics_document.build_metrics_document`).

    ``frame`` is the evaluation frame (``patient_id``, ``pseudoprogression``,
    ``p_pseudoprogression``, ``rule_<id>`` columns with 1/0/NaN); ``threshold`` the model's
    decision threshold (probability). Resampling is by patient: when a patient has several
    rows they are drawn together, otherwise rows are patients. ``figures``: the
    evaluation's (``Evaluation.metrics``), for the study's words and what the frame's
    probabilities are. The parts, already passed through
    :func:`models.statistics.to_jsonable`:

    - ``bootstrap``: :func:`models.statistics.bootstrap_metrics`: AUC, Brier, sensitivity,
      specificity, PPV, NPV at ``threshold`` and net benefit at
      :data:`BOOTSTRAP_NB_THRESHOLDS`, each ``{"estimate", "ci", "method"}``;
    - ``rule_comparisons``: per rule, :func:`models.statistics.compare_with_rule` (as
      :func:`~models.statistics.compare_all_rules`): model minus rule PPV and specificity
      at the rule's sensitivity and AUC difference with paired bootstrap CIs, and DeLong's
      test;
    - ``net_benefit``: model, treat-all, treat-none and every rule (abstention as treat-none)
      at :data:`NB_THRESHOLDS` plus ``threshold``;
    - ``uncertainty``: the settings (resamples, seed, unit, confidence level) and, under cv
      and bootstrap, ``probabilities``: what the frame's probabilities are (the averaged
      ensemble, the out-of-bag models: :func:`pooled_probabilities`), since every figure
      here is computed from them, not from the headline's per-repeat or corrected figures.

    About 10-20 s for 1300 rows, 12 rules and 1000 resamples on two cores; ``progress``
    shows a bar over the rules.
    """
    from tqdm import tqdm

    y, p = labels_and_probabilities(frame)
    rules = rule_calls(frame)
    groups, unit = patient_groups(frame)
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
    figures = figures or {}
    settings = {"n_resamples": int(n_resamples), "seed": int(seed), "confidence_level": 0.95,
                "resampling_unit": unit, "threshold": threshold, "n": int(y.shape[0]),
                "n_positive": int(y.sum())}
    pooled = pooled_probabilities(figures)
    if pooled is not None:  # under cv and bootstrap: not the headline's probabilities
        settings["probabilities"] = str(pooled[1]["describes"])
    abstention = words_of(figures).say(_ABSTENTION)
    return to_jsonable({
        "uncertainty": settings,
        "bootstrap": boot,
        "rule_comparisons": comparisons,
        "net_benefit": _net_benefit(y, p, rules, threshold) | {"abstention": abstention},
    })


# --------------------------------------------------------------------------- resampled schemes


#: How the headline intervals of repeated cross-validation are formed.
REPEATS_CI_METHOD = (
    "each repeat's interval (at the patient level where patients have several lesions) "
    "combined over the repeats by Rubin's rules: the mean within-repeat variance plus "
    "(1 + 1/R) times the variance between the R repeats, with Student's t on Rubin's "
    "degrees of freedom, on the logit scale for the AUC and proportions (PPV and NPV "
    "restated at other prevalences included), the log scale for the diagnostic odds ratio, "
    "the natural scale for calibration; the model's and the rules' figures alike")
#: How the headline intervals of the optimism bootstrap are formed.
OPTIMISM_CI_METHOD = ("the saved model's apparent interval (at the patient level where "
                      "patients have several lesions) moved to the headline figure: shifted "
                      "by the difference for AUC, Brier, rates and calibration, by the ratio "
                      "for the diagnostic odds ratio; restated PPV and NPV by their own "
                      "interval at the corrected sensitivity and specificity")
#: Headline figures combined over repeats, with the scale their intervals are combined on.
_COMBINED_SCALES: dict[str, str] = {
    "auc": "logit", "sensitivity": "logit", "specificity": "logit", "ppv": "logit",
    "npv": "logit", "dor": "log", "calibration_intercept": "identity",
    "calibration_slope": "identity"}
_Z95 = 1.959963984540054


def _transform(values, scale: str, inverse: bool = False) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "logit":
            return 1 / (1 + np.exp(-v)) if inverse else np.log(v / (1 - v))
        if scale == "log":
            return np.exp(v) if inverse else np.log(v)
    return v


def rubin_interval(estimates, intervals, scale: str = "identity",
                   confidence_level: float = 0.95) -> list[float]:
    """The interval of the mean of ``estimates`` (one per repeat, each with its 95%
    ``interval``) by Rubin's rules on ``scale`` (``identity``, ``logit`` or ``log``): total
    variance T = W + (1 + 1/R) B, W the mean within-repeat variance (from each interval's
    half-width over 1.96), B the between-repeat variance of the transformed estimates,
    quantile of Student's t with Rubin's (1987) degrees of freedom
    (R - 1) (1 + W / ((1 + 1/R) B))^2 (the normal's when B = 0), centred on the mean of the
    estimates (the headline), so the interval always holds it. When every repeat gives the
    same figure and interval (a rule's own calls, the same in every repeat) that interval
    is returned as it is. Repeats whose figure is undefined (NaN) are left out, as the
    headline leaves them out; when a repeat lies on the edge of the scale (a proportion of 0
    or 1, a ratio of 0) the repeats are combined on the natural scale instead, the interval
    kept within the figure's range; [nan, nan] when no repeat is defined."""
    est = np.asarray(estimates, dtype=float)
    bounds = np.asarray(intervals, dtype=float).reshape(-1, 2)
    defined = np.isfinite(est) & np.isfinite(bounds).all(axis=1)
    if not defined.any():
        return [float("nan"), float("nan")]
    est, bounds = est[defined], bounds[defined]
    if (est == est[0]).all() and (bounds == bounds[0]).all():
        return [float(bounds[0, 0]), float(bounds[0, 1])]
    q, ci = _transform(est, scale), _transform(bounds, scale)
    used = scale
    if not (np.isfinite(q).all() and np.isfinite(ci).all()):
        q, ci, used = est, bounds, "identity"
    repeats = len(q)
    within = float(np.mean(((ci[:, 1] - ci[:, 0]) / (2 * _Z95)) ** 2))
    between = (1 + 1 / repeats) * float(np.var(q, ddof=1)) if repeats > 1 else 0.0
    total = within + between
    upper = 0.5 + confidence_level / 2
    if between > 0:
        df = (repeats - 1) * (1 + within / between) ** 2
        quantile = float(stats.t.ppf(upper, df))
    else:
        quantile = float(stats.norm.ppf(upper))
    centre = float(_transform(np.mean(est), used))
    half = quantile * np.sqrt(total)
    low, high = _transform([centre - half, centre + half], used, inverse=True)
    if used != scale:  # back within the figure's range: [0, 1] or [0, inf)
        low = max(low, 0.0)
        high = min(high, 1.0) if scale == "logit" else high
    return [float(low), float(high)]


def _with_rubin_intervals(combined: dict, records: list[dict]) -> None:
    """Replace, at every depth of ``combined`` (the mean of ``records``, one a repeat), the
    interval ``<figure>_ci`` of every figure of :data:`_COMBINED_SCALES` by
    :func:`rubin_interval` over the repeats: the model's headline, each rule's own figures,
    the model on each rule's rows and at its sensitivity, PPV and NPV restated at each
    prevalence."""
    for key, value in combined.items():
        if isinstance(value, dict):
            _with_rubin_intervals(value, [r.get(key) or {} for r in records])
        elif key in _COMBINED_SCALES and f"{key}_ci" in combined:
            combined[f"{key}_ci"] = rubin_interval(
                [np.nan if r.get(key) is None else r[key] for r in records],
                [r.get(f"{key}_ci") or [np.nan, np.nan] for r in records],
                _COMBINED_SCALES[key])


def combined_over_repeats(records: list[dict]) -> dict:
    """Equally shaped benchmark entries of the repeats as one: each figure the mean over
    the repeats (:func:`_mean_of`), each interval by Rubin's rules
    (:func:`_with_rubin_intervals`)."""
    combined = _mean_of(records)
    _with_rubin_intervals(combined, records)
    return combined


def _mean_of(values: list):
    """The element-wise mean of equally shaped records (dicts, lists, numbers): numbers
    nan-aware, integers rounded, strings and booleans taken from the first record."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _mean_of([v.get(k) for v in values]) for k in first}
    if isinstance(first, (list, tuple)) and all(isinstance(v, (list, tuple)) and
                                                len(v) == len(first) for v in values):
        return [_mean_of(list(col)) for col in zip(*values, strict=True)]
    if isinstance(first, (bool, np.bool_, str)) or first is None and all(
            v is None for v in values):
        return first
    numbers = np.array([np.nan if v is None else v for v in values], dtype=float)
    mean = float(np.nanmean(numbers)) if np.isfinite(numbers).any() else float("nan")
    if isinstance(first, (int, np.integer)) and np.isfinite(mean):
        return int(round(mean))
    return mean


def _spread(records: list[dict], keys) -> dict:
    """Mean, SD (ddof 1), min and max of each statistic over ``records`` (the repeats)."""
    out = {}
    for k in keys:
        v = np.array([np.nan if r.get(k) is None else r[k] for r in records], dtype=float)
        v = v[np.isfinite(v)]
        out[k] = {"mean": float(v.mean()) if v.size else float("nan"),
                  "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                  "min": float(v.min()) if v.size else float("nan"),
                  "max": float(v.max()) if v.size else float("nan"),
                  "n_defined": int(v.size)}
    return out


def _cross_validated_headline(table: pd.DataFrame, predictions: pd.DataFrame,
                              threshold: float, groups: np.ndarray,
                              description=None) -> tuple[dict, dict]:
    """The model's and the rules' figures (the study's rules, ``description``'s) as the mean
    over the repeats of each repeat's out-of-fold benchmark (every lesion called at its own
    fold model's threshold), with intervals by :func:`rubin_interval`."""
    y = table[LABEL].to_numpy().astype(int)
    rules, _ = study_rules(table, description)
    prevalences = restated_prevalences(description)
    benches = []
    for _, part in predictions.groupby("repeat", sort=True):
        part = part.sort_values("row")
        if len(part) != len(table) or not np.array_equal(part["row"].to_numpy(),
                                                         np.arange(len(table))):
            continue  # a repeat that did not predict every lesion is not a repeat of cv
        benches.append(benchmark(y, part[P_COLUMN].to_numpy(), threshold, rules,
                                 restate_prevalences=prevalences, groups=groups,
                                 row_thresholds=part["threshold"].to_numpy()))
    models = [b["model"] for b in benches]
    headline = combined_over_repeats(models)
    headline["headline"] = repeats_headline(len(models))
    headline["headline"]["figures"] += "; 2x2 counts: the repeats' mean, rounded"
    headline["headline"]["spread"] = _spread(models, [*_COMBINED_SCALES, "brier"])
    return headline, combined_over_repeats([b["rules"] for b in benches])


def repeats_headline(n_repeats: int) -> dict[str, str]:
    """How figures combined over ``n_repeats`` repeats of cross-validation were made
    (``figures``, ``intervals``) and what they describe: a headline's ``headline`` entry."""
    return {"figures": (f"mean over {n_repeats} repeats of cross-validation of each repeat's "
                        "out-of-fold figures, every lesion called at its own fold model's "
                        "threshold"),
            "intervals": REPEATS_CI_METHOD,
            "describes": "the fitting procedure (each fold's model), not the saved model alone"}


def _clip_interval(ci, shift: float, bounded: bool) -> list[float]:
    low, high = (float(v) - shift for v in ci)
    return [max(low, 0.0), min(high, 1.0)] if bounded else [low, high]


#: What each source of a bootstrap headline figure is, and which model it describes.
BOOTSTRAP_SOURCES: dict[str, dict[str, str]] = {
    "harrell": {"method": "Harrell's optimism correction: the saved model's apparent figure "
                          "minus the mean optimism of the procedure refitted on resamples "
                          "of patients",
                "describes": "the saved model (fitted on every patient)"},
    "out_of_bag": {"method": "the refits' out-of-bag predictions, pooled: every refit's "
                             "probabilities for the patients its resample left out, in one "
                             "calibration fit",
                   "describes": "the refits (the procedure fitted on resamples of patients), "
                                "not the saved model"},
    "implied": {"method": "implied by the Harrell-corrected sensitivity and specificity: "
                          "the diagnostic odds ratio Se Sp / ((1 - Se)(1 - Sp)), the 2x2 "
                          "counts Se and Sp applied to the lesions (rounded), PPV and NPV "
                          "restated at other prevalences by Bayes' theorem",
                "describes": "the saved model (fitted on every patient)"},
}


def _log_shifted(ci, ratio: float) -> list[float]:
    """An interval of a ratio moved by the factor ``ratio`` (a shift on the log scale)."""
    return [float(v) * ratio for v in ci] if np.isfinite(ratio) else [float("nan")] * 2


def bootstrap_headline(table: pd.DataFrame, final: TrainedModel, summary: dict,
                        groups: np.ndarray) -> dict:
    """The headline of the optimism bootstrap, each figure from the source
    ``summary["headline_source"]`` names (:data:`BOOTSTRAP_SOURCES`): Harrell's corrected
    figures of the saved model (AUC, Brier, sensitivity, specificity, PPV, NPV) and the
    refits' pooled out-of-bag calibration; the diagnostic odds ratio, the 2x2 counts and
    the restated PPV and NPV implied by the corrected sensitivity and specificity. Each
    interval is the saved model's apparent one (at the patient level where patients have
    several lesions) moved to the figure (:data:`OPTIMISM_CI_METHOD`)."""
    y = table[LABEL].to_numpy().astype(int)
    p = final.probability(table, warn=False)
    prevalences = restated_prevalences(final.table_description())
    apparent = benchmark(y, p, final.threshold, pd.DataFrame(index=range(len(y))),
                         restate_prevalences=prevalences, groups=groups)["model"]
    figures = {"harrell": summary["corrected"], "out_of_bag": summary["out_of_bag"]}
    source = summary["headline_source"]
    headline = {k: apparent[k] for k in ("n", "n_positive", "coverage", "n_patients",
                                         "design_effect") if k in apparent}
    for key, method in source.items():
        headline[key] = value = float(figures[method][key])
        if f"{key}_ci" in apparent:
            headline[f"{key}_ci"] = _clip_interval(apparent[f"{key}_ci"],
                                                   apparent[key] - value,
                                                   key not in ("calibration_intercept",
                                                               "calibration_slope"))
    se, sp = headline["sensitivity"], headline["specificity"]
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    tp = int(round(se * n_pos)) if np.isfinite(se) else 0
    tn = int(round(sp * n_neg)) if np.isfinite(sp) else 0
    headline.update(tp=tp, fn=n_pos - tp, tn=tn, fp=n_neg - tn)
    if 0 < se < 1 and 0 < sp < 1:
        dor = se * sp / ((1 - se) * (1 - sp))
        headline["dor"], headline["dor_note"] = dor, ""
        headline["dor_ci"] = _log_shifted(apparent["dor_ci"], dor / apparent["dor"])
    else:
        headline["dor"], headline["dor_ci"] = float("nan"), [float("nan")] * 2
        headline["dor_note"] = ("undefined: the corrected sensitivity or specificity is 0 or 1"
                                if np.isfinite(se) and np.isfinite(sp) else
                                "undefined: no corrected sensitivity or specificity")
    deff = apparent.get("design_effect") or {}  # effective counts, as the benchmark's
    headline["at_prevalence"] = {
        name: restate_at_prevalence(se, sp, prev, n_pos / deff.get("sensitivity", 1.0),
                                    n_neg / deff.get("specificity", 1.0))
        for name, prev in prevalences.items()}
    undefined = [u for u in summary.get("undefined") or []  # of the figures taken from it
                 if source.get(u.split(":")[0]) == "harrell"]
    by_figure = {**{k: m for k, m in source.items()},
                 **{k: "implied" for k in ("dor", "tp", "fp", "fn", "tn", "at_prevalence")}}
    used = sorted(set(by_figure.values()), key=list(BOOTSTRAP_SOURCES).index)
    headline["headline"] = {
        "figures": "; ".join(
            f"{', '.join(k for k, m in by_figure.items() if m == name)}: "
            f"{BOOTSTRAP_SOURCES[name]['method']}"
            + (f" (over {summary['n_fitted']} fitted resamples"
               + (f"; {'; '.join(undefined)}" if undefined else "") + ")"
               if name == "harrell" else "")
            for name in used),
        "intervals": OPTIMISM_CI_METHOD,
        "describes": "; ".join(
            f"{', '.join(k for k, m in by_figure.items() if m == name)}: "
            f"{BOOTSTRAP_SOURCES[name]['describes']}" for name in used),
        "sources": {k: {"method": m, "describes": BOOTSTRAP_SOURCES[m]["describes"]}
                    for k, m in by_figure.items()}}
    return headline


def evaluate_resampled(table: pd.DataFrame, final: TrainedModel, predictions: pd.DataFrame,
                       mode: str, summary: dict,
                       bayes_p: np.ndarray | None = None) -> Evaluation:
    """The evaluation of a cross-validated (``mode`` "cv") or bootstrapped ("bootstrap")
    procedure on the training ``table``.

    ``predictions``: every out-of-fold or out-of-bag prediction (``row``, ``repeat``,
    ``fold``, ``p_pseudoprogression``, ``threshold``), as :func:`models.validation.
    repeated_cv` and :func:`~models.validation.optimism_bootstrap` return them with
    ``summary``. Headline (``metrics["model"]``, ``metrics["rules"]``): under cv the mean
    over repeats of each repeat's figures with intervals combined over the repeats
    (:func:`rubin_interval`); under the bootstrap each figure from the source
    ``summary["headline_source"]`` names (:func:`bootstrap_headline`: Harrell's corrected
    figures of ``final``, the refits' pooled out-of-bag calibration), said per figure under
    ``metrics["model"]["headline"]["sources"]``. The frame's probability is each lesion's
    mean over the repeats (cv: the averaged ensemble, its figures under
    ``metrics["ensemble"]``) or over the resamples that left its patient out (bootstrap: an
    averaged ensemble of refits, its figures under ``metrics["out_of_bag"]``);
    ``Evaluation.predictions`` holds every prediction with the rules' calls."""
    mean_p = predictions.groupby("row")[P_COLUMN].mean()
    rows = mean_p.index.to_numpy().astype(int)
    evaluated = table.iloc[rows]
    description = final.table_description()
    evaluation = evaluate_predictions(evaluated, mean_p.to_numpy(), final.threshold,
                                      None if bayes_p is None else np.asarray(bayes_p)[rows],
                                      description=description)
    metrics = evaluation.metrics
    groups = table[ID].astype(str).to_numpy()
    if mode == "cv":
        metrics["ensemble"] = {
            "describes": ("the averaged ensemble: each lesion's out-of-fold probability "
                          "averaged over the repeats' models, called at the saved model's "
                          "threshold; flatters the procedure, shown for comparison only"),
            "model": metrics["model"]}
        metrics["model"], metrics["rules"] = _cross_validated_headline(
            table, predictions, final.threshold, groups, description)
    else:
        metrics["out_of_bag"] = {
            "describes": ("the averaged ensemble of the refits (not the saved model): each "
                          "lesion's probability averaged over the refits whose resample left "
                          "its patient out, called at the saved model's threshold; averaging "
                          "flatters, so these are shown for comparison only (the refits' "
                          "pooled out-of-bag figures, not averaged, are under "
                          "internal_validation.optimism_bootstrap.out_of_bag)"),
            "model": metrics["model"]}
        metrics["model"] = bootstrap_headline(table, final, summary, groups)
    keys = table[[c for c in (ID, LESION) if c in table.columns]].reset_index(drop=True)
    calls = study_rules(table, description)[0].add_prefix(RULE_PREFIX).reset_index(drop=True)
    stacked = predictions.join(keys, on="row").join(calls, on="row")
    stacked.insert(0, LABEL, table[LABEL].to_numpy()[predictions["row"].to_numpy()])
    evaluation.predictions = stacked[[*keys.columns, "repeat", "fold", LABEL, P_COLUMN,
                                      "threshold", *calls.columns]].reset_index(drop=True)
    return evaluation
