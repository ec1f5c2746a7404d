"""Every statistic of the benchmark, once: proportions, odds ratios, AUC, calibration,
operating points, prevalence, net benefit, bootstrap and paired model-vs-rule tests.

Positive class everywhere: pseudoprogression (label 1). Proportions are in 0-1; every
interval is a 95% interval unless ``alpha`` or ``confidence_level`` says otherwise,
returned as a 2-element list. Inputs are plain arrays, so nothing here depends on the
classifier:

- ``y``: labels, shape (n,), 1 pseudoprogression, 0 true progression;
- ``p``: the model's calibrated P(pseudoprogression), shape (n,), in 0-1;
- a rule's calls: 1.0 / 0.0 / NaN, NaN where the rule abstains (a missing input). An
  abstention is never counted as 0 or 1: rule statistics use the rule's *covered* rows and
  report the rest as ``coverage`` (:func:`net_benefit` makes the caller choose explicitly);
- ``groups``: optional patient ids, shape (n,); bootstrap resampling then draws patients
  (with all their rows) rather than rows.

Library methods: Wilson intervals (statsmodels ``proportion_confint``), Brier score
(scikit-learn ``brier_score_loss``), calibration slope and intercept and per-feature odds
ratios (statsmodels ``Logit``/``GLM``).

Hand-written, because no maintained library in the environment provides them:

- :func:`delong_components`: DeLong's placement values (Sun & Xu 2014), behind both the
  AUC interval (:func:`auc_with_ci`) and the two-AUC test (:func:`delong_test`); tests check
  them against a bootstrap;
- :func:`auc`: the Mann-Whitney AUC by one sort (tested against scikit-learn's
  ``roc_auc_score``, several times faster inside bootstrap loops);
- :func:`diagnostic_odds_ratio`: the Woolf (logit) interval of the DOR, a four-line formula;
- :func:`restate_at_prevalence`: PPV and NPV at another prevalence by Bayes' theorem, with the
  logit interval of Mercaldo, Lau & Zhou (Stat Med 2007);
- the bootstrap's resampling loop, one for rows and for patients with all their rows:
  ``scipy.stats.bootstrap`` resamples rows only, and a seed's draws there may change with
  its version; the loop draws what it drew for rows, so a seed gives the same bytes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

_P_CLIP = 1e-6
NAN = float("nan")
Abstention = Literal["raise", "treat-none", "covered"]


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


def _predictions(y_pred, n: int | None = None, name: str = "y_pred") -> np.ndarray:
    """0/1 calls as a float array of 1.0 / 0.0 / NaN (NaN = abstention), of length ``n``."""
    v = np.asarray(y_pred, dtype=float).ravel()
    if n is not None and v.shape[0] != n:
        raise ValueError(f"{name} has {v.shape[0]} rows, y has {n}.")
    ok = np.isnan(v) | np.isin(v, (0.0, 1.0))
    if not ok.all():
        raise ValueError(f"{name} must hold 1.0, 0.0 or NaN (abstention).")
    return v


def _scores(p, n: int | None = None, name: str = "p", probability: bool = False) -> np.ndarray:
    """Scores as a finite float array of length ``n``; in [0, 1] when ``probability``."""
    v = np.asarray(p, dtype=float).ravel()
    if n is not None and v.shape[0] != n:
        raise ValueError(f"{name} has {v.shape[0]} rows, y has {n}.")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} must hold finite values with no missing values.")
    if probability and ((v < 0).any() or (v > 1).any()):
        raise ValueError(f"{name} must hold probabilities in [0, 1].")
    return v


def _probabilities(p, n: int | None = None, name: str = "p") -> np.ndarray:
    """``p`` as a float array of probabilities in [0, 1] with no NaN."""
    return _scores(p, n, name, probability=True)


def _div(a, b):
    """a / b, NaN where b == 0."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _nan_pair() -> list[float]:
    return [NAN, NAN]


# --------------------------------------------------------------------------- clustering


def clusters(groups, n: int) -> np.ndarray | None:
    """Cluster (patient) index 0..I-1 of each of ``n`` rows, or None when ``groups`` is None
    or every group holds one row: the rows are then independent and every interval is the
    plain one."""
    if groups is None:
        return None
    g = np.asarray(groups).ravel()
    if g.shape[0] != n:
        raise ValueError(f"groups has {g.shape[0]} rows, y has {n}.")
    _, index = np.unique(g.astype(str), return_inverse=True)
    index = index.ravel()
    if index.size == 0 or index.max() + 1 == n:
        return None
    return index


