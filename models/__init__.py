"""What learns and what judges.

The article's rules as estimators (:mod:`.rules`) and over follow-up scans
(:mod:`.scan_rules`), the calibrated classifier (:mod:`.classifier`) and its landmark
models over follow-up scans (:mod:`.landmarks`), the saved model (:mod:`.bundle`),
training (:mod:`.training`) and its validation schemes (:mod:`.validation`), evaluation on
labelled rows (:mod:`.evaluation`), the metrics document (:mod:`.metrics_document`),
every statistic once (:mod:`.statistics`), predictions
(:mod:`.prediction`), population shifts (:mod:`.population`), updating for a new site
(:mod:`.updating`) and the report (:mod:`.report`). The names below are imported on first
use.
"""

from features.lazy import lazy_names

#: Public name -> the module that defines it.
_FACE = {
    "PredictionSettings": "models.scoring",
    "RULES": "models.rules",
    "Study": "models.study",
    "StudySettings": "models.study",
    "describe_rules": "models.rules",
    "format_benchmark_table": "models.report",
    "holdout_split": "models.validation",
    "run_prediction": "models.scoring",
    "run_study": "models.study",
    "LandmarkResult": "models.landmarks",
    "TrainedModel": "models.bundle",
    "add_uncertainty": "models.evaluation",
    "SCAN_RULE_IDS": "models.scan_rules",
    "apply_rules": "models.rules",
    "apply_scan_rules": "models.scan_rules",
    "build_metrics_document": "models.metrics_document",
    "evaluate": "models.evaluation",
    "load_landmarks": "models.landmarks",
    "load_model": "models.bundle",
    "predict_landmarks": "models.landmarks",
    "predict_table": "models.prediction",
    "report_facts": "models.metrics_document",
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
__getattr__ = lazy_names(__name__, _FACE)
