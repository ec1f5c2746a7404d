"""The clinical article's reported figures, in one table that code and tests cite by id.

Each figure keeps the id it has in the article's list of figures (P prevalences, M methods,
C clinical course, D diagnostic markers, Q the article's questions, T timing: P1, D1, Q1a,
...); :data:`FIGURES` is the project's copy of that list, each with its statement in words.
Rule thresholds are read from :data:`THRESHOLDS` so no threshold is written twice in the
code base.

Two response criteria the article's management advice leans on stand beside its own
figures, with their source (``Figure.source``): iRANO (immunotherapy: a first progression is
confirmed or refuted on a repeat scan) and RANO 2.0 (how much further growth confirms it).
Times of the follow-up figures (C4, T3, iRANO) are read as weeks after the *index scan*,
the scan whose enlargement raised the question (see :mod:`features.scans`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One figure the article reports.

    ``value`` is the number the simulator or the benchmark is compared with (a
    proportion in 0-1, a ratio, an odds ratio ...), ``ci`` its 95% CI when the article
    gives one, ``range`` a stated range when it gives one instead. ``source`` is empty for
    the article's own figures and cites the publication otherwise.
    """

    id: str
    statement: str
    value: float | None = None
    ci: tuple[float, float] | None = None
    range: tuple[float, float] | None = None
    unit: str = ""
    source: str = ""


FIGURES: dict[str, Figure] = {
    f.id: f
    for f in [
        Figure("P1", "pseudoprogression in melanoma on PD-1/PD-L1 inhibitors", 0.098,
               (0.082, 0.114), unit="proportion"),
        Figure("P2", "pseudoprogression in lung cancer", 0.153, (0.131, 0.175), unit="proportion"),
        Figure("P3", "appears 3-12 weeks after the start of treatment", None, range=(3, 12),
               unit="weeks"),
        Figure("P4", "unrecognised, 23.7% misjudged as true progression", 0.237, unit="proportion"),
        Figure("M3", "PET SUVmax: pseudoprogression 1.2-1.8x baseline, true progression >=2.5x; "
               "PET sensitivity 91%", 0.91, range=(1.2, 1.8), unit="sensitivity / x baseline"),
        Figure("M4", "ctDNA: pseudoprogression falls >50%, true progression rises 2.1x; "
               "NGS specificity 95%", 0.95, unit="specificity"),
        Figure("C1", "68.3% of pseudoprogression have no new neurological deficit; volume "
               "grows >20%", 0.683, unit="proportion"),
        Figure("C2", "dexamethasone relieves >70% of symptoms in 48 h in pseudoprogression; "
               "<30% in true progression", None, range=(30, 70), unit="% relief"),
        Figure("C3", "early window: rCBV < 1.5 in pseudoprogression, > 2.0 in true progression",
               None, range=(1.5, 2.0), unit="ratio"),
        Figure("C4", "8-12 weeks: 73.5% of pseudoprogression lesions shrink back to baseline "
               "volume without intervention", 0.735, range=(8, 12),
               unit="proportion; weeks after the index scan"),
        Figure("D1", "rCBV < 1.5 and ADC > 1.0x10^-3 mm^2/s: PPV 93.2%", 0.932, unit="PPV"),
        Figure("D2", "MRS choline/creatine < 2.5 (true progression > 4.0); lactate absent: "
               "specificity 88%", 0.88, range=(2.5, 4.0), unit="specificity"),
        Figure("D3", "ctDNA at week 6 down >60%: OR 4.3 (95% CI 3.7-5.0)", 4.3, (3.7, 5.0),
               unit="odds ratio"),
        Figure("D4", "IL-8 > 50 pg/ml and IFN-gamma > 20 pg/ml: sensitivity 89%", 0.89,
               unit="sensitivity"),
        Figure("D5", "biopsy: CD8/tumour cell ratio > 1:2 and Ki-67 < 10% (true progression > 30%)",
               None, range=(10, 30), unit="% Ki-67"),
        Figure("Q1a", "81.2% of pseudoprogression asymptomatic or relieved by steroids; 93.6% of "
               "true progression keep getting worse", 0.812, unit="sensitivity"),
        Figure("Q1a_spec", "93.6% of true progression keep getting worse (Q1a's specificity)",
               0.936, unit="specificity"),
        Figure("Q1b", "perfusion: rCBV < 1.5 pseudoprogression, > 2.0 true progression", None,
               range=(1.5, 2.0), unit="ratio"),
        Figure("Q1c", "PET: SUVmax rise < 30% pseudoprogression, > 100% true progression", None,
               range=(30, 100), unit="% rise"),
        Figure("Q1d", "ctDNA after 6 weeks: down > 50% pseudoprogression, up > 30% true "
               "progression", None, range=(-50, 30), unit="% change"),
        Figure("T3", "suspected pseudoprogression: defer the response assessment to 12 weeks "
               "or later (RECIST 1.1 revision)", 12.0, unit="weeks after the index scan"),
        Figure("T4", "follow-up MRI with DSC-MRI and DWI: rCBV or ADC worse by > 20% points to "
               "true progression", None, unit="% change against the index scan"),
        Figure("T4_interval", "follow-up MRI every 4 weeks", 4.0, unit="weeks"),
        Figure("T5", "low risk: asymptomatic, ctDNA down > 50%, rCBV < 1.5", None),
        Figure("T6", "high risk: any one of T5's three not met", None),
        Figure("Q2a", "continuing treatment when the signs fit pseudoprogression: 48.3% reach a "
               "partial response later", 0.483, unit="proportion"),
        Figure("Q2c", "symptoms worsening or contradictory signs: pause treatment up to 4 weeks, "
               "verify by biopsy or liquid biopsy", 4.0, unit="weeks"),
        Figure("iRANO", "immunotherapy: a progression (RANO) within 6 months of its start, "
               "without clinical decline, is confirmed or refuted on a repeat scan before "
               "treatment stops; read here as a scan 4-12 weeks after the index scan (iRECIST "
               "repeats at 4-8 weeks, iRANO within 3 months)", None, range=(4, 12),
               unit="weeks after the index scan",
               source="Okada et al., Lancet Oncol 2015;16:e534-42 (iRANO); Seymour et al., "
                      "Lancet Oncol 2017;18:e143-52 (iRECIST)"),
        Figure("RANO2", "a first progression is confirmed by further growth against its own "
               "scan: >= 25% in the sum of products of perpendicular diameters, or >= 40% in "
               "volume", None, unit="% change against the index scan",
               source="Wen et al., J Clin Oncol 2023;41:5187-99 (RANO 2.0)"),
    ]
}


