"""The spline family's feature effects: one row per table column (never one per spline
term), the curved columns first on a table whose true log-odds is curved, their partial
effects shaped as the true curves, and the report's table and figure; rewriting the report
for a linear model removes the spline figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from test_spline_family import COLUMNS, LOG_ADC, LOG_RCBV, curved_cohort
from threadpoolctl import threadpool_limits

from features.contract import LABEL
from models.bundle import TrainedModel
from models.classifier import FeatureLayout, build_family, with_threshold
from models.evaluation import evaluate
from models.inspection import (
    LOGISTIC_METHOD,
    SPLINE_METHOD,
    curve_shape,
    feature_effects,
)
from models.report import format as fmt
from models.report import write_report
from models.report.figures import (
    SPLINE_FILE_NAMES,
    plot_partial_effects,
    write_partial_effects_figure,
)
from models.report.tables import feature_effects_table

TRUE_CURVES = {"rcbv": LOG_RCBV, "adc": LOG_ADC}


def _true_log_odds(column: str, x: np.ndarray) -> np.ndarray:
    """The curved cohort's exact log likelihood ratio of ``column`` at ``x`` (its units)."""
    by_class = TRUE_CURVES[column]
    return norm.logpdf(np.log(x), *by_class[1]) - norm.logpdf(np.log(x), *by_class[0])


def _model(family: str, train: pd.DataFrame) -> TrainedModel:
    """A pipeline of ``family`` fitted once on ``train`` (no tuning, no calibration)."""
    with threadpool_limits(limits=1):
        pipe = build_family(family, FeatureLayout.from_columns(COLUMNS))
        pipe.fit(train[COLUMNS], train[LABEL].to_numpy())
    return TrainedModel(estimator=with_threshold(pipe, 0.5), family=family,
                        feature_columns=COLUMNS, threshold_source="default", cv_scores={},
                        training={"n": len(train), "n_positive": int(train[LABEL].sum())})


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, pd.DataFrame]:
    train, _ = curved_cohort(3000, seed=0)
    test, _ = curved_cohort(1000, seed=1)
    test = test[~(test["rcbv"] > 30)].reset_index(drop=True)  # the contract's range
    return train, test


@pytest.fixture(scope="module")
def spline(cohort) -> TrainedModel:
    return _model("spline", cohort[0])


def test_curved_columns_rank_first_with_their_true_shapes(spline, cohort):
    _, test = cohort
    effects = feature_effects(spline, test, test[LABEL].to_numpy())
    assert set(effects["method"]) == {SPLINE_METHOD}
    assert not effects["feature"].str.contains("_rcs").any()  # one row per column
    assert list(effects["feature"][:2]) == ["rcbv", "adc"]
    assert set(effects["feature"]) == {"rcbv", "adc", "symptomatic",
                                       "rcbv missing (vs the median)",
                                       "adc missing (vs the median)"}
    assert np.allclose(effects["odds_ratio"], np.exp(effects["coefficient"]))
    for column in TRUE_CURVES:
        row = effects[effects["feature"] == column].iloc[0]
        q25, q75 = np.nanquantile(test[column], [0.25, 0.75])
        assert (row["reference_value"], row["compared_value"]) == pytest.approx((q25, q75))
        assert row["scale"] == "75th vs 25th percentile"
        true = _true_log_odds(column, np.array([q25, q75]))
        assert np.sign(row["coefficient"]) == np.sign(true[1] - true[0])
        curve = row["partial_effect"]
        x, y = np.asarray(curve["value"]), np.asarray(curve["log_odds"])
        lo, hi = np.nanquantile(test[column], [0.05, 0.95])
        assert x[0] == pytest.approx(lo) and x[-1] == pytest.approx(hi)
        assert np.corrcoef(y, _true_log_odds(column, x))[0, 1] > 0.9
        assert y[np.argmin(np.abs(x - np.nanmedian(test[column])))] == pytest.approx(
            0.0, abs=0.1)
    # rCBV's true log-odds peaks at exp(0.003) ~ 1.0, inside its 5th-95th percentile
    shape = effects.loc[effects["feature"] == "rcbv", "shape"].iloc[0]
    assert shape.startswith("highest near ") and 0.6 < float(shape.split()[-1]) < 1.6
    symptomatic = effects[effects["feature"] == "symptomatic"].iloc[0]
    assert symptomatic["scale"] == "1 vs 0" and symptomatic["odds_ratio"] < 1
    assert feature_effects(spline, None, None).empty  # needs the lesions' values


