"""A user's own classifier: read from ``module:factory`` with one clear message per problem,
trained end to end through the same calibration, threshold, rule benchmark and report as
the built-in families, saved and loaded (its types trusted only when the caller says so);
and a table without feature columns refused before its size is judged."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
from sklearn.naive_bayes import GaussianNB
from threadpoolctl import threadpool_limits

from features.contract import LABEL
from features.errors import UserInputError
from features.synthetic import simulate_cohort
from models.bundle import load_model, save_model
from models.classifier import CUSTOM, load_estimator, tuning_text
from models.report import write_report
from models.report.tables import model_selection_table
from models.training import train
from models.updating import update_model

SEED = 2
TRUST = ["sklearn.naive_bayes.GaussianNB"]


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A model of a user's own classifier trained on 300 simulated patients, its report."""
    table = simulate_cohort(300, prevalence=0.3, seed=SEED)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small-sample warnings
        result = train(table, seed=SEED, nested_cv=False, progress=False,
                       estimator=load_estimator("own_estimators:naive_bayes"))
    folder = tmp_path_factory.mktemp("own_report")
    write_report(folder, result.metrics, result.evaluation.frame, model=result.model)
    return result, folder


# --------------------------------------------------------------------------- load_estimator


def test_load_estimator_from_a_module_or_a_file(tmp_path, monkeypatch):
    made = load_estimator("own_estimators:naive_bayes")
    assert isinstance(made, GaussianNB) and made.var_smoothing == 1e-6
    assert not hasattr(made, "classes_")  # unfitted
    source = tmp_path / "my_models.py"
    source.write_text("from sklearn.naive_bayes import GaussianNB\n\n"
                      "class Factory:\n    @staticmethod\n    def make():\n"
                      "        return GaussianNB(var_smoothing=1e-3)\n")
    assert load_estimator(f"{source}:Factory.make").var_smoothing == 1e-3
    monkeypatch.chdir(tmp_path)  # a module in the current folder
    assert load_estimator("my_models:Factory.make").var_smoothing == 1e-3


