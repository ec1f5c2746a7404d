"""Prediction with a model whose image (radiomic) columns were extracted outside train.py and
joined into the table by the user: predicting from a joined table, the settings of a new
extraction (--params or the stored ones), and a clear error instead of imputing every image
column. Also the extraction options of the two scripts (--params, --cache, --scheduler)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import features.join
import predict
import train
from commands.run import run_command
from features.choices import DEFAULT_PARAMS
from features.errors import UserInputError
from features.synthetic.cohort import simulate_cohort
from models import load_model
from models.prediction import image_columns, radiomics_settings_text

FAST = ["--validation", "holdout", "--no-nested-cv", "--bootstrap", "0", "--no-progress"]
IMAGE_COLUMNS = ["t1c_original_firstorder_Mean", "flair_original_shape_MeshVolume"]


def run(main, argv: list) -> tuple[int, str]:
    """Exit status and stderr of a command line's ``main``."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_command(main, [str(a) for a in argv])
    assert "Traceback" not in err.getvalue()
    return code, err.getvalue()


def joined_table(n: int, seed: int) -> pd.DataFrame:
    """A labelled table with two radiomic columns joined in, one tied to the label."""
    df = simulate_cohort(n, seed=seed, prevalence=0.5)
    rng = np.random.default_rng(seed)
    df[IMAGE_COLUMNS[0]] = 100 + 20 * df["pseudoprogression"] + rng.normal(0, 10, n)
    df[IMAGE_COLUMNS[1]] = rng.normal(5000, 800, n)
    return df


@pytest.fixture(scope="module")
def joined_model(tmp_path_factory) -> Path:
    """A model trained on a table with radiomic columns joined by the user (no settings; a
    plain logistic regression, which keeps the fixture quick)."""
    from sklearn.linear_model import LogisticRegression

    from models import save_model
    from models import train as train_model

    folder = tmp_path_factory.mktemp("joined")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small table's sample-size warning
        result = train_model(joined_table(120, seed=1), validation="holdout", nested_cv=False,
                             progress=False, estimator=LogisticRegression())  # no tuning
    return save_model(result.model, folder / "m.skops")


def test_a_model_with_joined_image_columns_knows_them(joined_model):
    model = load_model(joined_model)
    assert image_columns(model) == IMAGE_COLUMNS
    assert model.radiomics_settings is None


def test_predicts_from_a_joined_table(joined_model, tmp_path):
    data = tmp_path / "new.csv"
    joined_table(20, seed=2).drop(columns="pseudoprogression").to_csv(data, index=False)
    code, err = run(predict.main, ["--model", joined_model, "--data", data,
                                   "--out", tmp_path / "p.csv"])
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "p.csv")) == 20


def test_every_image_column_missing_is_an_error_not_an_imputation(joined_model, tmp_path):
    data = tmp_path / "new.csv"
    simulate_cohort(20, seed=2).to_csv(data, index=False)
    code, err = run(predict.main, ["--model", joined_model, "--data", data,
                                   "--out", tmp_path / "p.csv"])
    assert code == 2
    assert "the model uses 2 image (radiomic) column(s), and the table has none of them" in err
    assert IMAGE_COLUMNS[0] in err and "--manifest" in err and "join the columns" in err
    assert not (tmp_path / "p.csv").exists()


def test_manifest_without_settings_asks_for_params(joined_model, tmp_path):
    data, manifest = tmp_path / "new.csv", tmp_path / "manifest.csv"
    simulate_cohort(5, seed=2).to_csv(data, index=False)
    manifest.write_text("patient_id,mask,t1c\n")
    code, err = run(predict.main, ["--model", joined_model, "--data", data,
                                   "--manifest", manifest, "--out", tmp_path / "p.csv"])
    assert code == 2
    assert "trained without image features" not in err
    assert "--params P.yaml" in err and "stores no pyradiomics settings" in err