def _cluster_sums(values: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Sums of the columns of ``values`` (shape (n,) or (n, k)) within each cluster."""
    values = np.asarray(values, dtype=float)
    out = np.zeros((int(cluster.max()) + 1,) + values.shape[1:])
    np.add.at(out, cluster, values)
    return out


def _sandwich(influence: np.ndarray, cluster: np.ndarray) -> float:
    """Cluster-robust variance of a mean-type estimate from its rows' influence values:
    I/(I-1) * sum over clusters of (sum of the cluster's values)^2, I = clusters present."""
    sums = _cluster_sums(influence, cluster)
    present = np.bincount(cluster, minlength=sums.shape[0]) > 0
    n_clusters = int(present.sum())
    if n_clusters < 2:
        return NAN
    return float(n_clusters / (n_clusters - 1) * np.sum(sums[present] ** 2))


def reference_distribution(cluster: np.ndarray | None):
    """The distribution intervals and tests refer to: the standard normal for independent
    rows; for rows clustered in patients (``cluster``, from :func:`clusters`), Student's t
    on (patients - 1) degrees of freedom, the small-sample rule for a cluster-robust
    variance (Cameron & Miller, J Hum Resour 2015;50:317-372), which keeps the coverage of a
    cohort of a dozen patients near its nominal level (a scipy.stats frozen distribution;
    t on 0 degrees of freedom, all nan, with one patient)."""
    if cluster is None:
        return stats.norm()
    return stats.t(int(np.unique(cluster).size) - 1)


def critical_value(cluster: np.ndarray | None, alpha: float = 0.05) -> float:
    """The two-sided critical value of an interval at level ``1 - alpha`` in
    :func:`reference_distribution`."""
    return float(reference_distribution(cluster).ppf(1 - alpha / 2))


#: The degrees of freedom of every interval on clustered rows, in words.
_ON_PATIENTS = "; Student's t on (patients - 1) degrees of freedom"
#: How reports describe the intervals of proportions and odds ratios on clustered rows.
CLUSTERED_PROPORTION_METHOD = (
    "Wilson interval on the effective number of lesions (lesions divided by the design "
    "effect of the patients' clustering: the cluster-robust (ratio-estimator) variance over "
    "the binomial one, below 1 where a patient's lesions disagree more than chance would "
    "have them)" + _ON_PATIENTS)
CLUSTERED_DOR_METHOD = ("Woolf (logit) interval with its variance multiplied by the design "
                        "effect of the patients' clustering" + _ON_PATIENTS)
CLUSTERED_AUC_METHOD = ("clustered DeLong standard error (Obuchowski, Biometrics 1997: "
                        "placement values summed per patient), interval on the logit scale"
                        + _ON_PATIENTS)
CLUSTERED_CALIBRATION_METHOD = ("Wald intervals of the logistic recalibration fits with "
                                "cluster-robust (patient) standard errors" + _ON_PATIENTS)


#: The smallest design effect used: a cluster-robust variance of 0 (every patient's lesions
#: balance exactly) would make the effective count infinite.
MIN_DESIGN_EFFECT = 1e-6


def proportion_design_effect(hits, cluster: np.ndarray | None) -> float:
    """Design effect of a proportion ``mean(hits)`` over clustered rows: the cluster-robust
    (ratio-estimator) variance sum_i (h_i - r n_i)^2 I/(I-1) / n^2 over the binomial
    r(1-r)/n. Not floored at 1: below 1 when a patient's lesions disagree more than
    independent ones would (a negative within-patient correlation), where the interval is
    then narrower than Wilson's on the lesions, as a patient bootstrap's is. Where the
    binomial variance is 0 (r = 0 or 1) it is the mean rows per cluster (every cluster
    alike: the effective count is the clusters). 1 when ``cluster`` is None."""
    h = np.asarray(hits, dtype=float)
    n = h.shape[0]
    if cluster is None or n == 0:
        return 1.0
    r = h.mean()
    n_clusters = int(np.unique(cluster).size)
    if r in (0.0, 1.0) or n_clusters < 2:
        return max(1.0, n / max(n_clusters, 1))
    robust = _sandwich((h - r) / n, cluster)
    return max(MIN_DESIGN_EFFECT, robust / (r * (1 - r) / n))


def _clustered_proportion(hits: np.ndarray, cluster: np.ndarray | None,
                          alpha: float = 0.05) -> tuple[float, list[float], float]:
    """Proportion, its interval and design effect: Wilson's on ``n / design effect``, at the
    critical value of :func:`critical_value` (t on patients - 1 degrees of freedom)."""
    n = hits.shape[0]
    if n == 0:
        return NAN, _nan_pair(), NAN
    deff = proportion_design_effect(hits, cluster)
    share = float(hits.mean())
    if cluster is None:
        return share, list(wilson_ci(int(hits.sum()), n, alpha)), 1.0
    from statsmodels.stats.proportion import proportion_confint

    n_eff = n / deff
    level = 2 * float(stats.norm.sf(critical_value(cluster, alpha)))  # Wilson's alpha at t
    lo, hi = proportion_confint(share * n_eff, n_eff, alpha=level, method="wilson")
    return share, [float(min(lo, share)), float(max(hi, share))], float(deff)


# --------------------------------------------------------------------------- proportions


def wilson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of the proportion ``k / n``; (nan, nan) when ``n == 0``.

    statsmodels' bounds at ``k = 0`` and ``k = n`` can miss 0 and 1 by a unit in the last
    place, so the interval is widened to hold ``k / n`` itself.
    """
    if n <= 0:
        return (NAN, NAN)
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(int(k), int(n), alpha=alpha, method="wilson")
    share = k / n
    return (float(min(lo, share)), float(max(hi, share)))


def _proportion(k: int, n: int, alpha: float = 0.05) -> tuple[float, list[float]]:
    """``k / n`` and its Wilson interval, nan when ``n == 0``."""
    if n <= 0:
        return NAN, _nan_pair()
    return k / n, list(wilson_ci(k, n, alpha))


def called(p, threshold: float) -> np.ndarray:
    """Where a score calls pseudoprogression: ``p >= threshold`` (the one definition)."""
    return np.asarray(p, dtype=float) >= threshold


def _counts(y: np.ndarray, calls: np.ndarray) -> tuple[int, int, int, int]:
    """tp, fp, fn, tn of boolean calls against 0/1 labels."""
    tp = int(np.sum(calls & (y == 1)))
    fp = int(np.sum(calls & (y == 0)))
    fn = int(np.sum(~calls & (y == 1)))
    tn = int(np.sum(~calls & (y == 0)))
    return tp, fp, fn, tn


def confusion_counts(y_true, y_pred) -> dict:
    """Counts tp, fp, tn, fn of 0/1 predictions against 0/1 labels.

    Rows where ``y_pred`` is NaN (a rule's abstention) are not counted.
    """
    y = _labels(y_true)
    pred = _predictions(y_pred, y.shape[0])
    covered = ~np.isnan(pred)
    tp, fp, fn, tn = _counts(y[covered], pred[covered] == 1)
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


#: How reports describe the Haldane-Anscombe correction of a 2x2 table with a zero cell.
HALDANE_NOTE = "0.5 added to every cell (a cell was 0)"


def diagnostic_odds_ratio(tp: int, fp: int, fn: int, tn: int,
                          alpha: float = 0.05) -> tuple[float, tuple[float, float]]:
    """Diagnostic odds ratio (tp*tn)/(fp*fn) with its Woolf (logit) interval.

    When any cell is 0, 0.5 is added to every cell (Haldane-Anscombe) before both the
    ratio and its interval are computed (:func:`dor_note` says so for reports). Undefined
    (nan) when the table is empty, when a class is absent, or when the test never calls
    positive (tp = fp = 0) or never negative (fn = tn = 0): the ratio then says nothing
    about the test, and a 0.5-corrected number would only reflect the correction.
    """
    cells = np.array([tp, fp, fn, tn], dtype=float)
    if cells.sum() <= 0 or tp + fn == 0 or fp + tn == 0 or tp + fp == 0 or fn + tn == 0:
        return NAN, (NAN, NAN)
    if (cells == 0).any():
        cells = cells + 0.5
    a, b, c, d = cells
    log_dor = math.log(a * d / (b * c))
    se = math.sqrt((1.0 / cells).sum())
    z = stats.norm.ppf(1 - alpha / 2)
    return math.exp(log_dor), (math.exp(log_dor - z * se), math.exp(log_dor + z * se))


def dor_note(tp: int, fp: int, fn: int, tn: int) -> str:
    """Why a diagnostic odds ratio is undefined or corrected; '' when it is plain."""
    if tp + fn + fp + tn == 0:
        return "undefined: no rows"
    if tp + fn == 0 or fp + tn == 0:
        return "undefined: one class only"
    if tp + fp == 0:
        return "undefined: never calls pseudoprogression"
    if fn + tn == 0:
        return "undefined: always calls pseudoprogression"
    return HALDANE_NOTE if min(tp, fp, fn, tn) == 0 else ""


def _metrics_from_counts(tp: int, fp: int, tn: int, fn: int, alpha: float = 0.05) -> dict:
    """The :func:`binary_metrics` dict from the four counts."""
    n_pos, n_neg = tp + fn, tn + fp
    sens, sens_ci = _proportion(tp, n_pos, alpha)
    spec, spec_ci = _proportion(tn, n_neg, alpha)
    ppv, ppv_ci = _proportion(tp, tp + fp, alpha)
    npv, npv_ci = _proportion(tn, tn + fn, alpha)
    dor, dor_ci = diagnostic_odds_ratio(tp, fp, fn, tn, alpha)
    return {
        "n": int(n_pos + n_neg), "n_positive": int(n_pos),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        "sensitivity": sens, "sensitivity_ci": sens_ci,
        "specificity": spec, "specificity_ci": spec_ci,
        "ppv": ppv, "ppv_ci": ppv_ci,
        "npv": npv, "npv_ci": npv_ci,
        "dor": dor, "dor_ci": list(dor_ci), "dor_note": dor_note(tp, fp, fn, tn),
    }


def binary_metrics(y_true, y_pred, alpha: float = 0.05, groups=None) -> dict:
    """Sensitivity, specificity, PPV, NPV (Wilson CIs) and DOR (Woolf CI) of 0/1 predictions.

    Keys: n, n_positive, tp, fp, tn, fn, sensitivity(_ci), specificity(_ci), ppv(_ci),
    npv(_ci), dor(_ci), dor_note (:func:`dor_note`). A metric whose denominator is 0 is
    nan. Rows where ``y_pred`` is NaN are not counted (``n`` is the number of covered rows).

    ``groups``: the patient of each row. When a patient has several covered rows, the
    intervals account for the clustering (:data:`CLUSTERED_PROPORTION_METHOD`,
    :data:`CLUSTERED_DOR_METHOD`) and ``design_effect`` holds each figure's design effect
    and ``n_patients`` the patients; with one row per patient nothing changes.
    """
    y = _labels(y_true)
    pred = _predictions(y_pred, y.shape[0])
    covered = ~np.isnan(pred)
    c = confusion_counts(y[covered], pred[covered])
    out = _metrics_from_counts(c["tp"], c["fp"], c["tn"], c["fn"], alpha)
    cluster = None if groups is None else clusters(np.asarray(groups).ravel()[covered],
                                                   int(covered.sum()))
    if cluster is None:
        return out
    yc, call = y[covered], pred[covered] == 1
    deff = {}
    for key, rows, hits in (("sensitivity", yc == 1, call), ("specificity", yc == 0, ~call),
                            ("ppv", call, yc == 1), ("npv", ~call, yc == 0)):
        sub = clusters(cluster[rows], int(rows.sum())) if rows.any() else None
        _, ci, d = _clustered_proportion(hits[rows].astype(float), sub, alpha)
        if np.isfinite(out[key]):
            out[f"{key}_ci"], deff[key] = ci, d
    deff["dor"] = _dor_design_effect(yc, call, cluster)
    if np.isfinite(out["dor"]):
        log_dor = math.log(out["dor"])
        widen = critical_value(cluster, alpha) / critical_value(None, alpha)
        half = math.log(out["dor_ci"][1] / out["dor"]) * math.sqrt(deff["dor"]) * widen
        out["dor_ci"] = [math.exp(log_dor - half), math.exp(log_dor + half)]
    out["design_effect"] = deff
    out["n_patients"] = int(np.unique(cluster).size)
    return out


def _dor_design_effect(y: np.ndarray, call: np.ndarray, cluster: np.ndarray) -> float:
    """Design effect of the log diagnostic odds ratio, logit(Se) + logit(Sp): the
    cluster-robust variance of its linearisation over the independent-rows one (below 1
    where a patient's lesions disagree more than chance, as for
    :func:`proportion_design_effect`)
    (Haldane-corrected Se and Sp where a cell is 0)."""
    pos, neg = y == 1, y == 0
    n1, n0 = int(pos.sum()), int(neg.sum())
    if n1 == 0 or n0 == 0:
        return 1.0
    tp, fp, fn, tn = _counts(y, call)
    half = 0.5 if min(tp, fp, fn, tn) == 0 else 0.0
    se = (tp + half) / (n1 + 2 * half)
    sp = (tn + half) / (n0 + 2 * half)
    if not (0 < se < 1 and 0 < sp < 1):
        return 1.0
    psi = np.where(pos, (call - se) / (n1 * se * (1 - se)),
                   (~call - sp) / (n0 * sp * (1 - sp)))
    independent = float(np.sum(psi ** 2))
    robust = _sandwich(psi, cluster)
    if not (independent > 0 and np.isfinite(robust)):
        return 1.0
    return max(MIN_DESIGN_EFFECT, robust / independent)


def diagnostic_odds_ratios(y, rules: pd.DataFrame, confidence_level: float = 0.95
                           ) -> pd.DataFrame:
    """Diagnostic odds ratio of each rule on its covered rows (:func:`binary_metrics`).

    One row per rule with columns ``label``, ``odds_ratio``, ``ci_low``, ``ci_high``, ``n``
    (covered rows) and ``note`` (:func:`dor_note`), the input of the odds-ratio forest plot.
    """
    y = _labels(y)
    rows = []
    for rid in rules.columns:
        m = binary_metrics(y, rules[rid].to_numpy(dtype=float), alpha=1 - confidence_level)
        rows.append({"label": rid, "odds_ratio": m["dor"], "ci_low": m["dor_ci"][0],
                     "ci_high": m["dor_ci"][1], "n": m["n"], "note": m["dor_note"]})
    return pd.DataFrame(rows, columns=["label", "odds_ratio", "ci_low", "ci_high", "n", "note"])


# --------------------------------------------------------------------------- probabilities


def auc(y, s) -> float:
    """Mann-Whitney ROC AUC with ties counted one half; nan with one class.

    Average ranks by one sort and ``np.unique`` (the same as ``scipy.stats.rankdata``, and
    as scikit-learn's ``roc_auc_score``, several times faster inside bootstrap loops). A 0/1
    rule's AUC is therefore (sensitivity + specificity) / 2.
    """
    y = np.asarray(y)
    s = np.asarray(s, dtype=float)
    m = int(y.sum())
    k = y.shape[0] - m
    if m == 0 or k == 0:
        return NAN
    order = np.argsort(s, kind="stable")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(s.shape[0])
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[y == 1].sum() - m * (m + 1) / 2) / (m * k))


def delong_components(y: np.ndarray, scores: Sequence[np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DeLong's structural components of one or more AUCs on the same rows.

    Midrank placement values (Sun & Xu 2014): V10[j, i] is the fraction of negatives scored
    below positive i by score j (ties one half), V01[j, k] the fraction of positives scored
    above negative k. Returns (aucs, v10, v01); ``Cov(AUC) = cov(V10)/n1 + cov(V01)/n0``.
    """
    pos = y == 1
    m, k = int(pos.sum()), int((~pos).sum())
    v10 = np.empty((len(scores), m))
    v01 = np.empty((len(scores), k))
    for j, s in enumerate(scores):
        x, w = s[pos], s[~pos]
        r_all = stats.rankdata(np.r_[x, w])
        v10[j] = (r_all[:m] - stats.rankdata(x)) / k
        v01[j] = 1.0 - (r_all[m:] - stats.rankdata(w)) / m
    return v10.mean(axis=1), v10, v01


def _covariance(v: np.ndarray) -> np.ndarray:
    """Sample covariance of the rows of ``v`` (as ``np.cov``), summed by numpy's pairwise
    sums: ``np.cov`` goes through BLAS, whose sums change with its thread count on long rows
    (about 10,000 lesions of a class), and so would the reported intervals."""
    d = v - v.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (d[:, None, :] * d[None, :, :]).sum(axis=-1) / (v.shape[1] - 1)


def _delong_covariance(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    return _covariance(v10) / v10.shape[1] + _covariance(v01) / v01.shape[1]


def _obuchowski_covariance(y: np.ndarray, aucs: np.ndarray, v10: np.ndarray,
                           v01: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Covariance of AUCs on clustered rows (Obuchowski, Biometrics 1997, eqs. 3-5).

    Each patient i sums its positives' and its negatives' placement values, V10_i and V01_i;
    with m_i positives, n_i negatives, N1 and N0 in all, I10 patients with a positive row,
    I01 with a negative one and I in all, A_i = (V10_i - m_i AUC)/N1 and
    B_i = (V01_i - n_i AUC)/N0:
    Cov = I10/(I10-1) sum A A' + I01/(I01-1) sum B B' + I/(I-1) sum (A B' + B A')
    (her S10/N1 + S01/N0 + 2 S11/(N1 N0)). Undefined (NaN) with fewer than two patients
    of a class."""
    pos = y == 1
    n1, n0 = v10.shape[1], v01.shape[1]
    n_clusters = int(cluster.max()) + 1
    a = _cluster_sums(v10.T, cluster[pos]) if n1 else np.zeros((0, len(aucs)))
    b = _cluster_sums(v01.T, cluster[~pos]) if n0 else np.zeros((0, len(aucs)))
    a = np.vstack([a, np.zeros((n_clusters - a.shape[0], a.shape[1]))])
    b = np.vstack([b, np.zeros((n_clusters - b.shape[0], b.shape[1]))])
    m = np.bincount(cluster[pos], minlength=n_clusters)[:, None]
    k = np.bincount(cluster[~pos], minlength=n_clusters)[:, None]
    big_a, big_b = (a - m * aucs) / n1, (b - k * aucs) / n0

    def factor(count: int) -> float:
        return count / (count - 1) if count > 1 else float("nan")

    return (factor(int((m > 0).sum())) * (big_a.T @ big_a)
            + factor(int((k > 0).sum())) * (big_b.T @ big_b)
            + factor(n_clusters) * (big_a.T @ big_b + big_b.T @ big_a))


def auc_covariance(y: np.ndarray, scores: Sequence[np.ndarray],
                   cluster: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``scores`` on the same rows and their covariance: DeLong's for independent
    rows, Obuchowski's (:func:`_obuchowski_covariance`) when ``cluster`` (from
    :func:`clusters`) says some patients have several rows."""
    aucs, v10, v01 = delong_components(y, scores)
    if cluster is None:
        return aucs, _delong_covariance(v10, v01)
    return aucs, _obuchowski_covariance(y, aucs, v10, v01, cluster)


#: How reports describe the AUC interval.
AUC_CI_METHOD = "DeLong standard error, interval on the logit scale (stays within 0-1)"


def auc_with_ci(y_true, p, alpha: float = 0.05, groups=None) -> tuple[float, list[float]]:
    """ROC AUC with its DeLong interval, formed on the logit scale (:data:`AUC_CI_METHOD`).

    logit(AUC) +/- z * SE / (AUC (1 - AUC)) mapped back, so the interval never passes 0 or
    1 and is not cut there. nan when only one class is present; the interval is nan with
    fewer than two rows of a class or an AUC of exactly 0 or 1. ``groups``: the patient of
    each row; when a patient has several rows the standard error is Obuchowski's clustered
    one (:data:`CLUSTERED_AUC_METHOD`).
    """
    y = _labels(y_true)
    prob = _scores(p, y.shape[0])
    value = auc(y, prob)
    if not np.isfinite(value):
        return NAN, _nan_pair()
    if min(int(y.sum()), int((1 - y).sum())) < 2 or value in (0.0, 1.0):
        return value, _nan_pair()
    cluster = clusters(groups, y.shape[0])
    _, cov = auc_covariance(y, [prob], cluster)
    se = float(np.sqrt(max(cov[0, 0], 0.0)))
    z = critical_value(cluster, alpha)
    half = z * se / (value * (1 - value))
    centre = math.log(value / (1 - value))
    return value, [float(1 / (1 + math.exp(-(centre - half)))),
                   float(1 / (1 + math.exp(-(centre + half))))]


def delong_test(y, score_a, score_b, confidence_level: float = 0.95, groups=None) -> dict:
    """DeLong's test for two correlated AUCs on the same rows (DeLong et al. 1988).

    Uses :func:`delong_components`; ties count one half, so a 0/1 rule's AUC is
    (sensitivity + specificity) / 2. Returns ``auc_a``, ``auc_b``, ``difference`` (a - b),
    its ``se``, ``z``, two-sided ``p_value`` and ``ci`` of the difference (normal theory; with
    clustered rows Student's t on patients - 1 degrees of freedom, :func:`critical_value`).
    ``groups``: the patient of each row; when a patient has several rows the covariance is
    Obuchowski's clustered one (:func:`auc_covariance`) and ``method`` says so.
    """
    y = _labels(y)
    a = _scores(score_a, y.shape[0], "score_a")
    b = _scores(score_b, y.shape[0], "score_b")
    m, k = int(y.sum()), int((1 - y).sum())
    nan = {"auc_a": NAN, "auc_b": NAN, "difference": NAN, "se": NAN,
           "z": NAN, "p_value": NAN, "ci": _nan_pair()}
    if m < 2 or k < 2:
        return nan
    cluster = clusters(groups, y.shape[0])
    aucs, cov = auc_covariance(y, [a, b], cluster)
    c = np.array([1.0, -1.0])
    var = c @ cov @ c
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(var, 0.0)))
    zq = critical_value(cluster, 1 - confidence_level)
    reference = reference_distribution(cluster)
    if se > 0:
        z = diff / se
        pval = float(2 * reference.sf(abs(z)))
    else:
        z, pval = (0.0, 1.0) if diff == 0 else (np.sign(diff) * np.inf, 0.0)
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": diff, "se": se,
            "z": float(z), "p_value": pval, "ci": [float(diff - zq * se), float(diff + zq * se)],
            "method": ("DeLong" if cluster is None else
                       "DeLong with Obuchowski's clustered covariance (patients)")}


def brier_score(y_true, p) -> float:
    """Brier score, the mean squared difference between ``p`` and the 0/1 label."""
    from sklearn.metrics import brier_score_loss

    y = _labels(y_true)
    prob = _probabilities(p, y.shape[0])
    if len(y) == 0:
        return NAN
    return float(brier_score_loss(y, prob))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _P_CLIP, 1 - _P_CLIP)
    return np.log(q / (1 - q))


#: How reports describe the calibration intervals.
CALIBRATION_CI_METHOD = "Wald intervals of the logistic recalibration fits"


def calibration_intercept_slope(y_true, p, groups=None) -> dict:
    """Calibration slope and calibration-in-the-large, each with a 95% Wald interval.

    calibration_slope: coefficient of logit(p) in a logistic regression of y on logit(p)
    (1 is ideal; below 1 means over-confident probabilities). calibration_intercept:
    intercept of a logistic regression of y with logit(p) as offset (0 is ideal; above 0
    means the model under-predicts). ``p`` is clipped to [1e-6, 1 - 1e-6]. Values are
    nan when a fit is impossible (one class; the slope also when the classes do not overlap
    on logit(p), where its estimate does not exist). ``groups``: the patient of each
    row; when a patient has several rows the standard errors are cluster-robust
    (:data:`CLUSTERED_CALIBRATION_METHOD`); the estimates do not change.
    """
    import statsmodels.api as sm

    y = _labels(y_true)
    prob = _probabilities(p, y.shape[0])
    cluster = clusters(groups, y.shape[0])
    robust = ({} if cluster is None else  # t on patients - 1 degrees of freedom
              {"cov_type": "cluster", "cov_kwds": {"groups": cluster}, "use_t": True})
    out = {"calibration_intercept": NAN, "calibration_intercept_ci": _nan_pair(),
           "calibration_slope": NAN, "calibration_slope_ci": _nan_pair()}
    if len(np.unique(y)) < 2:
        return out
    lp = _logit(prob)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(),
                         offset=lp).fit(**robust)
            ci = np.asarray(fit.conf_int())[0]
            if np.isfinite(fit.params[0]):
                out["calibration_intercept"] = float(fit.params[0])
                out["calibration_intercept_ci"] = [float(ci[0]), float(ci[1])]
        except Exception:  # a failed fit is reported as nan
            pass
        # the slope's maximum-likelihood estimate exists only where the classes overlap on
        # logit(p); separated classes (AUC 0 or 1) leave it undefined, not merely large
        lp1, lp0 = lp[y == 1], lp[y == 0]
        if np.ptp(lp) > 0 and lp0.max() > lp1.min() and lp1.max() > lp0.min():
            try:
                fit = sm.Logit(y, sm.add_constant(lp, has_constant="add")).fit(disp=0,
                                                                                **robust)
                ci = np.asarray(fit.conf_int())[1]
                if fit.mle_retvals.get("converged", True) and np.isfinite(fit.params[1]):
                    out["calibration_slope"] = float(fit.params[1])
                    out["calibration_slope_ci"] = [float(ci[0]), float(ci[1])]
            except Exception:  # a failed fit is reported as nan
                pass
    return out


# --------------------------------------------------------------------------- operating points


def _at_sensitivity(y: np.ndarray, p: np.ndarray, target: float) -> dict:
    """The operating point at the highest threshold whose sensitivity >= ``target``.

    Candidate thresholds are the distinct values of ``p`` and one above them all (for a
    target of 0; nothing is called). One sort: cheap inside a bootstrap.
    """
    nan = {"threshold": NAN, "sensitivity": NAN, "specificity": NAN, "ppv": NAN}
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or target is None or not np.isfinite(target) or target > 1 + 1e-12:
        return nan
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # end of each block of tied scores
    thr = np.r_[np.nextafter(ps[0], np.inf), ps[last]]
    tp = np.r_[0, np.cumsum(ys)[last]]
    fp = np.r_[0, np.cumsum(1 - ys)[last]]
    i = int(np.argmax(tp / n_pos >= target - 1e-12))  # sensitivity reaches 1 at the end
    return {"threshold": float(thr[i]), "sensitivity": float(tp[i] / n_pos),
            "specificity": float(1.0 - fp[i] / n_neg) if n_neg else NAN,
            "ppv": float(tp[i] / (tp[i] + fp[i])) if tp[i] + fp[i] else NAN}


def operating_point_at_sensitivity(y_true, p, target_sensitivity: float,
                                   with_ci: bool = True, groups=None) -> dict:
    """The model's operating point at the highest threshold reaching a target sensitivity.

    A lesion is called pseudoprogression when ``p >= threshold`` (:func:`called`); the
    threshold is one of the scores, or just above the highest for a target of 0. Returns
    threshold, sensitivity, specificity, ppv (0-1) and, with ``with_ci``, their Wilson
    ``_ci`` pairs and tp, fp, tn, fn, n. Metrics are nan when there are no positives or the
    target is nan or above 1. ``groups``: patients, for clustered intervals
    (:func:`binary_metrics`).
    """
    y = _labels(y_true)
    prob = _scores(p, y.shape[0])
    point = _at_sensitivity(y, prob, float("nan") if target_sensitivity is None
                            else float(target_sensitivity))
    if not with_ci:
        return point
    if not np.isfinite(point["threshold"]):
        return point | {f"{k}_ci": _nan_pair() for k in ("sensitivity", "specificity", "ppv")} \
            | {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "n": int(len(y))}
    m = binary_metrics(y, called(prob, point["threshold"]).astype(float), groups=groups)
    keys = ("sensitivity", "sensitivity_ci", "specificity", "specificity_ci", "ppv", "ppv_ci",
            "tp", "fp", "tn", "fn", "n", "design_effect")
    return {"threshold": point["threshold"]} | {k: m[k] for k in keys if k in m}


# --------------------------------------------------------------------------- prevalence


def _bayes(se, sp, prev):
    """PPV and NPV by Bayes' theorem (works on arrays); nan where a denominator is 0."""
    se, sp, prev = (np.asarray(v, dtype=float) for v in (se, sp, prev))
    with np.errstate(divide="ignore", invalid="ignore"):
        ppv = _div(se * prev, se * prev + (1 - sp) * (1 - prev))
        npv = _div(sp * (1 - prev), sp * (1 - prev) + (1 - se) * prev)
    return ppv, npv


#: How reports describe the interval of a PPV or NPV restated at another prevalence.
PREVALENCE_CI_METHOD = ("logit interval of Mercaldo, Lau & Zhou (Stat Med 2007), from the "
                        "sensitivity and specificity and their denominators")


def restate_at_prevalence(sensitivity: float, specificity: float, prevalence,
                          n_positive: int | None = None, n_negative: int | None = None,
                          alpha: float = 0.05) -> dict:
    """PPV and NPV a test with this sensitivity and specificity would show at ``prevalence``.

    Keys: prevalence, ppv, ppv_ci, npv, npv_ci (proportions in 0-1; arrays when
    ``prevalence`` is an array). The interval (:data:`PREVALENCE_CI_METHOD`) needs the
    numbers of positives and negatives behind sensitivity and specificity:
    logit(PPV) = logit(prev) + log(Se / (1 - Sp)) with variance
    (1 - Se) / (Se n1) + Sp / ((1 - Sp) n0), and symmetrically for the NPV. Where Se or Sp
    is 0 or 1 the variance uses the adjusted proportions (k + z^2/2) / (n + z^2), as
    Mercaldo et al. propose, and the interval is widened to include the plain estimate.
    Without the counts the interval is nan.
    """
    prev = np.asarray(prevalence, dtype=float)
    if ((prev <= 0) | (prev >= 1)).any():
        raise ValueError(f"prevalence must be strictly between 0 and 1, got {prevalence!r}.")
    se, sp = float(sensitivity), float(specificity)
    out = {"prevalence": prev.item() if prev.ndim == 0 else prev}
    if not (np.isfinite(se) and np.isfinite(sp)):
        nan = np.full(prev.shape, NAN)
        pair = _nan_pair() if prev.ndim == 0 else [nan, nan]
        return out | {"ppv": NAN if prev.ndim == 0 else nan, "ppv_ci": pair,
                      "npv": NAN if prev.ndim == 0 else nan, "npv_ci": pair}
    ppv, npv = _bayes(se, sp, prev)
    lo_hi = {"ppv": [np.full(prev.shape, NAN)] * 2, "npv": [np.full(prev.shape, NAN)] * 2}
    if n_positive and n_negative:
        z = stats.norm.ppf(1 - alpha / 2)
        n1, n0 = float(n_positive), float(n_negative)
        se_a = se if 0 < se < 1 else (se * n1 + z * z / 2) / (n1 + z * z)
        sp_a = sp if 0 < sp < 1 else (sp * n0 + z * z / 2) / (n0 + z * z)
        logit_prev = np.log(prev / (1 - prev))
        for key, centre, var in (
                ("ppv", logit_prev + np.log(se_a / (1 - sp_a)),
                 (1 - se_a) / (se_a * n1) + sp_a / ((1 - sp_a) * n0)),
                ("npv", -logit_prev + np.log(sp_a / (1 - se_a)),
                 (1 - sp_a) / (sp_a * n0) + se_a / ((1 - se_a) * n1))):
            half = z * math.sqrt(var)
            lo_hi[key] = [1 / (1 + np.exp(-(centre - half))), 1 / (1 + np.exp(-(centre + half)))]

    def plain(v):
        v = np.asarray(v, dtype=float)
        return float(v) if v.ndim == 0 else v

    # With Se or Sp at 0 or 1 the interval comes from adjusted proportions and may miss the
    # plain estimate (a PPV of exactly 1): widen it to include the estimate.
    for key, point in (("ppv", ppv), ("npv", npv)):
        lo, hi = lo_hi[key]
        lo_hi[key] = [np.minimum(lo, point), np.maximum(hi, point)]  # NaN stays NaN
    return out | {"ppv": plain(ppv), "ppv_ci": [plain(v) for v in lo_hi["ppv"]],
                  "npv": plain(npv), "npv_ci": [plain(v) for v in lo_hi["npv"]]}


def _at_prevalences(m: Mapping, prevalences: Mapping[str, float]) -> dict:
    """PPV and NPV restated at each prevalence; on clustered rows the counts behind
    sensitivity and specificity are divided by their design effects (effective counts)."""
    deff = m.get("design_effect") or {}
    n_pos = (m["tp"] + m["fn"]) / deff.get("sensitivity", 1.0)
    n_neg = (m["tn"] + m["fp"]) / deff.get("specificity", 1.0)
    return {name: restate_at_prevalence(m["sensitivity"], m["specificity"], prev, n_pos, n_neg)
            for name, prev in prevalences.items()}


# --------------------------------------------------------------------------- odds ratios


@dataclass(frozen=True)
class FeatureScale:
    """How a feature enters its univariable odds ratio (:func:`feature_odds_ratios`):
    ``binary`` (per unit, 1 vs 0), else per SD of ``transform`` of its values (None: the
    values as they are), a transform written as ``expression`` ("{c}" stands for the
    feature's name)."""

    binary: bool = False
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    expression: str = "{c}"


def _fit_or(x: np.ndarray, y: np.ndarray, binary: bool, cluster: np.ndarray | None = None
            ) -> tuple[float, float, float, float, str]:
    """Univariable logistic OR of ``y`` on ``x``: (or, ci_low, ci_high, p_value, note);
    cluster-robust standard errors when ``cluster`` (:func:`clusters`) is given."""
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
            robust = ({} if cluster is None else  # t on patients - 1 degrees of freedom
                      {"cov_type": "cluster", "cov_kwds": {"groups": cluster}, "use_t": True})
            fit = sm.Logit(y, sm.add_constant(x, has_constant="add")).fit(disp=0, maxiter=200,
                                                                          **robust)
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
                        extra_binary: Mapping[str, object] | None = None,
                        groups=None,
                        scales: Mapping[str, FeatureScale] | None = None) -> pd.DataFrame:
    """Univariable odds ratios of pseudoprogression, one logistic regression per feature.

    Each fit uses the rows where the feature (and the label) is present. ``scales`` says
    how each named feature enters (:class:`FeatureScale`; the table contract's:
    :func:`models.evaluation.contract_scales`): a continuous feature per SD of its
    transformed values (the SD is in ``scale``), a binary one per unit (1 vs 0); a feature
    without a scale is binary when it holds only 0 and 1, else taken as it is.
    ``extra_binary`` maps a name to a 0/1/NaN series aligned by position to ``df`` (a
    dichotomised rule-like predictor, e.g. ``{"ctdna_change_pct < -60": s}``), each fitted
    per unit. ``y`` is a 0/1 array aligned by position, or the name of a column of ``df``.
    ``columns`` defaults to the features of ``scales`` present in ``df``.

    Columns of the result: feature, scale, n, n_positive, odds_ratio, ci_low, ci_high,
    p_value, note. A feature that cannot be fitted (constant, one class, separation,
    non-numeric) gets nan and a note saying why. ``groups`` (the patient of each row): when
    a patient has several rows in a fit, its interval and p-value use cluster-robust
    standard errors.
    """
    scales = dict(scales or {})
    yv = df[y] if isinstance(y, str) else y
    yv = np.asarray(yv, dtype=float).ravel()
    if len(yv) != len(df):
        raise ValueError(f"y has {len(yv)} values but the table has {len(df)} rows.")
    if not np.isin(yv[~np.isnan(yv)], (0.0, 1.0)).all():
        raise ValueError("y must hold only 0, 1 or NaN.")
    if columns is None:
        columns = [c for c in scales if c in df.columns]
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
        known = scales.get(name)
        binary = bool(force_binary) or (known is not None and known.binary) or (
            known is None and len(x) > 0 and np.isin(x, (0.0, 1.0)).all())
        if len(x) == 0:
            row["note"] = "no rows with the feature"
            continue
        if binary:
            if not np.isin(x, (0.0, 1.0)).all():
                row["note"] = "binary predictor must hold 0/1"
                continue
            row["scale"] = "per unit (1 vs 0)"
        else:
            if known is not None and known.transform is not None:
                x = known.transform(x)
            sd = float(np.std(x, ddof=1)) if len(x) > 1 else NAN
            expr = (known.expression if known is not None else "{c}").format(c=name)
            row["scale"] = f"per SD of {expr} (SD {sd:.3g})"
            if not np.isfinite(sd) or sd == 0:
                row["note"] = "constant feature"
                continue
            x = (x - x.mean()) / sd
        cluster = (None if groups is None else
                   clusters(np.asarray(groups).ravel()[keep], int(keep.sum())))
        ratio, lo, hi, pval, note = _fit_or(x, yy, binary, cluster)
        row.update(odds_ratio=ratio, ci_low=lo, ci_high=hi, p_value=pval, note=note)
    return pd.DataFrame(rows, columns=["feature", "scale", "n", "n_positive", "odds_ratio",
                                       "ci_low", "ci_high", "p_value", "note"])