def test_a_linear_model_keeps_its_coefficients(cohort):
    train, test = cohort
    effects = feature_effects(_model("logistic", train), test, test[LABEL].to_numpy())
    assert set(effects["method"]) == {LOGISTIC_METHOD}


def test_curve_shape_in_words():
    x = np.linspace(-2, 2, 41)
    assert curve_shape(x, x) == "rising"
    assert curve_shape(x, -x**3) == "falling"
    assert curve_shape(x, -(x - 0.5) ** 2) == "highest near 0.5"
    assert curve_shape(x, x**2) == "lowest near 0"
    assert curve_shape(x, 0.001 * x) == "flat"
    assert curve_shape(x, np.sin(3 * x)) == "rises and falls more than once"


def test_partial_effect_figure_needs_a_curve(tmp_path):
    record = {"feature": "rcbv", "column": "rcbv", "shape": "rising",
              "reference_value": 1.0, "compared_value": 2.0,
              "partial_effect": {"value": [0.5, 1.0, 2.0, 3.0],
                                 "log_odds": [-1.0, 0.0, 1.0, 1.5],
                                 "log_odds_calibrated": None}}
    path = plot_partial_effects([record, {"feature": "symptomatic", "partial_effect": None}],
                                tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert write_partial_effects_figure({"feature_effects": [record]}, tmp_path / "a") == {
        "partial_effects": tmp_path / "a" / SPLINE_FILE_NAMES["partial_effects"]}
    assert write_partial_effects_figure({"feature_effects": [{"feature": "x"}]}, tmp_path) == {}
    with pytest.raises(ValueError, match="curve"):
        plot_partial_effects([], tmp_path / "none.png")


def test_report_shows_the_spline_effects_and_a_later_report_drops_the_figure(
        spline, cohort, tmp_path):
    train, test = cohort
    ev = evaluate(spline, test, warn=False)
    paths = write_report(tmp_path, ev.metrics, ev.frame, model=spline)
    figure = tmp_path / SPLINE_FILE_NAMES["partial_effects"]
    assert paths["partial_effects"] == figure and figure.stat().st_size > 10_000
    data = json.loads((tmp_path / "metrics.json").read_text())
    top = data["feature_effects"][0]
    assert top["feature"] == "rcbv" and top["method"] == SPLINE_METHOD
    md, html = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    metrics_md = (tmp_path / "metrics.md").read_text()
    table = feature_effects_table(data)
    assert table.headers[2] == "contrast (compared vs reference)"
    row = (f"| rcbv | clinical | 75th vs 25th percentile: {fmt.g(top['compared_value'])} vs "
           f"{fmt.g(top['reference_value'])} | {fmt.fixed(top['coefficient'])} | "
           f"{fmt.g(top['odds_ratio'])} |")
    for text in (md, metrics_md):
        assert row in text and "interquartile odds ratio" in text
        assert "_rcs1" not in text
    assert "](partial_effects.png)" in md and 'data-figure="partial_effects"' in html
    assert "Partial effects of the curved inputs" in md

    (tmp_path / "my_notes.png").write_bytes(b"the user's own")
    linear = _model("logistic", train)
    ev = evaluate(linear, test, warn=False)
    paths = write_report(tmp_path, ev.metrics, ev.frame, model=linear)
    assert "partial_effects" not in paths and not figure.exists()
    assert (tmp_path / "my_notes.png").read_bytes() == b"the user's own"
    assert "partial_effects.png" not in (tmp_path / "report.md").read_text()
