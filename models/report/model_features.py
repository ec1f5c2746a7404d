"""What the fitted model uses: its features, their effects, and the radiomic columns it keeps.

- :func:`feature_effects` gives one row per feature of the chosen family: for logistic
  regression the coefficients per SD with their odds ratios (read from the model, no data
  needed); for gradient boosting the permutation importance (drop in AUC when a column is
  shuffled) on the rows given, normally the held-out ones;
- :func:`radiomic_selection` names the radiomic columns the in-pipeline reduction kept;
- :func:`radiomic_summary` counts radiomic columns by sequence and feature class.

Everything reads the model defensively (``getattr``), so a bundle of another shape gives
an empty table instead of an error. Nothing runs at import time; scikit-learn is imported
inside the functions that need it.

>>> effects = feature_effects(model, held_out_table, y, seed=0)   # doctest: +SKIP
>>> metrics["feature_effects"] = effects.to_dict(orient="records") # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from features.contract import ID, RADIOMIC_COLUMN

__all__ = ["EFFECT_COLUMNS", "LOGISTIC_METHOD", "PERMUTATION_METHOD", "calibration_scale",
           "feature_effects", "fitted_pipeline", "logistic_coefficients", "permutation_effects",
           "radiomic_selection", "radiomic_summary"]

#: ``method`` of the rows of a logistic model.
LOGISTIC_METHOD = "logistic coefficient"
#: ``method`` of the rows of any other family.
PERMUTATION_METHOD = "permutation importance (AUC drop)"
#: Columns of :func:`feature_effects`; a family fills the ones that apply, nan elsewhere.
EFFECT_COLUMNS: tuple[str, ...] = (
    "feature", "column", "block", "method", "scale", "coefficient", "odds_ratio",
    "odds_ratio_calibrated", "auc_drop", "auc_drop_sd", "n_repeats", "n", "n_positive")
#: The transformer names of :func:`models.classifier.build_family`, as readers know them.
_BLOCKS = {"contract": "clinical", "radiomic": "radiomic", "category": "category"}
_INDICATOR = "missingindicator_"


# --------------------------------------------------------------------------- model access


def _is_fitted_pipeline(obj) -> bool:
    steps = getattr(obj, "named_steps", None)
    if steps is None or "prepare" not in steps or "model" not in steps:
        return False
    return hasattr(steps["model"], "n_features_in_")


def fitted_pipeline(model):
    """The chosen family's fitted Pipeline ('prepare' ColumnTransformer, 'model') behind a
    :class:`models.bundle.TrainedModel` (or any wrapper of it), or None."""
    est = getattr(model, "estimator", model)
    for _ in range(6):
        if est is None:
            return None
        if _is_fitted_pipeline(est):
            return est
        try:
            pipe = getattr(est, "fitted_pipeline", None)
        except Exception:  # a property of an unfitted estimator
            pipe = None
        if _is_fitted_pipeline(pipe):
            return pipe
        est = getattr(est, "estimator_", None) or getattr(est, "estimator", None)
    return None


def calibration_scale(model) -> float:
    """The factor by which the sigmoid calibration multiplies the model's log-odds
    (``-a`` of scikit-learn's sigmoid map); nan when there is no such calibration."""
    est = getattr(model, "estimator", model)
    for _ in range(6):
        if est is None:
            return math.nan
        cal = getattr(est, "calibrated_", None)
        if cal is not None:
            try:
                a = cal.calibrated_classifiers_[0].calibrators[0].a_
                return -float(a)
            except (AttributeError, IndexError, TypeError):
                return math.nan
        est = getattr(est, "estimator_", None) or getattr(est, "estimator", None)
    return math.nan


def _step_names(step, names: np.ndarray) -> np.ndarray:
    """Output names of one fitted step given its input names."""
    try:
        return np.asarray(step.get_feature_names_out(names), dtype=object)
    except Exception:  # a step without feature names out, or saved by an older version
        pass
    keep = vars(step).get("keep_") if hasattr(step, "__dict__") else None
    if keep is not None:
        return names[np.asarray(keep, dtype=int)]
    try:
        return names[step.get_support()]
    except Exception:  # not a selector: the step keeps every column
        return names


def _block_outputs(name: str, transformer, columns) -> list[str]:
    """Output names of one block of the 'prepare' ColumnTransformer."""
    names = np.asarray(list(columns), dtype=object)
    steps = getattr(transformer, "steps", None)
    if steps is None:
        return [str(n) for n in _step_names(transformer, names)]
    for _, step in steps:
        names = _step_names(step, names)
    return [str(n) for n in names]


def _outputs(pipe) -> list[tuple[str, str]]:
    """(output feature name, transformer name) for every column the model step sees."""
    prepare = pipe.named_steps["prepare"]
    out: list[tuple[str, str]] = []
    for name, transformer, columns in getattr(prepare, "transformers_", []):
        if name == "remainder" or transformer in ("drop", None):
            continue
        out += [(n, name) for n in _block_outputs(name, transformer, columns)]
    return out


def radiomic_selection(model) -> dict | None:
    """The radiomic reduction as fitted on all training rows, or None without radiomic columns.

    Keys: ``n_columns`` (radiomic input columns), ``n_after_variance``,
    ``n_after_correlation``, ``kept`` (names, in input order) and ``f_statistic`` (the
    univariate F of each kept column on the training rows).
    """
    pipe = fitted_pipeline(model)
    if pipe is None:
        return None
    prepare = pipe.named_steps["prepare"]
    for name, transformer, columns in getattr(prepare, "transformers_", []):
        if name != "radiomic":
            continue
        names = np.asarray(list(columns), dtype=object)
        out = {"n_columns": int(len(names)), "n_after_variance": None,
               "n_after_correlation": None, "kept": [], "f_statistic": []}
        for step_name, step in getattr(transformer, "steps", []):
            names = _step_names(step, names)
            if "variance" in step_name:
                out["n_after_variance"] = int(len(names))
            elif "correlation" in step_name:
                out["n_after_correlation"] = int(len(names))
            elif hasattr(step, "scores_") and hasattr(step, "get_support"):
                scores = np.asarray(step.scores_, dtype=float)[step.get_support()]
                out["kept"] = [str(n) for n in names]
                out["f_statistic"] = [float(s) for s in scores]
        if not out["kept"]:
            out["kept"] = [str(n) for n in names]
        return out
    return None


# --------------------------------------------------------------------------- effects


def _label(feature: str, block: str) -> tuple[str, str, str]:
    """(shown name, input column, block as readers know it) of an output feature."""
    if block == "contract" and feature.startswith(_INDICATOR):
        column = feature[len(_INDICATOR):]
        return f"{column} missing (indicator)", column, "missing-value indicator"
    if block == "category":
        for col in ("cancer_type",):
            if feature.startswith(col + "_"):
                return f"{col} = {feature[len(col) + 1:]}", col, "category"
    return feature, feature, _BLOCKS.get(block, block)


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))