# --------------------------------------------------------------------------- benchmark


def interval_methods(clustered: bool) -> dict[str, str]:
    """How the benchmark's intervals were formed, for ``metrics["interval_methods"]``."""
    if not clustered:
        return {"unit": "lesions, one per patient (independent)", "auc": AUC_CI_METHOD,
                "proportions": "Wilson score interval", "dor": "Woolf (logit) interval",
                "calibration": CALIBRATION_CI_METHOD, "auc_difference": "DeLong's test"}
    return {"unit": "lesions clustered in patients (several lesions per patient)",
            "auc": CLUSTERED_AUC_METHOD, "proportions": CLUSTERED_PROPORTION_METHOD,
            "dor": CLUSTERED_DOR_METHOD, "calibration": CLUSTERED_CALIBRATION_METHOD,
            "auc_difference": "DeLong's test with Obuchowski's clustered covariance"}


def benchmark(y_true, p, threshold: float, rule_predictions: pd.DataFrame,
              restate_prevalences: dict[str, float] | None = None, groups=None,
              row_thresholds=None) -> dict:
    """Evaluate the model and every rule through the same metrics.

    ``y_true`` (0/1) and ``p`` (model probabilities, shape (n,)) are aligned by position
    with the rows of ``rule_predictions`` (one column per rule id, 1.0 / 0.0 / NaN where
    NaN is an abstention). The model predicts 1 when ``p >= threshold``. Each rule is
    scored on the rows it covers, and beside it the model on those same rows, both at
    the stored threshold and at the highest threshold that matches the rule's
    sensitivity. PPV and NPV are re-stated at each prevalence of ``restate_prevalences``
    (name -> prevalence; none by default; the article's are
    ``features.article.PREVALENCE``).

    ``row_thresholds``: a threshold per row (each fold model's own, in cross-validation),
    used for the model's calls instead of ``threshold``.
    ``groups`` (the patient of each row): when a patient has several rows every interval
    accounts for the clustering (:func:`interval_methods`); with one row per patient the
    figures are those without it.

    Returns ``{"n", "n_positive", "prevalence", "threshold", "model": {...},
    "rules": {rule_id: {...}}, "interval_methods": {...}}``; pass it through
    :func:`to_jsonable` before JSON.
    """
    y = _labels(y_true)
    prob = _probabilities(p, y.shape[0])
    if not isinstance(rule_predictions, pd.DataFrame):
        raise ValueError("rule_predictions must be a DataFrame with one column per rule id.")
    if len(rule_predictions) != len(y):
        raise ValueError(f"rule_predictions has {len(rule_predictions)} rows but y_true has "
                         f"{len(y)}; they must be aligned row by row.")
    prevalences = dict(restate_prevalences or {})
    threshold = float(threshold)
    n = len(y)

    g = None if groups is None else np.asarray(groups).ravel()
    if g is not None and g.shape[0] != n:
        raise ValueError(f"groups has {g.shape[0]} rows but y_true has {n}.")
    cut = (np.full(n, threshold) if row_thresholds is None
           else _scores(row_thresholds, n, "row_thresholds", probability=True))
    model = binary_metrics(y, called(prob, cut).astype(float), groups=g)
    model["coverage"] = 1.0 if n else NAN
    model["auc"], model["auc_ci"] = auc_with_ci(y, prob, groups=g)
    model["brier"] = brier_score(y, prob)
    model.update(calibration_intercept_slope(y, prob, groups=g))
    model["at_prevalence"] = _at_prevalences(model, prevalences)

    rules = {}
    for rule_id in rule_predictions.columns:
        column = pd.to_numeric(rule_predictions[rule_id], errors="raise")
        pred = _predictions(column.to_numpy(dtype=float, na_value=np.nan), n, str(rule_id))
        covered = ~np.isnan(pred)
        gc = None if g is None else g[covered]
        m = binary_metrics(y[covered], pred[covered], groups=gc)
        m["coverage"] = float(covered.sum() / n) if n else NAN
        m["model_at_rule_sensitivity"] = operating_point_at_sensitivity(
            y[covered], prob[covered], m["sensitivity"], groups=gc)
        m["model_on_rule_rows"] = binary_metrics(
            y[covered], called(prob[covered], cut[covered]).astype(float), groups=gc)
        m["at_prevalence"] = _at_prevalences(m, prevalences)
        rules[str(rule_id)] = m

    return {
        "n": int(n),
        "n_positive": int(y.sum()),
        "prevalence": float(y.mean()) if n else NAN,
        "threshold": threshold,
        "model": model,
        "rules": rules,
        "interval_methods": interval_methods(clusters(g, n) is not None),
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
    return _decision_curve(y, s, pt)


def _decision_curve(y: np.ndarray, s: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """NB(pt) = TP/n - FP/n * pt / (1 - pt), calling pseudoprogression at ``s >= pt``."""
    n = y.shape[0]
    if n == 0:
        return np.full(pt.shape, np.nan)
    calls = called(s[None, :], pt[:, None])
    tp = (calls & (y[None, :] == 1)).sum(axis=1)
    fp = (calls & (y[None, :] == 0)).sum(axis=1)
    return tp / n - fp / n * pt / (1.0 - pt)


# --------------------------------------------------------------------------- bootstrap engine


def _bootstrap_distribution(statistic: Callable[[np.ndarray], np.ndarray], n: int,
                            groups, n_resamples: int, seed: int) -> tuple[np.ndarray, str]:
    """Statistic over resamples, shape (n_resamples, k), and a description of the scheme.

    One engine for rows and patients: the units (rows, or with ``groups`` patients carrying
    all their rows) of every resample are drawn at once, an (n_resamples, units) matrix of
    ``np.random.default_rng(seed).integers``, and the statistic runs on each resample in
    turn. For rows these are the draws ``scipy.stats.bootstrap`` made here before, so the
    numbers are unchanged; owning the loop keeps them the same whatever scipy's version or
    batching, and no step depends on a thread count: the same seed gives the same bytes.
    """
    rng = np.random.default_rng(seed)
    k = np.atleast_1d(statistic(np.arange(n))).shape[0]
    members = None
    if groups is not None:
        g = np.asarray(groups).ravel()
        if g.shape[0] != n:
            raise ValueError(f"groups has {g.shape[0]} rows, y has {n}")
        _, inverse = np.unique(g, return_inverse=True)
        members = [np.flatnonzero(inverse == u) for u in range(inverse.max() + 1)] if n else []
    n_units = n if members is None else len(members)
    if n_units < 2:
        return np.full((n_resamples, k), np.nan), f"{n_units} row(s) or patient(s): no resampling"
    draws = rng.integers(0, n_units, (n_resamples, n_units))
    dist = np.empty((n_resamples, k))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # NaN resamples: handled nan-aware by the caller
        for b, pick in enumerate(draws):
            rows = pick if members is None else np.concatenate([members[u] for u in pick])
            dist[b] = statistic(rows)
    if members is None:
        return dist, "rows resampled with replacement"
    return dist, f"{n_units} patients resampled with all their rows"


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
    and ``net_benefit@<pt>`` at each of ``nb_thresholds``: the decision curve's quantity,
    pseudoprogression called at ``p >= pt`` (Vickers & Elkin 2006; unitless).
    Returns ``{metric: {"estimate": float, "ci": [low, high], "method": str}}``; resampling
    is by patient (``groups``) or by row, seeded with ``np.random.default_rng(seed)``.
    """
    y = _labels(y)
    p = _scores(p, y.shape[0])
    nb_pt = _thresholds(nb_thresholds)
    names = (["auc", "brier", "sensitivity", "specificity", "ppv", "npv"]
             + [f"net_benefit@{t:.2f}" for t in nb_pt])

    def statistic(idx: np.ndarray) -> np.ndarray:
        yy, pp = y[idx], p[idx]
        tp, fp, fn, tn = _counts(yy, called(pp, threshold))
        n = yy.shape[0]
        return np.r_[auc(yy, pp), np.mean((pp - yy) ** 2) if n else np.nan,
                     _div(tp, tp + fn), _div(tn, tn + fp), _div(tp, tp + fp),
                     _div(tn, tn + fn), _decision_curve(yy, pp, nb_pt)]

    estimate = statistic(np.arange(y.shape[0]))
    dist, scheme = _bootstrap_distribution(statistic, y.shape[0], groups, n_resamples, seed)
    return _entries(names, estimate, dist, scheme, confidence_level)


# --------------------------------------------------------------------------- model vs rule


def compare_with_rule(y, p, rule_pred, n_resamples: int = 1000, seed: int = 0,
                      groups=None, confidence_level: float = 0.95) -> dict:
    """Paired comparison of the model with one rule on the rule's covered rows.

    The model is read at the rule's sensitivity (highest threshold reaching sensitivity >=
    the rule's, :func:`operating_point_at_sensitivity`). Reported differences, model minus
    rule, each with a paired bootstrap CI (rows, or patients with ``groups``, resampled jointly for
    model and rule, the operating point re-found in every resample):

    - ``ppv_difference``, ``specificity_difference``: at the matched sensitivity (0-1);
    - ``auc_difference``: model AUC minus the rule's (sensitivity + specificity) / 2.

    ``delong`` holds DeLong's test of the AUC difference (:func:`delong_test`). ``rule`` and
    ``model`` hold the point estimates; ``n_covered`` the rows the rule decides.
    """
    y = _labels(y)
    p = _scores(p, y.shape[0])
    r = _predictions(rule_pred, y.shape[0], "rule_pred")
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
        return rule, model, auc(yy, pp), (rule["sensitivity"] + rule["specificity"]) / 2

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
    out["delong"] = delong_test(yc, pc, rc, confidence_level, groups=gc)
    return out


def compare_all_rules(y, p, rules: pd.DataFrame, n_resamples: int = 1000, seed: int = 0,
                      groups=None, confidence_level: float = 0.95) -> dict[str, dict]:
    """:func:`compare_with_rule` for every column of ``rules`` (one column per rule id)."""
    return {str(rid): compare_with_rule(y, p, rules[rid].to_numpy(), n_resamples=n_resamples,
                                        seed=seed, groups=groups,
                                        confidence_level=confidence_level)
            for rid in rules.columns}
