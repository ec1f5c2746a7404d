"""Minimum sample size to develop a prediction model for a binary outcome.

The three criteria of Riley et al. (Stat Med 2019, part II; BMJ 2020), computed as the R and
Stata package pmsampsize (Ensor, Martin, Riley; version 1.1.1 and later, which no longer
rounds the maximum R2 or the criterion-2 shrinkage) computes them. With P candidate predictor
parameters, outcome proportion phi and anticipated (adjusted) Cox-Snell R2 ``R``:

1. expected uniform shrinkage of the predictor effects >= S (default 0.9):
   ``n = P / ((S - 1) ln(1 - R / S))``;
2. apparent minus adjusted Nagelkerke R2 <= 0.05: the same formula with
   ``S_2 = R / (R + 0.05 max(R))``, where ``max(R) = 1 - exp(2 lnL_null / n)
   = 1 - (phi^phi (1 - phi)^(1 - phi))^2`` is the largest Cox-Snell R2 attainable;
3. the overall risk estimated within +/- delta (default 0.05) by a 95% Wald interval:
   ``n = (1.96 / delta)^2 phi (1 - phi)``.

Each n is rounded up; the recommendation is the largest, with ``n phi`` events. As in
pmsampsize, the shrinkage reported for it is ``max(S, S_2)``.

``R`` comes from the caller, or from a reported C statistic by the approach of Riley, Van
Calster and Collins (Stat Med 2021): a normal linear predictor, N(0, 1) in one outcome
group and N(mu, 1) in the other with ``mu = sqrt(2) Phi^-1(C)``, for which the C statistic
is exactly C and a logistic model on the linear predictor is exactly right. pmsampsize fits
that model to one simulated data set of 10^6 patients; here the limit of that fit's
``1 - exp(-LR / n)`` is computed by numerical integration instead, so the answer carries no
Monte Carlo error (of the order of 0.001 in R2 in pmsampsize's seeded simulation). With neither,
``R`` is 15% of ``max(R)`` (Nagelkerke R2 0.15), the conservative choice Riley et al. (BMJ
2020) suggest when nothing is known; pmsampsize itself requires an R2 or a C statistic.

References: Riley RD, Snell KIE, Ensor J, et al. Minimum sample size for developing a
multivariable prediction model: part II - binary and time-to-event outcomes. Stat Med
2019;38:1276-96 (doi:10.1002/sim.7992; correction 2019;38:5672). Riley RD, Ensor J, Snell
KIE, et al. Calculating the sample size required for developing a clinical prediction model.
BMJ 2020;368:m441. Riley RD, Van Calster B, Collins GS. A note on estimating the Cox-Snell R2
from a reported C statistic (AUROC) to inform sample size calculations for developing a
prediction model with a binary outcome. Stat Med 2021;40:859-64.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import integrate, optimize, stats

__all__ = [
    "DEFAULT_NAGELKERKE_R2",
    "NAGELKERKE_OPTIMISM",
    "SampleSizeResult",
    "achieved_shrinkage",
    "cox_snell_r2_from_c",
    "max_cox_snell_r2",
    "minimum_sample_size",
]

#: The 97.5% normal quantile as pmsampsize writes it (criterion 3).
Z_975 = 1.96
#: Largest acceptable apparent minus adjusted Nagelkerke R2 (criterion 2).
NAGELKERKE_OPTIMISM = 0.05
#: Nagelkerke R2 assumed when neither an R2 nor a C statistic is known (Riley et al. 2020).
DEFAULT_NAGELKERKE_R2 = 0.15

R2Source = Literal["given", "c_statistic", "default"]

REFERENCES = (
    "Riley RD, Snell KIE, Ensor J, et al. Stat Med 2019;38:1276-96 (part II); "
    "Riley RD, Ensor J, Snell KIE, et al. BMJ 2020;368:m441"
)
C_REFERENCE = "Riley RD, Van Calster B, Collins GS. Stat Med 2021;40:859-64"


# --------------------------------------------------------------------------- validation


def _real(name: str, value) -> float:
    """``value`` as a float, or ValueError naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _open_unit(name: str, value) -> float:
    """``value`` as a float strictly between 0 and 1, or ValueError naming ``name``."""
    out = _real(name, value)
    if not 0.0 < out < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return out


