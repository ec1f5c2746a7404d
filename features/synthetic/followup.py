"""Simulated follow-up scans of a synthetic cohort, their fidelity, and the settings of the
sensitivity analysis.

Public functions:

- :func:`simulate_followup`: the cohort's follow-up scans (planned every 4 weeks to 16 weeks
  after the index scan; missed, taken early or late, measured with the reader-to-reader
  error of the chosen method) in the scans table's canonical form (:mod:`features.scans`);
- :func:`followup_setting`: the parameters of a sensitivity setting (``low``,
  ``published``, ``high`` measurement error and course variability);
- :func:`followup_fidelity_rows`: what the simulated scans give for each figure the
  follow-up is sized from, beside the published value (rows of
  :func:`features.synthetic.cohort.fidelity_table`);
- :func:`c4_share` and :func:`derive_followup_values`: the share of pseudoprogression back
  to baseline in C4's window, and the numbers the defaults freeze.

The model itself (courses, measurement, schedule) is described, with the source of every
number, in :class:`features.synthetic.parameters.FollowupParameters`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize, stats

from features.article import FIGURES, THRESHOLDS
from features.contract import BY_NAME, ID, LABEL, LESION, id_text
from features.errors import UserInputError
from features.scans import (
    CANONICAL,
    FROM_INDEX,
    INDEX,
    SIZE,
    SIZE_KIND,
    VOLUME,
    WEEK_DECIMALS,
    WEEKS,
)
from features.synthetic.estimates import median_with_ci, proportion_with_ci, ratio_with_ci
from features.synthetic.parameters import (
    COURSE_WEEKS,
    DEFAULT_PARAMETERS,
    MEASUREMENTS,
    PUBLISHED,
    CohortParameters,
    Course,
    FollowupParameters,
    params_digest,
    to_scale,
)

__all__ = ["FOLLOWUP_COLUMNS", "SETTINGS", "c4_share", "derive_followup_values",
           "followup_fidelity_rows", "followup_setting", "simulate_followup"]

#: Per-scan contract columns of the simulated follow-up, in the scans table's order.
FOLLOWUP_COLUMNS: tuple[str, ...] = ("volume_change_pct", "rcbv", "adc")
#: The sensitivity settings, and the factor each applies to the measurement error and to
#: every source of course variability (see :func:`followup_setting`).
SETTINGS: dict[str, float] = {"low": 0.5, "published": 1.0, "high": 2.0}
#: Log-size scale of each measurement relative to log volume (SPD ~ volume^(2/3), diameter
#: ~ volume^(1/3)): an ICC is computed on the scale the method measures.
_SCALE = {"volume": 1.0, "2d": 2.0 / 3.0, "1d": 1.0 / 3.0}
#: Largest share a setting may give a probability (so that every kind of course remains).
_MAX_SHARE = 0.9


# --------------------------------------------------------------------------- settings


def followup_setting(level: str, params: CohortParameters | None = None) -> CohortParameters:
    """``params`` (default :data:`DEFAULT_PARAMETERS`) with the follow-up of sensitivity
    setting ``level``: ``published`` leaves it as it is; ``low`` and ``high`` multiply by
    :data:`SETTINGS`' factor (0.5, 2) the measurement error (``noise_scale``, and the rCBV
    and ADC courses' measurement error and between-lesion spread), the scans' irregularity
    (``scan_jitter_weeks``, kept below half the interval), the missed scans, the shares of
    prolonged pseudoprogression and of slow true progression (at most 0.9) and the steroid
    effect (on the log scale). Everything else, the resolution rate that C4 fixed at the
    published setting included, is unchanged."""
    if level not in SETTINGS:
        raise UserInputError(f"unknown follow-up setting {level!r}; choose one of "
                             f"{', '.join(SETTINGS)}.")
    p = params or DEFAULT_PARAMETERS
    k, f = SETTINGS[level], p.followup
    if k == 1.0:
        return p
    steroid = 100.0 * math.expm1(k * math.log1p(f.steroid_volume_change_pct / 100.0))

    def course(c: Course) -> Course:
        return replace(c, slope_sd=c.slope_sd * k, noise_sd=c.noise_sd * k)

    return replace(p, followup=replace(
        f, noise_scale=f.noise_scale * k, rcbv=course(f.rcbv), adc=course(f.adc),
        scan_jitter_weeks=min(f.scan_jitter_weeks * k, 0.49 * f.interval_weeks),
        missing_visit=min(f.missing_visit * k, _MAX_SHARE),
        tp_slow_share=min(f.tp_slow_share * k, _MAX_SHARE),
        pp_prolonged_share=min(f.pp_prolonged_share * k, _MAX_SHARE),
        steroid_volume_change_pct=steroid))


# --------------------------------------------------------------------------- the courses


@dataclass(frozen=True)
class _Draws:
    """Every random number of a follow-up, drawn in a fixed order and number whatever the
    labels, so that a lesion's course depends only on its own row: ``lesion_z`` (n, 8)
    normals (baseline, growth, resolution, rCBV and ADC drifts, rCBV and ADC when the index
    has none, spare), ``lesion_u`` (n, 2) uniforms (slow or prolonged course, peak time),
    ``scan_z`` (n, 3, k) normals (size, rCBV, ADC errors) and ``scan_u`` (n, 4, k) uniforms
    (missed scan, rCBV missing, ADC missing, timing)."""

    lesion_z: np.ndarray
    lesion_u: np.ndarray
    scan_z: np.ndarray
    scan_u: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, k: int) -> _Draws:
        return cls(rng.standard_normal((n, 8)), rng.random((n, 2)),
                   rng.standard_normal((n, 3, k)), rng.random((n, 4, k)))


def _scan_times(f: FollowupParameters, d: _Draws) -> np.ndarray:
    """(n, k) weeks after the index scan at which each scan is taken: the plan, moved
    uniformly within ``scan_jitter_weeks`` (the index scan stays at 0)."""
    planned = f.scan_weeks()[None, :]
    shift = f.scan_jitter_weeks * (2.0 * d.scan_u[:, 3] - 1.0)
    return np.where(planned > 0, planned + shift, 0.0)


def _true_course(l0: np.ndarray, pp: np.ndarray, steroid: np.ndarray, t: np.ndarray,
                 d: _Draws, f: FollowupParameters) -> np.ndarray:
    """(n, k) true log volume against baseline at times ``t`` (weeks after the index scan)
    for enlargements ``l0`` (n,), labels ``pp`` (n,, True for pseudoprogression) and
    dexamethasone at the index ``steroid`` (n,); the model of :class:`FollowupParameters`."""
    l0 = l0[:, None]
    slow = d.lesion_u[:, 0] < f.tp_slow_share
    rate = (f.tp_growth_per_week * np.exp(f.tp_growth_sd * d.lesion_z[:, 1])
            * np.where(slow, f.tp_slow_factor, 1.0))
    tp = l0 + rate[:, None] * t
    prolonged = d.lesion_u[:, 0] < f.pp_prolonged_share
    peak = np.where(prolonged, f.pp_prolonged_max_weeks * (1.0 - d.lesion_u[:, 1]), 0.0)[:, None]
    top = l0 + f.pp_prolonged_growth_per_week * peak
    resolve = f.pp_resolution_median * np.exp(f.pp_resolution_sd * d.lesion_z[:, 2])[:, None]
    pp_course = np.where(t <= peak, l0 + f.pp_prolonged_growth_per_week * t,
                         top * (1.0 - resolve * (t - peak)))
    course = np.where(pp[:, None], pp_course, tp)
    shrink = math.log1p(f.steroid_volume_change_pct / 100.0)
    return course + np.where(steroid[:, None] & (t > 0), shrink, 0.0)


def _measured(course: np.ndarray, d: _Draws, f: FollowupParameters) -> np.ndarray:
    """Each scan's reading of the log size: the true course plus its independent error."""
    return course + f.size_noise_sd() * d.scan_z[:, 0]