def test_a_module_of_the_current_folder_shadows_none_of_the_projects(tmp_path, monkeypatch):
    """A user's folder holding its own ``models/`` package: the estimator module is read by
    its path, and the user's folder is never searched before the project's packages."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("raise ImportError('the user models')\n")
    (tmp_path / "my_models.py").write_text(
        "import sys\nfrom sklearn.naive_bayes import GaussianNB\n"
        "SEARCHED_FIRST = sys.path[0]\n"
        "def make():\n    return GaussianNB(var_smoothing=1e-4)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    made = load_estimator("my_models:make")
    assert made.var_smoothing == 1e-4
    loaded = [m for m in sys.modules.values()
              if getattr(m, "__file__", None) == str(tmp_path / "my_models.py")]
    assert len(loaded) == 1 and loaded[0].SEARCHED_FIRST != str(tmp_path)
    assert str(tmp_path) not in sys.path


@pytest.mark.parametrize("spec, message", [
    ("own_estimators", "is not of the form module:factory"),
    ("no_such_module_here:make", "no module named 'no_such_module_here' in the current folder"),
    ("missing/file.py:make", "the file missing/file.py does not exist"),
    ("own_estimators:nothing", "own_estimators has no attribute 'nothing'"),
    ("own_estimators:failing", "failed when called with no arguments: the factory's own"),
    ("own_estimators:no_probabilities", "lacks predict_proba"),
    ("own_estimators:NUMBER", "lacks fit, predict_proba, get_params"),
])
def test_load_estimator_names_each_problem(spec, message):
    with pytest.raises(UserInputError, match="^estimator ") as caught:
        load_estimator(spec)
    assert message in str(caught.value)


def test_load_estimator_names_a_missing_dependency_of_the_module(tmp_path):
    source = tmp_path / "needs_more.py"
    source.write_text("import package_that_is_not_installed\n")
    with pytest.raises(UserInputError, match="ModuleNotFoundError.*not_installed"):
        load_estimator(f"{source}:make")
    with pytest.raises(UserInputError, match="imports 'package_that_is_not_installed', which "
                                             "is not installed"):
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(str(tmp_path))
            load_estimator("needs_more:make")


# --------------------------------------------------------------------------- end to end


def test_own_estimator_trains_end_to_end_as_the_users_family(own):
    result, folder = own
    model, metrics = result.model, result.metrics
    assert model.family == CUSTOM and list(model.cv_scores) == [CUSTOM]
    assert model.training["estimator"] == "sklearn.naive_bayes.GaussianNB"
    pipe = model.estimator.estimator.fitted_pipeline
    assert isinstance(pipe.named_steps["model"], GaussianNB)
    assert metrics["model_selection"]["chosen"] == CUSTOM
    assert metrics["model"]["auc"] > 0.7 and metrics["rules"]  # benchmarked against the rules
    assert model.threshold == 0.5
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["model_selection"]["cv"][CUSTOM]["best_params"] == {}
    report = (folder / "report.md").read_text()
    assert "`sklearn.naive_bayes.GaussianNB`" in report
    assert "the user's own classifier" in report and "not tuned" in report


def test_own_estimator_model_saves_and_loads_only_when_its_types_are_trusted(own, tmp_path):
    model = own[0].model
    probe = simulate_cohort(40, seed=5)
    path = tmp_path / "own.skops"
    with pytest.warns(UserWarning, match=r"trusted_types=\['sklearn.naive_bayes.GaussianNB'\]"):
        save_model(model, path)
    with pytest.raises(UserInputError) as caught:
        load_model(path)
    text = str(caught.value)
    assert "a model of your own estimator (sklearn.naive_bayes.GaussianNB)" in text
    assert "nothing in it was built or run" in text
    assert "load_model(path, trusted_types=['sklearn.naive_bayes.GaussianNB'])" in text
    assert "--trust-pickle" in text
    loaded = load_model(path, trusted_types=TRUST)
    np.testing.assert_array_equal(loaded.probability(probe, warn=False),
                                  model.probability(probe, warn=False))
    assert loaded.family == CUSTOM and loaded.training == model.training
    pickled = save_model(model, tmp_path / "own.joblib")  # no warning for a pickle
    again = load_model(pickled, trust_pickle=True)
    np.testing.assert_array_equal(again.probability(probe, warn=False),
                                  model.probability(probe, warn=False))


def test_own_estimator_of_trusted_types_saves_and_loads_as_it_is(tmp_path):
    from models.training import fit_model

    table = simulate_cohort(160, prevalence=0.3, seed=SEED)
    with threadpool_limits(limits=1):
        model = fit_model(table, seed=SEED, estimator=load_estimator(
            "own_estimators:stronger_penalty"))
    assert model.training["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = save_model(model, tmp_path / "plain.skops")
    loaded = load_model(path)
    assert loaded.estimator.estimator.fitted_pipeline.named_steps["model"].C == 0.05


def test_model_selection_table_shows_each_familys_chosen_settings():
    cv = {"logistic": {"log_loss": 0.3, "log_loss_sd": 0.01, "auc": 0.8,
                       "best_params": {"model__C": 1.0}, "n_settings": 5},
          "spline": {"log_loss": None, "log_loss_sd": None, "auc": None,
                     "note": "skipped: too few events"},
          CUSTOM: {"log_loss": 0.4, "log_loss_sd": 0.02, "auc": 0.7, "best_params": {},
                   "n_settings": 1}}
    table = model_selection_table(cv, "logistic")
    cells = {row[0]: row[-1] for row in table.rows}
    assert cells["logistic (chosen)"] == "inverse L2 penalty C 1 (best of 5)"
    assert cells["spline"] == "skipped: too few events"
    assert cells[CUSTOM] == "as given"


def test_report_shows_the_tuning_grid_and_every_familys_chosen_settings(own, tmp_path):
    result = own[0]
    metrics = json.loads(json.dumps(result.metrics, default=float))
    metrics["model_selection"] = {"chosen": "spline", "cv": {
        "logistic": {"log_loss": 0.31, "log_loss_sd": 0.01, "auc": 0.8,
                     "best_params": {"model__C": 1.0}, "n_settings": 5},
        "spline": {"log_loss": 0.3, "log_loss_sd": 0.01, "auc": 0.81, "n_settings": 10,
                   "best_params": {"model__C": 0.3, "prepare__contract__spline__n_knots": 4}}}}
    write_report(tmp_path, metrics, result.evaluation.frame)
    report = (tmp_path / "report.md").read_text()
    assert f"Tuning grid: {tuning_text()}." in report
    assert "| spline (chosen) | 0.3000 ± 0.0100 | 0.810 | inverse L2 penalty C 0.3; spline " \
        "knots per continuous column 4 (best of 10) |" in report
    assert "inverse L2 penalty C 1 (best of 5)" in report
    assert "Settings of the chosen family (spline), chosen by the cross-validation: inverse " \
        "L2 penalty C 0.3; spline knots per continuous column 4." in report


# --------------------------------------------------------------------------- no features first


def test_a_tiny_table_without_feature_columns_hears_that_first(own):
    tiny = simulate_cohort(6, seed=1)[["patient_id", LABEL]].assign(**{LABEL: [1, 0] * 3})
    with pytest.raises(UserInputError, match="^the table has no feature columns"):
        train(tiny, progress=False)
    model = own[0].model
    with pytest.raises(UserInputError, match="^the table has no feature columns: none of the "
                                             "model's"):
        update_model(model, tiny, progress=False)
