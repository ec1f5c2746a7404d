"""Diagnostic metrics with confidence intervals, and the benchmark of the model against the rules.

Positive class everywhere: pseudoprogression (label 1). Proportions are in 0-1; every
interval is a 95% interval unless ``alpha`` says otherwise, returned as a 2-element list.

Library methods: Wilson intervals (statsmodels ``proportion_confint``), AUC
(scikit-learn ``roc_auc_score``), Brier score (``brier_score_loss``), calibration slope
and intercept and per-feature odds ratios (statsmodels ``Logit``/``GLM``).

Hand-written, because no maintained library in the environment provides them:

- :func:`_delong_se`: DeLong's standard error of one AUC, by the midrank placement values
  of Sun & Xu (2014). Tests check it against a seeded bootstrap.
- :func:`diagnostic_odds_ratio`: the Woolf (logit) interval of the DOR with the
  Haldane-Anscombe 0.5 correction, a four-line formula.
- :func:`restate_at_prevalence`: PPV and NPV by Bayes' theorem.

Rule abstentions: a rule prediction of NaN means the rule does not cover the row; such
rows are excluded from that rule's counts and counted against its ``coverage``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from features.article import PREVALENCE
from features.contract import BY_NAME, to_model_scale

_Z = stats.norm.ppf(0.975)
_P_CLIP = 1e-6
NAN = float("nan")


# --------------------------------------------------------------------------- input checks


def _labels(y_true, name: str = "y_true") -> np.ndarray:
    """``y_true`` as an int array of 0/1; raises ValueError on NaN or other values."""
    y = np.asarray(y_true, dtype=float).ravel()
    if np.isnan(y).any():
        raise ValueError(f"{name} holds {int(np.isnan(y).sum())} missing label(s); "
                         "every evaluated row needs a 0/1 label.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold only 0 and 1 (1 = pseudoprogression).")
    return y.astype(int)


def _predictions(y_pred, name: str = "y_pred") -> np.ndarray:
    """``y_pred`` as a float array of 1.0 / 0.0 / NaN (NaN = abstention)."""
    v = np.asarray(y_pred, dtype=float).ravel()
    ok = np.isnan(v) | np.isin(v, (0.0, 1.0))
    if not ok.all():
        raise ValueError(f"{name} must hold 1.0, 0.0 or NaN (abstention).")
    return v


def _probabilities(p, name: str = "p") -> np.ndarray:
    """``p`` as a float array of probabilities in [0, 1] with no NaN."""
    v = np.asarray(p, dtype=float).ravel()
    if not np.isfinite(v).all() or (v < 0).any() or (v > 1).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1] with no missing values.")
    return v


def _same_length(*arrays: np.ndarray) -> None:
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        raise ValueError(f"inputs must have the same length, got {sorted(lengths)}.")


def _nan_pair() -> list[float]:
    return [NAN, NAN]


# --------------------------------------------------------------------------- proportions


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of the proportion ``k / n``; (nan, nan) when ``n == 0``."""
    if n <= 0:
        return (NAN, NAN)
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(int(k), int(n), alpha=alpha, method="wilson")
    return (float(lo), float(hi))


def _proportion(k: int, n: int) -> tuple[float, list[float]]:
    """``k / n`` and its Wilson interval, nan when ``n == 0``."""
    if n <= 0:
        return NAN, _nan_pair()
    return k / n, list(wilson_ci(k, n))


def confusion_counts(y_true, y_pred) -> dict:
    """Counts tp, fp, tn, fn of 0/1 predictions against 0/1 labels.

    Rows where ``y_pred`` is NaN (a rule's abstention) are not counted.
    """
    y = _labels(y_true)
    pred = _predictions(y_pred)
    _same_length(y, pred)
    covered = ~np.isnan(pred)
    y, pred = y[covered], pred[covered].astype(int)
    return {
        "tp": int(((y == 1) & (pred == 1)).sum()),
        "fp": int(((y == 0) & (pred == 1)).sum()),
        "tn": int(((y == 0) & (pred == 0)).sum()),
        "fn": int(((y == 1) & (pred == 0)).sum()),
    }


