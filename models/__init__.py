"""What learns and what judges.

The article's rules as estimators (:mod:`.rules`) and over follow-up scans
(:mod:`.scan_rules`), the calibrated classifier (:mod:`.classifier`) and its landmark
models over follow-up scans (:mod:`.landmarks`), the saved model (:mod:`.bundle`),
training (:mod:`.training`) and its validation schemes (:mod:`.validation`), evaluation on
labelled rows (:mod:`.evaluation`), every statistic once (:mod:`.statistics`), predictions
(:mod:`.prediction`), population shifts (:mod:`.population`), updating for a new site
(:mod:`.updating`) and the report (:mod:`.report`). The names below are imported on first
use.
"""

from importlib import import_module

#: Public name -> the module that defines it.
_FACE = {
    "RULES": "models.rules",
    "LandmarkResult": "models.landmarks",
    "TrainedModel": "models.bundle",
    "add_uncertainty": "models.evaluation",
    "SCAN_RULE_IDS": "models.scan_rules",
    "apply_rules": "models.rules",
    "apply_scan_rules": "models.scan_rules",
    "evaluate": "models.evaluation",
    "load_landmarks": "models.landmarks",
    "load_model": "models.bundle",
    "predict_landmarks": "models.landmarks",
    "predict_table": "models.prediction",
    "risk_group": "models.rules",
    "scan_rules_at_landmarks": "models.scan_rules",
    "save_landmarks": "models.landmarks",
    "save_model": "models.bundle",
    "train": "models.training",
    "train_landmarks": "models.landmarks",
    "update_model": "models.updating",
    "write_report": "models.report",
}
__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name in _FACE:
        return getattr(import_module(_FACE[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