def _inputs(cohort: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, enlargement at the index (log), start week and dexamethasone, per lesion."""
    missing = [c for c in (LABEL, WEEKS, "volume_change_pct") if c not in cohort.columns]
    if missing:
        raise UserInputError(f"simulate_followup needs the cohort's {', '.join(missing)}; pass "
                             "a table from simulate_cohort.")
    y = pd.to_numeric(cohort[LABEL], errors="coerce").to_numpy(dtype=float)
    vc = pd.to_numeric(cohort["volume_change_pct"], errors="coerce").to_numpy(dtype=float)
    start = pd.to_numeric(cohort[WEEKS], errors="coerce").to_numpy(dtype=float)
    if not np.isin(y, (0.0, 1.0)).all() or np.isnan(vc).any() or np.isnan(start).any() \
            or (vc <= -100.0).any():
        raise UserInputError(f"simulate_followup needs {LABEL} (0/1), {WEEKS} and "
                             "volume_change_pct (> -100%) on every row.")
    steroid = (cohort["steroid_response_pct"].notna().to_numpy()
               if "steroid_response_pct" in cohort.columns else np.zeros(len(cohort), bool))
    return y, np.log1p(vc / 100.0), start, steroid


def followup_arrays(cohort: pd.DataFrame, seed: int, p: CohortParameters) -> dict:
    """The simulated follow-up of ``cohort``'s lesions as arrays, lesions x scans.

    Keys: ``planned`` (k,), planned weeks after the index scan; ``weeks`` (n, k), when each
    scan was taken; ``seen`` (n, k), it took place; ``true_log`` (n, k), the true log volume
    against baseline; ``baseline`` (n,), the volume before the enlargement (ml); ``volume``
    (ml, as measured), ``rcbv``, ``adc`` (n, k), NaN where not
    measured; ``label`` (n,). Every random number comes from ``default_rng([seed, 1])``.
    """
    y, l0, _, steroid = _inputs(cohort)
    f = p.followup
    n, k = len(cohort), len(f.scan_weeks())
    d = _Draws.draw(np.random.default_rng([seed, 1]), n, k)
    pp = y == 1
    t = _scan_times(f, d)
    later = t > 0
    true_log = _true_course(l0, pp, steroid, t, d, f)
    baseline = f.baseline_volume_ml * np.exp(f.baseline_volume_sd * d.lesion_z[:, 0])
    seen = (d.scan_u[:, 0] >= f.missing_visit) | ~later
    out = {"planned": f.scan_weeks(), "weeks": t, "seen": seen, "label": y.astype(int),
           "baseline": baseline, "true_log": true_log,
           "volume": baseline[:, None] * np.exp(_measured(true_log, d, f))}

    for j, (name, c, rate) in enumerate((("rcbv", f.rcbv, p.missing_perfusion),
                                         ("adc", f.adc, p.missing_diffusion))):
        m = getattr(p, name)
        index = (pd.to_numeric(cohort[name], errors="coerce").to_numpy(dtype=float)
                 if name in cohort.columns else np.full(n, np.nan))
        # a value the index scan did not measure is drawn from its class's distribution
        drawn = np.exp(np.where(pp, np.log(m.median_pp), np.log(m.median_tp))
                       + np.where(pp, math.hypot(m.sd_pp, m.noise_sd),
                                  math.hypot(m.sd_tp, m.noise_sd)) * d.lesion_z[:, 5 + j])
        latent = np.where(np.isnan(index), drawn, index)
        drift = (np.where(pp, math.log1p(c.median_pp_pct / 100.0),
                          math.log1p(c.median_tp_pct / 100.0)) + c.slope_sd * d.lesion_z[:, 3 + j])
        log_value = (np.log(latent)[:, None] + drift[:, None] * t / COURSE_WEEKS
                     + np.where(later, c.noise_sd * d.scan_z[:, 1 + j], 0.0))
        col = BY_NAME[name]
        value = np.clip(np.exp(log_value), col.low, col.high)
        value[:, 0] = index
        value[later & (d.scan_u[:, 1 + j] < rate)] = np.nan
        out[name] = value
    return out


def simulate_followup(cohort: pd.DataFrame, seed: int,
                      params: CohortParameters | None = None) -> pd.DataFrame:
    """Follow-up scans of a simulated cohort's lesions, in the scans table's canonical form.

    One row per lesion per scan: the index scan (the cohort's row: its weeks_on_treatment,
    volume_change_pct, rcbv and adc) and a scan planned every ``followup.interval_weeks``
    (T4, 4 weeks) up to ``followup.last_week`` (16) after it, taken up to
    ``followup.scan_jitter_weeks`` early or late and missed with probability
    ``followup.missing_visit``; columns of :data:`features.scans.CANONICAL`, then
    volume_change_pct (index row only), rcbv and adc. Sizes are volumes (ml) as measured by
    ``followup.measurement`` (a 2D or 1D reading is put on the volume scale), with its
    reader-to-reader error at every scan, the index included. Courses: see
    :class:`~features.synthetic.parameters.FollowupParameters`.

    cohort: a table from :func:`~features.synthetic.cohort.simulate_cohort` (labels needed).
    seed: the follow-up has its own random stream (``default_rng([seed, 1])``), so the cohort
    is the same with or without it; pass the cohort's seed to keep one seed per simulation.
    """

    p = params or DEFAULT_PARAMETERS
    a = followup_arrays(cohort, seed, p)
    n, k = a["seen"].shape
    rows = a["seen"].ravel()
    lesion = (id_text(cohort[LESION]).astype(object).to_numpy() if LESION in cohort.columns
              else np.full(n, "1", dtype=object))
    start = np.round(pd.to_numeric(cohort[WEEKS]).to_numpy(dtype=float), WEEK_DECIMALS)
    when = np.round(start[:, None] + a["weeks"], WEEK_DECIMALS)
    vc = np.full((n, k), np.nan)
    vc[:, 0] = pd.to_numeric(cohort["volume_change_pct"]).to_numpy(dtype=float)
    data = {
        ID: np.repeat(id_text(cohort[ID]).astype(object).to_numpy(), k)[rows],
        LESION: np.repeat(lesion, k)[rows],
        WEEKS: when.ravel()[rows],
        FROM_INDEX: np.round(when - start[:, None], WEEK_DECIMALS).ravel()[rows],
        SIZE: a["volume"].ravel()[rows],
        SIZE_KIND: np.full(int(rows.sum()), VOLUME, dtype=object),
        INDEX: (a["weeks"] == 0).astype(int).ravel()[rows],
        "volume_change_pct": vc.ravel()[rows],
        "rcbv": a["rcbv"].ravel()[rows],
        "adc": a["adc"].ravel()[rows],
    }
    df = pd.DataFrame({c: pd.Series(data[c], dtype=object) if c in (ID, LESION, SIZE_KIND)
                       else data[c] for c in (*CANONICAL, *FOLLOWUP_COLUMNS)})
    df.attrs["simulation_followup"] = {
        "seed": seed, "params_digest": params_digest(p),
        "measurement": p.followup.measurement,
        "size_noise_sd": p.followup.size_noise_sd(),
        "cohort": dict(cohort.attrs.get("simulation") or {})}
    return df


# --------------------------------------------------------------------------- C4 and derivation


def _c4_back(measured: np.ndarray, t: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Per lesion, as the rule C4_shrinkage reads measured scans: whether a scan in C4's
    window is at or below baseline (baseline = measured index volume / (1 + the cohort's
    volume_change_pct), so the change is the follow-up reading minus the index reading plus
    the enlargement), and whether the lesion has a scan in the window at all."""
    lo, hi = FIGURES["C4"].range
    window = (t >= lo) & (t <= hi) & seen
    cut = math.log1p(THRESHOLDS["back_to_baseline"].value / 100.0)
    return (window & (measured <= cut)).any(axis=1), window.any(axis=1)


def c4_share(p: CohortParameters, resolution_median: float | None = None, n: int = 40_000,
             seed: int = 0) -> float:
    """The share of pseudoprogression lesions at or below baseline volume at some scan 8-12
    weeks after the index scan (C4), among those with a scan in that window, as the rule
    C4_shrinkage reads measured scans, under ``p.followup`` with the median resolution rate
    ``resolution_median`` (default the frozen one). Monte Carlo over ``n`` pseudoprogression
    lesions (enlargement from the cohort's marginal, dexamethasone as the cohort gives it)
    with fixed random numbers (``seed``), so the share is a monotone step function of the
    rate; 0-1."""
    f = p.followup if resolution_median is None else replace(
        p.followup, pp_resolution_median=float(resolution_median))
    rng = np.random.default_rng([seed, 2])
    v = p.volume_change_pct
    l0 = to_scale("volume_change_pct", v.median_pp) + math.hypot(v.sd_pp, v.noise_sd) \
        * rng.standard_normal(n)
    steroid = rng.random(n) < p.symptomatic.pp * p.steroid_given
    d = _Draws.draw(rng, n, len(f.scan_weeks()))
    t = _scan_times(f, d)
    reading = _measured(_true_course(l0, np.ones(n, bool), steroid, t, d, f), d, f)
    measured = reading - reading[:, :1] + l0[:, None]
    seen = (d.scan_u[:, 0] >= f.missing_visit) | (t <= 0)
    back, has = _c4_back(measured, t, seen)
    return float(back[has].mean())


def derive_followup_values(p: CohortParameters | None = None) -> dict[str, float]:
    """The follow-up numbers the defaults freeze, re-derived from the figures given the rest
    of ``p``: the growth rate of true progression (log(1 + its median enlargement) over its
    median weeks on treatment: it keeps its own pace) and the median resolution rate of
    pseudoprogression that puts :func:`c4_share` at C4's 73.5% (bisection to 1e-4)."""
    p = p or DEFAULT_PARAMETERS
    target = FIGURES["C4"].value
    rate = optimize.bisect(lambda r: c4_share(p, r) - target, 0.01, 2.0, xtol=1e-4)
    return {"followup_tp_growth_per_week": float(
                math.log1p(p.volume_change_pct.median_tp / 100.0)
                / p.weeks_on_treatment.median_tp),
            "followup_pp_resolution_median": float(rate)}


# --------------------------------------------------------------------------- fidelity


def _icc(readings: np.ndarray) -> tuple[float, float, float]:
    """One-way random-effects ICC(1) of ``readings`` (lesions x readers) from the ANOVA mean
    squares, (MSB - MSW) / (MSB + (r - 1) MSW), with its 95% CI from the F distribution
    (Shrout and Fleiss 1979). Written out: neither scipy nor statsmodels has it."""
    n, r = readings.shape
    row_means = readings.mean(axis=1)
    msb = r * np.sum((row_means - readings.mean()) ** 2) / (n - 1)
    msw = np.sum((readings - row_means[:, None]) ** 2) / (n * (r - 1))
    ratio = msb / msw
    low = ratio / stats.f.ppf(0.975, n - 1, n * (r - 1))
    high = ratio * stats.f.ppf(0.975, n * (r - 1), n - 1)

    def icc(x: float) -> float:
        return float((x - 1) / (x + r - 1))

    return icc(ratio), icc(low), icc(high)


def _balanced_accuracy(hit_pos: np.ndarray, hit_neg: np.ndarray) -> tuple[float, float, float]:
    """(sensitivity + specificity) / 2 with a 95% normal-approximation interval (the two
    proportions are independent: different lesions)."""
    se, sp = float(np.mean(hit_pos)), float(np.mean(hit_neg))
    half = stats.norm.ppf(0.975) * math.sqrt(se * (1 - se) / len(hit_pos)
                                             + sp * (1 - sp) / len(hit_neg)) / 2
    value = (se + sp) / 2
    return value, value - half, value + half


def followup_fidelity_rows(cohort: pd.DataFrame, seed: int, p: CohortParameters,
                           add) -> None:
    """Add to a fidelity table (through ``add(figure_id, quantity, published_value,
    published_text, (value, ci_low, ci_high), target, basis, honoured=True, note="")``, as
    :func:`features.synthetic.cohort.fidelity_table` calls it) what the simulated follow-up
    of ``cohort`` gives: C4, the reader-to-reader spread behind the measurement error, the
    ICC of each method in this cohort, the share of pseudoprogression still enlarging at
    the first follow-up scan, the rule +40% against nadir, and T4 and C3 over follow-up."""

    f = p.followup
    fu = followup_arrays(cohort, seed, p)
    y = fu["label"]
    pp, tp = y == 1, y == 0
    t, seen = fu["weeks"], fu["seen"]
    l0 = np.log1p(pd.to_numeric(cohort["volume_change_pct"]).to_numpy(dtype=float) / 100.0)
    reading = np.log(fu["volume"])
    measured = reading - reading[:, :1] + l0[:, None]
    back, has = _c4_back(measured, t, seen)
    lo4, hi4 = FIGURES["C4"].range
    tol = 0.02
    add("C4", f"share of pseudoprogression at or below baseline volume at a scan "
        f"{lo4:g}-{hi4:g} weeks after the index scan", FIGURES["C4"].value, "point value",
        proportion_with_ci(back[pp & has]), (FIGURES["C4"].value - tol, FIGURES["C4"].value + tol),
        f"tolerance +/-{tol:g} around the article's point value",
        note="as the rule C4_shrinkage reads measured scans (measurement error at both scans), "
             "among lesions with a scan in the window")

    # measurement: 8 readings of every lesion's index volume, and two by each method
    rng = np.random.default_rng([seed, 3])
    true0 = np.log(fu["baseline"]) + fu["true_log"][:, 0]  # true log volume (ml)
    sd = f.size_noise_sd()
    eight = true0[:, None] + sd * rng.standard_normal((len(true0), 8))
    factor = np.exp(eight.max(axis=1) - eight.min(axis=1))
    cf = PUBLISHED["contour_factor"]
    add("contour_factor", f"median largest / smallest of 8 readings of a lesion's volume "
        f"({f.measurement} measurement)", cf.value, f"range {cf.range[0]:g}-{cf.range[1]:g}",
        median_with_ci(factor), (cf.value - 0.05, cf.value + 0.05) if f.measurement == "volume"
        and f.noise_scale == 1.0 else (0.0, math.inf),
        "tolerance +/-0.05 (volume measurement at the published error)",
        note=f"{PUBLISHED['contour_factor'].source}; log-SD of one reading {sd:.3f}")
    spread = float(np.std(true0))
    for method in MEASUREMENTS:
        fig = PUBLISHED[f"ICC_{method}"]
        scale = _SCALE[method]
        two = scale * (true0[:, None] + f.size_noise_sd(method) * rng.standard_normal(
            (len(true0), 2)))
        icc = _icc(two)
        implied = math.sqrt(fig.value / (1 - fig.value)) * scale * f.size_noise_sd(method)
        add(f"ICC_{method}", f"ICC of two {method} readings of a lesion at the index scan "
            "(log scale, this cohort)", fig.value, "point value", icc,
            (0.0, 1.0), "any: an ICC depends on the spread between lesions", honoured=False,
            note=f"the method's error is honoured relative to volume (sqrt((1 - ICC) / ICC)); "
                 f"the ICC itself is not: these lesions' log {method} size spreads with SD "
                 f"{scale * spread:.2f}, the published ICC would need {implied:.2f} "
                 f"(glioblastoma, larger and more varied). {fig.source}")

    # courses: pseudoprogression still enlarging at the first follow-up scan (true size)
    first = 1
    growing = fu["true_log"][:, first] > fu["true_log"][:, 0]
    add("PP_late", f"share of pseudoprogression still enlarging at the scan planned "
        f"{fu['planned'][first]:g} weeks after the index (true size)", None,
        "some for months", proportion_with_ci(growing[pp]), (0.0, 1.0),
        f"no figure gives the share (assumption: pp_prolonged_share {f.pp_prolonged_share:g})",
        note=f"peaks drawn up to {f.pp_prolonged_max_weeks:g} weeks after the index scan "
             f"({PUBLISHED['PP_late'].source}; {PUBLISHED['PP_onset_ICI'].source})")

    # the volumetric rule: +40% against the nadir of the scans so far, within 16 weeks
    vol = np.where(seen, fu["volume"], np.nan)
    nadir = np.fmin.accumulate(vol, axis=1)
    with np.errstate(invalid="ignore"):
        grew = (vol[:, 1:] >= (1 + THRESHOLDS["confirm_volume_growth"].value / 100.0)
                * nadir[:, :-1])
    says_tp = np.nan_to_num(grew, nan=0.0).astype(bool).any(axis=1)
    balanced = _balanced_accuracy(says_tp[tp], ~says_tp[pp])  # true progression is positive
    sens, spec = float(np.mean(says_tp[tp])), float(np.mean(~says_tp[pp]))
    vr = PUBLISHED["volumetric_rule"]
    add("volumetric_rule", "balanced accuracy of 'volume +40% against the nadir' for true "
        f"progression, scans to {f.last_week:g} weeks", vr.value,
        "near 49% (majority baseline 63%)", balanced,
        (0.0, 1.0), "not a target: the reference there is an expert's rating, here the truth",
        honoured=False,
        note=f"sensitivity {sens:.1%}, specificity {spec:.1%} against the simulated truth; "
             f"{vr.source}")

    # T4 and C3 over follow-up (the first follow-up scan)
    r0, r1 = fu["rcbv"][:, 0], np.where(seen[:, first], fu["rcbv"][:, first], np.nan)
    a0, a1 = fu["adc"][:, 0], np.where(seen[:, first], fu["adc"][:, first], np.nan)
    lo_r, hi_r = FIGURES["C3"].range
    at = f"{fu['planned'][first]:g}"
    add("C3", f"median rCBV in pseudoprogression at the {at}-week follow-up scan (ratio)", None,
        f"< {lo_r:g}", median_with_ci(r1[pp]), (0.0, lo_r), "stated range, kept over follow-up")
    add("C3", f"median rCBV in true progression at the {at}-week follow-up scan (ratio)", None,
        f"> {hi_r:g}", median_with_ci(r1[tp]), (hi_r, math.inf),
        "stated range, kept over follow-up")
    both = ~np.isnan(r0) & ~np.isnan(r1) & ~np.isnan(a0) & ~np.isnan(a1)
    rise, fall = THRESHOLDS["rcbv_rise"].value, THRESHOLDS["adc_fall"].value
    with np.errstate(invalid="ignore"):
        worse = (100.0 * (r1 / r0 - 1.0) > rise) | (100.0 * (a1 / a0 - 1.0) < fall)
    k_tp, n_tp = int(worse[both & tp].sum()), int((both & tp).sum())
    k_pp, n_pp = int(worse[both & pp].sum()), int((both & pp).sum())
    add("T4", f"likelihood ratio of worsening (rCBV up > {rise:g}% or ADC down > {-fall:g}% at "
        f"the {at}-week scan) for true progression", None, "points to true progression",
        ratio_with_ci(k_tp, n_tp, k_pp, n_pp), (1.0, math.inf),
        "stated direction: worse more often in true progression",
        note=f"worse in {k_tp / max(n_tp, 1):.1%} of true progression, "
             f"{k_pp / max(n_pp, 1):.1%} of pseudoprogression")
