"""The classifier: column layout with declared features, pandas output through each family,
clone-and-refit of a trained model on other tables, model families on small cohorts, tuning
on the patient-grouped folds (settings recorded, radiomic reduction chosen), a user's own
estimator, the patient folds and the fit cache."""

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits

import models.classifier as classifier
from features.contract import ID, LABEL, LESION, NUMERIC_FEATURES, model_columns
from features.description import DeclaredFeature
from features.errors import UserInputError
from features.synthetic.cohort import simulate_cohort
from models.classifier import (
    CUSTOM,
    FAMILIES,
    RADIOMIC_CHOICES,
    TUNING_GRID,
    ContractTransformer,
    FeatureLayout,
    FitCache,
    RadiomicSelector,
    boosting_min_samples_leaf,
    build_family,
    fit_calibrated,
    patient_folds,
    radiomic_choices,
    settings_text,
    tuning_stages,
    tuning_text,
)
from models.training import fit_model

DECLARED = {
    "kps": DeclaredFeature("number", None, (0, 100)),
    "on_steroids": DeclaredFeature("binary"),
    "site": DeclaredFeature("category"),
    "texture_entropy": DeclaredFeature("number", "radiomic"),
}


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS and OpenMP thread: on these small matrices a thread pool only costs time."""
    with threadpool_limits(limits=1):
        yield


def with_extras(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``table`` with radiomic columns (two informative, one a copy), declared extras and an
    undeclared column."""
    rng = np.random.default_rng(seed)
    n = len(table)
    out = table.copy()
    y = out[LABEL].to_numpy()
    for j in range(12):
        out[f"t1c_original_firstorder_F{j}"] = rng.normal(size=n) + (y if j < 2 else 0)
    out["t1c_original_glcm_Copy"] = 2 * out["t1c_original_firstorder_F0"]
    out["kps"] = rng.uniform(40, 100, n)
    out["on_steroids"] = rng.integers(0, 2, n).astype(float)
    out["site"] = rng.choice(np.array(["north", "south", None], dtype=object), n)
    out["texture_entropy"] = rng.normal(size=n)
    out["ward"] = rng.integers(1, 9, n)
    return out


