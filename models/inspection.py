"""What the fitted model uses: its features, their effects, and the radiomic columns it keeps.

- :func:`feature_effects` gives one row per feature of the chosen family: for logistic
  regression the coefficients per SD with their odds ratios (read from the model, no data
  needed); for the spline family (logistic regression on restricted cubic splines) one
  odds ratio per table column, between its 75th and 25th percentile on the rows given, with
  the shape of its curve and the curve itself (:func:`spline_effects`); for gradient
  boosting the permutation importance (drop in AUC when a column is shuffled) on the rows
  given, normally the held-out ones;
- :func:`radiomic_selection` names the radiomic columns the in-pipeline reduction kept;
- :func:`radiomic_summary` counts radiomic columns by sequence and feature class.

Everything reads the model defensively (``getattr``), so a bundle of another shape gives
an empty table instead of an error. Nothing runs at import time; scikit-learn is imported
inside the functions that need it.

>>> effects = feature_effects(model, held_out_table, y, seed=0)   # doctest: +SKIP
>>> effects.to_dict(orient="records")   # metrics.json's feature_effects  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from features.contract import ID, RADIOMIC_COLUMN

__all__ = ["EFFECT_COLUMNS", "LOGISTIC_METHOD", "PERMUTATION_METHOD", "SPLINE_METHOD",
           "calibration_scale", "curve_shape", "feature_effects", "fitted_pipeline",
           "logistic_coefficients", "partial_effect", "permutation_effects",
           "radiomic_selection", "radiomic_summary", "spline_effects"]

#: ``method`` of the rows of a logistic model.
LOGISTIC_METHOD = "logistic coefficient"
#: ``method`` of the rows of a model with restricted cubic spline terms.
SPLINE_METHOD = "odds ratio between two values of an input (spline model)"
#: ``method`` of the rows of any other family.
PERMUTATION_METHOD = "permutation importance (AUC drop)"
#: Columns of :func:`feature_effects`; a family fills the ones that apply, nan elsewhere.
EFFECT_COLUMNS: tuple[str, ...] = (
    "feature", "column", "block", "method", "scale", "coefficient", "odds_ratio",
    "odds_ratio_calibrated", "auc_drop", "auc_drop_sd", "n_repeats", "n", "n_positive",
    "reference_value", "compared_value", "shape", "partial_effect")
#: The partial effect of a curved column is drawn between these quantiles of its values.
CURVE_QUANTILES: tuple[float, float] = (0.05, 0.95)
#: Points of a partial-effect curve.
CURVE_POINTS = 41
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


#: Why a step of the radiomic reduction leaves a column out, by step name.
_DROPPED_BY = {
    "variance": "constant (or empty) on the training rows",
    "correlation": "correlated above |r| = {r} with an earlier column (duplicate information)",
    "select": "not selected on the outcome (univariate F-test or L1 penalty, inside the "
              "folds)",
}


def radiomic_selection(model) -> dict | None:
    """The radiomic reduction as fitted on all training rows, or None without radiomic columns.

    Keys: ``n_columns`` (radiomic input columns), ``n_after_variance``,
    ``n_after_correlation``, ``kept`` (names, in input order), ``f_statistic`` (the
    univariate F of each kept column on the training rows) and ``dropped`` (name: why the
    reduction left it out: constant or empty, correlated above the filter, not selected).
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
               "n_after_correlation": None, "kept": [], "f_statistic": [], "dropped": {}}
        for step_name, step in getattr(transformer, "steps", []):
            before = names
            names = _step_names(step, names)
            gone = [str(n) for n in before if n not in set(names)]
            reason = _DROPPED_BY.get(step_name, f"left out by the step '{step_name}'")
            if step_name == "correlation":
                reason = reason.format(r=getattr(step, "max_abs_corr", "the filter's"))
            out["dropped"].update({n: reason for n in gone})
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


# --------------------------------------------------------------------------- spline family


def _spline_knots(pipe) -> dict[str, np.ndarray]:
    """Knots (model scale) of each column with restricted cubic spline terms."""
    from models.classifier import RestrictedCubicSplines

    prepare = pipe.named_steps["prepare"]
    out: dict[str, np.ndarray] = {}
    for _, block, columns in getattr(prepare, "transformers_", []):
        for _, step in getattr(block, "steps", []):
            if isinstance(step, RestrictedCubicSplines):
                for name, knots in zip(columns, getattr(step, "knots_", []), strict=False):
                    if np.asarray(knots).size:
                        out[str(name)] = np.asarray(knots, dtype=float)
    return out


