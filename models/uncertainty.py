"""Uncertainty for the benchmark: decision curves, bootstrap CIs, paired model-vs-rule tests.

Inputs are plain arrays, so nothing here depends on the classifier:

- ``y``: labels, shape (n,), 1 pseudoprogression, 0 true progression;
- ``p``: the model's calibrated P(pseudoprogression), shape (n,), in 0-1;
- ``rule_pred`` / ``rules``: a rule's calls, 1.0 / 0.0 / NaN, NaN where the rule abstains
  (a missing input). An abstention is never counted as 0 or 1: rule statistics use the
  rule's *covered* rows only (:func:`net_benefit` makes the caller choose explicitly);
- ``groups``: optional patient ids, shape (n,); bootstrap resampling then draws patients
  (with all their rows) rather than rows. Without it each row is one patient.

Bootstrap CIs are percentile intervals over resamples; a resample where a statistic is
undefined (one class only, no predicted positives) is skipped for that statistic and the
number kept is reported in the ``method`` string.

Hand-written: :func:`delong_test`, DeLong's test for two correlated AUCs (no maintained
Python library provides it); the tests check its standard error against a paired bootstrap.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from models.metrics import diagnostic_odds_ratio, wilson_ci

__all__ = [
    "bootstrap_metrics",
    "compare_all_rules",
    "compare_with_rule",
    "delong_test",
    "diagnostic_odds_ratios",
    "model_at_sensitivity",
    "net_benefit",
    "rule_operating_point",
    "treat_all_net_benefit",
    "treat_none_net_benefit",
]

Abstention = Literal["raise", "treat-none", "covered"]


# --------------------------------------------------------------------------- validation


def _labels(y) -> np.ndarray:
    y = np.asarray(y, dtype=float).ravel()
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold only 0 (true progression) and 1 (pseudoprogression)")
    return y.astype(int)


def _probs(p, n: int, name: str = "p") -> np.ndarray:
    p = np.asarray(p, dtype=float).ravel()
    if p.shape[0] != n:
        raise ValueError(f"{name} has {p.shape[0]} rows, y has {n}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} must be finite")
    return p


def _rule(rule_pred, n: int) -> np.ndarray:
    r = np.asarray(rule_pred, dtype=float).ravel()
    if r.shape[0] != n:
        raise ValueError(f"rule_pred has {r.shape[0]} rows, y has {n}")
    if not np.isin(r[~np.isnan(r)], (0.0, 1.0)).all():
        raise ValueError("rule predictions must be 1.0, 0.0 or NaN (abstention)")
    return r


def _div(a, b):
    """a / b, NaN where b == 0."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


# --------------------------------------------------------------------------- net benefit


def treat_all_net_benefit(y, thresholds) -> np.ndarray:
    """Net benefit of calling every lesion pseudoprogression, per threshold probability.

    NB = prevalence - (1 - prevalence) * pt / (1 - pt); unitless (true positives per patient).
    """
    y = _labels(y)
    pt = _thresholds(thresholds)
    prev = y.mean() if y.size else np.nan
    return prev - (1.0 - prev) * pt / (1.0 - pt)


def treat_none_net_benefit(thresholds) -> np.ndarray:
    """Net benefit of calling no lesion pseudoprogression: 0 at every threshold probability."""
    return np.zeros_like(_thresholds(thresholds))


def _thresholds(thresholds) -> np.ndarray:
    pt = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if ((pt <= 0) | (pt >= 1)).any():
        raise ValueError("threshold probabilities must lie strictly between 0 and 1")
    return pt


