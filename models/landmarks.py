"""Landmark models: a calibrated classifier per decision time, fed the course of the scans.

At each decision time (landmark) ``w`` weeks after the index scan (by default
:data:`features.choices.LANDMARK_WEEKS`: 0, 4, 8 and 12), a lesion's features are the
per-lesion table's features plus the course of its scans up to ``w``
(:func:`course_features`: size, rCBV and ADC against the index scan). A lesion *reaches* a
landmark when it has a scan in the :data:`WINDOW_WEEKS` weeks up to it (every lesion
reaches the index, 0). Each landmark has its own model, fitted by the project's calibrated
classifier (:func:`models.classifier.fit_calibrated`: families compared and tuned on
patient-grouped folds, sigmoid calibration) on the training patients' lesions that reach it,
and evaluated on held-out patients' lesions that reach it: one patient-level split
(:func:`models.validation.holdout_split`) for every landmark, so no evaluated patient was
used for fitting, calibrating or tuning any of them.

Per landmark, :func:`train_landmarks` reports the model and every rule over time
(:mod:`models.scan_rules`, read as of the landmark) through
:func:`models.statistics.benchmark` (each rule on the lesions it covers, with its coverage
and the model's operating point at the rule's sensitivity on the same lesions), and what
waiting costs (:func:`waiting_cost`).

What waiting costs. Deciding at ``w`` weeks rather than at the index scan leaves every
patient with a true progression untreated for ``w`` more weeks. Weeks of untreated true
progression per 100 patients = 100 * w * (patients with at least one true-progression lesion
among the evaluated lesions) / (evaluated patients); its interval is the Wilson interval of
that share times 100 * w. Beside it, the model's false reassurance: patients with a
true-progression lesion the landmark model calls pseudoprogression, per 100 patients (their
wait goes on past the decision).

>>> from features.synthetic import simulate_cohort, simulate_followup   # doctest: +SKIP
>>> cohort = simulate_cohort(3000, "melanoma", seed=0)                 # doctest: +SKIP
>>> result = train_landmarks(cohort, simulate_followup(cohort, 0))     # doctest: +SKIP
>>> predict_landmarks(result.models, cohort, simulate_followup(cohort, 0))  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from features.article import FIGURES
from features.choices import LANDMARK_WEEKS
from features.contract import ID, LABEL, LESION, model_columns
from features.description import (
    DEFAULT_NEGATIVE_NAME,
    DEFAULT_POSITIVE_NAME,
    DeclaredFeature,
    DescribedTable,
    TableDescription,
)
from features.errors import UserInputError
from features.scans import (
    FROM_INDEX,
    SIZE,
    SIZE_KIND,
    SPD,
    ScansTable,
    index_value,
    lesion_keys,
    read_scans,
)
from models.bundle import (
    TrainedModel,
    check_set_member,
    load_model,
    save_model,
    save_model_set,
    set_members,
    table_sha256,
)
from models.classifier import (
    FAMILIES,
    fit_calibrated,
)
from models.evaluation import (
    bootstrap_headline,
    combined_over_repeats,
    repeats_headline,
    rubin_interval,
)
from models.report.words import restated_prevalences
from models.scan_rules import SCAN_RULE_IDS, apply_scan_rules
from models.statistics import (
    auc_with_ci,
    benchmark,
    called,
    wilson_ci,
)
from models.validation import (
    check_trainable,
    choose_validation,
    holdout_split,
    optimism_bootstrap,
    repeated_cv,
)

__all__ = ["COURSE_COLUMNS", "WINDOW_WEEKS", "LandmarkResult", "course_features",
           "followup_sensitivity", "landmark_files", "landmark_path", "landmark_table",
           "landmarks_not_updated", "load_landmarks", "model_set_files", "predict_landmarks",
           "reaches_landmark", "save_landmarks", "sensitivity_rows", "train_landmarks",
           "waiting_cost"]

#: weeks: a lesion reaches a landmark with a scan this many weeks before it or closer (half
#: the follow-up interval of T4, so each 4-weekly scan belongs to one landmark).
WINDOW_WEEKS = FIGURES["T4_interval"].value / 2
#: An SPD (mm^2) change is put on the volume scale by this power (volume ~ diameter^3, SPD ~
#: diameter^2): 25% in SPD is about 40% in volume, as iRANO and RANO 2.0 equate them.
SPD_TO_VOLUME_POWER = 1.5
#: The measures whose course is followed, as scan columns.
COURSE_MEASURES: tuple[str, ...] = (SIZE, "rcbv", "adc")
#: The course features a landmark after the index adds to the per-lesion features:
#: ``course_<m>_log_ratio``, log(value at the latest follow-up scan / value at the index
#: scan), and ``course_<m>_slope_per_week``, the least-squares slope through the index of
#: that log ratio against weeks after the index (per week), over the follow-up scans.
COURSE_COLUMNS: tuple[str, ...] = tuple(
    f"course_{m}_{kind}" for m in COURSE_MEASURES for kind in ("log_ratio", "slope_per_week"))
#: How the course features are declared to the classifier: plain numbers.
COURSE_FEATURES: dict[str, DeclaredFeature] = {c: DeclaredFeature("number")
                                               for c in COURSE_COLUMNS}
#: How the landmark models can be validated (as the index model: models.validation).
LANDMARK_VALIDATIONS: tuple[str, ...] = ("holdout", "cv", "bootstrap")
#: Repeats of cross-validation and bootstrap resamples when not given (as models.training's).
DEFAULT_REPEATS = {"cv": 10, "bootstrap": 100}
def waiting_definition(positive: str = DEFAULT_POSITIVE_NAME,
                       negative: str = DEFAULT_NEGATIVE_NAME) -> str:
    """The text metrics.json and the report give for the cost of waiting, in the study's
    names of the two classes (``positive`` label 1, ``negative`` label 0)."""
    return (f"weeks of untreated {negative} per 100 patients = 100 x decision time (weeks "
            f"after the index scan) x share of evaluated patients with at least one lesion of "
            f"{negative}: each such patient waits from the index scan to the decision; 95% "
            "interval: the Wilson interval of that share, times 100 x weeks. False "
            f"reassurance: evaluated patients with a lesion of {negative} the landmark model "
            f"calls {positive}, per 100 patients")


# --------------------------------------------------------------------------- features


def _label(week: float) -> str:
    return f"{float(week):g}"


def reaches_landmark(scans: ScansTable, week: float) -> pd.Series:
    """Per lesion (indexed by ``scans.keys``): True when it has a scan within
    :data:`WINDOW_WEEKS` weeks up to ``week`` (weeks after the index scan); every lesion
    reaches the index (``week`` 0)."""
    if float(week) <= 0:
        return pd.Series(True, index=scans.keys, name="reaches")
    t = scans.table
    w = t[FROM_INDEX].to_numpy(dtype=float)
    inside = (w <= week) & (w >= week - WINDOW_WEEKS) & t[SIZE].notna().to_numpy()
    hit = pd.MultiIndex.from_frame(t.loc[inside, [ID, LESION]]).unique()
    return pd.Series(scans.keys.isin(hit), index=scans.keys, name="reaches")


def course_features(scans: ScansTable, week: float) -> pd.DataFrame:
    """The course of each lesion's scans up to ``week`` weeks after the index scan
    (:data:`COURSE_COLUMNS`), indexed by ``scans.keys``; NaN where a measure is missing at
    the index scan or at every follow-up scan. Log ratios are unitless (natural log); SPD
    sizes are put on the volume scale (:data:`SPD_TO_VOLUME_POWER`); slopes are per week."""
    s = scans.as_of(week)
    t = s.table
    after = t[FROM_INDEX].to_numpy(dtype=float)
    rows = pd.MultiIndex.from_frame(t[[ID, LESION]])
    out = pd.DataFrame(index=s.keys, columns=list(COURSE_COLUMNS), dtype=float)
    for m in COURSE_MEASURES:
        if m not in t.columns:
            continue
        ref = index_value(s, m).reindex(rows).to_numpy(dtype=float)
        value = t[m].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.where((ref > 0) & (value > 0), np.log(value / ref), np.nan)
        if m == SIZE:
            lr = np.where(t[SIZE_KIND].to_numpy() == SPD, SPD_TO_VOLUME_POWER * lr, lr)
        use = (after > 0) & np.isfinite(lr)
        part = pd.DataFrame({ID: t[ID].to_numpy()[use], LESION: t[LESION].to_numpy()[use],
                             "w": after[use], "lr": lr[use], "wlr": after[use] * lr[use],
                             "ww": after[use] ** 2})
        g = part.groupby([ID, LESION], sort=False)
        last = g["lr"].last()  # rows are in time order within a lesion
        slope = g["wlr"].sum() / g["ww"].sum()
        out[f"course_{m}_log_ratio"] = last.reindex(s.keys).to_numpy(dtype=float)
        out[f"course_{m}_slope_per_week"] = slope.reindex(s.keys).to_numpy(dtype=float)
    return out


def landmark_table(table: pd.DataFrame, scans: ScansTable, week: float) -> pd.DataFrame:
    """The rows of ``table`` (the per-lesion table in canonical form) whose lesion reaches
    the landmark ``week``, with the course features (:func:`course_features`) after their
    columns when ``week`` > 0; the original row positions in a column ``row``."""
    keys = lesion_keys(table)
    reach = reaches_landmark(scans, week).reindex(keys, fill_value=False).to_numpy(dtype=bool)
    if float(week) <= 0:
        reach = np.ones(len(table), dtype=bool)
    part = table.iloc[np.flatnonzero(reach)].reset_index(drop=True)
    if float(week) > 0:
        course = course_features(scans, week).reindex(keys[reach])
        part = pd.concat([part.drop(columns=[c for c in COURSE_COLUMNS if c in part.columns]),
                          course.reset_index(drop=True)], axis=1)
    part.insert(0, "row", np.flatnonzero(reach))
    return part


# --------------------------------------------------------------------------- cost of waiting


def waiting_cost(y, groups, week: float, calls=None) -> dict:
    """What deciding ``week`` weeks after the index scan costs (:func:`waiting_definition`).

    y: labels of the evaluated lesions (1 pseudoprogression, 0 true progression); groups:
    their patient ids; calls: the model's 0/1 calls on them (for the false reassurance), or
    None. Returns weeks, patients, patients_with_true_progression,
    weeks_untreated_per_100_patients (weeks) with ``_ci``, and with ``calls``
    false_reassurance_per_100_patients (patients) with ``_ci``.
    """
    y = np.asarray(y, dtype=int)
    frame = pd.DataFrame({"patient": np.asarray(groups), "tp": y == 0})
    if calls is not None:
        frame["missed"] = (y == 0) & (np.asarray(calls, dtype=float) == 1)
    per = frame.groupby("patient", sort=False).any()
    n, k = int(len(per)), int(per["tp"].sum())
    scale = 100.0 * float(week)
    lo, hi = wilson_ci(k, n)
    out = {"weeks": float(week), "patients": n, "patients_with_true_progression": k,
           "weeks_untreated_per_100_patients": scale * k / n if n else float("nan"),
           "weeks_untreated_per_100_patients_ci": [scale * lo, scale * hi]}
    if calls is not None:
        missed = int(per["missed"].sum())
        lo, hi = wilson_ci(missed, n)
        out["false_reassurance_per_100_patients"] = 100.0 * missed / n if n else float("nan")
        out["false_reassurance_per_100_patients_ci"] = [100.0 * lo, 100.0 * hi]
    return out


# --------------------------------------------------------------------------- fitting


def _fit(part: pd.DataFrame, declared: Mapping[str, DeclaredFeature], seed: int,
         families: Sequence[str], threshold: float | None, target_sensitivity: float | None,
         week: float, source: str, description: TableDescription | None) -> TrainedModel:
    """The calibrated classifier (:func:`fit_calibrated`) on one landmark's training rows,
    with its decision threshold chosen as the index model's is
    (:func:`models.training.model_from_fit`)."""
    from models.training import model_from_fit

    columns = model_columns(part.columns, declared=declared)
    y = part[LABEL].to_numpy().astype(int)
    fitted = fit_calibrated(part[[*columns, ID]], y, part[ID].to_numpy(), seed=seed,
                            families=families, declared=declared)
    training = {"source": source, "n": int(len(part)), "n_positive": int(y.sum()),
                "n_patients": int(part[ID].nunique()), "sha256": table_sha256(part),
                "seed": seed, "landmark_week": float(week)}
    used = {k: v for k, v in declared.items() if k in columns}
    return model_from_fit(fitted, part, columns, used, description, training,
                          threshold=threshold, target_sensitivity=target_sensitivity,
                          rows="this landmark's training patients")


@dataclass
class LandmarkResult:
    """The landmark models and their evaluation.

    metrics: the ``landmarks`` entry of metrics.json (see :func:`train_landmarks`); models:
    the fitted model per decision time (weeks after the index scan); frames: per decision
    time, the evaluated lesions (patient_id, lesion_id, label, p_pseudoprogression and the
    rules' calls); train_ids, test_ids: the patients used for fitting and for evaluation.
    """

    metrics: dict
    models: dict[float, TrainedModel]
    frames: dict[float, pd.DataFrame] = field(default_factory=dict)
    train_ids: list[str] = field(default_factory=list)
    test_ids: list[str] = field(default_factory=list)


def _described(table, description: TableDescription | None, require_label: bool,
               source: str) -> DescribedTable:
    if isinstance(table, DescribedTable):
        return table
    return (description or TableDescription()).apply(table, require_label=require_label,
                                                     source=source)


def _scans(scans, description: TableDescription | None, canonical: pd.DataFrame,
           scans_rename: Mapping[str, str] | None) -> ScansTable:
    if isinstance(scans, ScansTable):
        return scans
    return read_scans(scans, description, rename=scans_rename, lesions=canonical,
                      source="the scans table")


def _scans_source(scans) -> str:
    """Where the scans came from, in words: the simulator's follow-up or a given table."""
    sim = getattr(scans, "attrs", {}).get("simulation_followup")
    if isinstance(sim, Mapping):
        noise = sim.get("size_noise_sd")
        return (f"simulated follow-up (features.synthetic.simulate_followup, seed "
                f"{sim.get('seed')}): a scan planned every 4 weeks from the index scan to 16 "
                f"weeks, some missed or taken early or late; sizes measured by "
                f"{sim.get('measurement', 'volume')}"
                + (f" with a reader-to-reader log-SD of {noise:.3g}" if noise else ""))
    return "the given scans table"


def train_landmarks(table: pd.DataFrame | DescribedTable, scans: pd.DataFrame | ScansTable,
                    seed: int = 0, test_size: float = 0.3,
                    weeks: Sequence[float] = LANDMARK_WEEKS,
                    threshold: float | None = None,
                    families: Sequence[str] = FAMILIES,
                    description: TableDescription | None = None,
                    scans_rename: Mapping[str, str] | None = None,
                    source: str = "table",
                    progress: Callable[[str], None] | None = None,
                    validation: str = "holdout", folds: int = 5, repeats: int | None = None,
                    target_sensitivity: float | None = None) -> LandmarkResult:
    """Fit and validate a landmark model at each decision time of ``weeks``.

    table: the labelled per-lesion table (read through ``description``, or a
    :class:`DescribedTable`); scans: its scans (a long table read by
    :func:`features.scans.read_scans` with ``description`` and ``scans_rename``, or a
    :class:`ScansTable`). Each landmark's model is fitted on lesions reaching it (families
    ``families``; decision threshold ``threshold`` on the calibrated probability, default
    0.5, or the one reaching ``target_sensitivity`` on out-of-fold probabilities of its
    training patients, as the index model's). ``validation``, always by patient:

    - ``holdout``: patients split once (``test_size``, ``seed``; the split
      :func:`models.training.train` makes for the same table), every model fitted on the
      training patients and scored on the held-out patients' lesions reaching its landmark;
    - ``cv``: per landmark, ``repeats`` x ``folds``-fold patient-grouped cross-validation of
      the whole fitting procedure (:func:`models.validation.repeated_cv`), each repeat's
      out-of-fold figures (every lesion at its fold model's threshold) combined over the
      repeats by their mean and Rubin's rules; the saved model is fitted on every lesion
      reaching the landmark;
    - ``bootstrap``: Harrell's optimism-corrected bootstrap over ``repeats`` resamples of
      patients (:func:`models.validation.optimism_bootstrap`): the model's figures as the
      index model's headline (:func:`models.evaluation.bootstrap_headline`), the rules and
      the model at each rule's sensitivity on averaged out-of-bag probabilities; the saved
      model is fitted on every lesion reaching the landmark.

    ``result.metrics`` (JSON-ready after :func:`models.statistics.to_jsonable`): ``weeks``,
    ``window_weeks``, ``split`` (scheme, patients and seed), ``scans_source`` (simulated
    follow-up or the given table), ``course_features``, ``rule_ids``, ``method``,
    ``waiting_definition`` and ``times``, one entry per decision time: ``week``, counts of
    evaluated and training lesions and patients, ``family``, ``threshold`` and
    ``threshold_source``, ``model`` (as metrics.json's ``model``), ``rules`` (each rule over
    time as of the landmark: as metrics.json's ``rules``, on the lesions it covers, with
    ``coverage``, ``model_at_rule_sensitivity`` and the rule's ``auc`` with ``auc_ci``),
    ``waiting`` (:func:`waiting_cost`) and, under cv and bootstrap, ``internal_validation``
    (the scheme's summary).
    """
    if validation not in LANDMARK_VALIDATIONS:
        raise UserInputError(f"unknown validation {validation!r} for the landmark models; "
                             f"choose one of {', '.join(LANDMARK_VALIDATIONS)}.")
    from models.training import check_threshold_options

    check_threshold_options(threshold, target_sensitivity)
    described = _described(table, description, True, source)
    description = description or described.description
    canonical = described.table.reset_index(drop=True)
    s = _scans(scans, description, canonical, scans_rename)
    declared = {**described.features, **COURSE_FEATURES}
    prevalences = restated_prevalences(description)
    n_repeats = int(repeats or DEFAULT_REPEATS.get(validation, 1))

    def fit(part: pd.DataFrame, week: float) -> TrainedModel:
        return _fit(part, declared, seed, families, threshold, target_sensitivity, week,
                    source, description)

    in_test = np.zeros(len(canonical), dtype=bool)
    if validation == "holdout":
        in_test[holdout_split(canonical, test_size, seed)[1]] = True
    models: dict[float, TrainedModel] = {}
    frames: dict[float, pd.DataFrame] = {}
    times = []
    for week in sorted(float(w) for w in weeks):
        if progress:
            progress(f"landmark +{_label(week)} weeks")
        rows = landmark_table(canonical, s, week)
        what = f"the landmark at +{_label(week)} weeks"
        internal = None
        if validation == "holdout":
            test = in_test[rows["row"].to_numpy()]
            fit_part, eval_part = rows[~test].drop(columns="row"), rows[test]
            check_trainable(fit_part, f"the training set of {what}")
            check_trainable(eval_part, f"the evaluation set of {what}")
            model = fit(fit_part, week)
            p = model.probability(eval_part.drop(columns="row"), warn=False)
        else:
            fit_part = rows.drop(columns="row").reset_index(drop=True)
            try:
                choose_validation(fit_part, validation)
            except UserInputError as e:
                raise UserInputError(f"{what}: {e}") from None
            model = fit(fit_part, week)
            resample = repeated_cv if validation == "cv" else optimism_bootstrap
            args = (folds, n_repeats, seed) if validation == "cv" else (model, n_repeats, seed)
            predictions, internal = resample(fit_part, partial(fit, week=week), *args)
            mean_p = predictions.groupby("row")["p_pseudoprogression"].mean()
            eval_part = rows.iloc[mean_p.index.to_numpy()]
            p = mean_p.to_numpy()
        models[week] = model
        entry, frames[week] = _evaluate_landmark(week, model, eval_part, p, fit_part, s,
                                                 canonical, prevalences)
        if validation == "bootstrap":  # the saved model's corrected figures, as the index's
            entry["model"] = bootstrap_headline(fit_part, model, internal,
                                                fit_part[ID].to_numpy())
        if validation == "cv":  # the figures of each repeat, combined: not the ensemble's
            entry |= _cross_validated_entry(
                [_evaluate_landmark(week, model, rows.iloc[part["row"].to_numpy()],
                                    part["p_pseudoprogression"].to_numpy(), fit_part, s,
                                    canonical, prevalences, part["threshold"].to_numpy())[0]
                 for _, part in predictions.sort_values("row").groupby("repeat")])
        if internal is not None:
            entry["internal_validation"] = {k: v for k, v in internal.items()
                                            if k not in ("per_repeat",)}
        times.append(entry)
    ids = canonical[ID].to_numpy()
    split = {"scheme": validation, "seed": int(seed), "grouped_by": "patient"}
    if validation == "holdout":
        split |= {"test_size": float(test_size),
                  "n_train_patients": int(len(set(ids[~in_test]))),
                  "n_test_patients": int(len(set(ids[in_test])))}
        scored = ("scored on the held-out patients' lesions with such a scan")
    else:
        split |= {"n_repeats": n_repeats, "n_train_patients": int(len(set(ids))),
                  "n_test_patients": int(len(set(ids)))}
        if validation == "cv":
            split["n_folds"] = int(folds)
        scored = ("scored on every lesion with such a scan by its out-of-fold probability "
                  "under repeated patient-grouped cross-validation, at its fold model's "
                  "threshold: each repeat's figures, combined over the repeats (mean, "
                  "Rubin's rules)"
                  if validation == "cv" else
                  "the landmark model's figures those of the optimism bootstrap over resamples "
                  "of patients, as the index model's (Harrell-corrected discrimination and "
                  "operating point, the refits' pooled out-of-bag calibration); the rules and "
                  "the model at each rule's sensitivity on every lesion with such a scan by "
                  "its out-of-bag probability averaged over the resamples")
    fitted_on = ("the training patients' lesions" if validation == "holdout"
                 else "every lesion")
    metrics = {
        "weeks": [t["week"] for t in times], "window_weeks": WINDOW_WEEKS,
        "split": split,
        "scans_source": _scans_source(scans),
        "course_features": list(COURSE_COLUMNS), "rule_ids": list(SCAN_RULE_IDS),
        "method": (
            "one calibrated classifier per decision time (models.classifier.fit_calibrated), "
            f"fitted on {fitted_on} with a scan within {WINDOW_WEEKS:g} weeks up to it, on the "
            "per-lesion features and the course of size, rCBV and ADC against the index scan; "
            f"{scored}; the rules over time read as of the decision time, each on the lesions "
            "it covers"),
        "waiting_definition": waiting_definition(description.positive_name,
                                                 description.negative_label),
        "times": times,
    }
    held_out = ids[in_test] if validation == "holdout" else ids
    trained_on = ids[~in_test] if validation == "holdout" else ids
    return LandmarkResult(metrics, models, frames, sorted(set(trained_on)),
                          sorted(set(held_out)))


def _evaluate_landmark(week: float, model: TrainedModel, eval_part: pd.DataFrame,
                       p: np.ndarray, fit_part: pd.DataFrame, s: ScansTable,
                       canonical: pd.DataFrame, prevalences: Mapping[str, float],
                       row_thresholds: np.ndarray | None = None
                       ) -> tuple[dict, pd.DataFrame]:
    """One decision time's entry of ``metrics["times"]`` and its frame of evaluated lesions:
    the model's probabilities ``p`` on ``eval_part`` beside every rule over time as of
    ``week``, and what waiting until then costs. Each lesion is called at ``model``'s
    threshold, or at its own ``row_thresholds`` (each fold model's, in cross-validation).
    Intervals account for several lesions of one patient (``interval_methods``); PPV and
    NPV are restated at ``prevalences`` (the study's)."""
    y = eval_part[LABEL].to_numpy().astype(int)
    patients = eval_part[ID].to_numpy()
    keys = lesion_keys(eval_part)
    rules = apply_scan_rules(s, as_of=week, lesions=canonical).reindex(keys)
    rules = rules.reset_index(drop=True)
    bench = benchmark(y, p, model.threshold, rules, restate_prevalences=prevalences,
                      groups=patients, row_thresholds=row_thresholds)
    cut = model.threshold if row_thresholds is None else row_thresholds
    for rid, m in bench["rules"].items():
        covered = rules[rid].notna().to_numpy()
        m["auc"], m["auc_ci"] = auc_with_ci(y[covered], rules[rid].to_numpy()[covered],
                                            groups=patients[covered])
    entry = {
        "week": week, "n": bench["n"], "n_positive": bench["n_positive"],
        "prevalence": bench["prevalence"], "n_patients": int(eval_part[ID].nunique()),
        "n_train": int(len(fit_part)), "n_train_positive": int(fit_part[LABEL].sum()),
        "n_train_patients": int(fit_part[ID].nunique()),
        "family": model.family, "threshold": model.threshold,
        "threshold_source": model.threshold_source,
        "n_features": len(model.feature_columns),
        "model": bench["model"], "rules": bench["rules"],
        "interval_methods": bench["interval_methods"],
        "waiting": waiting_cost(y, patients, week, called(p, cut).astype(float)),
    }
    frame = pd.concat(
        [pd.DataFrame({ID: keys.get_level_values(0), LESION: keys.get_level_values(1),
                       LABEL: y, "p_pseudoprogression": p}),
         rules.add_prefix("rule_")], axis=1)
    return entry, frame


def _cross_validated_entry(repeats: list[dict]) -> dict:
    """The figures of one decision time under repeated cross-validation: each repeat's
    out-of-fold entry (every lesion called at its own fold model's threshold) combined, the
    mean over the repeats with intervals by Rubin's rules
    (:func:`models.evaluation.combined_over_repeats`), as the index model's headline; the
    model's and the rules' entries and the false reassurance of waiting."""
    combined = combined_over_repeats([{k: e[k] for k in ("model", "rules", "waiting")}
                                      for e in repeats])
    waiting = combined["waiting"]
    key = "false_reassurance_per_100_patients"
    waiting[f"{key}_ci"] = rubin_interval([e["waiting"][key] for e in repeats],
                                          [e["waiting"][f"{key}_ci"] for e in repeats])
    combined["model"]["headline"] = repeats_headline(len(repeats))
    return combined


# --------------------------------------------------------------------------- uncertainty


#: The figures of one decision time the sensitivity table keeps, for the model and each rule.
_SENSITIVITY_KEYS: tuple[str, ...] = ("auc", "sensitivity", "ppv")
#: Why a follow-up refuses to go with --update, in words (the command line's message).
UPDATE_REFUSAL = (
    "--update re-estimates the index model's calibration on your local patients; the landmark "
    "models (one per decision time, on the course of the scans) are not updated that way, and "
    "an updated index model beside unchanged landmark models would give two inconsistent "
    "answers. Drop --followup and --scans to update the index model alone (its record will "
    "say the landmark models were not updated), or train anew on the local patients with "
    "--followup and --scans.")


def landmarks_not_updated(model_path: str | Path) -> str | None:
    """When landmark models lie beside ``model_path`` (:func:`landmark_path`), the words an
    update of that model alone writes into its record; None when there are none."""
    weeks = [w for w in LANDMARK_WEEKS if landmark_path(model_path, w).is_file()]
    if not weeks:
        return None
    return (f"the landmark models beside {Path(model_path).name} (at "
            f"{', '.join(_label(w) for w in weeks)} weeks after the index scan) were not "
            "updated: this update is of the index model only, and it has no landmark models "
            "of its own; train anew with --followup and --scans on the local patients for "
            "updated ones")


def sensitivity_rows(metrics: Mapping, setting: str) -> list[dict]:
    """One row per decision time and per model or rule over time of a landmark evaluation
    (``metrics``, :func:`train_landmarks`' ``result.metrics``): setting, week, who (``model``
    or a rule id), n, coverage, auc, sensitivity and ppv with their ``_ci``, and the weeks of
    untreated true progression per 100 patients with its ``_ci``."""
    rows = []
    for t in metrics["times"]:
        wait = t["waiting"]
        common = {"setting": setting, "week": float(t["week"]),
                  "weeks_untreated_per_100_patients": wait["weeks_untreated_per_100_patients"],
                  "weeks_untreated_per_100_patients_ci":
                      list(wait["weeks_untreated_per_100_patients_ci"])}
        for who, m in [("model", t["model"]), *t["rules"].items()]:
            if who != "model" and not m.get("coverage"):
                continue
            row = {**common, "who": who, "n": int(m.get("n", t["n"])),
                   "coverage": float(m.get("coverage", 1.0))}
            for key in _SENSITIVITY_KEYS:
                row[key] = m.get(key)
                row[f"{key}_ci"] = list(m.get(f"{key}_ci") or [None, None])
            rows.append(row)
    return rows


def followup_sensitivity(table: DescribedTable, result: LandmarkResult | None = None, *,
                         seed: int = 0, test_size: float = 0.3,
                         threshold: float | None = None,
                         target_sensitivity: float | None = None,
                         families: Sequence[str] = FAMILIES, source: str = "table",
                         progress: Callable[[str], None] | None = None,
                         settings: Sequence[str] | None = None,
                         weeks: Sequence[float] = LANDMARK_WEEKS, params=None) -> dict:
    """The landmark result across the follow-up simulator's uncertainty: for each setting of
    :data:`features.synthetic.followup.SETTINGS` (low, published and high measurement error
    and course variability), the simulated cohort ``table``'s follow-up drawn again under it
    (same seed) and the landmark models fitted and scored on one holdout split (the same
    for every setting). ``result``: an evaluation of the published setting on that split,
    reused when it is a holdout; ``weeks``: the decision times; ``params``: the simulator's
    parameters the settings start from (default its own). Returns ``settings`` (each
    setting's factor and numbers), ``rows`` (:func:`sensitivity_rows`) and ``method``."""
    from features.scans import read_scans
    from features.synthetic.followup import SETTINGS, followup_setting, simulate_followup

    chosen = list(settings or SETTINGS)
    out_settings, rows = [], []
    for level in chosen:
        p = followup_setting(level, params)
        f = p.followup
        out_settings.append({
            "setting": level, "factor": SETTINGS[level],
            "size_noise_sd": f.size_noise_sd(), "measurement": f.measurement,
            "pp_prolonged_share": f.pp_prolonged_share, "tp_slow_share": f.tp_slow_share,
            "steroid_volume_change_pct": f.steroid_volume_change_pct,
            "missing_visit": f.missing_visit, "scan_jitter_weeks": f.scan_jitter_weeks})
        if (level == "published" and result is not None and params is None
                and result.metrics["split"]["scheme"] == "holdout"):
            metrics = result.metrics
        else:
            if progress:
                progress(f"follow-up setting '{level}'")
            scans = read_scans(simulate_followup(table.table, seed=seed, params=p),
                               lesions=table.table)
            metrics = train_landmarks(table, scans, seed=seed, test_size=test_size,
                                      threshold=threshold,
                                      target_sensitivity=target_sensitivity,
                                      families=families, source=source, weeks=weeks).metrics
        rows += sensitivity_rows(metrics, level)
    return {"settings": out_settings, "rows": rows,
            "method": ("the simulated cohort's follow-up drawn again under each setting "
                       "(features.synthetic.followup.followup_setting: the measurement error of "
                       "sizes, rCBV and ADC, the spread of the rCBV and ADC courses, the "
                       "scans' irregularity, the missed scans, the shares of prolonged "
                       "pseudoprogression and slow true progression and the steroid effect "
                       "multiplied by the setting's factor), the landmark models fitted and "
                       "scored on one patient split shared by every setting; 95% intervals "
                       "as in the landmark tables")}


# --------------------------------------------------------------------------- prediction


def predict_landmarks(models: Mapping[float, TrainedModel], table: pd.DataFrame | DescribedTable,
                      scans: pd.DataFrame | ScansTable | None = None,
                      description: TableDescription | None = None,
                      scans_rename: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per lesion of ``table``: the probability at the latest landmark its scans reach.

    models: the landmark models by decision time (weeks after the index scan), as
    :func:`train_landmarks` or :func:`load_landmarks` give them; table: the per-lesion table
    (read through ``description``, default the one stored in the earliest model); scans: a
    long scans table (read through the same description and ``scans_rename``) or a
    :class:`ScansTable`; None uses the index model alone.

    Columns: the patient and lesion columns under the table's own names, ``landmark_week``
    (the latest decision time whose model exists and whose window the lesion's scans reach),
    ``p_pseudoprogression`` (that model's calibrated probability), ``prediction`` (1/0 at its
    threshold) and ``rule_<id>`` for every rule over time as of that landmark (1 / 0 / empty
    where it abstains).
    """
    if not models:
        raise UserInputError("no landmark models were given; train them with train_landmarks.")
    weeks = sorted(float(w) for w in models)
    first = models[min(models, key=float)]
    description = description or first.table_description()
    described = _described(table, description, False, "the input table")
    desc = described.description or description
    canonical = described.table.reset_index(drop=True)
    keys = lesion_keys(canonical)
    s = None if scans is None else _scans(scans, description, canonical, scans_rename)
    landmark = np.full(len(canonical), np.nan)
    for week in weeks:
        if week <= 0:
            landmark[:] = week
        elif s is not None:
            reach = reaches_landmark(s, week).reindex(keys, fill_value=False)
            landmark[reach.to_numpy(dtype=bool)] = week
    missing = np.isnan(landmark)
    if missing.any():
        raise UserInputError(f"{int(missing.sum())} lesion(s) reach no landmark with a model "
                             f"(models at {', '.join(_label(w) for w in weeks)} weeks); give "
                             "the index model (0 weeks).")
    p = np.full(len(canonical), np.nan)
    prediction = np.zeros(len(canonical), dtype=int)
    rules = pd.DataFrame(np.nan, index=range(len(canonical)), columns=list(SCAN_RULE_IDS))
    for week in np.unique(landmark):
        model = models[next(w for w in models if float(w) == week)]
        rows = np.flatnonzero(landmark == week)
        if s is None:
            frame = canonical.iloc[rows]
        else:
            frame = landmark_table(canonical, s, week).set_index("row").loc[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            p[rows] = model.probability(frame, warn=False)
        prediction[rows] = model.decide(p[rows])
        if s is not None:
            decided = apply_scan_rules(s, as_of=week, lesions=canonical).reindex(keys[rows])
            rules.iloc[rows] = decided.to_numpy(dtype=float)
    out = {desc.patient_column: canonical[ID].to_numpy()}
    if LESION in canonical.columns:
        out[desc.lesion_column or LESION] = canonical[LESION].to_numpy()
    out |= {"landmark_week": landmark, "p_pseudoprogression": p, "prediction": prediction}
    return pd.concat([pd.DataFrame(out), rules.add_prefix("rule_").astype("Int64")], axis=1)


# --------------------------------------------------------------------------- files


def landmark_path(model_path: str | Path, week: float) -> Path:
    """Where the landmark model of ``week`` is kept beside the model file ``model_path``:
    ``M.skops`` -> ``M.landmark-8w.skops`` (each with its record, as :func:`save_model`)."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.landmark-{_label(week)}w{path.suffix}")


def landmark_files(model_path: str | Path, weeks: Sequence[float] = LANDMARK_WEEKS
                   ) -> list[Path]:
    """The landmark model files that may lie beside ``model_path`` (:func:`landmark_path`),
    one per week, whether or not they exist; their records are ``<file>.json``."""
    return [landmark_path(model_path, w) for w in weeks]


def model_set_files(model_path: str | Path, followup: bool = True,
                    weeks: Sequence[float] = LANDMARK_WEEKS) -> list[Path]:
    """Every file a saved model set consists of: the model, its record and, with
    ``followup``, each landmark model and its record."""
    from models.bundle import record_path

    members = landmark_files(model_path, weeks) if followup else []
    return [p for m in (Path(model_path), *members) for p in (m, record_path(m))]


def save_landmarks(models: Mapping[float, TrainedModel], model_path: str | Path,
                   main: TrainedModel | None = None) -> dict[float, Path]:
    """Save each landmark model beside ``model_path`` (:func:`landmark_path`); return
    week -> path. With ``main`` (the model saved at ``model_path``), the main model and its
    landmark models are written as one set (:func:`models.bundle.save_model_set`: one run
    id, the members' SHA-256 in the main record, renamed into place only when all are
    written); without it each is saved on its own."""
    paths = {float(w): landmark_path(model_path, w) for w in models}
    if main is not None:
        save_model_set(main, model_path, {paths[float(w)]: m for w, m in models.items()})
    else:
        for w, m in models.items():
            save_model(m, paths[float(w)])
    return paths


def load_landmarks(model_path: str | Path, *, trust_pickle: bool = False,
                   weeks: Sequence[float] = LANDMARK_WEEKS) -> dict[float, TrainedModel]:
    """The landmark models saved beside ``model_path`` by :func:`save_landmarks`, by week;
    weeks without a file are left out. Each is checked and loaded by
    :func:`models.bundle.load_model` (``trust_pickle`` for a joblib pickle) and must belong
    to the set of the model at ``model_path`` (:func:`models.bundle.check_set_member`: the
    same run); a member that set lists but is missing is an error too."""
    out = {}
    _, members = set_members(model_path) if Path(model_path).is_file() else (None, None)
    for week in weeks:
        path = landmark_path(model_path, week)
        if path.is_file():
            if Path(model_path).is_file():
                check_set_member(model_path, path)
            out[float(week)] = load_model(path, trust_pickle=trust_pickle)
        elif members and path.name in members:
            raise UserInputError(
                f"{path.name}, a landmark model saved with {Path(model_path).name}, is missing "
                f"beside it; copy the model's files together, or retrain with train.py "
                f"--followup --out {model_path}.")
    return out
