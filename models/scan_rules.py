"""Rules over time: the article's follow-up advice and iRANO as decisions per lesion.

Each rule reads a lesion's scans (:class:`features.scans.ScansTable`) and says 1
(pseudoprogression), 0 (true progression) or NaN (it abstains: the scans it needs are not
there). Cut-offs come from :data:`features.article.THRESHOLDS`, windows from
:data:`features.article.FIGURES`; times are weeks after the index scan.

- ``T4_perfusion_diffusion_trend`` (T4): rCBV up by more than 20%, or ADC down by more than
  20%, against the index scan at a follow-up scan says 0; follow-up scans with both measures
  and neither worse say 1. It reads every follow-up scan up to ``until_week`` (default: all
  it is given) and needs rCBV and ADC at the index scan and together at a follow-up scan.
- ``iRANO_confirmation`` (iRANO, RANO 2.0): a scan 4-12 weeks after the index scan with
  further growth of at least 25% in SPD (40% in volume) against the index scan confirms
  true progression (0); window scans without it say 1.
- ``C4_shrinkage`` (C4): a volume at or below baseline at a scan 8-12 weeks after the index
  scan says 1; window volume scans above baseline say 0. Needs the baseline
  (:func:`features.scans.baseline_volume`).

Every rule can be read *as of* a decision time (``as_of``, weeks after the index scan): only
scans up to that time count, so at the index scan every rule abstains, and C4 abstains
before 8 weeks. :func:`scan_rules_at_landmarks` gives every rule at each decision time of
:data:`features.choices.LANDMARK_WEEKS` (index, +4, +8, +12 weeks).

Why functions rather than estimators like :class:`models.rules.ArticleRule`: a lesion's input
is a variable number of scan rows, so the input rows are not the output's rows, which
scikit-learn's ``predict(X)`` (one answer per row of X) and its splitters assume. A model
over time sees a lesion's scans as per-lesion features at one decision time (a landmark),
and is an estimator there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.article import FIGURES, THRESHOLDS
from features.choices import LANDMARK_WEEKS
from features.contract import ID, LESION
from features.scans import (
    FROM_INDEX,
    SIZE,
    SIZE_KIND,
    SPD,
    VOLUME,
    ScansTable,
    change_from_baseline,
    change_from_index,
    read_scans,
)


def _scans(scans: ScansTable | pd.DataFrame) -> ScansTable:
    return scans if isinstance(scans, ScansTable) else read_scans(scans)


def _decide(scans: ScansTable, counts: np.ndarray, hit: np.ndarray, if_hit: float,
            name: str) -> pd.Series:
    """Per lesion: ``if_hit`` where some counted row is a hit, the other answer where rows
    count but none is, NaN where no row counts. ``counts`` and ``hit`` are boolean arrays
    aligned with the scan rows."""
    t = scans.table
    frame = pd.DataFrame({ID: t[ID].to_numpy(), LESION: t[LESION].to_numpy(),
                          "n": counts.astype(int), "hit": (counts & hit).astype(int)})
    per = frame.groupby([ID, LESION], sort=False)[["n", "hit"]].sum().reindex(scans.keys)
    n, hits = per["n"].fillna(0).to_numpy(), per["hit"].fillna(0).to_numpy()
    out = np.where(n == 0, np.nan, np.where(hits > 0, if_hit, 1.0 - if_hit))
    return pd.Series(out, index=scans.keys, name=name)


def _window(scans: ScansTable, low: float, high: float) -> np.ndarray:
    w = scans.table[FROM_INDEX].to_numpy(dtype=float)
    return (w >= low) & (w <= high)


def t4_perfusion_diffusion_trend(scans: ScansTable | pd.DataFrame, as_of: float | None = None,
                                 until_week: float | None = None) -> pd.Series:
    """T4 per lesion: 0 when rCBV rose by more than 20% or ADC fell by more than 20% against
    the index scan at a follow-up scan, 1 when follow-up scans show neither, NaN without
    rCBV and ADC at the index scan and together at a follow-up scan.

    as_of, until_week: weeks after the index scan; only follow-up scans up to the earlier of
    the two count (None: no limit). ``until_week=4`` reads the first follow-up scan only.
    """
    s = _scans(scans).as_of(as_of)
    if "rcbv" not in s.table.columns or "adc" not in s.table.columns:
        return pd.Series(np.nan, index=s.keys, name="T4_perfusion_diffusion_trend")
    rise, fall = THRESHOLDS["rcbv_rise"].value, THRESHOLDS["adc_fall"].value
    d_rcbv = change_from_index(s, "rcbv").to_numpy()
    d_adc = change_from_index(s, "adc").to_numpy()
    limit = np.inf if until_week is None else float(until_week)
    counts = _window(s, 0.0, limit) & (s.table[FROM_INDEX].to_numpy() > 0) \
        & ~np.isnan(d_rcbv) & ~np.isnan(d_adc)
    worse = (d_rcbv > rise) | (d_adc < fall)
    return _decide(s, counts, worse, 0.0, "T4_perfusion_diffusion_trend")


def irano_confirmation(scans: ScansTable | pd.DataFrame, as_of: float | None = None) -> pd.Series:
    """iRANO per lesion: 0 when a scan 4-12 weeks after the index scan shows further growth
    against it of at least 25% in SPD or 40% in volume (RANO 2.0), 1 when scans in that
    window show none, NaN without a sized scan in the window (or a size at the index).

    as_of: weeks after the index scan; only scans up to then count (None: every scan).
    """
    s = _scans(scans).as_of(as_of)
    low, high = FIGURES["iRANO"].range
    growth = change_from_index(s, SIZE).to_numpy()
    kind = s.table[SIZE_KIND].to_numpy()
    cut = np.where(kind == SPD, THRESHOLDS["confirm_spd_growth"].value,
                   THRESHOLDS["confirm_volume_growth"].value)
    counts = _window(s, low, high) & ~np.isnan(growth)
    with np.errstate(invalid="ignore"):
        confirmed = growth >= cut
    return _decide(s, counts, confirmed, 0.0, "iRANO_confirmation")


def c4_shrinkage(scans: ScansTable | pd.DataFrame, as_of: float | None = None,
                 lesions: pd.DataFrame | None = None) -> pd.Series:
    """C4 per lesion: 1 when the volume is at or below baseline at a scan 8-12 weeks after
    the index scan, 0 when window volume scans are all above it, NaN without a volume scan
    in the window or a baseline (see :func:`features.scans.baseline_volume`; ``lesions`` is
    the per-lesion table, read for ``volume_change_pct``).

    as_of: weeks after the index scan; only scans up to then count (None: every scan).
    """
    s = _scans(scans).as_of(as_of)
    low, high = FIGURES["C4"].range
    change = change_from_baseline(s, lesions).to_numpy()
    counts = _window(s, low, high) & ~np.isnan(change) & (s.table[SIZE_KIND].to_numpy() == VOLUME)
    with np.errstate(invalid="ignore"):
        back = change <= THRESHOLDS["back_to_baseline"].value
    return _decide(s, counts, back, 1.0, "C4_shrinkage")


@dataclass(frozen=True)
class ScanRuleSpec:
    """One rule over time: its id, figure, what it says and needs, and its function
    ``decide(scans, as_of, lesions) -> Series`` (1 / 0 / NaN per lesion)."""

    id: str
    figure: str
    says_pseudoprogression_when: str
    needs: str
    decide: Callable[..., pd.Series]


def _t(key: str) -> str:
    return f"{abs(THRESHOLDS[key].value):g}%"


def _weeks(figure: str) -> str:
    low, high = FIGURES[figure].range
    return f"{low:g}-{high:g} weeks after the index scan"


SCAN_RULES: dict[str, ScanRuleSpec] = {
    r.id: r
    for r in [
        ScanRuleSpec("T4_perfusion_diffusion_trend", "T4",
                     f"no follow-up scan with rcbv up > {_t('rcbv_rise')} or adc down > "
                     f"{_t('adc_fall')} against the index scan",
                     "rcbv and adc at the index scan and together at a follow-up scan",
                     lambda s, as_of, lesions: t4_perfusion_diffusion_trend(s, as_of)),
        ScanRuleSpec("iRANO_confirmation", "iRANO, RANO2",
                     f"no scan {_weeks('iRANO')} grown by >= {_t('confirm_spd_growth')} "
                     f"(SPD) or >= {_t('confirm_volume_growth')} (volume) against the index scan",
                     f"a size at the index scan and at a scan {_weeks('iRANO')}",
                     lambda s, as_of, lesions: irano_confirmation(s, as_of)),
        ScanRuleSpec("C4_shrinkage", "C4",
                     f"volume back to baseline (change <= {_t('back_to_baseline')}) at a scan "
                     f"{_weeks('C4')}",
                     f"a baseline volume and a volume scan {_weeks('C4')}",
                     lambda s, as_of, lesions: c4_shrinkage(s, as_of, lesions)),
    ]
}
#: Every rule over time, in a stable order.
SCAN_RULE_IDS: tuple[str, ...] = tuple(SCAN_RULES)


def apply_scan_rules(scans: ScansTable | pd.DataFrame, as_of: float | None = None,
                     lesions: pd.DataFrame | None = None,
                     rule_ids: Sequence[str] = SCAN_RULE_IDS) -> pd.DataFrame:
    """Every rule's decision per lesion (1.0 / 0.0 / NaN), columns named by id, indexed by
    (patient_id, lesion_id); ``as_of`` in weeks after the index scan (None: every scan)."""
    s = _scans(scans)
    unknown = [r for r in rule_ids if r not in SCAN_RULES]
    if unknown:
        raise ValueError(f"unknown rule id(s) {unknown}; choose from {SCAN_RULE_IDS}")
    return pd.DataFrame({r: SCAN_RULES[r].decide(s, as_of, lesions) for r in rule_ids},
                        index=s.keys)


def scan_rules_at_landmarks(scans: ScansTable | pd.DataFrame,
                            landmarks: Sequence[float] = LANDMARK_WEEKS,
                            lesions: pd.DataFrame | None = None,
                            rule_ids: Sequence[str] = SCAN_RULE_IDS) -> pd.DataFrame:
    """Every rule at each decision time: one row per lesion per landmark, with columns
    patient_id, lesion_id, ``as_of_week`` (weeks after the index scan) and one per rule."""
    s = _scans(scans)
    parts = []
    for week in landmarks:
        d = apply_scan_rules(s, week, lesions, rule_ids).reset_index()
        d.insert(2, "as_of_week", float(week))
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def describe_scan_rules() -> pd.DataFrame:
    """A table of the rules over time: id, figure, what it says and what it needs."""
    return pd.DataFrame([{"rule": r.id, "figure": r.figure,
                          "pseudoprogression_when": r.says_pseudoprogression_when,
                          "needs": r.needs} for r in SCAN_RULES.values()])
