"""Stand-in patients: the cohort simulator, its parameter table and synthetic MRI.

:func:`simulate_cohort` draws lesions in the column contract with the article's prevalences;
:func:`simulate_followup` their follow-up scans (:func:`followup_setting`: the sensitivity
settings of its measurement error and courses);
:func:`bayes_posterior` is the exact P(pseudoprogression | observed features) of its own
patients (the ceiling beside any model); :func:`fidelity_table` sets every figure the
simulator targets beside its value; :func:`write_synthetic_images` writes MRI and masks for a
cohort. Names are imported on first use (``python -m features.synthetic.cohort`` runs the
fidelity table).
"""

from features.lazy import lazy_names

#: Public name -> the module that defines it.
_FACE = {
    "DEFAULT_PARAMETERS": "features.synthetic.parameters",
    "CohortParameters": "features.synthetic.parameters",
    "bayes_posterior": "features.synthetic.cohort",
    "fidelity_table": "features.synthetic.cohort",
    "followup_setting": "features.synthetic.followup",
    "simulate_cohort": "features.synthetic.cohort",
    "simulate_followup": "features.synthetic.followup",
    "simulated_cohort_with_images": "features.synthetic.images",
    "write_synthetic_images": "features.synthetic.images",
}
__all__ = sorted(_FACE)
__getattr__ = lazy_names(__name__, _FACE)