def diagnostic_odds_ratio(tp: int, fp: int, fn: int, tn: int,
                          alpha: float = 0.05) -> tuple[float, tuple[float, float]]:
    """Diagnostic odds ratio (tp*tn)/(fp*fn) with its Woolf (logit) interval.

    When any cell is 0, 0.5 is added to every cell (Haldane-Anscombe) before both the
    ratio and its interval are computed. Returns nan when the table is empty.
    """
    cells = np.array([tp, fp, fn, tn], dtype=float)
    if cells.sum() <= 0:
        return NAN, (NAN, NAN)
    if (cells == 0).any():
        cells = cells + 0.5
    a, b, c, d = cells
    log_dor = math.log(a * d / (b * c))
    se = math.sqrt((1.0 / cells).sum())
    z = stats.norm.ppf(1 - alpha / 2)
    return math.exp(log_dor), (math.exp(log_dor - z * se), math.exp(log_dor + z * se))


def _metrics_from_counts(tp: int, fp: int, tn: int, fn: int) -> dict:
    """The :func:`binary_metrics` dict from the four counts."""
    n_pos, n_neg = tp + fn, tn + fp
    sens, sens_ci = _proportion(tp, n_pos)
    spec, spec_ci = _proportion(tn, n_neg)
    ppv, ppv_ci = _proportion(tp, tp + fp)
    npv, npv_ci = _proportion(tn, tn + fn)
    if n_pos > 0 and n_neg > 0:
        dor, dor_ci = diagnostic_odds_ratio(tp, fp, fn, tn)
        dor_ci = list(dor_ci)
    else:
        dor, dor_ci = NAN, _nan_pair()
    return {
        "n": int(n_pos + n_neg), "n_positive": int(n_pos),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        "sensitivity": sens, "sensitivity_ci": sens_ci,
        "specificity": spec, "specificity_ci": spec_ci,
        "ppv": ppv, "ppv_ci": ppv_ci,
        "npv": npv, "npv_ci": npv_ci,
        "dor": dor, "dor_ci": dor_ci,
    }


def binary_metrics(y_true, y_pred) -> dict:
    """Sensitivity, specificity, PPV, NPV (Wilson CIs) and DOR (Woolf CI) of 0/1 predictions.

    Keys: n, n_positive, tp, fp, tn, fn, sensitivity(_ci), specificity(_ci), ppv(_ci),
    npv(_ci), dor(_ci). A metric whose denominator is 0 is nan; the DOR is nan unless both
    classes are present. Rows where ``y_pred`` is NaN are not counted (``n`` is the
    number of covered rows).
    """
    c = confusion_counts(y_true, y_pred)
    return _metrics_from_counts(c["tp"], c["fp"], c["tn"], c["fn"])


# --------------------------------------------------------------------------- probabilities


