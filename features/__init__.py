"""Turning inputs into the per-lesion feature table.

The column contract and its validation (:mod:`.contract`), table descriptions of a user's
own columns (:mod:`.description`), table files (:mod:`.tables`), pyradiomics extraction over
a manifest (:mod:`.extract`), the join with the clinical table (:mod:`.join`), follow-up scans
(:mod:`.scans`), and stand-in patients (:mod:`.synthetic`).

The names below are imported on first use, so ``python -m features.extract`` and the
package's modules load nothing they do not need. The extraction function is
``features.extract.extract`` (the name ``features.extract`` is its module).
"""

from features.lazy import lazy_names

#: Public name -> the module that defines it.
_FACE = {
    "COLUMNS": "features.contract",
    "DEFAULT_PARAMS": "features.choices",
    "FIGURES": "features.article",
    "ID": "features.contract",
    "LABEL": "features.contract",
    "LESION": "features.contract",
    "MODALITIES": "features.synthetic.cohort",
    "THRESHOLDS": "features.article",
    "UserInputError": "features.errors",
    "fidelity_table": "features.synthetic.cohort",
    "markdown_table": "features.tables",
    "to_markdown": "features.synthetic.cohort",
    "write_synthetic_images": "features.synthetic.images",
    "TableDescription": "features.description",
    "add_radiomic_features": "features.join",
    "bayes_posterior": "features.synthetic.cohort",
    "ScansTable": "features.scans",
    "read_scans": "features.scans",
    "read_table": "features.tables",
    "simulate_cohort": "features.synthetic.cohort",
    "simulate_followup": "features.synthetic.followup",
    "validate_table": "features.contract",
}
__all__ = sorted(_FACE)
__getattr__ = lazy_names(__name__, _FACE)