def _parameters(value) -> int:
    """The number of candidate predictor parameters: a positive integer."""
    if isinstance(value, bool):
        raise ValueError(f"n_parameters must be a positive integer, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise ValueError(f"n_parameters must be a positive integer, got {value!r}") from None
    if out < 1:
        raise ValueError(f"n_parameters must be a positive integer, got {value!r}")
    return out


# --------------------------------------------------------------------------- R2 and shrinkage


def max_cox_snell_r2(prevalence: float) -> float:
    """Largest attainable Cox-Snell R2, ``1 - (phi^phi (1 - phi)^(1 - phi))^2`` (0-1).

    ``1 - exp(2 lnL_null / n)`` with the null model's log-likelihood per patient
    ``phi ln(phi) + (1 - phi) ln(1 - phi)`` (Riley et al. Stat Med 2019, part II, eq. 23).
    """
    phi = _open_unit("prevalence", prevalence)
    loglik_null = phi * math.log(phi) + (1.0 - phi) * math.log1p(-phi)
    return -math.expm1(2.0 * loglik_null)


def cox_snell_r2_from_c(c_statistic: float, prevalence: float) -> float:
    """Cox-Snell R2 of a logistic model with this C statistic and outcome proportion (0-1).

    The equal-variance binormal model of Riley, Van Calster and Collins (Stat Med 2021), as
    pmsampsize >= 1.1 uses it: linear predictor N(mu, 1) in one outcome group and N(0, 1) in
    the other, ``mu = sqrt(2) Phi^-1(C)`` so that ``P(LP_a > LP_b) = Phi(mu / sqrt(2)) = C``.
    The logistic model on that linear predictor is correctly specified, so ``LR / n`` tends
    to the mutual information I of outcome and linear predictor (nats per patient) and
    ``R2 = 1 - exp(-2 I)``; I is integrated numerically rather than simulated. The result is
    the same whichever group is called the event (mirror the linear predictor).
    """
    c = _real("c_statistic", c_statistic)
    if not 0.5 < c < 1.0:
        raise ValueError(f"c_statistic must lie strictly between 0.5 and 1, got {c_statistic!r}")
    phi = _open_unit("prevalence", prevalence)
    mu = math.sqrt(2.0) * stats.norm.ppf(c)
    # log-odds of an event given the linear predictor x: Bayes' rule for two unit normals
    intercept = math.log(phi / (1.0 - phi)) - 0.5 * mu * mu

    def expected_log_posterior(mean: float, event: bool) -> float:
        """E[ln P(own group | x)] for x ~ N(mean, 1)."""
        sign = -1.0 if event else 1.0

        def integrand(z: float) -> float:
            eta = intercept + mu * (mean + z)
            return stats.norm.pdf(z) * -np.logaddexp(0.0, sign * eta)

        # the normal weight below 1e-30 beyond |z| = 12: truncation error far below 1e-20
        value, _ = integrate.quad(integrand, -12.0, 12.0, epsabs=1e-14, epsrel=1e-12,
                                  limit=200)
        return value

    information = phi * (expected_log_posterior(mu, True) - math.log(phi)) + (1.0 - phi) * (
        expected_log_posterior(0.0, False) - math.log1p(-phi)
    )
    return -math.expm1(-2.0 * information)


def _n_for_shrinkage(n_parameters: int, r2_cs: float, shrinkage: float) -> float:
    """Unrounded n giving expected shrinkage ``shrinkage`` (criterion 1, Riley et al. 2019)."""
    return n_parameters / ((shrinkage - 1.0) * math.log1p(-r2_cs / shrinkage))


def achieved_shrinkage(n: float, n_parameters: int, r2_cs: float) -> float:
    """Expected uniform shrinkage (0-1) of a model with ``n_parameters`` fitted to ``n`` patients.

    Solves criterion 1, ``n = P / ((S - 1) ln(1 - R2_CS / S))``, for S (R2_CS the anticipated
    adjusted Cox-Snell R2; van Houwelingen's heuristic shrinkage, Riley et al. Stat Med 2019,
    part II). With ``u = -ln(1 - R2_CS / S)`` the right side, ``(1 - S(u)) u``, grows
    strictly from 0 (S = 1) to infinity (S -> R2_CS), so there is one root; it is bracketed
    and found with Brent's method. Compare with the ``shrinkage`` target (0.9) to see how far
    an available sample falls short.
    """
    size = _real("n", n)
    if size <= 0.0:
        raise ValueError(f"n must be positive, got {n!r}")
    p = _parameters(n_parameters)
    r2 = _open_unit("r2_cs", r2_cs)
    target = p / size

    def shrinkage_of(u: float) -> float:
        return r2 / -math.expm1(-u)

    def gap(u: float) -> float:
        return (1.0 - shrinkage_of(u)) * u - target

    lower = -math.log1p(-r2)  # S = 1
    upper = 2.0 * lower
    while gap(upper) < 0.0:
        upper *= 2.0
    root = optimize.brentq(gap, lower, upper, xtol=1e-14, rtol=1e-14, maxiter=500)
    return shrinkage_of(root)


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class SampleSizeResult:
    """Minimum development sample size for a binary-outcome prediction model.

    Sizes are patients, rounded up; ``events`` is ``n * prevalence`` (not rounded, as
    pmsampsize returns it); shrinkages, R2s and the prevalence are fractions (0-1).
    ``final_shrinkage`` is pmsampsize's ``max(shrinkage, shrinkage_optimism)``;
    ``expected_shrinkage`` is the expected shrinkage at ``n`` itself (criterion 1 solved
    for S), larger when criterion 3 decides.
    """

    n_parameters: int
    prevalence: float
    shrinkage: float
    intercept_margin: float
    c_statistic: float | None
    r2_cs: float
    r2_cs_source: R2Source
    max_r2_cs: float
    nagelkerke_r2: float
    shrinkage_optimism: float
    n_shrinkage: int
    n_optimism: int
    n_intercept: int
    n: int
    final_shrinkage: float
    expected_shrinkage: float
    events: float
    events_per_parameter: float

    @property
    def criteria(self) -> dict[str, int]:
        """Sample size each criterion needs, keyed by what it guarantees."""
        return {
            "shrinkage": self.n_shrinkage,
            "optimism": self.n_optimism,
            "intercept": self.n_intercept,
        }

    @property
    def deciding(self) -> tuple[str, ...]:
        """The criteria that need ``n`` (more than one on a tie)."""
        return tuple(name for name, size in self.criteria.items() if size == self.n)

    def describe(self, unit: str = "patients") -> str:
        """One paragraph for a report: the recommendation, its assumptions, references.
        ``unit``: what one row of the development data is (patients, or lesions)."""
        labels = {"shrinkage": "1", "optimism": "2", "intercept": "3"}
        deciding = " and ".join(labels[name] for name in self.deciding)
        if self.r2_cs_source == "given":
            source = "as given"
        elif self.r2_cs_source == "c_statistic":
            source = (
                f"approximated from a C statistic of {self.c_statistic:.3g} by the binormal "
                f"approach of {C_REFERENCE}, integrated rather than simulated"
            )
        else:
            source = (
                f"not known, so {DEFAULT_NAGELKERKE_R2:.0%} of the maximum, the conservative "
                "choice of Riley et al. BMJ 2020"
            )
        references = REFERENCES + (f"; {C_REFERENCE}" if self.r2_cs_source == "c_statistic"
                                   else "")
        return (
            f"Developing a logistic prediction model with {self.n_parameters} candidate "
            f"predictor parameters for an outcome with prevalence {self.prevalence:.3g} needs "
            f"at least {self.n} {unit} ({math.ceil(self.events)} events, "
            f"{self.events_per_parameter:.2f} events per parameter; criterion {deciding} "
            f"decides). Criterion 1, expected shrinkage of predictor effects >= "
            f"{self.shrinkage:.3g}, needs {self.n_shrinkage}; criterion 2, apparent minus "
            f"adjusted Nagelkerke R2 <= {NAGELKERKE_OPTIMISM:.2f} (shrinkage "
            f"{self.shrinkage_optimism:.3f}), needs {self.n_optimism}; criterion 3, overall "
            f"risk within +/-{self.intercept_margin:.3g} (95% CI), needs {self.n_intercept}. "
            f"The anticipated Cox-Snell R2 is {self.r2_cs:.4f} ({source}; maximum "
            f"{self.max_r2_cs:.3f}, Nagelkerke R2 {self.nagelkerke_r2:.3f}); the expected "
            f"shrinkage at {self.n} {unit} is {self.expected_shrinkage:.3f}. Method: "
            f"{references}; computed as the pmsampsize package does."
        )


# --------------------------------------------------------------------------- the calculation


def minimum_sample_size(
    n_parameters: int,
    prevalence: float,
    *,
    c_statistic: float | None = None,
    r2_cs: float | None = None,
    shrinkage: float = 0.9,
    intercept_margin: float = 0.05,
) -> SampleSizeResult:
    """Minimum sample size (patients) to develop a binary-outcome prediction model.

    ``n_parameters``: candidate predictor parameters (every coefficient, dummy, spline term
    and interaction); ``prevalence``: anticipated outcome proportion (0-1); ``r2_cs``: the
    anticipated adjusted Cox-Snell R2, or ``c_statistic``: a C statistic (AUROC) to
    approximate it from (give at most one, as pmsampsize requires; with neither the
    conservative 15% of the maximum is used); ``shrinkage``: the target expected shrinkage
    (criterion 1); ``intercept_margin``: the absolute margin of error of the overall risk
    (criterion 3). Follows pmsampsize; see the module docstring for formulas and references.
    """
    p = _parameters(n_parameters)
    phi = _open_unit("prevalence", prevalence)
    target = _open_unit("shrinkage", shrinkage)
    margin = _open_unit("intercept_margin", intercept_margin)
    max_r2 = max_cox_snell_r2(phi)

    source: R2Source
    if c_statistic is not None and r2_cs is not None:
        raise ValueError("give r2_cs or c_statistic, not both")
    if r2_cs is not None:
        r2 = _open_unit("r2_cs", r2_cs)
        source = "given"
        if r2 >= max_r2:
            raise ValueError(
                f"r2_cs {r2!r} must be below the largest Cox-Snell R2 attainable at prevalence "
                f"{phi!r}, {max_r2:.4f} (Riley et al. Stat Med 2019, eq. 23)"
            )
    elif c_statistic is not None:
        r2 = cox_snell_r2_from_c(c_statistic, phi)
        source = "c_statistic"
    else:
        r2 = DEFAULT_NAGELKERKE_R2 * max_r2
        source = "default"
    if r2 >= target:
        raise ValueError(
            f"shrinkage {target!r} must exceed the Cox-Snell R2 {r2:.4f} "
            "(otherwise ln(1 - R2 / shrinkage) is undefined)"
        )

    # criterion 1: expected shrinkage >= target
    n_shrinkage = math.ceil(_n_for_shrinkage(p, r2, target))
    # criterion 2: apparent - adjusted Nagelkerke R2 <= 0.05, i.e. shrinkage >= S_2
    shrinkage_optimism = r2 / (r2 + NAGELKERKE_OPTIMISM * max_r2)
    n_optimism = math.ceil(_n_for_shrinkage(p, r2, shrinkage_optimism))
    # criterion 3: 95% CI half-width of the overall risk <= margin
    n_intercept = math.ceil((Z_975 / margin) ** 2 * phi * (1.0 - phi))

    n = max(n_shrinkage, n_optimism, n_intercept)
    events = n * phi
    return SampleSizeResult(
        n_parameters=p,
        prevalence=phi,
        shrinkage=target,
        intercept_margin=margin,
        c_statistic=None if c_statistic is None else float(c_statistic),
        r2_cs=r2,
        r2_cs_source=source,
        max_r2_cs=max_r2,
        nagelkerke_r2=r2 / max_r2,
        shrinkage_optimism=shrinkage_optimism,
        n_shrinkage=n_shrinkage,
        n_optimism=n_optimism,
        n_intercept=n_intercept,
        n=n,
        final_shrinkage=max(target, shrinkage_optimism),
        expected_shrinkage=achieved_shrinkage(n, p, r2),
        events=events,
        events_per_parameter=events / p,
    )
