"""metrics.json has a documented shape: models/report/metrics.schema.json (draft 2020-12)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft202012Validator

from models.metrics_document import metrics_json
from models.statistics import benchmark, to_jsonable

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ALWAYS_WRITTEN = ["n", "n_positive", "prevalence", "threshold", "model", "rules"]


#: Sections a training run on a simulated cohort adds beside the ones always written: the
#: Bayes ceiling, the bootstrap, the simulator's fidelity table, and the report's facts.
RUN_SECTIONS = {"bayes_ceiling", "bootstrap", "uncertainty", "rule_comparisons",
                "simulator_fidelity"}


@pytest.fixture(scope="module")
def written(same_seed_studies):
    """metrics.json of a small training run on a simulated cohort through ``train.py`` (the
    shared study), with every section training, the bootstrap and the simulator's fidelity
    table add."""
    path = same_seed_studies.cli / "report" / "metrics.json"
    assert RUN_SECTIONS | set(ALWAYS_WRITTEN) <= set(json.loads(path.read_text()))
    return path


@pytest.fixture
def data(written) -> dict:
    return json.loads(written.read_text())


def _properties(node, path="#"):
    """(path, name, subschema) of every property the schema describes, at any depth."""
    if isinstance(node, dict):
        for key in ("properties", "patternProperties"):
            for name, sub in (node.get(key) or {}).items():
                yield f"{path}/{key}/{name}", name, sub
        for key, sub in node.items():
            yield from _properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{path}/{i}")


def test_schema_is_a_valid_draft_2020_12_schema(metrics_schema):
    assert metrics_schema["$schema"] == DRAFT
    Draft202012Validator.check_schema(metrics_schema)
    assert metrics_schema["required"] == ALWAYS_WRITTEN
    assert metrics_schema["additionalProperties"] is True  # new sections may be added


def test_every_property_is_described(metrics_schema):
    undescribed = [path for path, _, sub in _properties(metrics_schema)
                   if not (isinstance(sub, dict) and sub.get("description"))]
    assert not undescribed, undescribed
    documented = set(metrics_schema["properties"])
    assert documented >= {
        *ALWAYS_WRITTEN, "bayes_ceiling", "feature_odds_ratios", "units", "internal_validation",
        "model_selection", "split", "validation", "positive_class", "uncertainty", "bootstrap",
        "rule_comparisons", "net_benefit", "average_precision", "feature_effects",
        "image_features", "radiomic_extraction", "update", "population_shift",
        "simulator_fidelity"}


def test_metrics_of_a_training_run_follow_the_schema(data, metrics_schema_errors):
    assert {"model", "rules", "bayes_ceiling", "internal_validation", "split", "validation",
            "bootstrap", "rule_comparisons", "net_benefit", "average_precision",
            "feature_effects", "simulator_fidelity"} <= set(data)
    assert metrics_schema_errors(data) == []


def test_undefined_numbers_are_null_and_valid(metrics_schema_errors):
    """A rule covering no row and one class only: NaN everywhere, written as null."""
    y = np.r_[np.zeros(30), np.ones(10)].astype(int)
    p = np.linspace(0.05, 0.95, 40)
    rules = pd.DataFrame({"D5_pathology": np.full(40, np.nan),
                          "Q1a_symptoms": (p > 0.5).astype(float)})
    data = to_jsonable(benchmark(y, p, 0.5, rules))
    assert data["rules"]["D5_pathology"]["sensitivity"] is None
    assert metrics_schema_errors(data) == []
    one_class = to_jsonable(benchmark(np.zeros(20, int), p[:20], 0.5, rules.iloc[:20]))
    assert one_class["model"]["auc"] is None
    assert metrics_schema_errors(one_class) == []


@pytest.mark.parametrize("corrupt, where", [
    (lambda d: d["model"].__setitem__("auc", "0.93"), "$.model.auc"),
    (lambda d: d.pop("rules"), "$"),
    (lambda d: d["model"].pop("brier"), "$.model"),
    (lambda d: d["model"]["ppv_ci"].append(0.5), "$.model.ppv_ci"),
    (lambda d: d["model"].__setitem__("sensitivity", 80.0), "$.model.sensitivity"),
    (lambda d: d.__setitem__("n", None), "$.n"),
    (lambda d: next(iter(d["rules"].values())).__setitem__("undocumented", 1), "$.rules."),
    (lambda d: d["bootstrap"]["auc"].pop("ci"), "$.bootstrap.auc"),
], ids=["string-for-number", "missing-rules", "missing-model-key", "three-bound-interval",
        "percent-for-proportion", "null-count", "undescribed-rule-key", "missing-ci"])
def test_corrupted_metrics_fail(data, metrics_schema_errors, corrupt, where):
    bad = copy.deepcopy(data)
    corrupt(bad)
    errors = metrics_schema_errors(bad)
    assert errors and all(e.startswith(where) for e in errors), errors


def test_check_names_the_file_and_the_path(tmp_path, data, check_metrics_json):
    bad = copy.deepcopy(data)
    bad["model"]["auc"] = "high"
    del bad["threshold"]
    path = tmp_path / "report" / "metrics.json"
    path.parent.mkdir()
    path.write_text(json.dumps(bad))
    with pytest.raises(pytest.fail.Exception) as failure:
        check_metrics_json([path])
    message = str(failure.value)
    assert str(path) in message
    assert "$.model.auc: 'high' is not of type 'number', 'null'" in message
    assert "'threshold' is a required property" in message
    path.unlink()  # leave no invalid file behind for the after-test check


def test_a_document_breaking_the_schema_is_never_written(data):
    """The text of metrics.json is made only after the schema check: a wrong document
    raises, naming the JSON path."""
    bad = copy.deepcopy(data)
    bad["model"]["auc"] = "high"
    with pytest.raises(ValueError, match=r"\$\.model\.auc"):
        metrics_json(bad)