def net_benefit(y, pred_or_p, thresholds, abstain: Abstention = "raise") -> np.ndarray:
    """Net benefit at each threshold probability: decision curve analysis (Vickers & Elkin 2006).

    NB(pt) = TP/n - FP/n * pt / (1 - pt), with a lesion called pseudoprogression when
    ``pred_or_p >= pt``. For a probability this re-thresholds at every pt; for a rule's 0/1
    prediction the same comparison returns the rule's fixed call at every pt.

    ``abstain`` says what a NaN prediction (a rule abstaining) means: ``"raise"`` (default)
    refuses, ``"treat-none"`` falls back to not calling pseudoprogression on that row (the
    denominator stays all n rows), ``"covered"`` evaluates on the covered rows only.
    Returns an array shaped like ``np.atleast_1d(thresholds)``; unitless.
    """
    y = _labels(y)
    s = np.asarray(pred_or_p, dtype=float).ravel()
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"pred_or_p has {s.shape[0]} rows, y has {y.shape[0]}")
    pt = _thresholds(thresholds)
    missing = np.isnan(s)
    if missing.any():
        if abstain == "raise":
            raise ValueError("pred_or_p has NaN (abstentions): pass abstain='treat-none' or "
                             "'covered'")
        if abstain == "treat-none":
            s = np.where(missing, -np.inf, s)
        elif abstain == "covered":
            y, s = y[~missing], s[~missing]
        else:
            raise ValueError(f"unknown abstain={abstain!r}")
    n = y.shape[0]
    if n == 0:
        return np.full(pt.shape, np.nan)
    called = s[None, :] >= pt[:, None]
    tp = (called & (y[None, :] == 1)).sum(axis=1)
    fp = (called & (y[None, :] == 0)).sum(axis=1)
    return tp / n - fp / n * pt / (1.0 - pt)


