"""The parameter table of the synthetic cohort simulator (:mod:`features.synthetic.cohort`).

Every number the simulator draws from lives in :class:`CohortParameters`, each field tied
to the article figure it serves (``metadata={"figure": ...}``) and given with its unit.
Change them with :func:`dataclasses.replace`::

    from dataclasses import replace
    from features.synthetic.parameters import DEFAULT_PARAMETERS
    clinic = replace(DEFAULT_PARAMETERS, missing_pet=0.2,
                     adc=replace(DEFAULT_PARAMETERS.adc, median_pp=1.2))

Simulation scale. Each continuous feature is normal within a class on its *simulation
scale*: the contract's transform (``features.contract.BY_NAME[c].transform``: ``log`` for
ratios, concentrations and weeks; ``log(1 + pct/100)`` for % changes; ``logit(pct/100)``
for percentages), except ``ctdna_change_pct``, whose scale is
``-log(log(1 + high/100) - log(1 + pct/100))`` with ``high`` the contract's upper limit
(10000%). That scale has a long lower tail of falls and a bounded upper tail of rises,
which lets D3's modest odds ratio (4.3) sit beside M4's medians (a fall of more than half
in pseudoprogression, a rise to 2.1x in true progression) without ever leaving the
contract's range; see :mod:`features.synthetic.cohort`.

Medians are given in the column's own unit (a monotone transform keeps medians), spreads
as SDs on the simulation scale. Class-conditional distributions are the same for every
cancer type; only the prevalence differs (P1, P2).

Where a figure pins a number (Q1a's steroid SDs, M3's SUVmax, D3's ctDNA spread, D4's
cytokine spread) the default was derived once from the article by
:func:`derive_tuned_values` (closed-form normal quantiles, or a scalar root) and frozen
here; a test checks they still agree. The other numbers are chosen inside the article's
ranges, as little separated as those ranges allow, and SDs as wide as the contract's
upper limits allow (every limit stays > 5.5 SD from each class mean, so nothing is ever
clipped). Nothing is optimised at import or at run time. ``fidelity_table`` in
:mod:`features.synthetic.cohort` reports how close the cohort comes to each figure.

Follow-up scans (:class:`FollowupParameters`, the field ``followup``): the schedule (T4,
T3) with missed and irregular scans, how a size is measured (volume, 2D or 1D, with the
reader-to-reader error published for each: :data:`PUBLISHED`), the volume course of each
class (C4 fixes the resolution of pseudoprogression; a share keeps enlarging for weeks; true
progression keeps its own pace, a share slowly; dexamethasone shrinks both) and the rCBV
and ADC courses (T4, C3). Numbers no figure gives are marked ``assumption``. They are drawn
from a random stream of their own, so the cohort of a seed is the same with or without them.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from features.article import FIGURES, PREVALENCE, THRESHOLDS, Figure
from features.contract import BY_NAME
from features.errors import UserInputError

# Upper end of the ctDNA simulation scale: log(1 + high/100), high = contract's limit.
_CTDNA_TOP = math.log1p(BY_NAME["ctdna_change_pct"].high / 100.0)


# ---------------------------------------------------------------------------------------
# scales


def to_scale(name: str, values) -> np.ndarray:
    """Map a continuous column (contract unit) to its simulation scale."""
    x = np.asarray(values, dtype=float)
    if name == "ctdna_change_pct":
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.log(_CTDNA_TOP - np.log1p(x / 100.0))
    transform = BY_NAME[name].transform
    with np.errstate(divide="ignore", invalid="ignore"):
        if transform == "log":
            return np.log(x)
        if transform == "log_ratio":
            return np.log1p(x / 100.0)
        if transform == "logit_pct":
            return special.logit(x / 100.0)
    raise ValueError(f"no simulation scale for column {name!r} (transform {transform!r})")


def from_scale(name: str, values) -> np.ndarray:
    """Map a continuous column from its simulation scale back to the contract unit."""
    y = np.asarray(values, dtype=float)
    if name == "ctdna_change_pct":
        return 100.0 * np.expm1(_CTDNA_TOP - np.exp(-y))
    transform = BY_NAME[name].transform
    if transform == "log":
        return np.exp(y)
    if transform == "log_ratio":
        return 100.0 * np.expm1(y)
    if transform == "logit_pct":
        return 100.0 * special.expit(y)
    raise ValueError(f"no simulation scale for column {name!r} (transform {transform!r})")



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


@dataclass(frozen=True)
class ImageParameters:
    """Every parameter that shapes the synthetic images (units in the comments).

    Pairs named ``*_solid`` / ``*_diffuse`` give the value for a fully solid nodular lesion
    (d = 0, typical of true progression) and a fully diffuse soap-bubble one (d = 1, typical
    of pseudoprogression); a patient gets the linear mix at its own ``d``.
    """

    # --- grid -------------------------------------------------------------------------
    #: voxels along x, y, z: a small field of view around one brain lesion.
    size_voxels: tuple[int, int, int] = (40, 40, 24)
    #: mm; in-plane 1 mm with 2 mm slices, like a clinical post-contrast T1 series.
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 2.0)
    #: mm, physical position of the first voxel; None centres the volume on (0, 0, 0).
    origin_mm: tuple[float, float, float] | None = None
    #: direction cosines, row-major 3x3 (identity: axial slices in scanner axes).
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    # --- lesion size ------------------------------------------------------------------
    #: mm, mean radius of the lesion at baseline (small brain metastasis).
    baseline_radius_mm: float = 5.5
    #: mm, between-patient standard deviation of that radius.
    baseline_radius_sd_mm: float = 0.8
    #: mm, cap on the enlarged radius so lesion and oedema stay inside the field of view.
    max_radius_mm: float = 9.0
    #: %, growth used when ``volume_change_pct`` is missing (the scan shows enlargement).
    default_volume_change_pct: float = 25.0
    #: mm, standard deviation of the lesion centre's offset from the volume's centre.
    centre_jitter_mm: float = 1.5

    # --- morphology: nodular solid vs feathery / soap-bubble --------------------------
    #: Beta(a, b) of the diffuseness d in true progression (mean 0.38: more often solid).
    #: d is drawn apart from the table's columns, so it is what the images add to the table.
    diffuseness_beta_tp: tuple[float, float] = (2.0, 3.2)
    #: Beta(a, b) of d in pseudoprogression (mean 0.62: more often diffuse). The two overlap
    #: widely: d alone separates the classes with an AUC of 0.79 (exact, from the two Betas),
    #: the ceiling of a texture-only model, sized so that pyradiomics features of t1c and
    #: flair reach about the AUC of 0.76 that Kim et al. report for their radiomics model of
    #: conventional MRI (contrast-enhanced T1 and FLAIR) telling pseudoprogression from early
    #: progression (Neuro-Oncology 2019;21(3):404-414); benchmarks/image_signal.py measures it.
    diffuseness_beta_pp: tuple[float, float] = (3.2, 2.0)
    #: relative amplitude (fraction of the radius) of the lobulated, irregular margin.
    irregularity_solid: float = 0.30
    irregularity_diffuse: float = 0.12
    #: mm, size of the margin's lobules.
    lobulation_scale_mm: float = 3.0
    #: mean number of satellite enhancing nodules on the surface.
    nodules_solid: float = 2.5
    nodules_diffuse: float = 0.3
    #: nodule radius as a fraction of the lesion radius.
    nodule_radius_fraction: float = 0.35
    #: largest central necrotic (non-enhancing) core, as a fraction of the radius.
    necrosis_fraction_max: float = 0.45
    #: fraction of the lesion taken by non-enhancing bubbles at d = 1 (soap-bubble).
    bubble_fraction_diffuse: float = 0.5
    #: mm, size of bubbles and of the feathery strands between them.
    bubble_scale_mm: float = 1.2
    #: lesions with fewer enhancing voxels than this keep their whole envelope as mask.
    min_mask_voxels: int = 30

    # --- oedema (FLAIR hyperintensity around the lesion) ------------------------------
    #: mm, mean width of the oedema rim around the lesion.
    oedema_extent_solid_mm: float = 2.5
    oedema_extent_diffuse_mm: float = 6.0
    #: mm, between-patient standard deviation of that width.
    oedema_extent_sd_mm: float = 1.2
    #: relative irregularity of the rim (finger-like extension along white matter).
    oedema_irregularity: float = 0.35

    # --- weighted images (arbitrary units) --------------------------------------------
    #: a.u., normal brain signal on T1 post-contrast.
    t1c_scale: float = 400.0
    #: a.u., normal brain signal on FLAIR.
    flair_scale: float = 300.0
    #: relative grey/white-matter contrast of the background anatomy.
    anatomy_contrast: float = 0.12
    #: mm, size of that background structure.
    anatomy_scale_mm: float = 4.0
    #: relative amplitude of the smooth coil bias field on the weighted images.
    bias_field: float = 0.05
    #: relative signal increase of enhancing tissue on T1c (solid tumour enhances avidly).
    enhancement_solid: float = 1.0
    enhancement_diffuse: float = 0.6
    #: relative standard deviation of enhancement within the lesion (feathery pattern).
    enhancement_texture_solid: float = 0.05
    enhancement_texture_diffuse: float = 0.40
    #: relative T1c signal of non-enhancing necrosis / bubbles, and of oedema.
    t1c_necrosis: float = 0.75
    t1c_oedema: float = 0.92
    #: relative FLAIR hyperintensity of oedema, enhancing lesion and necrosis.
    flair_oedema: float = 0.7
    flair_lesion: float = 0.35
    flair_necrosis: float = 0.2

    # --- quantitative maps ------------------------------------------------------------
    #: 10^-3 mm^2/s: normal white matter, vasogenic oedema, necrosis / fluid.
    adc_brain: float = 0.80
    adc_oedema: float = 1.40
    adc_necrosis: float = 2.0
    #: relative standard deviation of ADC within the lesion (cellular heterogeneity).
    adc_texture_solid: float = 0.18
    adc_texture_diffuse: float = 0.12
    #: ratio: normal white matter, oedema (compressed vessels), necrosis.
    rcbv_brain: float = 1.0
    rcbv_oedema: float = 0.8
    rcbv_necrosis: float = 0.4
    #: relative standard deviation of rCBV within the lesion outside hot spots.
    rcbv_texture: float = 0.15
    #: fraction of lesion voxels in rCBV hot spots (neo-angiogenesis of active tumour).
    hotspot_fraction_solid: float = 0.20
    hotspot_fraction_diffuse: float = 0.05
    #: rCBV of hot spots relative to the rest of the lesion.
    hotspot_strength_solid: float = 2.2
    hotspot_strength_diffuse: float = 1.3
    #: mm, size of hot spots.
    hotspot_scale_mm: float = 2.0
    #: mm, size of the within-lesion texture of all sequences.
    texture_scale_mm: float = 1.0

    # --- noise (standard deviation, Gaussian) -----------------------------------------
    #: fraction of ``t1c_scale`` / ``flair_scale``.
    noise_t1c: float = 0.03
    noise_flair: float = 0.03
    #: 10^-3 mm^2/s (diffusion-weighted EPI is noisy).
    noise_adc: float = 0.05
    #: ratio (DSC perfusion is noisier still).
    noise_rcbv: float = 0.12

    # --- missing tabular values -------------------------------------------------------
    #: "skip": no map when the table's adc/rcbv is NaN; "draw": draw a value per class.
    missing_map: str = "skip"
    #: 10^-3 mm^2/s, mean and sd of drawn ADC: true progression, pseudoprogression.
    adc_draw_tp: tuple[float, float] = (0.95, 0.20)
    adc_draw_pp: tuple[float, float] = (1.35, 0.25)
    #: ratio, median and log-sd of drawn rCBV: true progression, pseudoprogression.
    rcbv_draw_tp: tuple[float, float] = (2.2, 0.35)
    rcbv_draw_pp: tuple[float, float] = (1.2, 0.35)

    #: write ``oedema_mask.nii.gz`` beside the mask.
    write_oedema_mask: bool = True

    # --- several lesions per patient (simulated_cohort_with_images) -------------------
    #: probabilities that a simulated patient has 1, 2, 3, ... enlarging lesions. An
    #: assumption (the article gives no figure): most patients one, some two or three, as
    #: brain metastases often are. Each lesion is its own row of the cohort (its label
    #: drawn independently); a patient's lesions lie side by side in one volume, the mask
    #: labelling them 1, 2, ...
    lesions_per_patient: tuple[float, ...] = (0.7, 0.2, 0.1)

    def __post_init__(self) -> None:
        if len(self.size_voxels) != 3 or min(self.size_voxels) < 8:
            raise UserInputError(f"size_voxels must be 3 sizes of at least 8, got "
                                 f"{self.size_voxels}.")
        if len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0:
            raise UserInputError(f"spacing_mm must be 3 positive values, got {self.spacing_mm}.")
        if len(self.direction) != 9:
            raise UserInputError("direction must hold 9 direction cosines (3x3, row-major).")
        if (not self.lesions_per_patient or min(self.lesions_per_patient) < 0
                or not np.isclose(sum(self.lesions_per_patient), 1.0)):
            raise UserInputError(f"lesions_per_patient must be probabilities of 1, 2, ... "
                                 f"lesions summing to 1, got {self.lesions_per_patient}.")
        if self.missing_map not in ("skip", "draw"):
            raise UserInputError(f"missing_map must be 'skip' or 'draw', got "
                                 f"{self.missing_map!r}.")

    def origin(self) -> tuple[float, float, float]:
        """mm, the origin actually used (the centring one when ``origin_mm`` is None)."""
        if self.origin_mm is not None:
            return tuple(float(v) for v in self.origin_mm)
        half = [-(n - 1) / 2.0 * s for n, s in zip(self.size_voxels, self.spacing_mm,
                                                   strict=True)]
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        return tuple(float(v) for v in d @ np.asarray(half))


DEFAULT_IMAGE_PARAMETERS = ImageParameters()


def _f(default, figure: str, unit: str, doc: str = ""):
    """A field with its article figure id and unit as metadata."""
    return field(default=default, metadata={"figure": figure, "unit": unit, "doc": doc})


# Article numbers the simulator targets that features.article does not hold.
C1_VOLUME_GROWTH_PCT = 20.0  # C1: the imaged volume grows by > 20% (%)
M3_TP_MIN_RATIO = 2.5        # M3: true progression SUVmax >= 2.5x baseline (x baseline)
M4_TP_RATIO = 2.1            # M4: true progression ctDNA rises to 2.1x baseline (x baseline)
#: M3's PET sensitivity (91%) is read at the cut halfway (geometric mean) between the
#: pseudoprogression range's top (1.8x) and true progression's floor (2.5x), x baseline.
M3_CUT_RATIO = math.sqrt(FIGURES["M3"].range[1] * M3_TP_MIN_RATIO)

_C1_ASYMPTOMATIC = FIGURES["C1"].value

#: weeks: the period the rates of a :class:`Course` are stated per.
COURSE_WEEKS = 4.0


@dataclass(frozen=True)
class Course:
    """How a perfusion or diffusion value moves after the index scan, per class.

    median_pp_pct, median_tp_pct: median change against the index value over
    :data:`COURSE_WEEKS` weeks in pseudoprogression and in true progression (%), compounding
    (after t weeks the median change is ``(1 + pct/100) ** (t / COURSE_WEEKS) - 1``).
    slope_sd: between-lesion SD of that change on the log scale, per ``COURSE_WEEKS``.
    noise_sd: measurement SD of each follow-up value against the index value, log scale,
    independent from scan to scan.
    """

    median_pp_pct: float
    median_tp_pct: float
    slope_sd: float
    noise_sd: float


#: Published figures the follow-up simulator is sized from, beside the article's
#: (:data:`features.article.FIGURES`); each with its source. Sizes after the index scan are
#: these figures' reading; numbers no figure gives are marked as assumptions where they are set.
PUBLISHED: dict[str, Figure] = {
    f.id: f
    for f in [
        Figure("ICC_volume", "inter-observer agreement of enhancing glioblastoma size, "
               "semi-automatic volume", 0.97, unit="intraclass correlation",
               source="A novel, reproducible, and objective method for volumetric magnetic "
                      "resonance imaging assessment of enhancing glioblastoma (57 MR images "
                      "of 13 patients; scholars.duke.edu/publication/1045269)"),
        Figure("ICC_2d", "the same, 2D products of perpendicular diameters (Macdonald) between "
               "two neuroradiologists", 0.61, unit="intraclass correlation",
               source="as ICC_volume"),
        Figure("ICC_1d", "the same, 1D longest diameters (RECIST) between two "
               "neuroradiologists", 0.42, unit="intraclass correlation",
               source="as ICC_volume"),
        Figure("contour_factor", "brain metastases contoured by 8 physicians: largest over "
               "smallest volume of a lesion, median 1.68 (range 1.25-4.47, 14 lesions)", 1.68,
               range=(1.25, 4.47), unit="x (ratio of volumes)",
               source="The effect of contouring variability on dosimetric parameters for "
                      "brain metastases treated with stereotactic radiosurgery, Int J Radiat "
                      "Oncol Biol Phys 2013;87(5):924-31, doi:10.1016/j.ijrobp.2013.09.013"),
        Figure("PP_late", "glioblastoma: pseudoprogression also after 12 weeks (enlargement at "
               "1, 4 and 7 months after radio-chemotherapy: pseudoprogression in 6/45, 2/17, "
               "1/9); of 9 pseudoprogressions 3 stayed stable and 2 shrank by less than half",
               None, unit="months after radio-chemotherapy",
               source="Neuro-Oncology 2014 (PubMed 25038253)"),
        Figure("PP_onset_ICI", "immune checkpoint inhibitors: median time from the start of "
               "treatment to cerebral pseudoprogression 5 months (12 of 123 patients)", 5.0,
               unit="months",
               source="Urban et al., Front Immunol 2022;12:798811, "
                      "doi:10.3389/fimmu.2021.798811"),
        Figure("volumetric_rule", "glioblastoma follow-up with expert RANO ratings: enhancing "
               "volume +40% against nadir as progression agrees with the experts at a "
               "balanced accuracy near 49% (majority-class baseline 63%)", 0.49,
               unit="balanced accuracy",
               source="a public glioblastoma series with expert RANO ratings, as reported to "
                      "the project; publication not recorded here"),
    ]
}

#: Ways a lesion's size is measured on a follow-up scan (:attr:`FollowupParameters.measurement`).
MEASUREMENTS: tuple[str, ...] = ("volume", "2d", "1d")
#: Readers whose median range of log volumes the contour factor states (PUBLISHED).
_CONTOUR_READERS = 8


@dataclass(frozen=True)
class FollowupParameters:
    """Every parameter of the simulated follow-up scans (:func:`features.synthetic.followup.
    simulate_followup`), with its unit and the figure (article or :data:`PUBLISHED`) it is
    sized from; ``assumption`` where no figure gives it.

    Times are weeks after the index scan. A lesion's true size is a curve on the log scale
    against baseline, ``l(t) = log(volume(t) / baseline)``, starting at the enlargement of
    the index scan, ``l0 = log(1 + volume_change_pct/100)``:

    - true progression keeps growing, ``l(t) = l0 + rate * t``; a share ``tp_slow_share``
      grows ``tp_slow_factor`` times as fast (slow-growing true progression);
    - pseudoprogression resolves, ``l(t) = l0 * (1 - resolution * t)`` with a log-normal
      ``resolution`` (share of the enlargement resolved per week); a share
      ``pp_prolonged_share`` first keeps enlarging at ``pp_prolonged_growth_per_week`` until
      a peak drawn uniformly in ``(0, pp_prolonged_max_weeks]``, then resolves from there;
      past baseline it keeps shrinking, as a lesion responding to continued treatment (Q2a);
    - dexamethasone (given at the index scan where the cohort records a steroid response)
      shrinks either kind by ``steroid_volume_change_pct`` from the first follow-up scan on.

    Every scan, the index included, measures that size with independent log-normal error
    (:meth:`size_noise_sd`, by ``measurement``), is taken up to ``scan_jitter_weeks`` weeks
    before or after its planned time, and is missed with probability ``missing_visit``.
    ``noise_scale`` multiplies the measurement error (the sensitivity settings of
    :func:`features.synthetic.followup.followup_setting`). Numbers written with many digits
    were derived by :func:`derive_tuned_values`.
    """

    # --- schedule ----------------------------------------------------------------------
    interval_weeks: float = _f(FIGURES["T4_interval"].value, "T4", "weeks",
                               "one follow-up MRI every this many weeks")
    last_week: float = _f(FIGURES["T3"].value + FIGURES["T4_interval"].value, "T3, T4",
                          "weeks after the index scan",
                          "the last follow-up scan: the first after T3's assessment at 12 weeks")
    # Assumption: no figure gives how often a planned scan is missed.
    missing_visit: float = _f(0.10, "assumption", "probability",
                              "a follow-up scan is missed (all of it)")
    # Assumption: scans are taken within a week either side of the plan (irregular scans).
    scan_jitter_weeks: float = _f(1.0, "assumption", "weeks",
                                  "a follow-up scan is taken uniformly within this many weeks "
                                  "of its planned time")

    # --- measurement ---------------------------------------------------------------------
    measurement: str = _f("volume", "ICC_volume, ICC_2d, ICC_1d", "volume | 2d | 1d",
                          "how each scan measures the lesion's size")
    contour_factor: float = _f(PUBLISHED["contour_factor"].value, "contour_factor",
                               "x (median largest / smallest of 8 readings)",
                               "reader-to-reader spread of a volume: its log-SD is "
                               "log(factor) / the median range of 8 standard normals")
    icc_volume: float = _f(PUBLISHED["ICC_volume"].value, "ICC_volume", "ICC",
                           "agreement of volumes; with icc_2d and icc_1d it fixes how much "
                           "noisier 2D and 1D sizes are than volumes")
    icc_2d: float = _f(PUBLISHED["ICC_2d"].value, "ICC_2d", "ICC", "agreement of 2D products")
    icc_1d: float = _f(PUBLISHED["ICC_1d"].value, "ICC_1d", "ICC", "agreement of diameters")
    noise_scale: float = _f(1.0, "sensitivity setting", "x", "multiplies the measurement error")

    # --- volume ------------------------------------------------------------------------
    baseline_volume_ml: float = _f(0.7, "C1, C4", "ml (median)",
                                   "lesion volume before the enlargement (small metastasis)")
    baseline_volume_sd: float = _f(0.45, "C1, C4", "SD on log scale", "between lesions")
    # True progression keeps growing at the pace of its own enlargement: the median rate is
    # log(1 + 58%) over 7 weeks, the true-progression medians of volume_change_pct and
    # weeks_on_treatment (a volume doubling time of about 10.6 weeks).
    tp_growth_per_week: float = _f(0.065346, "C1, P3", "log volume per week (median)",
                                   "growth rate of true progression after the index scan")
    tp_growth_sd: float = _f(0.4, "RANO2", "SD on log scale", "between lesions")
    # Assumption: "some true progressions grow slowly"; no figure gives how many or how slowly.
    tp_slow_share: float = _f(0.2, "assumption", "probability",
                              "true progression growing slowly")
    tp_slow_factor: float = _f(0.25, "assumption", "x tp_growth_per_week",
                               "pace of a slowly growing true progression")
    # Assumption sized by PP_late and PP_onset_ICI: pseudoprogression can go on enlarging
    # for months (late forms up to 7 months after radio-chemotherapy, median onset 5 months
    # on checkpoint inhibitors), so a share peaks only after the index scan, as late as the
    # last scan; the share itself is not given by any figure.
    pp_prolonged_share: float = _f(0.25, "PP_late, PP_onset_ICI (share: assumption)",
                                   "probability", "pseudoprogression still enlarging after "
                                   "the index scan")
    pp_prolonged_max_weeks: float = _f(16.0, "PP_late, PP_onset_ICI", "weeks after the index "
                                       "scan", "latest peak of a prolonged pseudoprogression")
    # Assumption: while it enlarges, it grows at true progression's median pace (size alone
    # cannot tell them apart until the peak).
    pp_prolonged_growth_per_week: float = _f(0.065346, "assumption", "log volume per week",
                                             "growth of a prolonged pseudoprogression")
    # Derived so that C4 holds: 73.5% of pseudoprogression lesions at or below baseline volume
    # at a scan 8-12 weeks after the index scan, as the rule C4_shrinkage reads the measured
    # scans (measurement error, prolonged courses, steroids, missed and irregular scans in).
    pp_resolution_median: float = _f(0.200631, "C4", "share of the enlargement per week",
                                     "median resolution rate of pseudoprogression")
    pp_resolution_sd: float = _f(0.5, "assumption", "SD on log scale",
                                 "between-lesion spread of the resolution rate")
    # Assumption: dexamethasone shrinks enhancing lesions of either kind; no figure gives by
    # how much.
    steroid_volume_change_pct: float = _f(-25.0, "C2 (size: assumption)", "%",
                                          "volume change under dexamethasone, both kinds")

    # --- perfusion and diffusion -------------------------------------------------------
    # C3/T4: in pseudoprogression rCBV falls as the inflammation settles and ADC rises a
    # little; in true progression rCBV rises (neo-angiogenesis) and ADC falls (cellularity).
    rcbv: Course = _f(Course(-10.0, 15.0, 0.10, 0.10), "T4, C3",
                      "% per 4 weeks; SDs on log scale", "rCBV after the index scan")
    adc: Course = _f(Course(4.0, -7.0, 0.06, 0.05), "T4, D1",
                     "% per 4 weeks; SDs on log scale", "ADC after the index scan")

    def __post_init__(self) -> None:
        problems = []
        if not self.interval_weeks > 0 or not self.last_week >= self.interval_weeks:
            problems.append(f"interval_weeks must be > 0 and last_week >= interval_weeks; got "
                            f"{self.interval_weeks} and {self.last_week}")
        for name in ("missing_visit", "tp_slow_share", "pp_prolonged_share"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be a probability in [0, 1), got "
                                f"{getattr(self, name)}")
        if not 0.0 <= self.scan_jitter_weeks < self.interval_weeks / 2:
            problems.append(f"scan_jitter_weeks must be in [0, interval_weeks / 2) so that "
                            f"scans keep their order; got {self.scan_jitter_weeks}")
        if self.measurement not in MEASUREMENTS:
            problems.append(f"measurement must be one of {', '.join(MEASUREMENTS)}; got "
                            f"{self.measurement!r}")
        for name in ("icc_volume", "icc_2d", "icc_1d"):
            if not 0.0 < getattr(self, name) < 1.0:
                problems.append(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if not self.contour_factor >= 1.0 or not self.noise_scale >= 0.0:
            problems.append("contour_factor must be >= 1 and noise_scale >= 0")
        if not self.steroid_volume_change_pct > -100.0:
            problems.append("steroid_volume_change_pct must be above -100")
        if problems:
            raise UserInputError("FollowupParameters: " + "; ".join(problems) + ".")

    def scan_weeks(self) -> np.ndarray:
        """Planned weeks after the index scan of every scan, the index (0) first."""
        n = int(math.floor(self.last_week / self.interval_weeks + 1e-9))
        return self.interval_weeks * np.arange(n + 1, dtype=float)

    def size_noise_sd(self, measurement: str | None = None) -> float:
        """SD (log-volume scale) of one reading of a lesion's size by ``measurement``
        (default :attr:`measurement`), times :attr:`noise_scale`.

        Volume: the contour factor is the median range of 8 readers' log volumes, so the SD
        is ``log(contour_factor)`` over the median range of 8 standard normals (2.79). 2D and
        1D: an ICC is ``S^2 / (S^2 + e^2)`` for a between-lesion SD ``S`` of the log size, so
        with one ``S`` for the three methods of the same series (log SPD = 2/3, log diameter
        = 1/3 of log volume) the error on the log-volume scale grows with
        ``sqrt((1 - ICC) / ICC)``: 2D is 4.5 times, 1D 6.7 times as noisy as volume.
        """
        from scipy import stats

        method = self.measurement if measurement is None else measurement
        if method not in MEASUREMENTS:
            raise ValueError(f"measurement must be one of {MEASUREMENTS}, got {method!r}")
        median_range = float(stats.studentized_range.ppf(0.5, _CONTOUR_READERS, np.inf))
        volume = math.log(self.contour_factor) / median_range
        icc = {"volume": self.icc_volume, "2d": self.icc_2d, "1d": self.icc_1d}

        def odds(v: float) -> float:
            return (1.0 - v) / v

        return self.noise_scale * volume * math.sqrt(odds(icc[method]) / odds(self.icc_volume))


@dataclass(frozen=True)
class CohortParameters:
    """Every parameter of the synthetic cohort, with its unit and article figure.

    Probabilities are in 0-1. Continuous features: see :class:`Marginal` (medians in the
    column's unit, SDs on the simulation scale described in this module's docstring).
    Numbers written with many digits were derived by :func:`derive_tuned_values`.
    """

    # --- prevalence (prior probability of pseudoprogression) ---------------------------
    prevalence_melanoma: float = _f(PREVALENCE["melanoma"], "P1", "probability",
                                    "melanoma on PD-1/PD-L1 inhibitors")
    prevalence_nsclc: float = _f(PREVALENCE["nsclc"], "P2", "probability",
                                 "non-small-cell lung cancer")
    mixed_share_melanoma: float = _f(0.5, "P1, P2", "probability",
                                     "share of melanoma patients in a 'mixed' cohort")

    # --- clinical ----------------------------------------------------------------------
    # P3: PP mostly 3-12 weeks (median near the geometric middle, 6); TP a little later.
    weeks_on_treatment: Marginal = _f(Marginal(6.5, 7.0, 0.40, 0.50), "P3",
                                      "weeks; SD on log scale")
    # C1: the enlargement itself (every lesion in the table enlarged); PP > 20% in nearly all.
    volume_change_pct: Marginal = _f(Marginal(55.0, 58.0, 0.15, 0.17, 0.03), "C1",
                                     "%; SD on log(1 + pct/100)")
    # C1: 68.3% of PP asymptomatic. TP: 95.5% symptomatic, so that with steroids 93.6%
    # stay symptomatic and unrelieved (Q1a_spec needs at least 93.6%).
    symptomatic: Rate = _f(Rate(round(1.0 - _C1_ASYMPTOMATIC, 6), 0.955), "C1, Q1a",
                           "probability of new or worse neurological symptoms")
    # A symptomatic patient gets dexamethasone and a recorded response with this
    # probability, the same in both classes (so whether it was given carries no information).
    steroid_given: float = _f(0.45, "Q1a, C2", "probability, among symptomatic patients")
    # C2: median relief 85% in PP (> 70), 25% in TP (< 30). SDs derived from Q1a: relief
    # > 70% in 90.4% of treated PP and 4.4% of treated TP give Q1a's 81.2% and 93.6%.
    steroid_response_pct: Marginal = _f(Marginal(85.0, 25.0, 0.679137, 1.142118), "C2, Q1a",
                                        "%; SD on logit(pct/100)")

    # --- imaging -----------------------------------------------------------------------
    # C3, Q1b: median rCBV < 1.5 in PP, > 2.0 in TP, with wide overlap (D1 not enriched).
    rcbv: Marginal = _f(Marginal(1.40, 2.12, 0.45, 0.45, 0.10), "C3, Q1b, D1",
                        "ratio; SD on log scale")
    # D1: oedema raises ADC a little in PP, cellularity lowers it in TP.
    adc: Marginal = _f(Marginal(1.06, 1.00, 0.25, 0.25, 0.05), "D1",
                       "10^-3 mm^2/s; SD on log scale")
    # D2: median choline/creatine < 2.5 in PP, > 4.0 in TP.
    cho_cr: Marginal = _f(Marginal(2.40, 4.12, 0.40, 0.40, 0.10), "D2",
                          "ratio; SD on log scale")
    # D2: lactate absence as a rule for PP has specificity 88% (present in 88% of TP).
    lactate_peak: Rate = _f(Rate(0.65, FIGURES["D2"].value), "D2",
                            "probability of a lactate peak")
    # M3: PP SUVmax median at the geometric middle of 1.2-1.8x; SD derived so that 91% of
    # PP lie below M3_CUT_RATIO (the PET sensitivity); TP median 2.6x (>= 2.5x).
    suvmax_change_pct: Marginal = _f(Marginal(46.969385, 160.0, 0.269109, 0.33, 0.05),
                                     "M3, Q1c", "%; SD on log(1 + pct/100)")

    # --- blood ---------------------------------------------------------------------------
    # M4: PP median fall 58% (> 50%), TP median 2.1x baseline. TP SD derived so that a
    # fall > 60% has D3's odds ratio 4.3.
    ctdna_change_pct: Marginal = _f(Marginal(-58.0, round(100.0 * (M4_TP_RATIO - 1.0), 6),
                                             0.38, 0.393801, 0.02), "D3, M4, Q1d",
                                    "%; SD on -log(log(101) - log(1 + pct/100))")
    # D4: PP SD (both cytokines) derived so that IL-8 > 50 and IFN-gamma > 20 in 89% of PP.
    il8_pg_ml: Marginal = _f(Marginal(120.0, 60.0, 0.612116, 0.75, 0.10), "D4",
                             "pg/ml; SD on log scale")
    ifng_pg_ml: Marginal = _f(Marginal(55.0, 25.0, 0.612116, 0.75, 0.10), "D4",
                              "pg/ml; SD on log scale")

    # --- biopsy --------------------------------------------------------------------------
    # D5: CD8/tumour-cell ratio median > 0.5 in PP; Ki-67 median < 10% in PP, > 30% in TP.
    cd8_tumor_ratio: Marginal = _f(Marginal(0.70, 0.50, 0.80, 0.80, 0.10), "D5",
                                   "ratio; SD on log scale")
    ki67_pct: Marginal = _f(Marginal(8.5, 32.0, 1.20, 1.20, 0.10), "D5",
                            "%; SD on logit(pct/100)")

    # --- within-class correlations (both classes, biological parts, before noise) -------
    # Tumour activity moves rCBV, choline, SUVmax and Ki-67 up and ADC down together;
    # immune activation moves IL-8, IFN-gamma and CD8 up and ctDNA down together.
    correlations: tuple[tuple[str, str, float], ...] = _f((
        ("rcbv", "cho_cr", 0.55), ("rcbv", "suvmax_change_pct", 0.50), ("rcbv", "ki67_pct", 0.45),
        ("cho_cr", "suvmax_change_pct", 0.50), ("cho_cr", "ki67_pct", 0.45),
        ("suvmax_change_pct", "ki67_pct", 0.45),
        ("adc", "rcbv", -0.45), ("adc", "cho_cr", -0.40), ("adc", "suvmax_change_pct", -0.35),
        ("adc", "ki67_pct", -0.40),
        ("il8_pg_ml", "ifng_pg_ml", 0.60), ("il8_pg_ml", "cd8_tumor_ratio", 0.40),
        ("ifng_pg_ml", "cd8_tumor_ratio", 0.50),
        ("ctdna_change_pct", "il8_pg_ml", -0.40), ("ctdna_change_pct", "ifng_pg_ml", -0.45),
        ("ctdna_change_pct", "cd8_tumor_ratio", -0.40), ("ctdna_change_pct", "ki67_pct", 0.30),
        ("ctdna_change_pct", "suvmax_change_pct", 0.30),
        ("volume_change_pct", "rcbv", 0.20),
    ), "C3, D1, D2, D4, D5, M3, M4", "correlation on the simulation scale")

    # --- missingness: each modality missing completely at random with this probability ---
    missing_perfusion: float = _f(0.15, "D1, C3", "probability (rcbv)")
    missing_diffusion: float = _f(0.10, "D1", "probability (adc)")
    missing_mrs: float = _f(0.55, "D2", "probability (cho_cr and lactate_peak together)")
    missing_pet: float = _f(0.65, "M3, Q1c", "probability (suvmax_change_pct)")
    missing_ctdna: float = _f(0.50, "D3, M4", "probability (ctdna_change_pct)")
    missing_cytokines: float = _f(0.65, "D4", "probability (il8_pg_ml and ifng_pg_ml together)")
    missing_biopsy: float = _f(0.90, "D5", "probability (cd8_tumor_ratio and ki67_pct together)")

    # --- follow-up scans (features.synthetic.followup.simulate_followup), drawn on request
    followup: FollowupParameters = field(
        default_factory=FollowupParameters,
        metadata={"figure": "C4, T4, C3, T3", "unit": "see FollowupParameters",
                  "doc": "schedule, volume, rCBV and ADC courses of the follow-up scans"})

    # --- synthetic MRI (features.synthetic.images), drawn only with --images
    images: ImageParameters = field(
        default_factory=ImageParameters,
        metadata={"figure": "C3, D1", "unit": "see ImageParameters",
                  "doc": "shape, texture, oedema and noise of the synthetic MRI"})

    def prevalence(self, cancer_type: str) -> float | None:
        """The prior probability of pseudoprogression for a cancer type, or None if unknown."""
        return {"melanoma": self.prevalence_melanoma, "nsclc": self.prevalence_nsclc}.get(
            cancer_type)

    def missing_rate(self, modality: str) -> float:
        """Probability that a modality (contract ``Column.modality``) is missing; 0 if always
        present (clinical data and the MRI volume)."""
        return float(getattr(self, f"missing_{modality}", 0.0))


def derive_tuned_values(p: CohortParameters | None = None) -> dict[str, float]:
    """Re-derive the numbers the defaults freeze from the article's figures (offline check).

    Given the other parameters of ``p`` (defaults if None), returns the values that make
    the generator hit: Q1a and Q1a_spec (steroid relief SDs, logit scale), M3 (PP SUVmax
    median and SD, log scale), D3 (TP ctDNA SD, simulation scale), D4 (PP cytokine SD,
    log scale); the follow-up scans' are
    :func:`features.synthetic.followup.derive_followup_values`'s. Not used at run time;
    tests compare it with the frozen defaults.
    """
    from scipy import optimize, stats

    p = p or CohortParameters()
    out: dict[str, float] = {}

    relief_cut = special.logit(THRESHOLDS["steroid_relief"].value / 100.0)
    treated = p.symptomatic.pp * p.steroid_given
    relieved_pp = (FIGURES["Q1a"].value - (1.0 - p.symptomatic.pp)) / treated
    relieved_tp = (1.0 - FIGURES["Q1a_spec"].value / p.symptomatic.tp) / p.steroid_given
    s = p.steroid_response_pct
    out["steroid_sd_pp"] = float((special.logit(s.median_pp / 100.0) - relief_cut)
                                 / stats.norm.ppf(relieved_pp))
    out["steroid_sd_tp"] = float((relief_cut - special.logit(s.median_tp / 100.0))
                                 / stats.norm.isf(relieved_tp))

    lo, hi = FIGURES["M3"].range
    out["suvmax_median_pp"] = float(100.0 * (math.sqrt(lo * hi) - 1.0))
    total = math.log(M3_CUT_RATIO / math.sqrt(lo * hi)) / stats.norm.ppf(FIGURES["M3"].value)
    out["suvmax_sd_pp"] = math.sqrt(total**2 - p.suvmax_change_pct.noise_sd**2)

    c = p.ctdna_change_pct
    cut = float(to_scale("ctdna_change_pct", THRESHOLDS["ctdna_clearance"].value))

    def odds_ratio(sd_tp: float) -> float:
        p1 = stats.norm.cdf(cut, to_scale("ctdna_change_pct", c.median_pp),
                            math.hypot(c.sd_pp, c.noise_sd))
        p0 = stats.norm.cdf(cut, to_scale("ctdna_change_pct", c.median_tp),
                            math.hypot(sd_tp, c.noise_sd))
        return float(p1 / (1 - p1) / (p0 / (1 - p0)))

    out["ctdna_sd_tp"] = optimize.brentq(lambda v: odds_ratio(v) - FIGURES["D3"].value,
                                         0.05, 3.0, xtol=1e-9)

    il8, ifng = p.il8_pg_ml, p.ifng_pg_ml
    r = dict(((a, b), v) for a, b, v in p.correlations)[("il8_pg_ml", "ifng_pg_ml")]

    def sensitivity(sd: float) -> float:
        s8, sg = math.hypot(sd, il8.noise_sd), math.hypot(sd, ifng.noise_sd)
        rho = r * sd * sd / (s8 * sg)
        a = math.log(il8.median_pp / THRESHOLDS["il8_high"].value) / s8
        b = math.log(ifng.median_pp / THRESHOLDS["ifng_high"].value) / sg
        return float(stats.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]]).cdf([a, b]))

    out["cytokine_sd_pp"] = optimize.brentq(lambda v: sensitivity(v) - FIGURES["D4"].value,
                                            0.1, 2.0, xtol=1e-9)

    return out


def params_digest(params: CohortParameters) -> str:
    """A short, stable fingerprint of a parameter set (kept in ``df.attrs``)."""
    return hashlib.sha1(repr(params).encode()).hexdigest()[:12]


#: The parameters every function uses unless given others.
DEFAULT_PARAMETERS = CohortParameters()