def test_params_and_extraction_options_reach_the_extraction(joined_model, tmp_path,
                                                           monkeypatch):
    """predict.py --params, --cache, --scheduler, --jobs and --lesions are what the
    extraction gets."""
    seen = {}
    new = joined_table(6, seed=3)

    def fake(table, manifest, params, jobs, cache_dir, progress, scheduler, lesions):
        seen.update(settings=Path(params).read_text(), jobs=jobs, cache_dir=cache_dir,
                    scheduler=scheduler, lesions=lesions)
        return SimpleNamespace(table=table.merge(new[["patient_id", *IMAGE_COLUMNS]],
                                                 on="patient_id"),
                               extraction=SimpleNamespace(lesion_map=pd.DataFrame()))

    monkeypatch.setattr(features.join, "add_radiomic_features", fake)
    data, manifest = tmp_path / "new.csv", tmp_path / "manifest.csv"
    new.drop(columns=IMAGE_COLUMNS).to_csv(data, index=False)
    manifest.write_text("patient_id,mask,t1c\n")
    code, err = run(predict.main, ["--model", joined_model, "--data", data,
                                   "--manifest", manifest, "--params", DEFAULT_PARAMS,
                                   "--cache", tmp_path / "c", "--scheduler", "tcp://h:8786",
                                   "--jobs", "3", "--lesions", "whole",
                                   "--out", tmp_path / "p.csv"])
    assert code == 0, err
    assert seen == {"settings": DEFAULT_PARAMS.read_text(), "jobs": 3,
                    "cache_dir": tmp_path / "c", "scheduler": "tcp://h:8786",
                    "lesions": "whole"}
    assert len(pd.read_csv(tmp_path / "p.csv")) == 6


def test_params_other_than_the_stored_ones_warn(tmp_path):
    stored = DEFAULT_PARAMS.read_text()
    model = SimpleNamespace(radiomics_settings=stored)
    assert radiomics_settings_text(model) == stored
    same = tmp_path / "same.yaml"
    same.write_text("# a comment changes nothing\n" + stored)
    assert radiomics_settings_text(model, same) == same.read_text()
    other = tmp_path / "other.yaml"
    other.write_text(stored.replace("binWidth: 10", "binWidth: 25"))
    with pytest.warns(UserWarning, match="differs from the pyradiomics settings the model"):
        radiomics_settings_text(model, other)
    with pytest.raises(UserInputError, match="settings file not found"):
        radiomics_settings_text(model, tmp_path / "absent.yaml")


@pytest.mark.parametrize("script, extra", [
    ("predict", ["--scheduler", "local"]), ("predict", ["--params", DEFAULT_PARAMS]),
    ("train", ["--cache", "c"]), ("train", ["--params", DEFAULT_PARAMS])])
def test_extraction_options_without_images_are_refused(script, extra, tmp_path):
    data = tmp_path / "data.csv"
    simulate_cohort(10, seed=1).to_csv(data, index=False)
    if script == "train":
        argv = ["--data", data, "--out", tmp_path / "m.skops", *FAST, *extra]
        code, err = run(train.main, argv)
    else:
        argv = ["--model", tmp_path / "m.skops", "--data", data, "--out", tmp_path / "p.csv",
                *extra]
        code, err = run(predict.main, argv)
    assert code == 2
    assert f"{extra[0]} is for radiomic extraction" in err


def test_both_command_lines_offer_the_extraction_options():
    args = train.build_parser().parse_args(["--cohort", "melanoma", "--out", "m.skops",
                                            "--params", "p.yaml"])
    assert args.params == Path("p.yaml")
    text = train.build_parser().format_help() + predict.build_parser().format_help()
    for option in ("--params", "--cache", "--scheduler"):
        assert text.count(option) >= 2


def test_declared_radiomic_block_columns_are_image_columns():
    model = SimpleNamespace(feature_columns=["rcbv", "kps", "texture_a", IMAGE_COLUMNS[0]],
                            declared_features={"kps": {"kind": "number", "block": None},
                                               "texture_a": {"kind": "number",
                                                             "block": "radiomic"}})
    assert image_columns(model) == ["texture_a", IMAGE_COLUMNS[0]]