# --------------------------------------------------------------------------- point statistics


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted one half; NaN with one class.

    Average ranks by one sort and ``np.unique`` (the same as ``scipy.stats.rankdata``,
    several times faster inside bootstrap loops).
    """
    m = int(y.sum())
    k = y.shape[0] - m
    if m == 0 or k == 0:
        return np.nan
    order = np.argsort(s, kind="stable")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(s.shape[0])
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[y == 1].sum() - m * (m + 1) / 2) / (m * k))


def _counts(y: np.ndarray, called: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.sum(called & (y == 1)))
    fp = int(np.sum(called & (y == 0)))
    fn = int(np.sum(~called & (y == 1)))
    tn = int(np.sum(~called & (y == 0)))
    return tp, fp, fn, tn


def rule_operating_point(y, rule_pred, confidence_level: float = 0.95) -> dict:
    """A rule's counts and proportions on its covered rows, with Wilson CIs.

    Returns ``n_covered``, ``tp``, ``fp``, ``fn``, ``tn`` and, for ``sensitivity``,
    ``specificity``, ``ppv`` and ``npv``, a proportion (0-1, NaN when undefined) plus a
    ``<name>_ci`` pair.
    """
    y = _labels(y)
    r = _rule(rule_pred, y.shape[0])
    cov = ~np.isnan(r)
    tp, fp, fn, tn = _counts(y[cov], r[cov] == 1)
    out: dict = {"n_covered": int(cov.sum()), "tp": tp, "fp": fp, "fn": fn, "tn": tn}
    for name, k, m in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                       ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
        out[name] = k / m if m else np.nan
        out[f"{name}_ci"] = list(wilson_ci(k, m, alpha=1 - confidence_level))
    return out


def diagnostic_odds_ratios(y, rules: pd.DataFrame, confidence_level: float = 0.95
                           ) -> pd.DataFrame:
    """Diagnostic odds ratio of each rule on its covered rows, with a Woolf (logit) CI.

    OR = (TP * TN) / (FP * FN); when a cell is 0, 0.5 is added to all four (Haldane-Anscombe),
    via :func:`models.metrics.diagnostic_odds_ratio`.
    Returns one row per rule with columns ``label``, ``odds_ratio``, ``ci_low``, ``ci_high``,
    ``n`` (covered rows), the input :func:`models.figures.plot_odds_ratio_forest` expects.
    NaN when the covered rows hold one class only.
    """
    y = _labels(y)
    rows = []
    for rid in rules.columns:
        op = rule_operating_point(y, rules[rid].to_numpy(), confidence_level)
        if op["tp"] + op["fn"] == 0 or op["fp"] + op["tn"] == 0:
            or_, (lo, hi) = np.nan, (np.nan, np.nan)
        else:
            or_, (lo, hi) = diagnostic_odds_ratio(op["tp"], op["fp"], op["fn"], op["tn"],
                                                  alpha=1 - confidence_level)
        rows.append({"label": rid, "odds_ratio": or_, "ci_low": lo, "ci_high": hi,
                     "n": op["n_covered"]})
    return pd.DataFrame(rows, columns=["label", "odds_ratio", "ci_low", "ci_high", "n"])


def model_at_sensitivity(y, p, target: float) -> dict:
    """The model's operating point at the highest threshold whose sensitivity >= ``target``.

    Candidate thresholds are the distinct values of ``p`` (and one above them all, for a
    target of 0); a lesion is called pseudoprogression when ``p >= threshold``. Same
    operating point as :func:`models.metrics.operating_point_at_sensitivity`, without its
    CIs, so that it is cheap inside a bootstrap. Returns ``threshold`` (probability),
    ``sensitivity``, ``specificity`` and ``ppv`` (0-1); NaN when undefined.
    """
    y = _labels(y)
    p = _probs(p, y.shape[0])
    return _at_sensitivity(y, p, target)


def _at_sensitivity(y: np.ndarray, p: np.ndarray, target: float) -> dict:
    nan = {"threshold": np.nan, "sensitivity": np.nan, "specificity": np.nan, "ppv": np.nan}
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or not np.isfinite(target):
        return nan
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # end of each block of tied scores
    # first candidate: a threshold above every score (nothing called), for a target of 0
    thr = np.r_[np.nextafter(ps[0], np.inf), ps[last]]
    tp = np.r_[0, np.cumsum(ys)[last]]
    fp = np.r_[0, np.cumsum(1 - ys)[last]]
    i = int(np.argmax(tp / n_pos >= target - 1e-12))  # sensitivity reaches 1 at the end
    return {"threshold": float(thr[i]), "sensitivity": float(tp[i] / n_pos),
            "specificity": float(1.0 - fp[i] / n_neg) if n_neg else np.nan,
            "ppv": float(tp[i] / (tp[i] + fp[i])) if tp[i] + fp[i] else np.nan}


# --------------------------------------------------------------------------- bootstrap engine


def _bootstrap_distribution(statistic: Callable[[np.ndarray], np.ndarray], n: int,
                            groups, n_resamples: int, seed: int) -> tuple[np.ndarray, str]:
    """Statistic over resamples, shape (n_resamples, k), and a description of the scheme.

    Rows are resampled with scipy.stats.bootstrap (paired over row indices); with
    ``groups``, patient ids are resampled with replacement and carry all their rows.
    """
    rng = np.random.default_rng(seed)
    k = np.atleast_1d(statistic(np.arange(n))).shape[0]
    n_units = n if groups is None else len(np.unique(np.asarray(groups).ravel()))
    if n_units < 2:
        return np.full((n_resamples, k), np.nan), f"{n_units} row(s) or patient(s): no resampling"
    if groups is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NaN resamples: handled below, nan-aware
            res = stats.bootstrap((np.arange(n),), lambda i: statistic(np.asarray(i, int)),
                                  paired=True, vectorized=False, n_resamples=n_resamples,
                                  method="percentile", rng=rng)
        dist = np.atleast_2d(res.bootstrap_distribution).T
        return dist, "rows resampled with replacement (scipy.stats.bootstrap, paired=True)"
    g = np.asarray(groups).ravel()
    if g.shape[0] != n:
        raise ValueError(f"groups has {g.shape[0]} rows, y has {n}")
    _, inverse = np.unique(g, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(inverse.max() + 1)]
    out = []
    for _ in range(n_resamples):
        pick = rng.integers(0, len(members), len(members))
        out.append(statistic(np.concatenate([members[k] for k in pick])))
    return np.asarray(out, dtype=float), f"{len(members)} patients resampled with all their rows"


def _percentile_ci(dist: np.ndarray, confidence_level: float) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
    """Nan-aware percentile CI per column; returns low, high and the count of usable resamples."""
    alpha = (1 - confidence_level) / 2
    ok = np.isfinite(dist)
    kept = ok.sum(axis=0)
    lo = np.full(dist.shape[1], np.nan)
    hi = np.full(dist.shape[1], np.nan)
    for j in range(dist.shape[1]):
        if kept[j] >= 2:
            lo[j], hi[j] = np.quantile(dist[ok[:, j], j], [alpha, 1 - alpha])
    return lo, hi, kept


def _entries(names: Sequence[str], estimate: np.ndarray, dist: np.ndarray, scheme: str,
             confidence_level: float) -> dict:
    lo, hi, kept = _percentile_ci(dist, confidence_level)
    b = dist.shape[0]
    out = {}
    for j, name in enumerate(names):
        out[name] = {
            "estimate": float(estimate[j]),
            "ci": [float(lo[j]), float(hi[j])],
            "method": (f"{confidence_level:.0%} percentile bootstrap, {scheme}; "
                       f"{kept[j]} of {b} resamples defined"),
        }
    return out


# --------------------------------------------------------------------------- bootstrap metrics


def bootstrap_metrics(y, p, threshold: float, groups=None, n_resamples: int = 1000,
                      seed: int = 0, nb_thresholds: Sequence[float] = (0.1, 0.2, 0.3),
                      confidence_level: float = 0.95) -> dict:
    """Bootstrap CIs for the model's discrimination, calibration error and decisions.

    Metrics: ``auc``; ``brier`` (mean squared error of ``p``, 0-1); ``sensitivity``,
    ``specificity``, ``ppv``, ``npv`` with pseudoprogression called at ``p >= threshold``;
    and ``net_benefit@<pt>`` at each of ``nb_thresholds`` (decision curve, unitless).
    Returns ``{metric: {"estimate": float, "ci": [low, high], "method": str}}``; resampling
    is by patient (``groups``) or by row, seeded with ``np.random.default_rng(seed)``.
    """
    y = _labels(y)
    p = _probs(p, y.shape[0])
    nb_pt = _thresholds(nb_thresholds)
    names = (["auc", "brier", "sensitivity", "specificity", "ppv", "npv"]
             + [f"net_benefit@{t:.2f}" for t in nb_pt])

    def statistic(idx: np.ndarray) -> np.ndarray:
        yy, pp = y[idx], p[idx]
        tp, fp, fn, tn = _counts(yy, pp >= threshold)
        n = yy.shape[0]
        nb = (tp / n - fp / n * nb_pt / (1 - nb_pt)) if n else np.full(nb_pt.shape, np.nan)
        return np.r_[_auc(yy, pp), np.mean((pp - yy) ** 2) if n else np.nan,
                     _div(tp, tp + fn), _div(tn, tn + fp), _div(tp, tp + fp),
                     _div(tn, tn + fn), nb]

    estimate = statistic(np.arange(y.shape[0]))
    dist, scheme = _bootstrap_distribution(statistic, y.shape[0], groups, n_resamples, seed)
    return _entries(names, estimate, dist, scheme, confidence_level)


# --------------------------------------------------------------------------- DeLong


def delong_test(y, score_a, score_b, confidence_level: float = 0.95) -> dict:
    """DeLong's test for two correlated AUCs on the same rows (DeLong et al. 1988).

    Uses the midrank form of the structural components (Sun & Xu 2014); ties count one
    half, so a 0/1 rule's AUC is (sensitivity + specificity) / 2. Hand-written because no
    maintained Python library (scipy, statsmodels, scikit-learn) provides it.
    Returns ``auc_a``, ``auc_b``, ``difference`` (a - b), its ``se``, ``z``, two-sided
    ``p_value`` and a normal-theory ``ci``.
    """
    y = _labels(y)
    a = _probs(score_a, y.shape[0], "score_a")
    b = _probs(score_b, y.shape[0], "score_b")
    pos = y == 1
    m, k = int(pos.sum()), int((~pos).sum())
    nan = {"auc_a": np.nan, "auc_b": np.nan, "difference": np.nan, "se": np.nan,
           "z": np.nan, "p_value": np.nan, "ci": [np.nan, np.nan]}
    if m < 2 or k < 2:
        return nan
    v10 = np.empty((2, m))
    v01 = np.empty((2, k))
    for j, s in enumerate((a, b)):
        x, w = s[pos], s[~pos]
        r_all = stats.rankdata(np.r_[x, w])
        v10[j] = (r_all[:m] - stats.rankdata(x)) / k  # P(score_neg < x_i), ties 1/2
        v01[j] = 1.0 - (r_all[m:] - stats.rankdata(w)) / m  # P(score_pos > w_j)
    auc = v10.mean(axis=1)
    c = np.array([1.0, -1.0])
    var = c @ np.cov(v10) @ c / m + c @ np.cov(v01) @ c / k
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    zq = stats.norm.ppf(0.5 + confidence_level / 2)
    if se > 0:
        z = diff / se
        pval = float(2 * stats.norm.sf(abs(z)))
    else:
        z, pval = (0.0, 1.0) if diff == 0 else (np.sign(diff) * np.inf, 0.0)
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "difference": diff, "se": se,
            "z": float(z), "p_value": pval, "ci": [float(diff - zq * se), float(diff + zq * se)]}


# --------------------------------------------------------------------------- model vs rule


def compare_with_rule(y, p, rule_pred, n_resamples: int = 1000, seed: int = 0,
                      groups=None, confidence_level: float = 0.95) -> dict:
    """Paired comparison of the model with one rule on the rule's covered rows.

    The model is read at the rule's sensitivity (highest threshold reaching sensitivity >=
    the rule's, :func:`model_at_sensitivity`). Reported differences, model minus rule, each
    with a paired bootstrap CI (rows, or patients with ``groups``, resampled jointly for
    model and rule, the operating point re-found in every resample):

    - ``ppv_difference``, ``specificity_difference``: at the matched sensitivity (0-1);
    - ``auc_difference``: model AUC minus the rule's (sensitivity + specificity) / 2.

    ``delong`` holds DeLong's test of the AUC difference (:func:`delong_test`). ``rule`` and
    ``model`` hold the point estimates; ``n_covered`` the rows the rule decides.
    """
    y = _labels(y)
    p = _probs(p, y.shape[0])
    r = _rule(rule_pred, y.shape[0])
    cov = ~np.isnan(r)
    yc, pc, rc = y[cov], p[cov], r[cov]
    gc = None if groups is None else np.asarray(groups).ravel()[cov]
    names = ["ppv_difference", "specificity_difference", "auc_difference"]

    def parts(idx: np.ndarray) -> tuple[dict, dict, float, float]:
        yy, pp, rr = yc[idx], pc[idx], rc[idx]
        tp, fp, fn, tn = _counts(yy, rr == 1)
        rule = {"sensitivity": float(_div(tp, tp + fn)), "specificity": float(_div(tn, tn + fp)),
                "ppv": float(_div(tp, tp + fp))}
        model = _at_sensitivity(yy, pp, rule["sensitivity"])
        # a 0/1 rule's Mann-Whitney AUC (ties one half) is (sensitivity + specificity) / 2
        return rule, model, _auc(yy, pp), (rule["sensitivity"] + rule["specificity"]) / 2

    def statistic(idx: np.ndarray) -> np.ndarray:
        rule, model, auc_m, auc_r = parts(idx)
        return np.array([model["ppv"] - rule["ppv"],
                         model["specificity"] - rule["specificity"], auc_m - auc_r])

    rule, model, auc_m, auc_r = parts(np.arange(yc.shape[0]))
    rule["auc"], model["auc"] = auc_r, auc_m
    out: dict = {"n_covered": int(cov.sum()), "n_positive": int(yc.sum()),
                 "rule": rule, "model": model}
    estimate = statistic(np.arange(yc.shape[0]))
    dist, scheme = _bootstrap_distribution(statistic, yc.shape[0], gc, n_resamples, seed)
    out.update(_entries(names, estimate, dist, "model and rule resampled jointly, " + scheme,
                        confidence_level))
    out["delong"] = delong_test(yc, pc, rc, confidence_level)
    return out


def compare_all_rules(y, p, rules: pd.DataFrame, n_resamples: int = 1000, seed: int = 0,
                      groups=None, confidence_level: float = 0.95) -> dict[str, dict]:
    """:func:`compare_with_rule` for every column of ``rules`` (one column per rule id)."""
    return {str(rid): compare_with_rule(y, p, rules[rid].to_numpy(), n_resamples=n_resamples,
                                        seed=seed, groups=groups,
                                        confidence_level=confidence_level)
            for rid in rules.columns}
