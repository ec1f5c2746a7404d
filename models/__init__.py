"""What learns and what judges.

The article's rules as estimators (:mod:`.rules`), the calibrated classifier
(:mod:`.classifier`), the saved model (:mod:`.bundle`), training with internal validation
(:mod:`.training`), evaluation on labelled rows (:mod:`.evaluation`), every statistic once
(:mod:`.statistics`), predictions (:mod:`.prediction`) and the report (:mod:`.report`).
"""

from models.bundle import TrainedModel, load_model, save_model
from models.evaluation import add_uncertainty, evaluate
from models.prediction import predict_table
from models.report import write_report
from models.rules import RULES, apply_rules, risk_group
from models.training import train

__all__ = ["RULES", "TrainedModel", "add_uncertainty", "apply_rules", "evaluate",
           "load_model", "predict_table", "risk_group", "save_model", "train", "write_report"]