def logistic_coefficients(model) -> pd.DataFrame:
    """Coefficients of the fitted logistic model, largest effect first (:data:`EFFECT_COLUMNS`).

    Clinical and radiomic inputs (and missing-value indicators) are standardised in the
    pipeline, so a coefficient is per SD of the transformed value; a category level is
    1 vs 0. ``odds_ratio`` = exp(coefficient) on the model's own log-odds;
    ``odds_ratio_calibrated`` = exp(coefficient x :func:`calibration_scale`), the odds ratio
    on the calibrated probability the model reports.
    """
    pipe = fitted_pipeline(model)
    final = None if pipe is None else pipe.named_steps["model"]
    coef = getattr(final, "coef_", None)
    if coef is None:
        return _frame([])
    coef = np.asarray(coef, dtype=float).ravel()
    outputs = _outputs(pipe)
    if len(outputs) != coef.shape[0]:
        outputs = [(f"x{i}", "") for i in range(coef.shape[0])]
    scale = calibration_scale(model)
    rows = []
    for (feature, block), b in zip(outputs, coef, strict=True):
        shown, column, kind = _label(feature, block)
        rows.append({"feature": shown, "column": column, "block": kind,
                     "method": LOGISTIC_METHOD,
                     "scale": "1 vs 0" if block == "category" else "per SD",
                     "coefficient": float(b), "odds_ratio": math.exp(b),
                     "odds_ratio_calibrated": math.exp(scale * b) if np.isfinite(scale)
                     else math.nan})
    out = _frame(rows)
    order = np.argsort(-np.abs(out["coefficient"].to_numpy()), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def _permuted_columns(model, pipe) -> list[str]:
    """Model input columns whose shuffling can change a prediction: every non-radiomic
    column and the radiomic columns the reduction kept."""
    columns = [c for c in (getattr(model, "feature_columns", None) or []) if c != ID]
    selection = radiomic_selection(model)
    kept = set(selection["kept"]) if selection else set()
    return [c for c in columns if not RADIOMIC_COLUMN.match(str(c)) or c in kept]


def permutation_effects(model, table: pd.DataFrame, y, seed: int = 0,
                        n_repeats: int = 5) -> pd.DataFrame:
    """Permutation importance of each input column on ``table`` (:data:`EFFECT_COLUMNS`).

    ``auc_drop``: the model's AUC on the rows minus its AUC with the column shuffled, mean
    (and SD, ``auc_drop_sd``) over ``n_repeats`` shuffles seeded with ``seed``
    (:func:`sklearn.inspection.permutation_importance`). Radiomic columns the reduction
    dropped cannot change a prediction and are left out. Largest drop first.
    """
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score

    yv = np.asarray(y, dtype=float).ravel()
    predict = getattr(model, "predict_proba", None)
    columns = [c for c in _permuted_columns(model, fitted_pipeline(model)) if c in table.columns]
    if predict is None or not columns or len(np.unique(yv)) < 2 or len(yv) != len(table):
        return _frame([])
    base = table.reset_index(drop=True)

    def score(_estimator, shuffled: pd.DataFrame, labels) -> float:
        full = base.copy()
        for c in shuffled.columns:
            full[c] = shuffled[c].to_numpy()
        return float(roc_auc_score(labels, predict(full, warn=False)))

    result = permutation_importance(getattr(model, "estimator", model), base[columns], yv,
                                    scoring=score, n_repeats=n_repeats, random_state=seed)
    rows = []
    for c, mean, sd in zip(columns, result.importances_mean, result.importances_std,
                           strict=True):
        block = "radiomic" if RADIOMIC_COLUMN.match(str(c)) else (
            "category" if c == "cancer_type" else "clinical")
        rows.append({"feature": c, "column": c, "block": block, "method": PERMUTATION_METHOD,
                     "scale": "AUC", "auc_drop": float(mean), "auc_drop_sd": float(sd),
                     "n_repeats": int(n_repeats), "n": int(len(yv)),
                     "n_positive": int(np.nansum(yv))})
    out = _frame(rows)
    order = np.argsort(-out["auc_drop"].to_numpy(), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def feature_effects(model, table: pd.DataFrame, y, seed: int = 0,
                    n_repeats: int = 5) -> pd.DataFrame:
    """What each feature does in the fitted model, one row per feature (:data:`EFFECT_COLUMNS`).

    Logistic family: :func:`logistic_coefficients` (``table`` and ``y`` unused). Any other
    family: :func:`permutation_effects` on ``table`` (the evaluation rows, with every
    model column) and its 0/1 labels ``y``. Empty when the model cannot be read.
    """
    pipe = fitted_pipeline(model)
    if pipe is not None and hasattr(pipe.named_steps["model"], "coef_"):
        return logistic_coefficients(model)
    return permutation_effects(model, table, y, seed=seed, n_repeats=n_repeats)


# --------------------------------------------------------------------------- radiomic columns


def radiomic_summary(columns: Iterable[str], kept: Sequence[str] = ()) -> pd.DataFrame:
    """Radiomic columns counted by sequence and pyradiomics feature class.

    One row per (sequence, feature class) present, in first-seen order, with
    ``n_columns``, ``n_kept`` (of ``kept``, the columns the reduction kept) and
    ``image_types`` (e.g. ``original, wavelet-LLH``). Non-radiomic names are ignored.
    """
    kept_set = set(kept)
    groups: dict[tuple[str, str], dict] = {}
    for c in columns:
        match = RADIOMIC_COLUMN.match(str(c))
        if not match:
            continue
        image_type, feature_class = match.group(1, 2)
        sequence = str(c).split("_", 1)[0]
        row = groups.setdefault((sequence, feature_class),
                                {"sequence": sequence, "feature_class": feature_class,
                                 "n_columns": 0, "n_kept": 0, "image_types": []})
        row["n_columns"] += 1
        row["n_kept"] += int(c in kept_set)
        if image_type not in row["image_types"]:
            row["image_types"].append(image_type)
    rows = [r | {"image_types": ", ".join(r["image_types"])} for r in groups.values()]
    return pd.DataFrame(rows, columns=["sequence", "feature_class", "n_columns", "n_kept",
                                       "image_types"])
