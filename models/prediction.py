"""Predictions of a trained model for a table, with the article's rules beside them.

>>> from models import load_model, predict_table         # doctest: +SKIP
>>> predict_table(load_model("model.skops"), table)     # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from features.contract import ID, LESION
from features.description import DescribedTable, TableDescription
from features.errors import UserInputError
from models.bundle import TrainedModel
from models.population import Shift, TrainingProfile, warn_population_shift
from models.rules import apply_rules, risk_group


def prepare_for_model(model: TrainedModel, table: pd.DataFrame,
                      description: TableDescription | None = None,
                      require_label: bool = False, source: str = "the input table"
                      ) -> DescribedTable:
    """``table`` in the canonical form the model was trained on: by ``description``, or the
    table description stored in the model (so a user's own column names work again)."""
    description = description or model.table_description()
    return description.apply(table, require_label=require_label, source=source)


def predict_table(model: TrainedModel, table: pd.DataFrame | DescribedTable,
                  description: TableDescription | None = None,
                  source: str = "the input table") -> pd.DataFrame:
    """Predictions for every lesion of ``table``, one row each.

    The table is read through ``description`` (default: the one stored in the model), unless
    it is a :class:`DescribedTable` already in canonical form.
    Columns: the patient and lesion columns under the table's own names, ``p_pseudoprogression``
    (calibrated probability), ``prediction`` (1/0 at the model's threshold), ``risk_group``
    (T5 ``low`` / T6 ``high`` where it can be decided) and ``rule_<id>`` (1 / 0 / empty where
    the rule abstains). Warns once (:func:`population_shift`) when lesions fall outside the
    population the model was trained on.
    """
    described = (table if isinstance(table, DescribedTable)
                 else prepare_for_model(model, table, description))
    desc = described.description or TableDescription()
    canonical = described.table
    population_shift(model, canonical, source)
    p = model.predict_proba(canonical, warn=model.population is None)
    keys = {desc.patient_column: canonical[ID].to_numpy()}
    if LESION in canonical.columns:
        keys[desc.lesion_column or LESION] = canonical[LESION].to_numpy()
    out = pd.DataFrame(keys | {"p_pseudoprogression": p, "prediction": model.decide(p),
                               "risk_group": risk_group(canonical).to_numpy()})
    rules = apply_rules(canonical).add_prefix("rule_").reset_index(drop=True)
    rules = rules.astype("Int64")  # 1 / 0 / empty where the rule abstains
    return pd.concat([out, rules], axis=1)


def population_shift(model: TrainedModel, table: pd.DataFrame,
                     source: str = "the input table") -> list[Shift]:
    """Where ``table`` (canonical form) leaves the model's training population: unseen
    categories, values beyond the training range, columns the model relied on now missing;
    one warning for the table (:func:`models.population.warn_population_shift`)."""
    if model.population is None:
        return []
    return warn_population_shift(TrainingProfile.from_dict(model.population), table, source)


def with_radiomic_features(model: TrainedModel, table: pd.DataFrame, manifest: str | Path,
                           jobs: int = 1, cache_dir: str | Path | None = None,
                           progress: bool = True) -> pd.DataFrame:
    """``table`` joined with radiomic features extracted from ``manifest`` with the
    pyradiomics settings stored in the model."""
    from features.join import add_radiomic_features

    manifest = Path(manifest)
    if not manifest.is_file():
        raise UserInputError(f"manifest not found: {manifest}. Check the path.")
    if model.radiomics_settings is None:
        raise UserInputError("this model was trained without image features; drop --manifest "
                             "or retrain with train.py --manifest.")
    with tempfile.TemporaryDirectory() as tmp:
        params = Path(tmp) / "radiomics.yaml"
        params.write_text(model.radiomics_settings)
        return add_radiomic_features(table, manifest, params=params, jobs=jobs,
                                     cache_dir=cache_dir, progress=progress).table
