"""How a fitting procedure is validated, honestly about optimism and about patients.

Every scheme keeps a patient's lesions together: no patient is on both sides of a split or in
two folds of one repeat, and resampling draws patients with all their lesions.

- :func:`holdout_split`: one split of patients into training and evaluation, stratified by
  the patient's label;
- :func:`repeated_cv`: repeated patient-grouped stratified K-fold cross-validation of the
  whole procedure; every lesion is predicted once per repeat by a model that never saw its
  patient; with ``n_folds=LEAVE_ONE_OUT`` leave-one-patient-out (for the smallest cohorts);
- :func:`optimism_bootstrap`: Harrell's optimism-corrected bootstrap (Harrell, Regression
  Modeling Strategies, 2nd ed., section 5.3.5): apparent performance minus the mean optimism
  of the procedure refitted on resamples of patients, beside the refits' pooled out-of-bag
  predictions (the leave-one-out bootstrap of Efron and Tibshirani, JASA 1997), which give
  the calibration (:data:`HEADLINE_SOURCE`), and the optimism by the family each refit chose;
- :func:`nested_cross_validation` and :func:`apparent_performance`, for the holdout scheme's
  internal validation;
- :func:`choose_validation`: holdout when both sides would hold enough lesions of each class,
  otherwise cross-validation (with fewer folds, or leave-one-patient-out, when a class has
  few patients), and why;
- :func:`sample_size`: the minimum development size for a model of this size (Riley et al.,
  BMJ 2020) beside the patients and events at hand, and the events per candidate feature.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, train_test_split

from features.contract import ID, LABEL
from features.errors import UserInputError
from models.bundle import TrainedModel
from models.choices import VALIDATIONS
from models.classifier import FeatureLayout, patient_folds
from models.sample_size import minimum_sample_size
from models.statistics import (
    auc,
    binary_metrics,
    brier_score,
    calibration_intercept_slope,
    called,
)

#: ``n_folds`` of :func:`repeated_cv` meaning leave-one-patient-out.
LEAVE_ONE_OUT = 0
#: Holdout needs at least this many lesions of each class on each side (else ``auto`` uses cv).
MIN_HOLDOUT_PER_CLASS = 10
#: Cross-validation and the bootstrap need at least this many patients of each class: every
#: training part then keeps two of each for the procedure's own patient-grouped calibration
#: folds and the held-out part one; below it nothing can be estimated.
MIN_PATIENTS_PER_CLASS = 3
#: A bootstrap resample is fitted only with at least this many distinct patients of each
#: class (what the procedure's patient-grouped calibration needs).
MIN_PATIENTS_TO_FIT = 2
#: Folds of cross-validation by default; fewer when a class has fewer patients.
DEFAULT_FOLDS = 5
#: Below this many events per candidate feature a model is flagged as possibly unstable
#: (Riley et al. 2020 and TRIPOD+AI discuss 10 as a floor for regression, more for ML).
MIN_EVENTS_PER_FEATURE = 10.0
#: The statistics every scheme reports, in this order.
SCORES: tuple[str, ...] = ("auc", "brier", "calibration_intercept", "calibration_slope",
                           "sensitivity", "specificity", "ppv", "npv")

Procedure = Callable[[pd.DataFrame], TrainedModel]


def scores(y: np.ndarray, p: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """n, n_positive and :data:`SCORES` of probabilities ``p`` against labels ``y``, a lesion
    called at ``p >= threshold`` (one threshold, or one per row: each fold model's own)."""
    cal = calibration_intercept_slope(y, p)
    at = binary_metrics(y, called(p, threshold).astype(float))
    return {"n": at["n"], "n_positive": at["n_positive"], "auc": auc(y, p),
            "brier": brier_score(y, p), "calibration_intercept": cal["calibration_intercept"],
            "calibration_slope": cal["calibration_slope"]} | {
        k: at[k] for k in ("sensitivity", "specificity", "ppv", "npv")}


def _labels(table: pd.DataFrame) -> np.ndarray:
    return table[LABEL].to_numpy().astype(int)


def patient_labels(table: pd.DataFrame) -> pd.Series:
    """One label per patient for stratifying (1 when most of its lesions are 1)."""
    return table.groupby(ID, sort=False)[LABEL].mean().ge(0.5).astype(int)


def class_counts(table: pd.DataFrame) -> dict[str, int]:
    """Lesions and patients of each class (a patient counts in each class it has lesions of)."""
    y = _labels(table)
    by_patient = table.groupby(ID, sort=False)[LABEL]
    return {"lesions_positive": int(y.sum()), "lesions_negative": int(len(y) - y.sum()),
            "patients_positive": int(by_patient.max().sum()),
            "patients_negative": int((by_patient.min() == 0).sum()),
            "patients": int(table[ID].nunique()), "lesions": int(len(table))}


# --------------------------------------------------------------------------- choosing


def choose_validation(table: pd.DataFrame, requested: str = "auto",
                      test_size: float = 0.3, folds: int = DEFAULT_FOLDS) -> tuple[str, str]:
    """The scheme to use and why: ``requested`` unless it is ``auto``, which takes holdout
    when the held-out part would expect :data:`MIN_HOLDOUT_PER_CLASS` lesions of each class
    and the training part twice as many, otherwise ``cv``. ``folds``: the folds asked for;
    cross-validation uses fewer when the rarer class has fewer patients, and says so.
    Refuses (UserInputError) what cannot be computed: fewer than
    :data:`MIN_PATIENTS_PER_CLASS` patients of a class, with what the user can do."""
    if requested not in VALIDATIONS:
        raise UserInputError(f"unknown validation {requested!r}; choose one of "
                             f"{', '.join(VALIDATIONS)}.")
    c = class_counts(table)
    rarest = min(c["patients_positive"], c["patients_negative"])
    if rarest < MIN_PATIENTS_PER_CLASS:
        raise UserInputError(
            f"too few patients of a class to validate a model: {c['patients_positive']} with a "
            f"positive lesion and {c['patients_negative']} with a negative one ({c['lesions']} "
            f"lesions of {c['patients']} patients). Any validation by patient needs at least "
            f"{MIN_PATIENTS_PER_CLASS} of each (a model fitted without one patient must still "
            "see two of each class); lesions of the same patient do not count as more. Add "
            "patients of the rarer class, or report the rules' figures only (predict.py "
            "scores the rules on a labelled table without a model).")
    rare_lesions = min(c["lesions_positive"], c["lesions_negative"])
    expected_test = rare_lesions * test_size
    expected_train = rare_lesions * (1 - test_size)
    enough = (expected_test >= MIN_HOLDOUT_PER_CLASS
              and expected_train >= 2 * MIN_HOLDOUT_PER_CLASS)
    few = (f"; the rarer class has {rarest} patients, so {min(folds, rarest)} folds are used "
           f"instead of {folds} (--validation loo: leave-one-patient-out)"
           if requested in ("auto", "cv") and rarest < folds else "")
    if requested != "auto":
        if requested == "holdout" and not enough:
            warnings.warn(
                f"--validation holdout with {rare_lesions} lesions of the rarer class leaves "
                f"about {expected_test:.0f} of them held out: the held-out estimates will be "
                "very imprecise; --validation cv uses every patient.", UserWarning, stacklevel=2)
        return requested, "as requested" + few
    if enough:
        return "holdout", (f"the rarer class has {rare_lesions} lesions: about "
                           f"{expected_test:.0f} held out and {expected_train:.0f} for training "
                           f"(at least {MIN_HOLDOUT_PER_CLASS} and "
                           f"{2 * MIN_HOLDOUT_PER_CLASS} needed)")
    return "cv", (f"the rarer class has only {rare_lesions} lesions: a held-out part would hold "
                  f"about {expected_test:.0f} (fewer than {MIN_HOLDOUT_PER_CLASS}), so every "
                  "patient is used by repeated cross-validation instead" + few)


# --------------------------------------------------------------------------- holdout


def holdout_split(table: pd.DataFrame, test_size: float = 0.3,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of training and evaluation lesions: patients split once, stratified by
    their label (:func:`patient_labels`), all of a patient's lesions on one side."""
    if not 0.05 <= test_size <= 0.8:
        raise UserInputError(f"test size must be between 0.05 and 0.8, got {test_size}.")
    per_patient = patient_labels(table)
    train_ids, test_ids = train_test_split(per_patient.index.to_numpy(), test_size=test_size,
                                           stratify=per_patient.to_numpy(),
                                           random_state=seed)
    in_test = table[ID].isin(set(test_ids)).to_numpy()
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def check_trainable(table: pd.DataFrame, what: str) -> None:
    """UserInputError when ``table`` has fewer than :data:`MIN_HOLDOUT_PER_CLASS` lesions of a
    class (a holdout side too small to fit or to evaluate)."""
    counts = table[LABEL].value_counts()
    small = {int(k): int(v) for k, v in counts.items() if v < MIN_HOLDOUT_PER_CLASS}
    if len(counts) < 2 or small:
        raise UserInputError(
            f"{what} has too few lesions of a class for a held-out evaluation (counts by label: "
            f"{ {int(k): int(v) for k, v in counts.items()} }); a holdout needs at least "
            f"{MIN_HOLDOUT_PER_CLASS} of each class on each side. Use --validation cv, which "
            "uses every patient, or add data.")


def nested_cross_validation(train_table: pd.DataFrame, fit: Procedure, n_outer: int = 5,
                            seed: int = 0, progress=None) -> dict:
    """Score the whole fitting procedure on outer folds of patients it never saw.

    ``fit(table) -> TrainedModel`` is the procedure (family choice, calibration, threshold).
    Returns per-fold scores at each fold model's threshold, and their mean and SD.
    """
    y = _labels(train_table)
    folds = patient_folds(y, train_table[ID].to_numpy(), n_outer, seed + 7)
    rows = []
    for i, (inner, outer) in enumerate(folds):
        if progress:
            progress(f"nested CV fold {i + 1}/{len(folds)}")
        model = fit(train_table.iloc[inner])
        part = train_table.iloc[outer]
        p = model.probability(part, warn=False)
        rows.append({"fold": i + 1, **scores(_labels(part), p, model.threshold)})
    per_fold = pd.DataFrame(rows)
    return {"n_outer_folds": len(folds), "n": int(len(train_table)),
            "n_positive": int(y.sum()), "summary": _summary(per_fold),
            "per_fold": per_fold.to_dict(orient="records")}


def apparent_performance(model: TrainedModel, train_table: pd.DataFrame) -> dict:
    """The final model scored on its own training lesions (optimistic by construction)."""
    return scores(_labels(train_table), model.probability(train_table, warn=False),
                  model.threshold)


def _summary(rows: pd.DataFrame) -> dict:
    return {k: {"mean": float(rows[k].mean()), "sd": float(rows[k].std(ddof=1))}
            for k in SCORES if k in rows}


# --------------------------------------------------------------------------- repeated CV


def repeated_cv(table: pd.DataFrame, fit: Procedure, n_folds: int = DEFAULT_FOLDS,
                n_repeats: int = 10,
                seed: int = 0, progress: Callable[[str], None] | None = None
                ) -> tuple[pd.DataFrame, dict]:
    """Repeated patient-grouped stratified K-fold cross-validation of the procedure ``fit``.

    Returns every out-of-fold prediction (columns ``row`` (position in ``table``),
    ``repeat``, ``fold``, ``p_pseudoprogression``, ``threshold``; each lesion once per repeat)
    and a summary: per repeat, :data:`SCORES` of that repeat's out-of-fold predictions at each
    fold model's threshold, with their mean and SD over repeats.
    """
    y = _labels(table)
    groups = table[ID].to_numpy()
    loo = n_folds == LEAVE_ONE_OUT
    if loo:  # every patient held out once; no randomness, so one repeat
        n_splits, n_repeats = int(table[ID].nunique()), 1
    else:
        n_splits = int(max(2, min(n_folds, min(patient_labels(table).value_counts()))))
    parts, per_repeat = [], []
    for r in range(n_repeats):
        cv = (LeaveOneGroupOut() if loo else
              StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                   random_state=seed + 1000 + r))
        p = np.full(len(table), np.nan)
        thr = np.full(len(table), np.nan)
        for f, (inner, outer) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
            if progress:
                progress(f"cross-validation: repeat {r + 1}/{n_repeats}, fold {f + 1}/{n_splits}")
            model = fit(table.iloc[inner])
            p[outer] = model.probability(table.iloc[outer], warn=False)
            thr[outer] = model.threshold
            parts.append(pd.DataFrame({"row": outer, "repeat": r + 1, "fold": f + 1,
                                       "p_pseudoprogression": p[outer],
                                       "threshold": model.threshold}))
        per_repeat.append({"repeat": r + 1} | {k: v for k, v in scores(y, p, thr).items()
                                                if k in SCORES})
    rows = pd.DataFrame(per_repeat)
    summary = {"scheme": ("leave-one-patient-out cross-validation" if loo else
                          "repeated patient-grouped stratified cross-validation"),
               "n_folds": n_splits, "n_repeats": int(n_repeats), "n": int(len(table)),
               "n_positive": int(y.sum()), "n_patients": int(table[ID].nunique()),
               "summary": _summary(rows), "per_repeat": rows.to_dict(orient="records")}
    return pd.concat(parts, ignore_index=True).sort_values(["repeat", "row"]), summary


# --------------------------------------------------------------------------- bootstrap


def _resample_patients(table: pd.DataFrame, rng: np.random.Generator
                       ) -> tuple[pd.DataFrame, set]:
    """Patients drawn with replacement with all their lesions, and the set of patients never
    drawn. The copies of a patient drawn twice keep its id, so every split of the resample
    by patient (tuning, family choice, calibration, threshold) keeps them on one side."""
    ids = table[ID].unique()
    pick = rng.integers(0, len(ids), len(ids))
    by_id = table.groupby(ID, sort=False).indices
    rows = np.concatenate([by_id[ids[j]] for j in pick]) if len(ids) else np.array([], int)
    drawn = {ids[j] for j in pick}
    return table.iloc[rows].reset_index(drop=True), set(ids) - drawn


def _defined_text(defined: dict[str, int], n_fitted: int) -> list[str]:
    """'calibration_slope: corrected over 87 of 100 resamples' for every statistic some
    fitted resample could not compute."""
    return [f"{k}: corrected over {defined[k]} of {n_fitted} resamples" for k in SCORES
            if defined[k] < n_fitted]


#: Where each headline figure of the optimism bootstrap comes from. Harrell's correction
#: for the figures whose refits' own-resample value is bounded (AUC, Brier, the rates at the
#: threshold); the pooled out-of-bag predictions for calibration, because a refit's
#: calibration on its own resample does not exist for a flexible learner that (nearly)
#: separates its training rows (the slope's estimate diverges), so its optimism has no
#: useful mean.
HEADLINE_SOURCE: dict[str, str] = {
    "auc": "harrell", "brier": "harrell", "sensitivity": "harrell", "specificity": "harrell",
    "ppv": "harrell", "npv": "harrell", "calibration_intercept": "out_of_bag",
    "calibration_slope": "out_of_bag"}
#: A report warns when more than this share of the refits chose another family than the
#: saved model's: the optimism then describes other models as much as the saved one.
MAX_OTHER_FAMILY_SHARE = 0.2


def _mean_median(values: pd.Series) -> dict[str, float]:
    v = values.dropna()
    return {"mean": float(v.mean()) if len(v) else float("nan"),
            "median": float(v.median()) if len(v) else float("nan"),
            "n_defined": int(len(v))}


def optimism_by_family(per_resample: pd.DataFrame, final_family: str | None) -> dict:
    """How many refits chose each family, and the mean and median of each statistic's
    optimism over them (``per_resample``: one row per fitted resample, a ``family`` column
    and one optimism column per statistic of :data:`SCORES`); with the saved model's
    family, the share of refits that chose another and a warning when it is more than
    :data:`MAX_OTHER_FAMILY_SHARE`."""
    families = {}
    for family, rows in per_resample.groupby("family", sort=True):
        families[str(family)] = {"n_resamples": int(len(rows)),
                                 "optimism": {k: _mean_median(rows[k]) for k in SCORES}}
    n = int(len(per_resample))
    other = (int((per_resample["family"] != final_family).sum())
             if final_family is not None else 0)
    warning = None
    if final_family is not None and n and other / n > MAX_OTHER_FAMILY_SHARE:
        chosen = ", ".join(f"{f} {v['n_resamples']}" for f, v in families.items())
        warning = (f"the refits chose another family than the saved model's "
                   f"({final_family}) in {other} of {n} resamples ({chosen}): the optimism "
                   "averages over models of other families, whose own-resample figures "
                   "differ (see the optimism by family); read the corrected figures as those "
                   "of the procedure rather than of the saved model alone")
    return {"final_family": final_family, "n_other_family": other,
            "share_other_family": other / n if n else float("nan"),
            "families": families, "warning": warning}


def optimism_bootstrap(table: pd.DataFrame, fit: Procedure, final: TrainedModel,
                       n_resamples: int = 100, seed: int = 0,
                       progress: Callable[[str], None] | None = None
                       ) -> tuple[pd.DataFrame, dict]:
    """Harrell's optimism-corrected bootstrap of the procedure ``fit``, with the refits'
    out-of-bag predictions beside it.

    ``final`` is the procedure fitted on all of ``table`` (the saved model); its apparent
    :data:`SCORES` on ``table`` minus the mean optimism (score of a bootstrap model on its
    own resample minus its score on ``table``) give Harrell's corrected scores
    (``corrected``), which describe ``final``. Every refit also predicts the patients its
    resample left out; those predictions, pooled over the resamples (one calibration fit,
    one 2x2 over every out-of-bag prediction, each called at its refit's threshold), give
    ``out_of_bag``, which describes the refits (the procedure fitted on about 63% of the
    patients), not ``final``. :data:`HEADLINE_SOURCE` says which of the two each headline
    figure takes (``headline_source``).

    A resample with fewer than :data:`MIN_PATIENTS_TO_FIT` distinct patients of a class,
    or one the procedure refuses, is not fitted (``n_skipped``); a statistic a fitted
    resample cannot compute (a calibration fit that does not converge, a slope where the
    classes do not overlap) is left out of that statistic's mean only and counted
    (``n_defined``, ``undefined``: "calibration_slope: corrected over 87 of 100
    resamples"). ``per_resample``: each fitted resample's family and optimism;
    ``by_family``: :func:`optimism_by_family`. Also returns the out-of-bag predictions
    (columns ``row``, ``repeat`` (the resample), ``fold`` ("oob"), ``p_pseudoprogression``,
    ``threshold``).
    """
    rng = np.random.default_rng(seed)
    y = _labels(table)
    apparent = apparent_performance(final, table)
    optimism, parts = [], []
    skipped = 0
    for b in range(n_resamples):
        if progress:
            progress(f"bootstrap resample {b + 1}/{n_resamples}")
        boot, out_of_bag = _resample_patients(table, rng)
        counts = class_counts(boot)
        if min(counts["patients_positive"], counts["patients_negative"]) \
                < MIN_PATIENTS_TO_FIT:
            skipped += 1  # too few distinct patients of a class to fit: counted, not fitted
            continue
        try:
            model = fit(boot)
        except UserInputError:  # the procedure refuses this resample: counted, not fitted
            skipped += 1
            continue
        own = scores(_labels(boot), model.probability(boot, warn=False), model.threshold)
        p_orig = model.probability(table, warn=False)
        test = scores(y, p_orig, model.threshold)
        optimism.append({"resample": b + 1, "family": getattr(model, "family", None)}
                        | {k: own[k] - test[k] for k in SCORES})
        oob = np.flatnonzero(table[ID].isin(out_of_bag).to_numpy())
        parts.append(pd.DataFrame({"row": oob, "repeat": b + 1, "fold": "oob",
                                   "p_pseudoprogression": p_orig[oob],
                                   "threshold": model.threshold}))
    per_resample = pd.DataFrame(optimism, columns=["resample", "family", *SCORES])
    opt = per_resample[list(SCORES)].astype(float)
    done = len(opt)
    defined = {k: int(opt[k].notna().sum()) for k in SCORES}
    mean_opt = {k: float(opt[k].mean()) if defined[k] else float("nan") for k in SCORES}
    predictions = (pd.concat(parts, ignore_index=True) if parts else
                   pd.DataFrame(columns=["row", "repeat", "fold", "p_pseudoprogression",
                                         "threshold"]))
    pooled = _pooled_out_of_bag(y, predictions)
    final_family = getattr(final, "family", None)
    by_family = optimism_by_family(per_resample.fillna({"family": "unnamed"}), final_family)
    if by_family["warning"]:
        warnings.warn(f"optimism bootstrap: {by_family['warning']}.", UserWarning,
                      stacklevel=2)
    summary = {"scheme": "optimism-corrected bootstrap (Harrell)",
               "n_resamples": int(n_resamples), "n_fitted": int(done),
               "n_skipped": int(skipped),
               "skipped_because": (f"fewer than {MIN_PATIENTS_TO_FIT} distinct patients of a "
                                   "class in the resample, or a resample the procedure "
                                   "could not fit"),
               "n_defined": defined, "undefined": _defined_text(defined, done),
               "n": int(len(table)), "n_positive": int(y.sum()),
               "n_patients": int(table[ID].nunique()), "apparent": apparent,
               "optimism": mean_opt,
               "optimism_spread": {k: {"median": float(opt[k].median()),
                                       "q1": float(opt[k].quantile(0.25)),
                                       "q3": float(opt[k].quantile(0.75))}
                                   if defined[k] else {"median": float("nan"),
                                                       "q1": float("nan"), "q3": float("nan")}
                                   for k in SCORES},
               "corrected": {k: apparent[k] - mean_opt[k] for k in SCORES},
               "out_of_bag": pooled,
               "headline_source": dict(HEADLINE_SOURCE),
               "by_family": by_family,
               "per_resample": per_resample.to_dict(orient="records"),
               "describes": ("apparent and corrected: the saved model (fitted on every "
                             "patient); optimism: the procedure refitted on each resample, "
                             "the copies of a patient drawn twice kept in one group; "
                             "out_of_bag: the refits, each scored on the patients its "
                             "resample left out, pooled")}
    return predictions, summary


def _pooled_out_of_bag(y: np.ndarray, predictions: pd.DataFrame) -> dict:
    """:func:`scores` of every out-of-bag prediction of every refit pooled (a lesion counts
    once per resample that left its patient out, called at that refit's threshold), with
    the number of predictions (``n_predictions``) and of lesions (``n``) behind them."""
    rows = predictions["row"].to_numpy().astype(int)
    if not len(rows):
        return {k: float("nan") for k in SCORES} | {"n_predictions": 0, "n": 0,
                                                    "n_positive": 0}
    pooled = scores(y[rows], predictions["p_pseudoprogression"].to_numpy(dtype=float),
                    predictions["threshold"].to_numpy(dtype=float))
    unique = np.unique(rows)
    return {k: pooled[k] for k in SCORES} | {"n_predictions": int(len(rows)),
                                             "n": int(len(unique)),
                                             "n_positive": int(y[unique].sum())}


# --------------------------------------------------------------------------- sample size


def candidate_feature_count(train_table: pd.DataFrame, layout: FeatureLayout,
                            spline_knots: int | None = None) -> int:
    """Candidate predictor parameters the procedure can fit: one per numeric column (two
    when it has missing values, for its missing indicator), ``spline_knots - 1`` instead of
    one for each continuous column when a spline family with that many knots is among the
    candidates, one per radiomic column (every one offered, not those a reduction keeps), one
    per category level beyond the first."""
    count = 0
    terms = max(int(spline_knots) - 1, 1) if spline_knots else 1
    continuous = set(layout.continuous)
    for c in [*layout.numeric, *layout.radiomic]:
        count += (terms if c in continuous else 1) + int(train_table[c].isna().any())
    for c in layout.categorical:
        count += max(int(train_table[c].nunique()) - 1, 0)
    return count


#: The anticipated C statistic's source when the user gives none.
DEFAULT_C_SOURCE = ("not given (--anticipated-c), so Riley et al.'s conservative default: a "
                    "Cox-Snell R2 of 15% of its maximum")


def sample_size(train_table: pd.DataFrame, layout: FeatureLayout,
                c_statistic: float | None = None, spline_knots: int | None = None) -> dict:
    """Events per candidate parameter and the minimum sample size for a model with that many
    candidate parameters at this prevalence (Riley et al., BMJ 2020), beside the patients,
    lesions and events at hand. Warns when the table is below the minimum or below
    :data:`MIN_EVENTS_PER_FEATURE` events per parameter.

    Parameters are counted as the procedure can fit them (:func:`candidate_feature_count`;
    ``spline_knots``: the most knots a candidate spline family may use). ``c_statistic``:
    the anticipated C statistic (AUC) the user expects, e.g. from earlier studies
    (``--anticipated-c``); without it Riley et al.'s conservative R2 (15% of its maximum) is
    used, never the data's own estimate. Rows are lesions: the calculation treats them as
    independent, so with several lesions per patient the patients are also compared with the
    minimum, and the truth lies between the two.
    """
    y = _labels(train_table)
    events = int(min(y.sum(), len(y) - y.sum()))
    linear = candidate_feature_count(train_table, layout)
    k = candidate_feature_count(train_table, layout, spline_knots)
    epv = events / k if k else float("nan")
    ok = bool(epv >= MIN_EVENTS_PER_FEATURE)
    counts = class_counts(train_table)
    n_patients = counts["patients"]
    out = {"events": events, "candidate_features": k, "linear_terms": linear,
           "counted_as": (f"{linear} linear terms; {k} with restricted cubic splines of "
                          f"{spline_knots} knots for the {len(layout.continuous)} continuous "
                          "columns (the most the candidate families can fit)"
                          if k != linear else f"{k} linear terms"),
           "events_per_feature": epv,
           "minimum": MIN_EVENTS_PER_FEATURE, "enough": ok,
           "n_lesions": int(len(train_table)), "n_patients": int(n_patients),
           "event_patients": int(min(counts["patients_positive"],
                                     counts["patients_negative"]))}
    prevalence = float(y.mean()) if len(y) else float("nan")
    if k and 0 < prevalence < 1:
        usable_c = c_statistic if c_statistic is not None and 0.5 < c_statistic < 0.999 \
            else None
        riley = minimum_sample_size(k, prevalence, c_statistic=usable_c)
        several = n_patients < len(train_table)
        unit = ("lesions (rows of the table; the calculation treats them as independent)"
                if several else "patients (one lesion each)")
        out["riley"] = {"minimum_n": int(riley.n), "minimum_events": float(riley.events),
                        "r2_cs": float(riley.r2_cs), "prevalence": prevalence,
                        "c_statistic": usable_c,
                        "c_source": ("given by the user (--anticipated-c)"
                                     if usable_c is not None else DEFAULT_C_SOURCE),
                        "n_parameters": k, "enough": bool(len(train_table) >= riley.n),
                        "patients_enough": bool(n_patients >= riley.n),
                        "method": riley.describe(unit) + (
                            f" Parameters: {out['counted_as']}." if k != linear else "")
                        + (f" With {n_patients} patients behind {len(train_table)} lesions, "
                           "lesions of one patient are not independent: the effective size "
                           "lies between the patients and the lesions." if several else "")}
        if len(train_table) < riley.n:
            warnings.warn(
                f"{len(train_table)} lesions ({events} of the rarer class) are below the minimum "
                f"sample size of {int(riley.n)} for a model with {k} candidate parameters "
                f"({out['counted_as']}) at prevalence {prevalence:.1%} (Riley et al., BMJ "
                "2020): expect an unstable, over-fitted model; judge it only by the validated "
                "figures, and prefer fewer features.", UserWarning, stacklevel=2)
            return out
    if not ok:
        warnings.warn(f"only {epv:.2g} events per candidate parameter ({events} events, {k} "
                      f"candidate parameters; fewer than {MIN_EVENTS_PER_FEATURE:g}): the "
                      "model may be unstable, and its apparent performance optimistic; judge "
                      "it by the validated figures.", UserWarning, stacklevel=2)
    return out