def xy(table: pd.DataFrame, declared=None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    cols = model_columns(table.columns, declared=declared or {})
    return (table[[*cols, ID]], table[LABEL].to_numpy().astype(int),
            table[ID].to_numpy())


# --------------------------------------------------------------------------- layout


def test_layout_puts_declared_features_in_their_blocks():
    cols = [ID, LESION, LABEL, "cancer_type", "rcbv", "symptomatic", "kps", "on_steroids",
            "site", "texture_entropy", "t1c_original_firstorder_Mean", "ward"]
    layout = FeatureLayout.from_columns(cols, DECLARED)
    assert layout.numeric == ["rcbv", "symptomatic", "kps", "on_steroids"]
    assert layout.radiomic == ["texture_entropy", "t1c_original_firstorder_Mean"]
    assert layout.categorical == ["cancer_type", "site"]
    # the numeric block: the contract's numeric features of the table, in table order, then
    # the declared number and 0/1 columns (from the contract's own list, not the layout's)
    contract = [c for c in cols if c in NUMERIC_FEATURES]
    extras = [c for c in cols if c in DECLARED and DECLARED[c].kind in ("number", "binary")
              and DECLARED[c].block is None]
    assert layout.numeric == contract + extras
    assert set(layout.declared) == set(DECLARED)
    described = layout.describe()
    assert described["numeric"]["n"] == 4
    assert described["numeric"]["declared"] == ["kps", "on_steroids"]
    assert described["radiomic"]["declared"] == ["texture_entropy"]
    # without the declaration the extras are left out; a contract column keeps its role
    assert FeatureLayout.from_columns(cols).columns == [
        "rcbv", "symptomatic", "t1c_original_firstorder_Mean", "cancer_type"]
    as_category = FeatureLayout.from_columns(["rcbv"], {"rcbv": DeclaredFeature("category")})
    assert as_category.numeric == ["rcbv"] and not as_category.declared


def test_contract_transform_leaves_declared_columns_as_they_are():
    X = pd.DataFrame({"rcbv": [1.0, np.e, np.nan], "kps": [80.0, 90.0, np.nan]})
    out = ContractTransformer().fit(X).transform(X)
    np.testing.assert_allclose(out, [[0.0, 80.0], [1.0, 90.0], [np.nan, np.nan]])
    a = ContractTransformer(columns=["kps", "rcbv"]).fit(X[["kps", "rcbv"]].to_numpy())
    np.testing.assert_allclose(a.transform(X[["kps", "rcbv"]].to_numpy()), out[:, ::-1])
    assert list(a.get_feature_names_out()) == ["kps", "rcbv"]


@pytest.mark.parametrize("family", FAMILIES)
def test_pandas_output_through_each_family(family):
    table = with_extras(simulate_cohort(120, seed=4))
    X, y, _ = xy(table, DECLARED)
    layout = FeatureLayout.from_columns(X.columns, DECLARED)
    pipe = build_family(family, layout, n_rows=len(y)).set_output(transform="pandas")
    pipe.fit(X, y)
    prepared = pipe[:-1].transform(X)
    assert isinstance(prepared, pd.DataFrame)
    names = list(pipe[:-1].get_feature_names_out())
    assert list(prepared.columns) == names
    assert {"rcbv", "kps", "on_steroids"} <= set(names)
    assert "t1c_original_glcm_Copy" not in names  # the correlation filter dropped the copy
    assert "ward" not in names and ID not in names
    assert np.isfinite(pipe.predict_proba(X)).all()


# --------------------------------------------------------------------------- clone and refit


@pytest.fixture(scope="module")
def trained():
    return fit_model(simulate_cohort(300, seed=1), seed=0, threshold=0.35)


def several_lesions(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with two rows per patient (lesions 1 and 2)."""
    out = table.copy()
    out[ID] = [f"P{i // 2:04d}" for i in range(len(out))]
    out[LESION] = [str(i % 2 + 1) for i in range(len(out))]
    return out


def test_clone_refits_on_a_table_of_another_size_grouped_by_patient(trained):
    table = several_lesions(simulate_cohort(200, seed=2))
    X, y = table[trained.input_columns], table[LABEL].to_numpy()
    refit = clone(trained.estimator).fit(X, y)
    assert refit.threshold == trained.threshold == 0.35
    folds = refit.estimator_.calibrated_.cv
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(200))
    patients = table[ID].to_numpy()
    for train, test in folds:
        assert not set(patients[train]) & set(patients[test])
    p_new = refit.predict_proba(X)[:, 1]
    p_old = trained.estimator.predict_proba(X)[:, 1]
    assert not np.allclose(p_new, p_old)
    again = clone(trained.estimator).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), refit.predict_proba(X))
    np.testing.assert_array_equal(refit.predict(X), (p_new >= 0.35).astype(int))


def test_clone_refits_on_a_table_of_the_same_size_from_another_seed(trained):
    table = simulate_cohort(300, seed=5)
    X, y = table[trained.input_columns], table[LABEL].to_numpy()
    refit = clone(trained.estimator).fit(X, y)
    assert refit.threshold == 0.35
    folds = refit.estimator_.calibrated_.cv
    original = trained.estimator.estimator.calibrated_.cv
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(folds, original, strict=True))
    assert not np.allclose(refit.predict_proba(X), trained.estimator.predict_proba(X))


# --------------------------------------------------------------------------- small cohorts


def test_boosting_leaf_size_follows_the_rows():
    assert boosting_min_samples_leaf(None) == 30
    assert boosting_min_samples_leaf(28) == 5
    assert boosting_min_samples_leaf(120) == 6
    assert boosting_min_samples_leaf(600) == 30
    assert boosting_min_samples_leaf(5000) == 30
    model = build_family("gradient_boosting", FeatureLayout.from_columns(["rcbv"]), n_rows=200)
    assert model.named_steps["model"].min_samples_leaf == 10


def test_small_cohort_skips_boosting_with_a_note_and_picks_a_scored_family():
    table = simulate_cohort(45, prevalence=0.25, seed=3)
    X, y, groups = xy(table)
    assert 8 <= y.sum() <= 12
    fitted = fit_calibrated(X, y, groups, seed=0)
    assert fitted.family == "logistic"
    assert math.isfinite(fitted.cv_scores["logistic"]["log_loss"])
    assert fitted.notes["spline"].startswith("skipped")
    assert "fewer than 20" in fitted.notes["spline"]
    assert "skipped" in fitted.notes["gradient_boosting"]
    assert "fewer than 10" in fitted.notes["gradient_boosting"]
    assert fitted.cv_scores["gradient_boosting"]["note"] == fitted.notes["gradient_boosting"]
    assert math.isnan(fitted.cv_scores["gradient_boosting"]["log_loss"])
    assert fitted.estimator.predict_proba(X).shape == (45, 2)
    with pytest.raises(UserInputError, match=r"counts by label: \{0: \d+, 1: \d+\}.*10"):
        fit_calibrated(X, y, groups, families=("gradient_boosting",))


def test_mid_size_cohort_adapts_boosting_leaves():
    X, y, groups = xy(simulate_cohort(150, prevalence=0.3, seed=1))
    fitted = fit_calibrated(X, y, groups, seed=0)
    note = fitted.notes["gradient_boosting"]
    assert note.startswith("adapted: min_samples_leaf 6 ")
    assert math.isfinite(fitted.cv_scores["gradient_boosting"]["auc"])
    assert fitted.cv_scores["gradient_boosting"]["auc"] != 0.5
    assert "logistic" not in fitted.notes


def test_a_family_whose_cross_validation_fails_is_never_chosen(monkeypatch):
    X, y, groups = xy(simulate_cohort(150, prevalence=0.3, seed=1))
    real = classifier.build_family

    def broken_logistic(family, layout, random_state=0, n_rows=None):
        pipe = real(family, layout, random_state, n_rows)
        if family == "logistic":
            pipe.set_params(model__max_iter=-1)  # every fit fails, whatever C is tried
        return pipe

    monkeypatch.setattr(classifier, "build_family", broken_logistic)
    fitted = fit_calibrated(X, y, groups, seed=0, families=("logistic", "gradient_boosting"))
    assert fitted.family == "gradient_boosting"
    assert fitted.notes["logistic"].startswith("failed: no cross-validation fit succeeded")
    assert "'max_iter' parameter" in fitted.notes["logistic"]
    failed = fitted.cv_scores["logistic"]["failed_fits"]  # counted, not printed
    assert failed["dropped"] is True and failed["n"] == failed["of"] > 0
    assert "best_params" not in fitted.cv_scores["logistic"]
    assert math.isnan(fitted.cv_scores["logistic"]["log_loss"])


def test_a_class_too_small_to_cross_validate_is_a_user_error():
    X, y, groups = xy(simulate_cohort(60, seed=2))
    y = np.zeros_like(y)
    y[0] = 1
    with pytest.raises(UserInputError, match=r"counts by label: \{0: 59, 1: 1\}.*at least 2"):
        fit_calibrated(X, y, groups)


# --------------------------------------------------------------------------- tuning


def grid_size(family: str) -> int:
    return int(np.prod([len(v) for v in TUNING_GRID[family].values()]))


def test_tuning_records_each_familys_settings_and_chooses_the_radiomic_reduction():
    table = with_extras(simulate_cohort(200, prevalence=0.3, seed=6))
    X, y, groups = xy(table, DECLARED)
    fitted = fit_calibrated(X, y, groups, seed=0, declared=DECLARED, n_splits=3)
    radiomic_keys = {f"prepare__radiomic__select__{k}" for c in RADIOMIC_CHOICES for k in c}
    for family in FAMILIES:
        scores = fitted.cv_scores[family]
        best = scores["best_params"]
        assert json.loads(json.dumps(best)) == best  # plain JSON values
        assert set(TUNING_GRID[family]) <= set(best)
        assert set(best) - set(TUNING_GRID[family]) <= radiomic_keys
        assert best["prepare__radiomic__select__method"] in ("kbest", "l1")
        assert scores["n_settings"] == len(RADIOMIC_CHOICES) + grid_size(family)
        assert len(radiomic_choices(14)) == len(RADIOMIC_CHOICES)  # 14 radiomic columns
    # the chosen family is calibrated with its chosen settings
    params = fitted.estimator.fitted_pipeline.get_params()
    for key, value in fitted.cv_scores[fitted.family]["best_params"].items():
        assert params[key] == value
    stages = tuning_stages("logistic", FeatureLayout.from_columns(X.columns, DECLARED))
    assert [len(s) for s in stages] == [len(RADIOMIC_CHOICES), 1]
    # on a block of 5 columns, every F-test choice keeping all 5 is one choice
    narrow = radiomic_choices(5)
    assert [c["method"] for c in narrow].count("kbest") == 1 and len(narrow) >= 2
    assert radiomic_choices(0) == []
    assert tuning_stages("logistic", FeatureLayout.from_columns(["rcbv"])) == [
        [{"model__C": list(TUNING_GRID["logistic"]["model__C"])}]]
    # in words, for reports
    assert settings_text({"model__C": 0.3, "model__max_leaf_nodes": 7}) == (
        "inverse L2 penalty C 0.3; leaves per tree 7")
    assert settings_text({}) == "as given"
    assert all(family in tuning_text() for family in FAMILIES)


def test_radiomic_selector_keeps_the_informative_columns_by_f_test_or_l1():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    X = rng.normal(size=(400, 30))
    X[:, :3] += y[:, None]
    kbest = RadiomicSelector("kbest", k=3).fit(X, y)
    assert np.flatnonzero(kbest.get_support()).tolist() == [0, 1, 2]
    lasso = RadiomicSelector("l1", l1_scale=3.0).fit(X, y)
    kept = lasso.get_support()
    assert kept[:3].all() and kept.sum() <= 8
    assert RadiomicSelector("l1", l1_scale=30.0).fit(X, y).get_support().sum() >= kept.sum()
    assert lasso.scores_.shape == (30,) and lasso.coef_.shape == (1, 30)
    none = RadiomicSelector("kbest", k=0).fit(X, y)
    assert none.transform(X).shape == (400, 0)


# --------------------------------------------------------------------------- own estimator


def test_own_estimator_is_compared_as_custom_and_calibrated_on_patient_folds():
    from sklearn.naive_bayes import GaussianNB
    from sklearn.svm import LinearSVC

    table = several_lesions(simulate_cohort(200, prevalence=0.3, seed=1))
    X, y, groups = xy(table)
    both = fit_calibrated(X, y, groups, seed=0, families=("logistic",), estimator=GaussianNB())
    assert list(both.cv_scores) == ["logistic", CUSTOM]
    assert both.cv_scores[CUSTOM]["best_params"] == {}
    assert both.cv_scores[CUSTOM]["n_settings"] == 1
    assert math.isfinite(both.cv_scores[CUSTOM]["log_loss"])
    alone = fit_calibrated(X, y, groups, seed=0, families=(), estimator=GaussianNB)  # a factory
    assert alone.family == CUSTOM and list(alone.cv_scores) == [CUSTOM]
    assert isinstance(alone.estimator.fitted_pipeline.named_steps["model"], GaussianNB)
    for train, test in alone.estimator.calibrated_.cv:
        assert not set(groups[train]) & set(groups[test])
    p = alone.estimator.predict_proba(X)[:, 1]
    assert np.isfinite(p).all() and 0 < p.min() < p.max() < 1
    refit = clone(alone.estimator).fit(X, y)  # the whole procedure, grouped by patient_id
    assert refit.predict_proba(X).shape == (len(y), 2)
    with pytest.raises(UserInputError, match="predict_proba"):
        fit_calibrated(X, y, groups, estimator=LinearSVC())
    with pytest.raises(UserInputError, match="needs an estimator"):
        fit_calibrated(X, y, groups, families=(CUSTOM,))
    with pytest.raises(UserInputError, match="factory"):
        fit_calibrated(X, y, groups, estimator=lambda: 1 / 0)


# --------------------------------------------------------------------------- folds and cache


def test_patient_folds_keep_patients_together_and_balance_the_classes():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(60), rng.integers(1, 5, 60)).astype(str)
    y = (rng.random(len(groups)) < 0.25).astype(int)
    folds = patient_folds(y, groups, 5, seed=0)
    assert sorted(np.concatenate([test for _, test in folds])) == list(range(len(y)))
    positives = [int(y[test].sum()) for _, test in folds]
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert 0 < y[test].sum() < len(test)
    assert max(positives) - min(positives) <= 3
    again = patient_folds(y, groups, 5, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    # no more folds than patients with a lesion of the rarer class
    few = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    assert len(patient_folds(few, np.array(["a", "a", "b", "c", "d", "e", "f", "g"]), 5, 0)) == 2
    big = (rng.random(10_000) < 0.1).astype(int)
    folds = patient_folds(big, np.arange(10_000), 5, seed=1)
    assert {int(big[test].sum()) for _, test in folds} <= {big.sum() // 5, big.sum() // 5 + 1}


def test_fit_cache_answers_equal_calls_once_and_is_shared_by_clones():
    calls = []

    def fit(transformer, X, y, note=None):
        calls.append(1)
        return len(X)

    cache = FitCache()
    cached = cache.cache(fit, ignore=["note"])
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    y = np.array([0, 1, 0])
    assert cached("t", X, y, note=1) == cached("t", X.copy(), y.copy(), note=2) == 3
    assert len(calls) == 1
    cached("t", X.iloc[:2], y[:2])
    cached("u", X, y)
    assert len(calls) == 3
    pipe = build_family("logistic", FeatureLayout.from_columns(["rcbv"])).set_params(memory=cache)
    assert clone(pipe).memory is cache
    assert pickle.loads(pickle.dumps(cache)).store == {}