@dataclass(frozen=True)
class Threshold:
    """A cut-off the article (or a cited criterion) states, with its figure id.

    ``column`` is a column of the contract or of the scans table (:mod:`features.scans`).
    ``unit`` is empty when ``value`` is in the column's own unit; otherwise it says what
    the value measures (e.g. a % change against the index scan).
    """

    column: str
    value: float
    figure: str
    unit: str = ""


#: Every threshold a rule uses. Rules and tests read these; nothing repeats the numbers.
THRESHOLDS: dict[str, Threshold] = {
    "rcbv_low": Threshold("rcbv", 1.5, "D1"),
    "adc_high": Threshold("adc", 1.0, "D1"),
    "cho_cr_low": Threshold("cho_cr", 2.5, "D2"),
    "ctdna_clearance": Threshold("ctdna_change_pct", -60.0, "D3"),
    "il8_high": Threshold("il8_pg_ml", 50.0, "D4"),
    "ifng_high": Threshold("ifng_pg_ml", 20.0, "D4"),
    "cd8_ratio_high": Threshold("cd8_tumor_ratio", 0.5, "D5"),
    "ki67_low": Threshold("ki67_pct", 10.0, "D5"),
    "steroid_relief": Threshold("steroid_response_pct", 70.0, "Q1a"),
    "suvmax_rise_low": Threshold("suvmax_change_pct", 30.0, "Q1c"),
    "ctdna_fall": Threshold("ctdna_change_pct", -50.0, "Q1d"),
    # Over time (follow-up scans), against the index scan or the baseline.
    "rcbv_rise": Threshold("rcbv", 20.0, "T4", "% change against the index scan (more than)"),
    "adc_fall": Threshold("adc", -20.0, "T4", "% change against the index scan (less than)"),
    "confirm_spd_growth": Threshold("spd_mm2", 25.0, "RANO2",
                                    "% change against the index scan (at least)"),
    "confirm_volume_growth": Threshold("volume_ml", 40.0, "RANO2",
                                       "% change against the index scan (at least)"),
    "back_to_baseline": Threshold("volume_ml", 0.0, "C4",
                                  "% change against baseline (at most)"),
}

#: The ids of the article's rules, in the order reports list them (:mod:`models.rules`
#: decides each); a table description may not declare a rule of its own under one of them.
RULE_IDS: tuple[str, ...] = (
    "D1_perfusion_diffusion", "D2_mrs_cho_cr", "D2_mrs_lactate", "D3_ctdna_clearance",
    "D4_cytokines", "D5_pathology", "Q1a_symptoms", "Q1b_perfusion", "Q1c_pet",
    "Q1d_ctdna_trend", "T5_low_risk", "Q1_four_part")

#: Prevalence of pseudoprogression by cancer type (P1, P2).
PREVALENCE: dict[str, float] = {
    "melanoma": FIGURES["P1"].value,
    "nsclc": FIGURES["P2"].value,
}
