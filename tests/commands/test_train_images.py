"""train.py and predict.py with synthetic images: the image features' extraction, the model
with and without them, and a prediction that extracts with the model's stored settings."""

import json

import pandas as pd
from shared_fixtures import ROOT
from toy_data import FEW_FEATURES

import predict
import train
from commands.run import run_command
from features.synthetic.cohort import simulate_cohort

#: A classifier of the user's own: no grid to tune.
OWN_ESTIMATOR = f"{ROOT / 'tests' / 'own_estimators.py'}:stronger_penalty"


def test_train_with_synthetic_images_compares_with_and_without(tmp_path):
    """The image path end to end: synthetic MRI, extraction with the given settings, the
    model with and without the image features (a classifier of the user's own, so that no
    grid is tuned twice), and a prediction that extracts with the stored settings."""
    params = tmp_path / "few.yaml"
    params.write_text(FEW_FEATURES)
    code = run_command(train.main, ["--cohort", "melanoma", "--n", "80", "--prevalence", "0.5",
                                    "--images", "--jobs", "1", "--seed", "2",
                                    "--params", str(params),
                                    "--estimator", OWN_ESTIMATOR,
                                    "--out", str(tmp_path / "m.skops"),
                                    "--report", str(tmp_path / "rep"), "--no-nested-cv",
                                    "--bootstrap", "0", "--no-progress"])
    assert code == 0
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    images = metrics["image_features"]
    assert images["n"] == metrics["n"]
    assert images["with_images"]["n_features"] > images["without_images"]["n_features"]
    extraction = metrics["radiomic_extraction"]
    # 80 simulated patients, some with several lesions: one row of features per lesion
    assert extraction["n_patients"] == 80
    assert extraction["n_extracted"] == extraction["n_lesions"]
    assert extraction["n_lesions"] > 80
    # 4 sequences x 5 features of the given settings
    assert extraction["settings_version"] == "test-few"
    assert extraction["n_radiomic_columns"] == 4 * 5
    assert "What the image features add" in (tmp_path / "rep" / "report.md").read_text()
    # where each lesion lies, one row per extracted lesion, in the report folder
    lesions = pd.read_csv(tmp_path / "rep" / "lesions.csv")
    assert len(lesions) == extraction["n_lesions"]
    assert lesions["patient_id"].nunique() == 80 and (lesions["volume_ml"] > 0).all()
    pred = tmp_path / "pred.csv"
    new = tmp_path / "new.csv"
    simulate_cohort(80, prevalence=0.5, seed=2).head(5).to_csv(new, index=False)
    code = run_command(predict.main, ["--model", str(tmp_path / "m.skops"), "--data", str(new),
                                      "--manifest", str(tmp_path / "images" / "manifest.csv"),
                                      "--jobs", "1", "--out", str(pred)])
    assert code == 0
    assert len(pd.read_csv(pred)) == 5
    # beside the predictions, where the predicted patients' lesions lie (not the manifest's
    # other patients')
    beside = pd.read_csv(tmp_path / "pred.lesions.csv")
    expected = lesions[lesions["patient_id"].isin(pd.read_csv(new)["patient_id"])]
    assert len(expected) and beside.equals(expected.reset_index(drop=True))
