"""Turning inputs into the per-lesion feature table.

The column contract and its validation (:mod:`.contract`), table descriptions of a user's
own columns (:mod:`.description`), table files (:mod:`.tables`), pyradiomics extraction over
a manifest (:mod:`.extract`), the join with the clinical table (:mod:`.join`), follow-up scans
(:mod:`.scans`), and stand-in patients (:mod:`.synthetic`).

The names below are imported on first use, so ``python -m features.extract`` and the
package's modules load nothing they do not need. The extraction function is
``features.extract.extract`` (the name ``features.extract`` is its module).
"""

from importlib import import_module

#: Public name -> the module that defines it.
_FACE = {
    "UserInputError": "features.errors",
    "TableDescription": "features.description",
    "add_radiomic_features": "features.join",
    "bayes_posterior": "features.synthetic.cohort",
    "ScansTable": "features.scans",
    "read_scans": "features.scans",
    "read_table": "features.tables",
    "simulate_cohort": "features.synthetic.cohort",
    "simulate_followup": "features.synthetic.cohort",
    "validate_table": "features.contract",
}
__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name in _FACE:
        return getattr(import_module(_FACE[name]), name)
    raise AttributeError(f"module 'features' has no attribute {name!r}")
