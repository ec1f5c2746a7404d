"""The full report: uncertainty keys, self-contained HTML, numbers equal to metrics.json."""

from __future__ import annotations

import base64
import copy
import importlib.util
import io
import json
import math
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from features.contract import ID, LABEL, model_columns
from features.synthetic.cohort import bayes_posterior, fidelity_table, simulate_cohort
from models.bundle import TrainedModel, table_sha256
from models.classifier import FeatureLayout, build_family, with_threshold
from models.evaluation import NB_THRESHOLDS, add_uncertainty, evaluate
from models.metrics_document import build_metrics_document, report_facts
from models.report import format as fmt
from models.report import write_report
from models.report.figures import FILE_NAMES
from models.statistics import (
    auc,
    binary_metrics,
    brier_score,
    calibration_intercept_slope,
    called,
    to_jsonable,
)

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "check_report_in_browser.py"
CHROMIUM = Path("/usr/bin/chromium")
NEW_KEYS = ("uncertainty", "bootstrap", "rule_comparisons", "net_benefit")


def _apparent(model: TrainedModel, train: pd.DataFrame) -> dict:
    """The model's figures on its own training rows, as internal validation records them."""
    y = train[LABEL].to_numpy().astype(int)
    p = model.probability(train, warn=False)
    m = binary_metrics(y, called(p, model.threshold).astype(float))
    cal = calibration_intercept_slope(y, p)
    return {"n": len(y), "n_positive": int(y.sum()), "auc": auc(y, p),
            "brier": brier_score(y, p), "calibration_intercept": cal["calibration_intercept"],
            "calibration_slope": cal["calibration_slope"], "sensitivity": m["sensitivity"],
            "ppv": m["ppv"]}


def _quick_model(train: pd.DataFrame, source: str) -> TrainedModel:
    """A logistic pipeline of the project fitted once, without CV or calibration (fast)."""
    cols = model_columns(train.columns)
    est = build_family("logistic", FeatureLayout.from_columns(cols))
    est.fit(train[cols], train[LABEL].to_numpy().astype(int))
    return TrainedModel(
        estimator=with_threshold(est, 0.5), family="logistic", feature_columns=cols,
        threshold_source="default (equal harms)",
        cv_scores={"logistic": {"log_loss": 0.3, "log_loss_sd": 0.02, "auc": 0.9}},
        training={"source": source, "n": len(train), "n_positive": int(train[LABEL].sum()),
                  "sha256": table_sha256(train), "seed": 3})


