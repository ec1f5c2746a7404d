"""Predictions of a trained model for a table, with the article's rules beside them.

>>> from models import load_model, predict_table         # doctest: +SKIP
>>> predict_table(load_model("model.joblib"), table)     # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from features.contract import ID, validate_table
from features.errors import UserInputError
from models.bundle import TrainedModel
from models.rules import apply_rules, risk_group


def predict_table(model: TrainedModel, table: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of ``table`` (validated against the contract first).

    Columns: ``patient_id``, ``p_pseudoprogression`` (calibrated probability),
    ``prediction`` (1/0 at the model's threshold), ``risk_group`` (T5 ``low`` / T6 ``high``
    where it can be decided) and ``rule_<id>`` (1 / 0 / empty where the rule abstains).
    """
    table = validate_table(table, source="the input table")
    p = model.predict_proba(table)
    out = pd.DataFrame({ID: table[ID].to_numpy(), "p_pseudoprogression": p,
                        "prediction": model.decide(p),
                        "risk_group": risk_group(table).to_numpy()})
    rules = apply_rules(table).add_prefix("rule_").reset_index(drop=True)
    rules = rules.astype("Int64")  # 1 / 0 / empty where the rule abstains
    return pd.concat([out, rules], axis=1)


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
