"""The figures: every PNG is written, readable, non-trivial, and abstaining rules do not crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from features.article import FIGURES
from models.report.figures import (
    ARTICLE_D3,
    FILE_NAMES,
    plot_calibration,
    plot_decision_curve,
    plot_odds_ratio_forest,
    plot_ppv_npv_vs_prevalence,
    plot_precision_recall,
    plot_roc,
    write_all_figures,
)
from models.statistics import diagnostic_odds_ratios


def _data(n: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.2, n)
    x = rng.normal(1.5 * y, 1.0)
    bayes = 1 / (1 + np.exp(-(1.5 * x - 1.125 + np.log(0.25))))
    p = np.clip(bayes + rng.normal(0, 0.05, n), 0.001, 0.999)
    d3 = (rng.normal(y, 1.0) > 0.8).astype(float)
    d3[rng.random(n) < 0.3] = np.nan
    rules = pd.DataFrame({
        "D1_perfusion_diffusion": (x > 1.0).astype(float),
        "D3_ctdna_clearance": d3,
        "D5_pathology": np.full(n, np.nan),                 # never applicable
        "Q1c_pet": np.where(y == 1, np.nan, 0.0),           # covers one class only
    })
    return y, p, rules, bayes


def _check_png(path, min_bytes: int = 8_000) -> None:
    assert path.exists()
    assert path.stat().st_size > min_bytes
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
    assert img.std() > 0.01  # not a blank canvas


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    y, p, rules, bayes = _data()
    out = tmp_path_factory.mktemp("figures")
    return out, write_all_figures(out, y, p, 0.3, rules, bayes_p=bayes)


def test_write_all_figures(written):
    out, paths = written
    assert set(paths) == set(FILE_NAMES)
    for name, path in paths.items():
        assert path == out / FILE_NAMES[name]
        _check_png(path)
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in out.iterdir()) == sorted(FILE_NAMES.values())


def test_write_all_figures_takes_metrics_and_no_rules(tmp_path):
    y, p, _, _ = _data(120, seed=1)
    metrics = {"auc": {"estimate": 0.8, "ci": [0.7, 0.9], "method": "given"}}
    paths = write_all_figures(tmp_path / "sub", y, p, 0.3, None, metrics=metrics)
    for path in paths.values():
        _check_png(path, min_bytes=5_000)


def test_all_nan_rules_do_not_crash(tmp_path):
    y, p, _, _ = _data(100, seed=3)
    rules = pd.DataFrame({"D2_mrs_cho_cr": np.nan, "D4_cytokines": np.nan}, index=range(100))
    assert plot_roc(y, p, rules, tmp_path / "roc.png", auc_ci=(0.6, 0.9)) == tmp_path / "roc.png"
    assert plot_precision_recall(y, p, rules, tmp_path / "pr.png") == tmp_path / "pr.png"
    assert plot_decision_curve(y, p, rules, tmp_path / "dc.png",
                               thresholds=np.linspace(0.05, 0.5, 10)) == tmp_path / "dc.png"
    table = diagnostic_odds_ratios(y, rules)
    assert plot_odds_ratio_forest(table, tmp_path / "or.png") == tmp_path / "or.png"
    points = {"Model": (0.8, 0.7), "D2_mrs_cho_cr": (np.nan, np.nan)}
    assert plot_ppv_npv_vs_prevalence(points, tmp_path / "pv.png") == tmp_path / "pv.png"
    for name in ("roc", "pr", "dc", "or", "pv"):
        _check_png(tmp_path / f"{name}.png", min_bytes=5_000)


def test_forest_article_row(tmp_path):
    assert ARTICLE_D3 == ("D3", FIGURES["D3"].value, *FIGURES["D3"].ci)
    table = pd.DataFrame({"label": ["D1_perfusion_diffusion"], "odds_ratio": [2.0],
                          "ci_low": [1.2], "ci_high": [3.5], "n": [80]})
    # no D3 row: the article's figure is drawn as its own row; article=None leaves it out
    _check_png(plot_odds_ratio_forest(table, tmp_path / "f1.png"), min_bytes=5_000)
    indexed = table.set_index("label")
    _check_png(plot_odds_ratio_forest(indexed, tmp_path / "f2.png", article=None),
               min_bytes=5_000)


def test_calibration_tiny_sample(tmp_path):
    y = np.array([0, 1, 0, 0, 1, 0])
    p = np.array([0.1, 0.8, 0.3, 0.2, 0.6, 0.4])
    _check_png(plot_calibration(y, p, tmp_path / "c.png", n_bins=4), min_bytes=5_000)


def test_bad_inputs(tmp_path):
    y, p, rules, _ = _data(50, seed=4)
    with pytest.raises(ValueError):
        plot_roc(y, p[:-1], rules, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_decision_curve(y, p, rules.iloc[:10], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_forest_names_undefined_and_corrected_ratios(tmp_path, monkeypatch):
    from models.report import figures
    from models.statistics import HALDANE_NOTE

    texts = []
    real_save = figures._save

    def capture(fig, out):
        for ax in fig.axes:
            texts.extend(t.get_text() for t in ax.get_yticklabels())
        texts.extend(t.get_text() for legend in fig.legends for t in legend.get_texts())
        return real_save(fig, out)

    monkeypatch.setattr(figures, "_save", capture)
    table = pd.DataFrame({
        "label": ["D1_perfusion_diffusion", "Q1c_pet", "D5_pathology"],
        "odds_ratio": [2.0, np.nan, 219.0], "ci_low": [1.2, np.nan, 3.14],
        "ci_high": [3.5, np.nan, 15298.0], "n": [80, 20, 37],
        "note": ["", "undefined: never calls pseudoprogression", HALDANE_NOTE]})
    _check_png(plot_odds_ratio_forest(table, tmp_path / "f.png"), min_bytes=5_000)
    assert "undefined: never calls pseudoprogression, n=20" in texts
    assert "219 (3.14-15298) †, n=37" in texts
    assert f"† {HALDANE_NOTE}" in texts
    assert "2 (1.2-3.5), n=80" in texts


def test_roc_and_calibration_legends_state_the_report_numbers(tmp_path, monkeypatch):
    from models.report import figures
    from models.report import format as fmt

    texts = []
    real_save = figures._save

    def capture(fig, out):
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:
                texts.append(legend.get_title().get_text())
                texts.extend(t.get_text() for t in legend.get_texts())
        return real_save(fig, out)

    monkeypatch.setattr(figures, "_save", capture)
    y, p, rules, bayes = _data(200, seed=2)
    plot_roc(y, p, rules, tmp_path / "roc.png", auc_ci=(0.7, 0.9))
    cal = {"calibration_intercept": 0.1234, "calibration_intercept_ci": [-0.2, 0.4],
           "calibration_slope": 0.95, "calibration_slope_ci": [0.7, 1.2]}
    plot_calibration(y, p, tmp_path / "cal.png", calibration=cal)
    from models.statistics import auc

    assert f"Model, AUC {fmt.est_ci(auc(y, p), (0.7, 0.9))}" in texts
    title = next(t for t in texts if t.startswith("Calibration intercept"))
    assert fmt.est_ci(0.1234, [-0.2, 0.4]) in title and fmt.est_ci(0.95, [0.7, 1.2]) in title


def test_waiting_cost_figure_with_abstaining_rules_and_missing_intervals(tmp_path):
    from models.report.waiting import write_waiting_figure

    def rule(coverage, se=None, ppv=None):
        return {"coverage": coverage, "sensitivity": se, "sensitivity_ci": [None, None],
                "ppv": ppv, "ppv_ci": [0.2, 0.6] if ppv is not None else [None, None]}

    times = [{"week": w, "model": {"sensitivity": 0.7 + w / 100, "sensitivity_ci": [0.6, 0.8],
                                   "ppv": 0.6 + w / 50, "ppv_ci": [None, None]},
              "rules": {"T4": rule(0.0) if w == 0 else rule(0.6, 0.9, 0.3),
                        "C4": rule(0.0) if w < 8 else rule(1.0, 0.5, 1.0)},
              "waiting": {"weeks_untreated_per_100_patients": 90.0 * w,
                          "weeks_untreated_per_100_patients_ci": [80.0 * w, 95.0 * w]}}
             for w in (0.0, 4.0, 8.0, 12.0)]
    paths = write_waiting_figure({"landmarks": {"times": times}}, tmp_path)
    _check_png(paths["waiting_cost"])
    assert write_waiting_figure({"landmarks": {"times": []}}, tmp_path / "none") == {}
    assert write_waiting_figure({}, tmp_path / "none") == {}
