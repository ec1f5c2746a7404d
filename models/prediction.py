"""Predictions of a trained model for a table, with the article's rules beside them.

>>> from models import load_model, predict_table         # doctest: +SKIP
>>> predict_table(load_model("model.skops"), table)     # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.contract import ID, LESION, is_radiomic
from features.description import DescribedTable, TableDescription
from features.errors import UserInputError
from models.bundle import TrainedModel
from models.population import Shift, TrainingProfile, warn_population_shift
from models.report.words import probability_column
from models.rules import risk_group, study_rule_decisions

if TYPE_CHECKING:
    from features.join import RadiomicTable


def prepare_for_model(model: TrainedModel, table: pd.DataFrame,
                      description: TableDescription | None = None,
                      require_label: bool = False, source: str = "the input table"
                      ) -> DescribedTable:
    """``table`` in the canonical form the model was trained on: by ``description``, or the
    table description stored in the model (so a user's own column names work again)."""
    from models.rules import warn_empty_columns

    description = description or model.table_description()
    described = description.apply(table, require_label=require_label, source=source)
    warn_empty_columns(described.table, source)
    return described


def predict_table(model: TrainedModel, table: pd.DataFrame | DescribedTable,
                  description: TableDescription | None = None,
                  source: str = "the input table") -> pd.DataFrame:
    """Predictions for every lesion of ``table``, one row each.

    The table is read through ``description`` (default: the one stored in the model), unless
    it is a :class:`DescribedTable` already in canonical form.
    Columns: the patient and lesion columns under the table's own names, ``p_<name>``
    (calibrated probability of the positive class, named as the description names it:
    ``p_pseudoprogression`` by default), ``prediction`` (1/0 at the model's threshold),
    ``risk_group`` (the article's T5 ``low`` / T6 ``high`` where it can be decided; only when
    the table has T5's inputs) and ``rule_<id>`` (1 / 0 / empty where the rule abstains) for
    each article rule whose inputs are columns of the table and each rule the description
    declares. Rows with an empty label are predicted like any other. Warns once
    (:func:`population_shift`) when lesions fall outside the population the model was
    trained on.
    """
    described = (table if isinstance(table, DescribedTable)
                 else prepare_for_model(model, table, description))
    desc = described.description or TableDescription()
    canonical = described.table
    require_image_columns(model, canonical)
    population_shift(model, canonical, source)
    p = model.probability(canonical, warn=model.population is None)
    keys = {desc.patient_column: _as_they_are(canonical[ID])}
    if LESION in canonical.columns:
        keys[desc.lesion_column or LESION] = _as_they_are(canonical[LESION])
    rules, _ = study_rule_decisions(canonical, desc)
    triage = {"risk_group": risk_group(canonical).array} if "T5_low_risk" in rules else {}
    return pd.DataFrame(keys | {probability_column(desc.positive_name): p,
                                "prediction": model.decide(p)} | triage
                        | {f"rule_{r}": nullable_int(calls) for r, calls in rules.items()},
                        copy=False)  # every column is new: no second copy


def _as_they_are(values: pd.Series) -> pd.Series:
    """A column to put in a new frame with its values and type unchanged (identifiers are
    text held as objects in the canonical table; not converted row by row again)."""
    return pd.Series(values.to_numpy(), dtype=values.dtype, copy=False)


def nullable_int(x: np.ndarray) -> pd.arrays.IntegerArray:
    """Whole numbers as pandas' Int64, empty where ``x`` is NaN (a rule's 1 / 0 / abstains);
    built from the array directly rather than cast value by value."""
    with np.errstate(invalid="ignore"):  # a NaN becomes some whole number, masked below
        whole = x.astype(np.int64)
    return pd.arrays.IntegerArray(whole, np.isnan(x))


def population_shift(model: TrainedModel, table: pd.DataFrame,
                     source: str = "the input table") -> list[Shift]:
    """Where ``table`` (canonical form) leaves the model's training population: unseen
    categories, values beyond the training range, columns the model relied on now missing;
    one warning for the table (:func:`models.population.warn_population_shift`)."""
    if model.population is None:
        return []
    return warn_population_shift(TrainingProfile.from_dict(model.population), table, source)


def image_columns(model: TrainedModel) -> list[str]:
    """The model's feature columns that come from images: radiomic columns by name
    (:func:`features.contract.is_radiomic`) and declared columns of the ``radiomic`` block."""
    declared = model.declared_features or {}
    return [c for c in model.feature_columns
            if is_radiomic(c) or (declared.get(c) or {}).get("block") == "radiomic"]


def require_image_columns(model: TrainedModel, table: pd.DataFrame) -> None:
    """Raise :class:`UserInputError` when the model uses image columns and ``table`` holds
    none of them: predicting with every image column imputed would give other predictions
    than the model's, with only a warning. Some absent (or all present but empty) is left to
    the usual warnings."""
    wanted = image_columns(model)
    if not wanted or any(c in table.columns for c in wanted):
        return
    shown = ", ".join(wanted[:3]) + (f" ... ({len(wanted)} in all)" if len(wanted) > 3 else "")
    raise UserInputError(
        f"the model uses {len(wanted)} image (radiomic) column(s), and the table has none of "
        f"them: {shown}. Give the images with --manifest M.csv (predict.py extracts the "
        "features), or join the columns into the table on patient_id (python -m "
        "features.extract --manifest M.csv --out features.csv writes them).")


def radiomics_settings_text(model: TrainedModel, params: str | Path | None = None) -> str:
    """The pyradiomics settings (YAML text) to extract the model's image columns with:
    ``params`` when given, else those stored in the model. Warns when ``params`` differ from
    the stored ones; raises :class:`UserInputError` when neither exists."""
    stored = model.radiomics_settings
    if params is None:
        if stored is None:
            raise UserInputError(
                "this model's image columns were not extracted by train.py, so it stores no "
                "pyradiomics settings: give the settings they were extracted with, --params "
                "P.yaml, or join the image columns into --data and drop --manifest.")
        return stored
    params = Path(params)
    if not params.is_file():
        raise UserInputError(f"--params {params}: settings file not found. Check the path.")
    text = params.read_text()
    if stored is not None and _settings(text) != _settings(stored):
        warnings.warn(
            f"--params {params} differs from the pyradiomics settings the model was trained "
            "with; features extracted with other settings can shift every prediction. Leave "
            "--params out to use the stored ones.", UserWarning, stacklevel=2)
    return text


def _settings(text: str) -> object:
    """Parsed YAML settings, for comparing two settings texts (the text itself when it does
    not parse)."""
    import yaml

    from features.yamlfile import load_yaml

    try:
        return load_yaml(text, "the settings")
    except (yaml.YAMLError, UserInputError):
        return text


def with_radiomic_features(model: TrainedModel, table: pd.DataFrame, manifest: str | Path,
                           jobs: int = 1, cache_dir: str | Path | None = None,
                           progress: bool = True, params: str | Path | None = None,
                           scheduler: str | None = None,
                           lesions: str | None = None) -> RadiomicTable:
    """``table`` joined (on patient_id) with radiomic features extracted from ``manifest``,
    with the settings ``params`` or else those stored in the model
    (:func:`radiomics_settings_text`), as :func:`features.join.add_radiomic_features` gives
    it (``.table``, and the extraction with its lesion map). ``jobs``, ``cache_dir`` and
    ``scheduler`` are :func:`features.extract.extract`'s; ``lesions`` overrides the
    settings' lesion mode."""
    from features.join import add_radiomic_features

    manifest = Path(manifest)
    if not manifest.is_file():
        raise UserInputError(f"manifest not found: {manifest}. Check the path.")
    if not image_columns(model):
        raise UserInputError(
            f"this model was trained without image features (none of its "
            f"{len(model.feature_columns)} feature columns is a radiomic column); drop "
            "--manifest, or retrain with train.py --manifest.")
    settings = radiomics_settings_text(model, params)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "radiomics.yaml"
        path.write_text(settings)
        radiomics = add_radiomic_features(table, manifest, params=path, jobs=jobs,
                                          cache_dir=cache_dir, progress=progress,
                                          scheduler=scheduler, lesions=lesions)
    joined = radiomics.table
    wanted = image_columns(model)
    if not any(c in joined.columns for c in wanted):
        made = [c for c in joined.columns if c not in table.columns]
        raise UserInputError(
            f"the features extracted from {manifest.name} include none of the model's "
            f"{len(wanted)} image column(s) (e.g. {wanted[0]}); the extraction made "
            f"{len(made)} column(s)" + (f" such as {made[0]}" if made else "") + ". The "
            "model's columns came from other settings, sequence names or another tool: give "
            "the settings they were made with (--params) and name the manifest's sequence "
            "columns as in training, or join the model's columns into --data and drop "
            "--manifest.")
    return radiomics