@pytest.fixture(scope="module")
def evaluated():
    """(model, evaluation) on 250 held-out rows of a simulated cohort, as train() shapes it.

    250 rows make calibration bins of 25, a size at which a bin of one class does not trip
    the rounding of its Wilson CI (see test_calibration_bin_of_one_class).
    """
    source = "simulated melanoma cohort, n=550, seed=3"
    table = simulate_cohort(550, cohort="melanoma", prevalence=0.3, seed=3)
    bayes = bayes_posterior(table, prevalence=0.3)
    train, test = table.iloc[:300], table.iloc[300:]
    model = _quick_model(train, source)
    ev = evaluate(model, test, bayes[300:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ev.metrics["internal_validation"] = {
            "apparent": _apparent(model, train),
            "events_per_feature": {"events": int(train[LABEL].sum()), "candidate_features": 25,
                                   "events_per_feature": train[LABEL].sum() / 25,
                                   "minimum": 10.0, "enough": False}}
    ev.metrics["model_selection"] = {"chosen": "logistic", "cv": model.cv_scores}
    ev.metrics["split"] = {"n_train": 300, "n_train_positive": int(train[LABEL].sum()),
                           "n_test": 250, "n_test_positive": int(test[LABEL].sum()),
                           "unit": "patients", "seed": 3}
    return model, ev


@pytest.fixture(scope="module")
def uncertain(evaluated):
    model, ev = evaluated
    return add_uncertainty(ev.metrics, ev.frame, model.threshold, n_resamples=100, seed=1)


@pytest.fixture(scope="module")
def report(tmp_path_factory, evaluated, uncertain):
    model, ev = evaluated
    folder = tmp_path_factory.mktemp("report")
    fid = fidelity_table(n=20_000, seed=0)
    document = build_metrics_document(uncertain, **report_facts(uncertain, ev.frame, model),
                                simulator_fidelity=to_jsonable(fid))
    paths = write_report(folder, document, ev.frame, model=model, title="T & <b>")
    return folder, paths


class _Scan(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.refs, self.tags = [], [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(a)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]


# --------------------------------------------------------------------------- uncertainty


def test_add_uncertainty_keys_and_intervals(evaluated, uncertain):
    _, ev = evaluated
    before = copy.deepcopy(ev.metrics)
    assert set(NEW_KEYS) <= set(uncertain)
    assert ev.metrics.keys() == before.keys()  # the input dict is left alone
    json.dumps({k: uncertain[k] for k in NEW_KEYS}, allow_nan=False)  # already plain

    boot = uncertain["bootstrap"]
    for key in ("auc", "brier", "sensitivity", "ppv", "net_benefit@0.10", "net_benefit@0.20",
                "net_benefit@0.30"):
        lo, hi = boot[key]["ci"]
        assert lo <= boot[key]["estimate"] <= hi, key
    assert boot["auc"]["estimate"] == pytest.approx(ev.metrics["model"]["auc"])

    rule_ids = [c[len("rule_"):] for c in ev.frame.columns if c.startswith("rule_")]
    assert list(uncertain["rule_comparisons"]) == rule_ids
    for rid, c in uncertain["rule_comparisons"].items():
        assert c["n_covered"] == ev.metrics["rules"][rid]["n"]
        d = c["ppv_difference"]
        if d["estimate"] is not None and None not in d["ci"]:
            assert d["ci"][0] <= d["estimate"] + 1e-12 and d["estimate"] <= d["ci"][1] + 1e-12
        assert set(c["delong"]) >= {"difference", "ci", "p_value"}

    nb = uncertain["net_benefit"]
    assert set(NB_THRESHOLDS) <= set(nb["thresholds"])
    k = len(nb["thresholds"])
    assert len(nb["model"]) == len(nb["treat_all"]) == k
    assert all(len(v) == k for v in nb["rules"].values()) and list(nb["rules"]) == rule_ids
    assert uncertain["uncertainty"]["n_resamples"] == 100


def test_add_uncertainty_resamples_patients_with_several_rows(evaluated):
    _, ev = evaluated
    frame = ev.frame.head(80).copy()
    frame[ID] = [f"p{i // 2}" for i in range(len(frame))]  # two rows a patient
    out = add_uncertainty({}, frame, 0.5, n_resamples=30)
    assert "40" in out["uncertainty"]["resampling_unit"]
    assert "patients resampled" in out["bootstrap"]["auc"]["method"]


# --------------------------------------------------------------------------- files


def test_write_report_files_and_no_temp_files(report):
    folder, paths = report
    names = sorted(p.name for p in folder.iterdir())
    expected = {"metrics.json", "metrics.md", "report.md", "report.html",
                "evaluation_predictions.csv", *FILE_NAMES.values()}
    assert set(names) == expected  # nothing else: no temp files left behind
    assert set(paths) >= {"metrics_json", "report_md", "report_html", "predictions_csv",
                          *FILE_NAMES}
    assert all(Path(p).is_file() for p in paths.values())


def test_html_is_self_contained_with_every_figure(report):
    folder, _ = report
    text = (folder / "report.html").read_text()
    scan = _Scan()
    scan.feed(text)
    assert "script" not in scan.tags and "link" not in scan.tags
    assert not [r for r in scan.refs if r.lower().startswith(("http:", "https:", "//"))]
    assert sorted(img["data-figure"] for img in scan.images) == sorted(FILE_NAMES)
    for img in scan.images:
        assert img["src"].startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) as im:
            assert im.format == "PNG" and min(im.size) > 100
    assert "<title>T &amp; &lt;b&gt;</title>" in text  # the title is escaped


def test_report_content(report, evaluated):
    folder, _ = report
    model, ev = evaluated
    md = (folder / "report.md").read_text()
    html_text = (folder / "report.html").read_text()
    for text in (md, html_text):
        for rid in ev.metrics["rules"]:
            assert rid in text
        for needle in ("TRIPOD+AI item", "TRIPOD+AI 10", "Model card", "Intended use",
                       "not for clinical decisions", "Limitations", "Simulator fidelity",
                       "Internal validation", model.training["sha256"],
                       model.versions["numpy"], "events per candidate feature"):
            assert needle.lower() in text.lower(), needle
    for name in FILE_NAMES.values():
        assert f"]({name})" in md  # figures by relative path
    assert md.count("*Figure ") == len(FILE_NAMES)
    metrics_md = (folder / "metrics.md").read_text()
    assert "## Bootstrap confidence intervals of the model" in metrics_md
    assert "## Net benefit" in metrics_md and "## Simulator fidelity" in metrics_md


def test_numbers_in_reports_equal_metrics_json(report):
    folder, _ = report
    data = json.loads((folder / "metrics.json").read_text())
    md = (folder / "report.md").read_text()
    html_text = (folder / "report.html").read_text()
    m = data["model"]
    needles = [fmt.est_ci(m["auc"], m["auc_ci"]),
               fmt.est_ci(data["bootstrap"]["auc"]["estimate"], data["bootstrap"]["auc"]["ci"]),
               fmt.pct_ci(m["ppv"], m["ppv_ci"]),
               f"{data['net_benefit']['model'][0]:.4f}"]
    needles += [fmt.pct_ci(r["ppv"], r["ppv_ci"]) for r in data["rules"].values()]
    for needle in needles:
        assert needle in md and needle in html_text, needle
    assert f"n = {data['n']} ({data['n_positive']} pseudoprogression)" in md
    assert len(pd.read_csv(folder / "evaluation_predictions.csv")) == data["n"]
    assert data["simulator_fidelity"][0]["figure_id"] == "P1"


def test_write_report_without_model_bayes_or_uncertainty(tmp_path, evaluated):
    _, ev = evaluated
    frame = ev.frame.drop(columns="bayes_posterior")
    metrics = {k: v for k, v in ev.metrics.items()
               if k not in ("bayes_ceiling", "internal_validation", "split", "model_selection")}
    paths = write_report(tmp_path, metrics, frame)
    md = paths["report_md"].read_text()
    scan = _Scan()
    scan.feed(paths["report_html"].read_text())
    assert len(scan.images) == len(FILE_NAMES)
    assert "No model bundle was given" in md and "Simulator fidelity" not in md
    assert "No internal validation was recorded" in md
    assert "ceiling" not in md.lower()
    write_report(tmp_path, metrics, frame)  # overwriting is fine and leaves no temp file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        write_report(tmp_path / "x", {k: v for k, v in metrics.items() if k != "threshold"},
                     frame)


def test_a_reports_lesion_map_is_written_hashed_and_not_left_behind(tmp_path, evaluated):
    """An image study's lesion map is the report's lesions.csv, named among the run's files
    (check_report), and a later report without images leaves no stale lesions.csv."""
    from features.extract import LESION_MAP_COLUMNS
    from models.report import check_report

    _, ev = evaluated
    frame = ev.frame.drop(columns="bayes_posterior")
    metrics = {k: v for k, v in ev.metrics.items() if k != "bayes_ceiling"}
    lesion_map = pd.DataFrame([["P1", "1", 1, 120, 0.12] + [1.5] * 9,
                               ["P1", "2", 1, 300, 0.3] + [-4.0] * 9],
                              columns=list(LESION_MAP_COLUMNS))
    paths = write_report(tmp_path / "R", metrics, frame, lesion_map=lesion_map)
    written = pd.read_csv(paths["lesion_map"], dtype={"lesion_id": str})
    pd.testing.assert_frame_equal(written, lesion_map, check_dtype=False)
    run = json.loads(paths["metrics_json"].read_text())["report_run"]
    assert "lesions.csv" in run["files"] and check_report(tmp_path / "R") == run["id"]
    (tmp_path / "R" / "my notes.txt").write_text("mine")  # published file by file now
    write_report(tmp_path / "R", metrics, frame)
    assert not (tmp_path / "R" / "lesions.csv").exists()
    assert (tmp_path / "R" / "my notes.txt").read_text() == "mine"
    check_report(tmp_path / "R")


def test_figures_of_several_lesions_a_patient_state_and_draw_clustered_intervals(tmp_path):
    """On two lesions per patient, the ROC and precision-recall captions name the clustered
    methods metrics.json records, not Wilson's; and the ROC's rule bars are the clustered
    intervals binary_metrics gives with the patients (wider here than Wilson's)."""
    from models.evaluation import evaluate_predictions, rule_calls
    from models.report.figures import plot_roc

    table = simulate_cohort(300, cohort="melanoma", prevalence=0.3, seed=4)
    table[ID] = [f"P{i // 2:03d}" for i in range(len(table))]
    table["lesion_id"] = [str(1 + i % 2) for i in range(len(table))]
    ev = evaluate_predictions(table, bayes_posterior(table, prevalence=0.3), 0.5)
    methods = ev.metrics["interval_methods"]
    assert methods["unit"].startswith("lesions clustered")
    md = write_report(tmp_path / "R", ev.metrics, ev.frame)["report_md"].read_text()
    roc = next(line for line in md.splitlines() if "ROC curve of the model" in line)
    assert methods["proportions"] in roc and methods["auc"] in roc and "Wilson CIs" not in roc
    seen = {}

    def spy(y, calls, alpha=0.05, groups=None):
        seen["groups"] = groups
        return binary_metrics(y, calls, alpha, groups)

    import models.report.figures as figures

    original, figures.binary_metrics = figures.binary_metrics, spy
    try:
        plot_roc(ev.frame[LABEL].to_numpy(), ev.frame["p_pseudoprogression"].to_numpy(),
                 rule_calls(ev.frame)[["D1_perfusion_diffusion"]], tmp_path / "roc.png",
                 groups=ev.frame[ID].to_numpy())
    finally:
        figures.binary_metrics = original
    assert seen["groups"] is not None and len(set(seen["groups"])) == 150


def test_the_evaluated_rows_keep_the_label_as_0_and_1(tmp_path, evaluated):
    """Predictions stacked over repeats arrive with a float label; the report's
    evaluation_predictions.csv still writes it as the 0/1 of the table."""
    _, ev = evaluated
    frame = ev.frame.drop(columns="bayes_posterior")
    stacked = frame.assign(**{LABEL: frame[LABEL].astype(float)})
    metrics = {k: v for k, v in ev.metrics.items() if k != "bayes_ceiling"}
    paths = write_report(tmp_path, metrics, frame, predictions=stacked)
    text = paths["predictions_csv"].read_text().splitlines()
    column = text[0].split(",").index("pseudoprogression")
    assert {line.split(",")[column] for line in text[1:]} == {"0", "1"}


def test_calibration_bin_of_one_class(tmp_path):
    """A bin of one class has a Wilson bound a rounding error beyond its proportion; the
    error bar must be clipped at 0, not refused by matplotlib."""
    from models.statistics import benchmark

    y = np.r_[np.zeros(150), np.ones(50)].astype(int)
    p = np.linspace(0.01, 0.99, 200)  # the top bin (20 rows) holds only pseudoprogression
    rules = pd.DataFrame({"Q1a_symptoms": (p > 0.5).astype(float)})
    frame = pd.DataFrame({ID: [f"p{i}" for i in range(200)], LABEL: y,
                          "p_pseudoprogression": p, "rule_Q1a_symptoms": rules.iloc[:, 0]})
    written = write_report(tmp_path, benchmark(y, p, 0.5, rules), frame)
    assert written and all(Path(f).is_file() for f in written.values())


# --------------------------------------------------------------------------- browser


def _script():
    spec = importlib.util.spec_from_file_location("check_report_in_browser", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dom_check_rejects_external_and_broken_images():
    check = _script()
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(png, format="PNG")
    good = base64.b64encode(png.getvalue()).decode()
    ok = f'<html><body><img data-figure="roc" src="data:image/png;base64,{good}"></body></html>'
    assert len(check.check_dom(ok, ("roc",))) == 1
    with pytest.raises(check.BrowserCheckError, match="external"):
        check.check_dom(ok.replace("<body>", '<body><img src="https://example.org/x.png">'))
    with pytest.raises(check.BrowserCheckError, match="decode"):
        check.check_dom(ok.replace(good, base64.b64encode(b"not a png").decode()))
    with pytest.raises(check.BrowserCheckError, match="missing"):
        check.check_dom(ok, ("roc", "calibration"))


def test_report_renders_in_chromium(report, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    folder, _ = report
    shot = tmp_path / "page.png"
    result = subprocess.run([sys.executable, str(SCRIPT), str(folder / "report.html"),
                             "--screenshot", str(shot), "--window-size", "1000,1400"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert f"{len(FILE_NAMES)} embedded figure(s)" in result.stdout
    with Image.open(shot) as im:
        assert im.size == (1000, 1400)
        assert np.asarray(im.convert("L")).std() > 5  # not a blank page


def test_browser_script_reports_missing_chromium(tmp_path):
    page = tmp_path / "r.html"
    page.write_text("<html></html>")
    result = subprocess.run([sys.executable, str(SCRIPT), str(page), "--chromium",
                             str(tmp_path / "no-chromium")], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2 and "Chromium not found" in result.stderr


def test_json_roundtrip_of_everything(uncertain):
    json.dumps(to_jsonable(uncertain), allow_nan=False)


# --------------------------------------------------------------------------- the fitted model


def _markdown(data: dict, frame: pd.DataFrame, model) -> str:
    """report.md's text for ``data`` without figures (fast)."""
    from models.report.document import render_markdown_document
    from models.report.sections import build_document
    return render_markdown_document("T", build_document(
        to_jsonable(build_metrics_document(data, **report_facts(data, frame, model))), frame, model,
        None, {}))


def test_logistic_coefficients_name_the_features(evaluated, report):
    from models.inspection import LOGISTIC_METHOD, feature_effects

    model, ev = evaluated
    effects = feature_effects(model, None, None)
    assert len(effects) and (effects["method"] == LOGISTIC_METHOD).all()
    assert np.allclose(effects["odds_ratio"], np.exp(effects["coefficient"]))
    named = set(effects["column"])
    assert {"rcbv", "symptomatic", "ctdna_change_pct"} <= named
    assert "rcbv missing (indicator)" in set(effects["feature"])
    coef = np.abs(effects["coefficient"].to_numpy())
    assert (np.diff(coef) <= 1e-12).all()  # largest effect first
    folder, _ = report
    data = json.loads((folder / "metrics.json").read_text())
    md = (folder / "report.md").read_text()
    assert "## Features of the fitted model" in md
    for r in data["feature_effects"]:
        assert f"| {r['feature']} | {r['block']} | {r['scale']} | " \
               f"{fmt.fixed(r['coefficient'])} | {fmt.g(math.exp(r['coefficient']))} |" in md
    assert "## Feature effects in the fitted model" in (folder / "metrics.md").read_text()


def test_permutation_importance_for_boosting(evaluated):
    from models.inspection import PERMUTATION_METHOD, feature_effects

    _, ev = evaluated
    table = simulate_cohort(420, cohort="melanoma", prevalence=0.3, seed=8)
    train, test = table.iloc[:300], table.iloc[300:]
    cols = model_columns(train.columns)
    est = build_family("gradient_boosting", FeatureLayout.from_columns(cols))
    est.fit(train[cols], train[LABEL].to_numpy().astype(int))
    model = TrainedModel(estimator=with_threshold(est, 0.5), family="gradient_boosting",
                         feature_columns=cols, threshold_source="default", cv_scores={},
                         training={"n": 300, "n_positive": int(train[LABEL].sum())})
    y = test[LABEL].to_numpy()
    effects = feature_effects(model, test, y, seed=0, n_repeats=2)
    assert set(effects["method"]) == {PERMUTATION_METHOD}
    assert set(effects["feature"]) == set(cols)
    assert np.isfinite(effects["auc_drop"]).all() and effects["auc_drop"].max() > 0
    assert (effects["n"] == len(test)).all()
    data = dict(ev.metrics) | {"feature_effects": effects.to_dict(orient="records")}
    md = _markdown(data, ev.frame, model)
    assert "Permutation importance" in md and "AUC drop when shuffled" in md
    top = effects.iloc[0]
    assert f"| {top['feature']} | {top['block']} | " \
           f"{fmt.mean_sd(top['auc_drop'], top['auc_drop_sd'])} |" in md
    assert "evaluated rows: the drop in AUC" in md
    md = _markdown(data | {"feature_effects_rows": "training"}, ev.frame, model)
    assert "training rows (under this validation scheme" in md


def _with_radiomics(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``table`` with 40 radiomic-named columns, a few of them tied to the label."""
    rng = np.random.default_rng(seed)
    y = table[LABEL].to_numpy()
    cols = {}
    for seq, cls, k in (("t1c", "firstorder", 12), ("t1c", "glcm", 10), ("flair", "glcm", 18)):
        for i in range(k):
            signal = 0.8 * y if i < 3 else 0.0
            cols[f"{seq}_original_{cls}_F{i}"] = rng.normal(size=len(y)) + signal
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(cols)], axis=1)


def test_radiomic_columns_summarised_and_kept_named():
    from models.classifier import RADIOMIC_KEEP
    from models.inspection import (
        feature_effects,
        radiomic_selection,
        radiomic_summary,
    )

    table = _with_radiomics(simulate_cohort(550, cohort="melanoma", prevalence=0.3, seed=3), 1)
    train = table.iloc[:300]
    model = _quick_model(train, "simulated melanoma cohort with radiomics")
    radiomic = [c for c in model.feature_columns if "_original_" in c]
    assert len(radiomic) == 40
    selection = radiomic_selection(model)
    assert selection["n_columns"] == 40 and len(selection["kept"]) == RADIOMIC_KEEP
    assert set(selection["kept"]) <= set(radiomic)
    effects = feature_effects(model, None, None)
    assert set(effects.loc[effects["block"] == "radiomic", "feature"]) == set(selection["kept"])

    summary = radiomic_summary(radiomic, selection["kept"])
    assert list(zip(summary["sequence"], summary["feature_class"], strict=True)) == [
        ("t1c", "firstorder"), ("t1c", "glcm"), ("flair", "glcm")]  # one row each
    assert summary["n_columns"].tolist() == [12, 10, 18]
    assert summary["n_kept"].sum() == RADIOMIC_KEEP

    ev = evaluate(model, table.iloc[300:], warn=False)  # the held-out rows, radiomics too
    md = _markdown(ev.metrics, ev.frame, model)
    lines = md.splitlines()
    start = lines.index("| sequence | image types | firstorder | glcm | all classes |")
    rows = [ln.split("|")[1:-1] for ln in lines[start + 2:start + 4]]
    assert [r[0].strip() for r in rows] == ["t1c", "flair"]
    assert rows[1][2].strip() == ""  # flair has no firstorder column
    totals = [r[-1].strip() for r in rows]
    kept = summary.groupby("sequence", sort=False)["n_kept"].sum().tolist()
    assert totals == [f"22 ({kept[0]} kept)" if kept[0] else "22",
                      f"18 ({kept[1]} kept)" if kept[1] else "18"]
    for name in selection["kept"]:
        assert f"| {name} |" in md
    # the wide block's univariable odds ratios: the strongest twenty rows, the rest counted
    start = lines.index("| radiomic-block column | rows with a value | univariable OR per SD "
                        "(95% CI) | p |")
    shown = [ln.split("|")[1].strip() for ln in lines[start + 2:]
             if ln.startswith("| ")][:21]
    shown = shown[:next((i for i, c in enumerate(shown) if c not in radiomic), len(shown))]
    assert len(shown) == 20 and set(shown) <= set(radiomic)
    assert "20 more in metrics.json" in md
    ranked = sorted((r for r in ev.metrics["feature_odds_ratios"] if r["feature"] in radiomic),
                    key=lambda r: r["p_value"])
    assert shown == [r["feature"] for r in ranked[:20]]
    # columns the reduction left out are named with the reason
    dropped = [c for c in radiomic if c not in selection["kept"]]
    assert "Left out by the radiomic reduction of the final model, not selected on the " \
           "outcome" in md
    assert f"({len(dropped)}):" in md
    assert "Steps that look at the outcome" in md and "inside the folds" in md
    assert "No predictor was selected on the outcome" not in md


# --------------------------------------------------------------------------- report wording


def test_precision_recall_caption_and_legend_agree(report, monkeypatch, tmp_path):
    from models.report import figures

    folder, _ = report
    data = json.loads((folder / "metrics.json").read_text())
    md = (folder / "report.md").read_text()
    caption = next(ln for ln in md.splitlines() if "Precision-recall curve." in ln)
    ap = data["average_precision"]
    assert f"average precision {fmt.fixed(ap['model'])}" in caption
    assert f"average precision {fmt.fixed(ap['bayes_ceiling'])}." in caption
    assert "AUC" not in caption
    seen = []
    real_save = figures._save

    def capture(fig, out):
        seen.extend(t.get_text() for legend in fig.legends + [a.get_legend() for a in fig.axes]
                    if legend is not None for t in legend.get_texts())
        return real_save(fig, out)

    monkeypatch.setattr(figures, "_save", capture)
    frame = pd.read_csv(folder / "evaluation_predictions.csv")
    figures.plot_precision_recall(frame[LABEL], frame["p_pseudoprogression"], None,
                                  tmp_path / "pr.png", bayes_p=frame["bayes_posterior"],
                                  average_precision=ap["model"],
                                  bayes_average_precision=ap["bayes_ceiling"])
    assert figures.precision_recall_label("Model", ap["model"]) in seen
    assert figures.precision_recall_label("Bayes-optimal (true posterior)",
                                          ap["bayes_ceiling"]) in seen
    from sklearn.metrics import average_precision_score

    assert ap["model"] == pytest.approx(average_precision_score(frame[LABEL],
                                                                frame["p_pseudoprogression"]))


def test_interval_methods_and_exceptions_are_stated(report):
    from models.report.tables import MATCHED_SENSITIVITY_EXCEPTION
    from models.statistics import AUC_CI_METHOD, CALIBRATION_CI_METHOD, PREVALENCE_CI_METHOD

    folder, _ = report
    for name in ("report.md", "report.html", "metrics.md"):
        text = (folder / name).read_text().replace("&amp;", "&")
        assert "profile" not in text.lower(), name
        for words in (AUC_CI_METHOD, CALIBRATION_CI_METHOD, PREVALENCE_CI_METHOD):
            assert words in text, (name, words)
    md = (folder / "report.md").read_text()
    assert MATCHED_SENSITIVITY_EXCEPTION in md
    for line in md.splitlines():
        if "tuned on" in line:
            assert "exception" in line, line


def test_net_benefit_tables_agree_in_the_report(report):
    folder, _ = report
    data = json.loads((folder / "metrics.json").read_text())
    md = (folder / "report.md").read_text()
    nb = data["net_benefit"]
    for key, entry in data["bootstrap"].items():
        if not key.startswith("net_benefit@"):
            continue
        pt = float(key.split("@")[1])
        j = next(i for i, t in enumerate(nb["thresholds"]) if math.isclose(t, pt))
        assert entry["estimate"] == pytest.approx(nb["model"][j], abs=1e-12)
        boot_row = next(ln for ln in md.splitlines()
                        if ln.startswith(f"| net benefit at pt = {fmt.pt(pt)} (decision curve"))
        assert f"| {fmt.net_benefit(entry['estimate'], entry['ci'])} |" in boot_row
        model_row = next(ln for ln in md.splitlines()
                         if ln.startswith("| model (calls at p >= pt) |"))
        assert model_row.split("|")[2 + j].strip() == fmt.net_benefit(nb["model"][j])


def test_rule_that_never_calls_shows_undefined(evaluated, tmp_path):
    model, ev = evaluated
    frame = ev.frame.copy()
    frame["rule_Q1c_pet"] = np.where(frame["rule_Q1c_pet"].notna(), 0.0, np.nan)
    from models.evaluation import rule_calls
    from models.statistics import benchmark

    y, p = frame[LABEL].to_numpy(), frame["p_pseudoprogression"].to_numpy()
    metrics = benchmark(y, p, 0.5, rule_calls(frame))
    assert metrics["rules"]["Q1c_pet"]["dor_note"] == "undefined: never calls pseudoprogression"
    md = _markdown(metrics, frame, model)
    row = next(ln for ln in md.splitlines() if ln.startswith("| Q1c_pet | ")
               and "%" in ln and "undefined" in ln)
    assert row.rstrip(" |").endswith("undefined: never calls pseudoprogression")
    paths = write_report(tmp_path, metrics, frame, model=model)
    text = paths["report_md"].read_text()
    forest = next(ln for ln in text.splitlines() if ln.startswith("*Figure")
                  and "Diagnostic odds ratios" in ln)
    assert "Q1c_pet: undefined: never calls pseudoprogression" in forest
    assert "undefined: never calls pseudoprogression" in (tmp_path / "metrics.md").read_text()


def test_several_lesions_per_patient_are_counted_apart(evaluated):
    model, ev = evaluated
    frame = ev.frame.copy()
    frame[ID] = [f"P{i // 2}" for i in range(len(frame))]  # two lesions a patient
    frame.insert(1, "lesion_id", [str(1 + i % 2) for i in range(len(frame))])
    n, patients = len(frame), len(frame) // 2
    data = {k: v for k, v in ev.metrics.items() if k != "units"}
    data["split"] = dict(data["split"], n_train_patients=150, n_test_patients=patients,
                         unit="lesions")
    from_frame = dict(data, split={k: v for k, v in data["split"].items()
                                   if k != "n_test_patients"})
    assert f"{n} lesions of {patients} patients" in _markdown(from_frame, frame, model)
    md = _markdown(data, frame, model)
    assert f"{n} lesions of {patients} patients" in md
    assert "one lesion each" not in md and "coincide" not in md
    flow = next(ln for ln in md.splitlines() if ln.startswith("| held-out evaluation |"))
    assert flow.split("|")[2:4] == [f" {patients} ", f" {n} "]
    training = next(ln for ln in md.splitlines() if ln.startswith("| training |"))
    assert training.split("|")[2:4] == [" 150 ", " 300 "]
    assert "| patients | lesions (rows) |" in md

    one_each = _markdown(ev.metrics, ev.frame, model)
    assert f"{len(ev.frame)} patients, one lesion each" in one_each
    assert "lesions and patients coincide" in one_each


def test_model_card_uses_the_training_prevalence(evaluated, report):
    model, ev = evaluated
    folder, _ = report
    md = (folder / "report.md").read_text()
    n, pos = model.training["n"], model.training["n_positive"]
    assert (f"calibrated to the training prevalence ({fmt.pct(pos / n)}, {pos} of {n} "
            "training rows)") in md
    assert f"the evaluated rows have {fmt.pct(ev.metrics['prevalence'])}" in md


def test_cross_validated_evaluation_is_not_called_held_out(evaluated):
    model, ev = evaluated
    data = dict(ev.metrics)
    n, pos = data["n"], data["n_positive"]
    data["validation"] = {"scheme": "cv", "reason": "as requested", "requested": "cv"}
    data["split"] = {"n_train": n, "n_train_positive": pos, "n_train_patients": n,
                     "n_test": n, "n_test_positive": pos, "n_test_patients": n,
                     "unit": "lesions", "evaluated_on": "each lesion's out-of-fold "
                     "probability, averaged over the repeats"}
    summary = {k: {"mean": 0.8, "sd": 0.01} for k in ("auc", "brier", "calibration_intercept",
                                                      "calibration_slope", "sensitivity",
                                                      "ppv")}
    data["internal_validation"] = {
        "apparent": data["internal_validation"]["apparent"],
        "cross_validation": {"n_folds": 5, "n_repeats": 2, "n": n, "n_positive": pos,
                             "summary": summary,
                             "per_repeat": [{"repeat": 1, "auc": 0.8}, {"repeat": 2, "auc": 0.81}]}}
    md = _markdown(data, ev.frame, model)
    head = md.split("## Outcome")[0] + md.split("## Analysis methods")[1].split("## ")[0]
    assert "held-out" not in head.lower() and "split once" not in head
    assert "Evaluated out of fold" in md and "repeated patient-grouped cross-validation" in md
    assert "## Cross-validated performance (out of fold)" in md
    assert "| statistic | apparent (training patients) | repeated cross-validation (mean ± SD " \
           "over repeats; the headline) | out-of-fold |" in md
    assert "| repeat | n | events |" in md
