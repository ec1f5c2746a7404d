"""Turning inputs into the per-lesion feature table.

The column contract and its validation (:mod:`.contract`), table files (:mod:`.tables`),
pyradiomics extraction over a manifest (:mod:`.extract`), the join with the clinical table
(:mod:`.join`), and stand-in patients (:mod:`.synthetic`).
"""

from features.contract import validate_table
from features.errors import UserInputError
from features.extract import extract
from features.join import add_radiomic_features
from features.synthetic import bayes_posterior, simulate_cohort
from features.tables import read_table

__all__ = ["UserInputError", "add_radiomic_features", "bayes_posterior", "extract",
           "read_table", "simulate_cohort", "validate_table"]
