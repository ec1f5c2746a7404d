"""Stand-in patients: the cohort simulator, its parameter table and synthetic MRI.

:func:`simulate_cohort` draws lesions in the column contract with the article's prevalences;
:func:`bayes_posterior` is the exact P(pseudoprogression | observed features) of its own
patients (the ceiling beside any model); :func:`fidelity_table` sets every figure the
simulator targets beside its value; :func:`write_synthetic_images` writes MRI and masks for a
cohort.
"""

from features.synthetic.cohort import bayes_posterior, fidelity_table, simulate_cohort
from features.synthetic.images import simulated_cohort_with_images, write_synthetic_images
from features.synthetic.parameters import DEFAULT_PARAMETERS, CohortParameters

__all__ = ["DEFAULT_PARAMETERS", "CohortParameters", "bayes_posterior", "fidelity_table",
           "simulate_cohort", "simulated_cohort_with_images", "write_synthetic_images"]
