"""The parameter table of the synthetic cohort simulator (:mod:`features.simulate`).

Every number the simulator draws from lives in :class:`CohortParameters`, each field tied
to the article figure it serves (``metadata={"figure": ...}``) and given with its unit.
Change them with :func:`dataclasses.replace`::

    from dataclasses import replace
    from features.parameters import DEFAULT_PARAMETERS
    wider = replace(DEFAULT_PARAMETERS,
                    rcbv=replace(DEFAULT_PARAMETERS.rcbv, sd_pp=0.6, sd_tp=0.6))

Simulation scale. Each continuous feature is normal within a class on its *simulation
scale*: the contract's transform (``features.contract.BY_NAME[c].transform``: ``log`` for
ratios, concentrations and weeks; ``log(1 + pct/100)`` for % changes; ``logit(pct/100)``
for percentages), except ``ctdna_change_pct``, whose scale is
``-log(log(1 + high/100) - log(1 + pct/100))`` with ``high`` the contract's upper limit
(10000%). That scale has a long lower tail of falls and a bounded upper tail of rises,
which lets D3's modest odds ratio (4.3) sit beside M4's medians (a fall of more than half
in pseudoprogression, a rise to 2.1x in true progression) without ever leaving the
contract's range; see :mod:`features.simulate`.

Medians are given in the column's own unit (a monotone transform keeps medians), spreads
as SDs on the simulation scale. Class-conditional distributions are the same for every
cancer type; only the prevalence differs (P1, P2).

The defaults were fitted once, offline, to the article's figures (closed-form quantiles
of the normal where a target involves one feature, a numerical root where it involves
two); nothing is optimised at import or at run time. ``fidelity_table`` in
:mod:`features.simulate` reports how close they come.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.article import FIGURES, PREVALENCE


@dataclass(frozen=True)
class Marginal:
    """Class-conditional normal of one continuous feature on its simulation scale.

    median_pp, median_tp: median in pseudoprogression (label 1) and in true progression
    (label 0), in the column's unit. sd_pp, sd_tp: biological SD on the simulation scale.
    noise_sd: measurement noise SD on the simulation scale, both classes; the observed
    value's SD is ``sqrt(sd**2 + noise_sd**2)`` and its median is unchanged.
    """

    median_pp: float
    median_tp: float
    sd_pp: float
    sd_tp: float
    noise_sd: float = 0.0


@dataclass(frozen=True)
class Rate:
    """A probability given the class: ``pp`` in pseudoprogression, ``tp`` in true progression."""

    pp: float
    tp: float


def _f(default, figure: str, unit: str, doc: str = ""):
    """A field with its article figure id and unit as metadata."""
    return field(default=default, metadata={"figure": figure, "unit": unit, "doc": doc})


#: Share of pseudoprogression without new neurological deficit (C1).
_C1_ASYMPTOMATIC = FIGURES["C1"].value


@dataclass(frozen=True)
class CohortParameters:
    """Every parameter of the synthetic cohort, with its unit and article figure.

    Probabilities are in 0-1. Continuous features: see :class:`Marginal` (medians in the
    column's unit, SDs on the simulation scale described in this module's docstring).
    """

    # --- prevalence (prior probability of pseudoprogression) ---------------------------
    prevalence_melanoma: float = _f(PREVALENCE["melanoma"], "P1", "probability",
                                    "melanoma on PD-1/PD-L1 inhibitors")
    prevalence_nsclc: float = _f(PREVALENCE["nsclc"], "P2", "probability",
                                 "non-small-cell lung cancer")
    mixed_share_melanoma: float = _f(0.5, "P1, P2", "probability",
                                     "share of melanoma patients in a 'mixed' cohort")

    # --- clinical ----------------------------------------------------------------------
    # P3: PP mostly 3-12 weeks (geometric middle ~6); TP later and more spread.
    weeks_on_treatment: Marginal = _f(Marginal(6.5, 9.0, 0.40, 0.60), "P3",
                                      "weeks; SD on log scale")
    # C1: the enlargement itself; PP volume grows > 20% in nearly all.
    volume_change_pct: Marginal = _f(Marginal(55.0, 65.0, 0.13, 0.20, 0.03), "C1",
                                     "%; SD on log(1 + pct/100)")
    # C1: 68.3% of PP asymptomatic. Q1a_spec: with steroids, 93.6% of TP not relieved.
    symptomatic: Rate = _f(Rate(round(1.0 - _C1_ASYMPTOMATIC, 3), 0.955), "C1, Q1a",
                           "probability of new or worse neurological symptoms")
    # Q1a: a symptomatic patient gets dexamethasone and a recorded response with this
    # probability, the same in both classes (so whether it was given carries no information).
    steroid_given: float = _f(0.60, "Q1a, C2", "probability, among symptomatic patients")
    # C2: median relief > 70% in PP, < 30% in TP. Q1a: P(relief > 70 | PP) = 0.678 and
    # P(relief > 70 | TP) = 0.033, which with `symptomatic` and `steroid_given` give
    # Q1a's 81.2% and 93.6%.
    steroid_response_pct: Marginal = _f(Marginal(80.0, 20.0, 1.167, 1.216), "C2, Q1a",
                                        "%; SD on logit(pct/100)")

    # --- imaging -----------------------------------------------------------------------
    # C3, Q1b: median rCBV < 1.5 in PP, > 2.0 in TP; overlapping (D1 not enriched).
    rcbv: Marginal = _f(Marginal(1.20, 2.40, 0.45, 0.45, 0.10), "C3, Q1b, D1",
                        "ratio; SD on log scale")
    # D1: oedema raises ADC in PP, cellularity lowers it in TP.
    adc: Marginal = _f(Marginal(1.25, 0.95, 0.20, 0.20, 0.05), "D1",
                       "10^-3 mm^2/s; SD on log scale")
    # D2: median choline/creatine < 2.5 in PP, > 4.0 in TP.
    cho_cr: Marginal = _f(Marginal(2.0, 4.6, 0.40, 0.40, 0.10), "D2", "ratio; SD on log scale")
    # D2: lactate absent as a rule for PP has specificity 88% (present in 88% of TP).
    lactate_peak: Rate = _f(Rate(0.40, FIGURES["D2"].value), "D2",
                            "probability of a lactate peak")
    # M3: PP SUVmax 1.2-1.8x baseline (median at the geometric middle), 91% of PP below
    # 1.8x (the PET sensitivity); TP 2.5x or more.
    suvmax_change_pct: Marginal = _f(Marginal(46.97, 180.0, 0.1427, 0.29, 0.05), "M3, Q1c",
                                     "%; SD on log(1 + pct/100)")

    # --- blood ---------------------------------------------------------------------------
    # M4: PP median fall > 50%, TP median 2.1x baseline; D3: OR 4.3 for a fall > 60%.
    ctdna_change_pct: Marginal = _f(Marginal(-55.0, 110.0, 0.20, 0.36, 0.02), "D3, M4, Q1d",
                                    "%; SD on -log(log(101) - log(1 + pct/100))")
    # D4: IL-8 > 50 and IFN-gamma > 20 in 89% of PP.
    il8_pg_ml: Marginal = _f(Marginal(150.0, 40.0, 0.70, 0.80, 0.10), "D4",
                             "pg/ml; SD on log scale")
    ifng_pg_ml: Marginal = _f(Marginal(60.0, 12.0, 0.70, 0.80, 0.10), "D4",
                              "pg/ml; SD on log scale")

    # --- biopsy --------------------------------------------------------------------------
    # D5: CD8/tumour-cell ratio > 0.5 in PP; Ki-67 median < 10% in PP, > 30% in TP.
    cd8_tumor_ratio: Marginal = _f(Marginal(0.90, 0.25, 0.60, 0.70, 0.10), "D5",
                                   "ratio; SD on log scale")
    ki67_pct: Marginal = _f(Marginal(6.0, 40.0, 0.70, 0.70, 0.10), "D5",
                            "%; SD on logit(pct/100)")

    # --- within-class correlations (both classes, biological parts, before noise) -------
    # Tumour activity moves rCBV, choline, SUVmax and Ki-67 up and ADC down together;
    # immune activation moves IL-8, IFN-gamma and CD8 up and ctDNA down together.
    correlations: tuple[tuple[str, str, float], ...] = _f((
        ("rcbv", "cho_cr", 0.35), ("rcbv", "suvmax_change_pct", 0.35), ("rcbv", "ki67_pct", 0.30),
        ("cho_cr", "suvmax_change_pct", 0.30), ("cho_cr", "ki67_pct", 0.30),
        ("suvmax_change_pct", "ki67_pct", 0.30),
        ("adc", "rcbv", -0.30), ("adc", "cho_cr", -0.25), ("adc", "suvmax_change_pct", -0.20),
        ("adc", "ki67_pct", -0.30),
        ("il8_pg_ml", "ifng_pg_ml", 0.45), ("il8_pg_ml", "cd8_tumor_ratio", 0.25),
        ("ifng_pg_ml", "cd8_tumor_ratio", 0.35),
        ("ctdna_change_pct", "il8_pg_ml", -0.20), ("ctdna_change_pct", "ifng_pg_ml", -0.25),
        ("ctdna_change_pct", "cd8_tumor_ratio", -0.20), ("ctdna_change_pct", "ki67_pct", 0.20),
        ("volume_change_pct", "rcbv", 0.15),
    ), "C3, D1, D2, D4, D5, M3, M4", "correlation on the simulation scale")

    # --- missingness: each modality missing completely at random with this probability ---
    missing_perfusion: float = _f(0.15, "D1, C3", "probability (rcbv)")
    missing_diffusion: float = _f(0.10, "D1", "probability (adc)")
    missing_mrs: float = _f(0.55, "D2", "probability (cho_cr and lactate_peak together)")
    missing_pet: float = _f(0.65, "M3, Q1c", "probability (suvmax_change_pct)")
    missing_ctdna: float = _f(0.50, "D3, M4", "probability (ctdna_change_pct)")
    missing_cytokines: float = _f(0.65, "D4", "probability (il8_pg_ml and ifng_pg_ml together)")
    missing_biopsy: float = _f(0.90, "D5", "probability (cd8_tumor_ratio and ki67_pct together)")

    def prevalence(self, cancer_type: str) -> float | None:
        """The prior probability of pseudoprogression for a cancer type, or None if unknown."""
        return {"melanoma": self.prevalence_melanoma, "nsclc": self.prevalence_nsclc}.get(
            cancer_type)

    def missing_rate(self, modality: str) -> float:
        """Probability that a modality (contract ``Column.modality``) is missing; 0 if always
        present (clinical data and the MRI volume)."""
        return float(getattr(self, f"missing_{modality}", 0.0))


#: The parameters every function uses unless given others.
DEFAULT_PARAMETERS = CohortParameters()
