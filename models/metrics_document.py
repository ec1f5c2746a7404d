"""The metrics document: what ``metrics.json`` and a saved model's record hold, built in one
place from a study's results.

:func:`build_metrics_document` assembles it from an evaluation's figures
(:class:`models.evaluation.Evaluation`) and the study's other results (how it was validated,
the model chosen, the update, the uncertainty, the landmarks, the report's own figures,
the simulator's fidelity), in one fixed order (:data:`PARTS`); :func:`report_facts` gives the
report's own figures; :func:`metrics_json` checks a document against the schema and gives the
text of ``metrics.json``, with the report's run (:data:`RUN_KEY`) when the report names one.
Nothing else adds keys to the document: the report reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.evaluation import BAYES_COLUMN, labels_and_probabilities, pooled_probabilities
from models.report.schema import check_metrics_document
from models.statistics import to_jsonable

#: Key of the average precision (area under the precision-recall curve).
AP_KEY = "average_precision"
AP_METHOD = "sklearn.metrics.average_precision_score on the evaluated rows"
#: Key of the simulator's fidelity table.
FIDELITY_KEY = "simulator_fidelity"
#: Key of the report's run: its id and the SHA-256 of every other file of the report.
RUN_KEY = "report_run"

#: Every part of the document after the evaluation's figures, in the order it holds them
#: (a part the figures already hold keeps its place).
PARTS: tuple[str, ...] = (
    "feature_effects", "feature_effects_rows", "internal_validation", "split", "update",
    "validation", "model_selection", "positive_class", "image_features",
    "radiomic_extraction", "population_shift", "uncertainty", "bootstrap",
    "rule_comparisons", "net_benefit", "landmarks", AP_KEY, FIDELITY_KEY)


def build_metrics_document(figures: Mapping, study: Mapping | None = None,
                     **parts: Any) -> dict:
    """The metrics document: the evaluation's ``figures`` (``Evaluation.metrics``), its
    ``study`` entry extended by ``study`` (the unlabelled rows, the undeclared columns), then
    every given part of :data:`PARTS` (None: left out) in that order. A new dict; nothing
    given is changed."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise TypeError(f"not a part of the metrics document: {', '.join(unknown)}")
    extended = {"study": {**figures.get("study", {}), **study}} if study else {}
    return {**figures, **extended,
            **{key: parts[key] for key in PARTS if parts.get(key) is not None}}


def _average_precision(y: np.ndarray, p: np.ndarray) -> float | None:
    """Average precision (area under the precision-recall curve), None with one class."""
    from sklearn.metrics import average_precision_score

    if not 0 < y.sum() < y.shape[0]:
        return None
    return float(average_precision_score(y.astype(int), p))


def report_facts(figures: Mapping, frame: pd.DataFrame, model=None) -> dict:
    """The parts that the report shows beyond the benchmark, so that ``metrics.json`` holds
    every number of the report: ``average_precision`` (of the model and, when ``frame`` has
    it, of the simulator's posterior) and, for a logistic ``model`` whose ``figures`` have
    no ``feature_effects``, its coefficients
    (:func:`models.inspection.logistic_coefficients`; not for a spline model, whose terms
    are not features: its effects need the lesions' values,
    :func:`models.inspection.spline_effects`). Keyword arguments of
    :func:`build_metrics_document`."""
    from models.classifier import has_spline_terms
    from models.inspection import fitted_pipeline, logistic_coefficients

    y, p = labels_and_probabilities(frame)
    pooled = pooled_probabilities(figures)  # under cv and bootstrap: not the headline's
    ap = {"model": _average_precision(y, p),
          "method": AP_METHOD + (f"; the probabilities of the {pooled[0]}" if pooled else "")}
    if BAYES_COLUMN in frame.columns:
        ap["bayes_ceiling"] = _average_precision(y, frame[BAYES_COLUMN].to_numpy(dtype=float))
    facts: dict[str, Any] = {AP_KEY: ap}
    if model is not None and not figures.get("feature_effects") \
            and not has_spline_terms(fitted_pipeline(model)):
        effects = logistic_coefficients(model)
        if len(effects):
            facts["feature_effects"] = effects
    return to_jsonable(facts)


def metrics_json(document: Mapping, run: Mapping | None = None) -> str:
    """The text of ``metrics.json``: ``document`` with numpy types made plain and nan as
    null, and ``run`` (the report's id and the SHA-256 of its other files) under
    :data:`RUN_KEY`; checked against the schema first
    (:func:`models.report.schema.check_metrics_document`)."""
    content = to_jsonable(dict(document) if run is None else {**document, RUN_KEY: run})
    check_metrics_document(content)
    return json.dumps(content, indent=2, allow_nan=False) + "\n"