def test_train_passes_its_extraction_options_on(tmp_path, monkeypatch):
    """train.py --params, --cache, --scheduler, --jobs and --lesions are what the
    extraction gets."""
    seen = {}

    class Stop(Exception):
        pass

    def fake(table, manifest, params, jobs, cache_dir, scheduler, progress, lesions):
        seen.update(params=Path(params), jobs=jobs, cache_dir=cache_dir, scheduler=scheduler,
                    lesions=lesions)
        raise Stop

    monkeypatch.setattr(features.join, "add_radiomic_features", fake)
    data, manifest = tmp_path / "data.csv", tmp_path / "manifest.csv"
    simulate_cohort(60, seed=1, prevalence=0.5).to_csv(data, index=False)
    manifest.write_text("patient_id,mask,t1c\n")
    argv = ["--data", data, "--manifest", manifest, "--out", tmp_path / "m.skops",
            "--params", DEFAULT_PARAMS, "--cache", tmp_path / "c",
            "--scheduler", "local", "--jobs", "3", "--lesions", "components", *FAST]
    with pytest.raises(Stop):
        train.main([str(a) for a in argv])
    assert seen == {"params": DEFAULT_PARAMS, "jobs": 3, "cache_dir": tmp_path / "c",
                    "scheduler": "local", "lesions": "components"}
    seen.clear()
    with pytest.raises(Stop):
        train.main([str(a) for a in argv if a not in ("--cache", tmp_path / "c")])
    assert seen["cache_dir"] == tmp_path / ".radiomics_cache"


def test_an_extraction_without_the_models_columns_says_so(joined_model, tmp_path,
                                                          monkeypatch):
    """Features extracted under other names than the model's are not silently imputed."""
    new = joined_table(4, seed=5)

    def fake(table, manifest, params, jobs, cache_dir, progress, scheduler, lesions):
        return SimpleNamespace(table=table.assign(adc_original_firstorder_Mean=1.0))

    monkeypatch.setattr(features.join, "add_radiomic_features", fake)
    data, manifest = tmp_path / "new.csv", tmp_path / "manifest.csv"
    new.drop(columns=IMAGE_COLUMNS).to_csv(data, index=False)
    manifest.write_text("patient_id,mask,adc\n")
    code, err = run(predict.main, ["--model", joined_model, "--data", data, "--manifest",
                                   manifest, "--params", DEFAULT_PARAMS,
                                   "--out", tmp_path / "p.csv"])
    assert code == 2 and "include none of the model's 2 image column(s)" in err
    assert "adc_original_firstorder_Mean" in err and "join the model's columns" in err


def test_predictions_from_images_come_with_their_lesion_map(joined_model, tmp_path,
                                                            monkeypatch):
    """With --manifest, where each predicted lesion lies is written beside the predictions
    (pred.csv -> pred.lesions.csv), and that file is refused when it is one of the inputs."""
    from features.extract import LESION_MAP_COLUMNS

    new = joined_table(6, seed=5)
    lesion_map = pd.DataFrame([[pid, "1", 1, 120, 0.12] + [float(i)] * 9
                               for i, pid in enumerate(new["patient_id"])],
                              columns=list(LESION_MAP_COLUMNS))

    def fake(table, manifest, params, jobs, cache_dir, progress, scheduler, lesions):
        joined = table.merge(new[["patient_id", *IMAGE_COLUMNS]], on="patient_id")
        return SimpleNamespace(table=joined, extraction=SimpleNamespace(lesion_map=lesion_map))

    monkeypatch.setattr(features.join, "add_radiomic_features", fake)
    data, manifest = tmp_path / "new.csv", tmp_path / "manifest.csv"
    new.drop(columns=IMAGE_COLUMNS).to_csv(data, index=False)
    manifest.write_text("patient_id,mask,t1c\n")
    argv = ["--model", joined_model, "--data", data, "--manifest", manifest,
            "--params", DEFAULT_PARAMS]
    code, err = run(predict.main, [*argv, "--out", tmp_path / "pred.csv"])
    assert code == 0, err
    written = pd.read_csv(tmp_path / "pred.lesions.csv", dtype={"lesion_id": str})
    pd.testing.assert_frame_equal(written, lesion_map, check_dtype=False)
    assert len(pd.read_csv(tmp_path / "pred.csv")) == len(new)
    # a lesion map that would land on an input is refused before anything is read
    clash = tmp_path / "x.lesions.csv"
    new.drop(columns=IMAGE_COLUMNS).to_csv(clash, index=False)
    before = clash.read_bytes()
    code, err = run(predict.main, ["--model", joined_model, "--data", clash, "--manifest",
                                   manifest, "--params", DEFAULT_PARAMS,
                                   "--out", tmp_path / "x.csv"])
    assert code == 2 and "x.lesions.csv is the input table (--data)" in err
    assert clash.read_bytes() == before and not (tmp_path / "x.csv").exists()