def _categories(pipe) -> dict[str, list]:
    """Levels of each one-hot encoded column, as the encoder learnt them."""
    prepare = pipe.named_steps["prepare"]
    out: dict[str, list] = {}
    for _, block, columns in getattr(prepare, "transformers_", []):
        for _, step in getattr(block, "steps", []):
            levels = getattr(step, "categories_", None)
            if levels is not None and hasattr(step, "handle_unknown"):
                out.update({str(c): list(v) for c, v in zip(columns, levels, strict=False)})
    return out


def _reference_row(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """One row of ``columns``: each numeric column's median on ``table`` (NaN ignored), each
    other column's most common value."""
    row = {}
    for c in columns:
        values = table[c]
        if pd.api.types.is_numeric_dtype(values):
            present = pd.to_numeric(values, errors="coerce").dropna()
            row[c] = [float(present.median()) if len(present) else np.nan]
        else:
            mode = values.dropna().mode()
            row[c] = [mode.iloc[0] if len(mode) else np.nan]
    return pd.DataFrame(row, columns=list(columns))


def _log_odds_at(pipe, reference: pd.DataFrame, column: str, values) -> np.ndarray:
    """The model's log-odds (before calibration) of the reference row with ``column`` set to
    each of ``values`` in turn."""
    values = list(values)
    rows = pd.concat([reference] * len(values), ignore_index=True)
    if pd.api.types.is_numeric_dtype(reference[column]):
        rows[column] = np.asarray(values, dtype=float)
    else:
        rows[column] = pd.Series(values, dtype=object)
    return np.asarray(pipe.decision_function(rows), dtype=float).ravel()


def partial_effect(pipe, reference: pd.DataFrame, column: str, values: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(grid, log-odds) of a numeric ``column``: :data:`CURVE_POINTS` values evenly spaced
    between the :data:`CURVE_QUANTILES` of ``values`` (the column's units), and the model's
    log-odds there minus its log-odds at the median, every other input held at
    ``reference``. An additive model's curve is the same whatever the reference."""
    present = np.asarray(values, dtype=float)
    present = present[np.isfinite(present)]
    low, high = np.quantile(present, CURVE_QUANTILES)
    grid = np.linspace(low, high, CURVE_POINTS)
    at = _log_odds_at(pipe, reference, column, [*grid, float(np.median(present))])
    return grid, at[:-1] - at[-1]


def curve_shape(grid: np.ndarray, log_odds: np.ndarray, flat: float = 0.05) -> str:
    """A curve's shape in words: ``flat`` (it moves less than ``flat`` log-odds), ``rising``,
    ``falling``, ``highest near <x>`` (rises then falls), ``lowest near <x>``, or ``rises
    and falls more than once``; <x> in the column's units, 3 significant digits."""
    grid, y = np.asarray(grid, dtype=float), np.asarray(log_odds, dtype=float)
    span = float(np.nanmax(y) - np.nanmin(y)) if y.size else 0.0
    if not np.isfinite(span) or span < flat:
        return "flat"
    steps = np.diff(y)
    signs = np.sign(steps[np.abs(steps) > 0.01 * span / max(len(steps), 1)])
    runs = [int(v) for i, v in enumerate(signs) if i == 0 or v != signs[i - 1]]
    if runs == [1]:
        return "rising"
    if runs == [-1]:
        return "falling"
    if runs == [1, -1]:
        return f"highest near {float(grid[int(np.nanargmax(y))]):.3g}"
    if runs == [-1, 1]:
        return f"lowest near {float(grid[int(np.nanargmin(y))]):.3g}"
    return "rises and falls more than once"


def _is_binary(values: np.ndarray) -> bool:
    present = np.unique(values[np.isfinite(values)])
    return present.size == 2 and set(present.tolist()) == {0.0, 1.0}


def _contrast_row(column: str, feature: str, block: str, scale: str, reference, compared,
                  diff: float, factor: float) -> dict:
    return {"feature": feature, "column": column, "block": block, "method": SPLINE_METHOD,
            "scale": scale, "coefficient": float(diff), "odds_ratio": math.exp(diff),
            "odds_ratio_calibrated": math.exp(factor * diff) if np.isfinite(factor)
            else math.nan,
            "reference_value": reference, "compared_value": compared}


def spline_effects(model, table: pd.DataFrame | None) -> pd.DataFrame:
    """What each input column does in a model with restricted cubic spline terms, one row
    per column (:data:`EFFECT_COLUMNS`), largest effect first; empty without ``table``.

    A spline column's effect is a curve, so it is summarised by the odds ratio between two
    lesions that differ only in that column: at its 75th and at its 25th percentile on
    ``table`` (an interquartile odds ratio, Harrell's summary of a spline term; ``scale``
    names the contrast, ``reference_value`` and ``compared_value`` are the two values in the
    column's units). A 0/1 column: 1 vs 0; a category: each level vs the most common one; a
    column with missing-value indicator: missing vs its median (a 0/1 column: vs its most
    common value), a row of its own. Each is
    read by predicting: the model's log-odds (``coefficient``) at the two values, every
    other input at its median or most common value (the model is additive, so any other
    values give the same difference); ``odds_ratio`` = exp(coefficient),
    ``odds_ratio_calibrated`` on the calibrated probability (:func:`calibration_scale`).
    A column with spline terms also gets ``shape`` (:func:`curve_shape`) and
    ``partial_effect``: ``value`` (the column's units), ``log_odds`` against a lesion at the
    median (:func:`partial_effect`) and ``log_odds_calibrated``. Radiomic columns the
    reduction dropped cannot change a prediction and are left out.
    """
    pipe = fitted_pipeline(model)
    columns = [str(c) for c in getattr(pipe, "feature_names_in_", [])] if pipe else []
    if table is None or not columns or any(c not in table.columns for c in columns) \
            or not len(table):
        return _frame([])
    table = table.reset_index(drop=True)
    reference = _reference_row(table, columns)
    factor = calibration_scale(model)
    knots = _spline_knots(pipe)
    levels = _categories(pipe)
    names = {name for name, _ in _outputs(pipe)}
    selection = radiomic_selection(model)
    kept = set(selection["kept"]) if selection else None
    prepare = pipe.named_steps["prepare"]
    used = [str(c) for name, block, cols in getattr(prepare, "transformers_", [])
            if name != "remainder" and block not in ("drop", None) for c in cols]
    rows: list[dict] = []
    for c in used:
        if c == ID or (kept is not None and RADIOMIC_COLUMN.match(c) and c not in kept):
            continue
        block = "radiomic" if RADIOMIC_COLUMN.match(c) else "clinical"
        if c in levels or not pd.api.types.is_numeric_dtype(table[c]):
            common = table[c].dropna().mode()
            if not len(common):
                continue
            base = common.iloc[0]
            others = [v for v in levels.get(c, table[c].dropna().unique()) if v != base]
            if not others:
                continue
            at = _log_odds_at(pipe, reference, c, [base, *others])
            rows += [_contrast_row(c, f"{c} = {v}", "category", f"vs {c} = {base} (most "
                                   "common)", None, None, d - at[0], factor)
                     for v, d in zip(others, at[1:], strict=True)]
            continue
        values = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float)
        present = values[np.isfinite(values)]
        if present.size:
            if _is_binary(values):
                low, high, scale = 0.0, 1.0, "1 vs 0"
            else:
                low, high = (float(v) for v in np.quantile(present, (0.25, 0.75)))
                scale = "75th vs 25th percentile"
                if low == high:
                    low, high = (float(v) for v in np.quantile(present, CURVE_QUANTILES))
                    scale = "95th vs 5th percentile"
            if low != high:
                at = _log_odds_at(pipe, reference, c, [low, high])
                row = _contrast_row(c, c, block, scale, low, high, at[1] - at[0], factor)
                if c in knots:
                    grid, curve = partial_effect(pipe, reference, c, present)
                    row["shape"] = curve_shape(grid, curve)
                    row["partial_effect"] = {
                        "value": [float(v) for v in grid],
                        "log_odds": [float(v) for v in curve],
                        "log_odds_calibrated": [float(factor * v) for v in curve]
                        if np.isfinite(factor) else None}
                elif scale != "1 vs 0":
                    row["shape"] = "straight line (no spline terms)"
                rows.append(row)
        if _INDICATOR + c in names and present.size:
            binary = _is_binary(values)
            typical = float(np.mean(present) >= 0.5) if binary else float(np.median(present))
            against = "the most common value" if binary else "the median"
            at = _log_odds_at(pipe, reference, c, [typical, np.nan])
            rows.append(_contrast_row(c, f"{c} missing (vs {against})",
                                      "missing-value indicator", f"missing vs {against}",
                                      typical, None, at[1] - at[0], factor))
    out = _frame(rows)
    if not len(out):
        return out
    order = np.argsort(-np.abs(out["coefficient"].to_numpy(dtype=float)), kind="stable")
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
    predict = getattr(model, "probability", None)
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

    Logistic family: :func:`logistic_coefficients` (``table`` and ``y`` unused). Spline
    family (logistic regression on restricted cubic splines): :func:`spline_effects` on
    ``table`` (``y`` unused), one row per table column instead of one per spline term. Any
    other family: :func:`permutation_effects` on ``table`` (the evaluation rows, with every
    model column) and its 0/1 labels ``y``. Empty when the model cannot be read.
    """
    from models.classifier import has_spline_terms

    pipe = fitted_pipeline(model)
    if pipe is not None and has_spline_terms(pipe):
        return spline_effects(model, table)
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