def _delong_se(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong standard error from midrank placement values (Sun & Xu 2014).

    V10_i is the fraction of negatives scored below positive i (ties count one half),
    V01_j the fraction of positives scored above negative j; the AUC is the mean of V10
    and Var(AUC) = var(V10)/n1 + var(V01)/n0. SE is nan with fewer than 2 of a class.
    """
    pos, neg = p[y == 1], p[y == 0]
    n1, n0 = len(pos), len(neg)
    if n1 == 0 or n0 == 0:
        return NAN, NAN
    r_all = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (r_all[:n1] - stats.rankdata(pos)) / n0
    v01 = 1.0 - (r_all[n1:] - stats.rankdata(neg)) / n1
    auc = float(v10.mean())
    if n1 < 2 or n0 < 2:
        return auc, NAN
    var = v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0
    return auc, float(math.sqrt(max(var, 0.0)))


def auc_with_ci(y_true, p) -> tuple[float, list[float]]:
    """ROC AUC with its DeLong 95% interval (AUC +/- 1.96 SE, clipped to [0, 1]).

    nan when only one class is present.
    """
    y = _labels(y_true)
    prob = np.asarray(p, dtype=float).ravel()
    _same_length(y, prob)
    if not np.isfinite(prob).all():
        raise ValueError("p must hold finite scores with no missing values.")
    if len(np.unique(y)) < 2:
        return NAN, _nan_pair()
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(y, prob))
    _, se = _delong_se(y, prob)
    if not np.isfinite(se):
        return auc, _nan_pair()
    return auc, [float(max(0.0, auc - _Z * se)), float(min(1.0, auc + _Z * se))]


def brier_score(y_true, p) -> float:
    """Brier score, the mean squared difference between ``p`` and the 0/1 label."""
    from sklearn.metrics import brier_score_loss

    y = _labels(y_true)
    prob = _probabilities(p)
    _same_length(y, prob)
    if len(y) == 0:
        return NAN
    return float(brier_score_loss(y, prob))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _P_CLIP, 1 - _P_CLIP)
    return np.log(q / (1 - q))


def calibration_intercept_slope(y_true, p) -> dict:
    """Calibration slope and calibration-in-the-large, each with a 95% Wald interval.

    calibration_slope: coefficient of logit(p) in a logistic regression of y on logit(p)
    (1 is ideal; below 1 means over-confident probabilities). calibration_intercept:
    intercept of a logistic regression of y with logit(p) as offset (0 is ideal; above 0
    means the model under-predicts). ``p`` is clipped to [1e-6, 1 - 1e-6]. Values are
    nan when a fit is impossible (one class, separation).
    """
    import statsmodels.api as sm

    y = _labels(y_true)
    prob = _probabilities(p)
    _same_length(y, prob)
    out = {"calibration_intercept": NAN, "calibration_intercept_ci": _nan_pair(),
           "calibration_slope": NAN, "calibration_slope_ci": _nan_pair()}
    if len(np.unique(y)) < 2:
        return out
    lp = _logit(prob)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(),
                         offset=lp).fit()
            ci = np.asarray(fit.conf_int())[0]
            if np.isfinite(fit.params[0]):
                out["calibration_intercept"] = float(fit.params[0])
                out["calibration_intercept_ci"] = [float(ci[0]), float(ci[1])]
        except Exception:  # a failed fit is reported as nan
            pass
        if np.ptp(lp) > 0:
            try:
                fit = sm.Logit(y, sm.add_constant(lp, has_constant="add")).fit(disp=0)
                ci = np.asarray(fit.conf_int())[1]
                if fit.mle_retvals.get("converged", True) and np.isfinite(fit.params[1]):
                    out["calibration_slope"] = float(fit.params[1])
                    out["calibration_slope_ci"] = [float(ci[0]), float(ci[1])]
            except Exception:  # a failed fit is reported as nan
                pass
    return out


def operating_point_at_sensitivity(y_true, p, target_sensitivity: float) -> dict:
    """The model's operating point at the highest threshold reaching a target sensitivity.

    The model predicts 1 when ``p >= threshold``; the threshold returned is the highest
    one at which sensitivity >= ``target_sensitivity`` (it is one of the positives'
    scores). Returns threshold, sensitivity(_ci), specificity(_ci), ppv(_ci), tp, fp,
    tn, fn, n; all metrics nan when there are no positives or the target is nan or > 1.
    A target of 0 gives a threshold just above the highest score (nothing predicted 1).
    """
    y = _labels(y_true)
    prob = _probabilities(p)
    _same_length(y, prob)
    keys = ("threshold", "sensitivity", "specificity", "ppv")
    empty = {k: NAN for k in keys} | {f"{k}_ci": _nan_pair() for k in keys[1:]}
    empty |= {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "n": int(len(y))}
    target = float(target_sensitivity) if target_sensitivity is not None else NAN
    pos = np.sort(prob[y == 1])[::-1]
    if len(pos) == 0 or not np.isfinite(target) or target > 1 + 1e-12:
        return empty
    k = int(math.ceil(max(target, 0.0) * len(pos) - 1e-9))
    if k <= 0:
        threshold = float(np.nextafter(prob.max(), np.inf))
    else:
        threshold = float(pos[k - 1])
    m = binary_metrics(y, (prob >= threshold).astype(float))
    return {
        "threshold": threshold,
        "sensitivity": m["sensitivity"], "sensitivity_ci": m["sensitivity_ci"],
        "specificity": m["specificity"], "specificity_ci": m["specificity_ci"],
        "ppv": m["ppv"], "ppv_ci": m["ppv_ci"],
        "tp": m["tp"], "fp": m["fp"], "tn": m["tn"], "fn": m["fn"], "n": m["n"],
    }


# --------------------------------------------------------------------------- prevalence


def _bayes(se: float, sp: float, prev: float) -> tuple[float, float]:
    """PPV and NPV by Bayes' theorem; nan where a denominator is 0."""
    num_ppv, den_ppv = se * prev, se * prev + (1 - sp) * (1 - prev)
    num_npv, den_npv = sp * (1 - prev), sp * (1 - prev) + (1 - se) * prev
    ppv = num_ppv / den_ppv if den_ppv > 0 else NAN
    npv = num_npv / den_npv if den_npv > 0 else NAN
    return float(ppv), float(npv)


def restate_at_prevalence(sensitivity: float, specificity: float, prevalence: float,
                          sensitivity_ci=None, specificity_ci=None) -> dict:
    """PPV and NPV a test with this sensitivity and specificity would show at ``prevalence``.

    Keys: prevalence, ppv, ppv_ci, npv, npv_ci (proportions in 0-1). The interval
    plugs the lower (upper) CI bounds of sensitivity and specificity together into
    Bayes' theorem; PPV and NPV both rise with each, so this bounds them, but as both
    bounds are taken at once the interval is approximate and conservative (wider than a
    joint 95% interval). Without both CIs the interval is nan.
    """
    prev = float(prevalence)
    if not 0.0 < prev < 1.0:
        raise ValueError(f"prevalence must be strictly between 0 and 1, got {prevalence!r}.")
    se, sp = float(sensitivity), float(specificity)
    out = {"prevalence": prev, "ppv": NAN, "ppv_ci": _nan_pair(),
           "npv": NAN, "npv_ci": _nan_pair()}
    if not (np.isfinite(se) and np.isfinite(sp)):
        return out
    out["ppv"], out["npv"] = _bayes(se, sp, prev)
    if sensitivity_ci is not None and specificity_ci is not None:
        se_lo, se_hi = (float(v) for v in sensitivity_ci)
        sp_lo, sp_hi = (float(v) for v in specificity_ci)
        if all(np.isfinite([se_lo, se_hi, sp_lo, sp_hi])):
            ppv_lo, npv_lo = _bayes(se_lo, sp_lo, prev)
            ppv_hi, npv_hi = _bayes(se_hi, sp_hi, prev)
            out["ppv_ci"] = [ppv_lo, ppv_hi]
            out["npv_ci"] = [npv_lo, npv_hi]
    return out


def _at_prevalences(m: Mapping, prevalences: Mapping[str, float]) -> dict:
    return {
        name: restate_at_prevalence(m["sensitivity"], m["specificity"], prev,
                                    m["sensitivity_ci"], m["specificity_ci"])
        for name, prev in prevalences.items()
    }


# --------------------------------------------------------------------------- odds ratios


_SCALE_EXPR = {
    "log": "log({c})",
    "log_ratio": "log(1 + {c}/100)",
    "logit_pct": "logit({c}/100)",
}


def _fit_or(x: np.ndarray, y: np.ndarray, binary: bool) -> tuple[float, float, float, float, str]:
    """Univariable logistic OR of ``y`` on ``x``: (or, ci_low, ci_high, p_value, note)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        HessianInversionWarning,
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    bad = (NAN, NAN, NAN, NAN)
    if len(np.unique(y)) < 2:
        return *bad, "one class only among rows with the feature"
    if np.ptp(x) == 0:
        return *bad, "constant feature"
    if binary:
        cells = [((x == a) & (y == b)).sum() for a in (0, 1) for b in (0, 1)]
        if min(cells) == 0:
            return *bad, "separation: a zero cell in the 2x2 table"
    else:
        x1, x0 = x[y == 1], x[y == 0]
        if x1.min() > x0.max() or x1.max() < x0.min():
            return *bad, "separation: the classes do not overlap"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = sm.Logit(y, sm.add_constant(x, has_constant="add")).fit(disp=0, maxiter=200)
        except (PerfectSeparationError, np.linalg.LinAlgError, ValueError) as exc:
            return *bad, f"fit failed: {type(exc).__name__}"
    kinds = {w.category for w in caught}
    if PerfectSeparationWarning in kinds:
        return *bad, "separation (quasi-complete)"
    if not fit.mle_retvals.get("converged", True) or ConvergenceWarning in kinds \
            or HessianInversionWarning in kinds:
        return *bad, "fit did not converge"
    beta = float(fit.params[1])
    lo, hi = np.asarray(fit.conf_int())[1]
    pval = float(fit.pvalues[1])
    if not all(np.isfinite([beta, lo, hi])):
        return *bad, "fit gave no finite estimate"
    return math.exp(beta), math.exp(lo), math.exp(hi), pval, ""


def feature_odds_ratios(df: pd.DataFrame, y, columns=None,
                        extra_binary: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Univariable odds ratios of pseudoprogression, one logistic regression per feature.

    Each fit uses the rows where the feature (and the label) is present. Continuous
    features: OR per SD of the feature on its contract-transformed scale
    (``features.contract.BY_NAME[c].transform``; the SD is in ``scale``). Binary 0/1
    features: OR per unit (1 vs 0). ``extra_binary`` maps a name to a 0/1/NaN series
    aligned by position to ``df`` (a dichotomised rule-like predictor, e.g.
    ``{"ctdna_change_pct < -60": s}``), each fitted per unit. ``y`` is a 0/1 array
    aligned by position, or the name of a column of ``df``. ``columns`` defaults to the
    contract's numeric and binary features present in ``df``.

    Columns of the result: feature, scale, n, n_positive, odds_ratio, ci_low, ci_high,
    p_value, note. A feature that cannot be fitted (constant, one class, separation,
    non-numeric) gets nan and a note saying why.
    """
    from features.contract import NUMERIC_FEATURES

    yv = df[y] if isinstance(y, str) else y
    yv = np.asarray(yv, dtype=float).ravel()
    if len(yv) != len(df):
        raise ValueError(f"y has {len(yv)} values but the table has {len(df)} rows.")
    if not np.isin(yv[~np.isnan(yv)], (0.0, 1.0)).all():
        raise ValueError("y must hold only 0, 1 or NaN.")
    if columns is None:
        columns = [c for c in NUMERIC_FEATURES if c in df.columns]
    items: list[tuple[str, object, bool | None]] = [(c, df[c] if c in df.columns else None, None)
                                                    for c in columns]
    items += [(name, s, True) for name, s in (extra_binary or {}).items()]

    rows = []
    for name, series, force_binary in items:
        row = {"feature": name, "scale": "", "n": 0, "n_positive": 0, "odds_ratio": NAN,
               "ci_low": NAN, "ci_high": NAN, "p_value": NAN, "note": ""}
        rows.append(row)
        if series is None:
            row["note"] = "column not in the table"
            continue
        values = pd.to_numeric(pd.Series(np.asarray(series, dtype=object).ravel()),
                               errors="coerce").to_numpy(dtype=float)
        if len(values) != len(yv):
            row["note"] = f"length {len(values)} does not match the table's {len(yv)} rows"
            continue
        raw_present = pd.Series(np.asarray(series, dtype=object).ravel()).notna().to_numpy()
        if (raw_present & np.isnan(values)).any():
            row["note"] = "not numeric"
            continue
        keep = ~np.isnan(values) & ~np.isnan(yv)
        x, yy = values[keep], yv[keep].astype(int)
        row["n"], row["n_positive"] = int(keep.sum()), int(yy.sum())
        col = BY_NAME.get(name)
        binary = bool(force_binary) or (col is not None and col.kind == "binary") or (
            col is None and len(x) > 0 and np.isin(x, (0.0, 1.0)).all())
        if len(x) == 0:
            row["note"] = "no rows with the feature"
            continue
        if binary:
            if not np.isin(x, (0.0, 1.0)).all():
                row["note"] = "binary predictor must hold 0/1"
                continue
            row["scale"] = "per unit (1 vs 0)"
        else:
            kind = col.transform if col is not None else "none"
            x = to_model_scale(name, x) if col is not None else x
            sd = float(np.std(x, ddof=1)) if len(x) > 1 else NAN
            expr = _SCALE_EXPR.get(kind, "{c}").format(c=name)
            row["scale"] = f"per SD of {expr} (SD {sd:.3g})"
            if not np.isfinite(sd) or sd == 0:
                row["note"] = "constant feature"
                continue
            x = (x - x.mean()) / sd
        ratio, lo, hi, pval, note = _fit_or(x, yy, binary)
        row.update(odds_ratio=ratio, ci_low=lo, ci_high=hi, p_value=pval, note=note)
    return pd.DataFrame(rows, columns=["feature", "scale", "n", "n_positive", "odds_ratio",
                                       "ci_low", "ci_high", "p_value", "note"])


# --------------------------------------------------------------------------- benchmark


def benchmark(y_true, p, threshold: float, rule_predictions: pd.DataFrame,
              restate_prevalences: dict[str, float] | None = None) -> dict:
    """Evaluate the model and every rule through the same metrics.

    ``y_true`` (0/1) and ``p`` (model probabilities, shape (n,)) are aligned by position
    with the rows of ``rule_predictions`` (one column per rule id, 1.0 / 0.0 / NaN where
    NaN is an abstention). The model predicts 1 when ``p >= threshold``. Each rule is
    scored on the rows it covers, and beside it the model on those same rows, both at
    the stored threshold and at the highest threshold that matches the rule's
    sensitivity. PPV and NPV are re-stated at each prevalence of ``restate_prevalences``
    (default: the article's, ``features.article.PREVALENCE``).

    Returns ``{"n", "n_positive", "prevalence", "threshold", "model": {...},
    "rules": {rule_id: {...}}}``; pass it through :func:`to_jsonable` before JSON.
    """
    y = _labels(y_true)
    prob = _probabilities(p)
    _same_length(y, prob)
    if not isinstance(rule_predictions, pd.DataFrame):
        raise ValueError("rule_predictions must be a DataFrame with one column per rule id.")
    if len(rule_predictions) != len(y):
        raise ValueError(f"rule_predictions has {len(rule_predictions)} rows but y_true has "
                         f"{len(y)}; they must be aligned row by row.")
    prevalences = dict(PREVALENCE if restate_prevalences is None else restate_prevalences)
    threshold = float(threshold)
    n = len(y)

    model = binary_metrics(y, (prob >= threshold).astype(float))
    model["coverage"] = 1.0 if n else NAN
    model["auc"], model["auc_ci"] = auc_with_ci(y, prob)
    model["brier"] = brier_score(y, prob)
    model.update(calibration_intercept_slope(y, prob))
    model["at_prevalence"] = _at_prevalences(model, prevalences)

    rules = {}
    for rule_id in rule_predictions.columns:
        column = pd.to_numeric(rule_predictions[rule_id], errors="raise")
        pred = _predictions(column.to_numpy(dtype=float, na_value=np.nan), str(rule_id))
        covered = ~np.isnan(pred)
        m = binary_metrics(y[covered], pred[covered])
        m["coverage"] = float(covered.sum() / n) if n else NAN
        m["model_at_rule_sensitivity"] = operating_point_at_sensitivity(
            y[covered], prob[covered], m["sensitivity"])
        m["model_on_rule_rows"] = binary_metrics(
            y[covered], (prob[covered] >= threshold).astype(float))
        m["at_prevalence"] = _at_prevalences(m, prevalences)
        rules[str(rule_id)] = m

    return {
        "n": int(n),
        "n_positive": int(y.sum()),
        "prevalence": float(y.mean()) if n else NAN,
        "threshold": threshold,
        "model": model,
        "rules": rules,
    }


def to_jsonable(obj):
    """``obj`` with numpy scalars and arrays made plain Python, nan/inf as None (recursive).

    Dict keys become strings; tuples, arrays and Series become lists; a DataFrame becomes
    a list of records.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, (pd.Series, pd.Index)):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, str):
        return obj
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return obj
