"""The simulator's own measurements for its fidelity tables: a proportion, a median and a
ratio of proportions, each with its 95% interval (statsmodels' Wilson interval, scipy's
order-statistic interval of a median, the log method of a risk ratio)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint


def proportion_with_ci(mask: np.ndarray) -> tuple[float, float, float]:
    """Share of True in a boolean array with its Wilson 95% CI."""
    mask = np.asarray(mask, dtype=bool)
    k, n = int(mask.sum()), len(mask)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return k / n, float(lo), float(hi)


def median_with_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Median with its distribution-free (order-statistic) 95% CI."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    med = float(np.median(v))
    ci = stats.quantile_test(v, q=med, p=0.5).confidence_interval(0.95)
    return med, float(ci.low), float(ci.high)


def ratio_with_ci(k1: int, n1: int, k0: int, n0: int) -> tuple[float, float, float]:
    """The ratio of two proportions (k1/n1) / (k0/n0) with its 95% CI (log method)."""
    if min(k1, k0, n1, n0) == 0:
        return (math.nan, math.nan, math.nan)
    r = (k1 / n1) / (k0 / n0)
    se = math.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
    z = stats.norm.ppf(0.975)
    return r, r * math.exp(-z * se), r * math.exp(z * se)
