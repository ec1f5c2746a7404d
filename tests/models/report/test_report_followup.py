"""metrics.md shows the follow-up landmarks by decision time with the report's own tables,
and rewriting a report removes the figures of an earlier one that the new one lacks (and
nothing else)."""

from __future__ import annotations

import pytest

from features.synthetic.cohort import bayes_posterior, simulate_cohort
from models.evaluation import evaluate_predictions
from models.report import format as fmt
from models.report.document import table_markdown
from models.report.figures import FILE_NAMES, figure_file_names
from models.report.tables import (
    landmark_model_table,
    landmark_rules_table,
    render_markdown,
)
from models.report.waiting import waiting_section
from models.report.write import remove_stale_files, report_files


def _rule(coverage, se=None, ppv=None, auc=None) -> dict:
    return {"coverage": coverage, "sensitivity": se, "sensitivity_ci": [0.4, 0.95],
            "ppv": ppv, "ppv_ci": [0.2, 0.6] if ppv is not None else [None, None],
            "auc": auc, "auc_ci": [None, None],
            "model_at_rule_sensitivity": {"ppv": 0.55, "ppv_ci": [0.4, 0.7]}}


def _landmarks() -> dict:
    """A ``landmarks`` entry shaped as :func:`models.landmarks.train_landmarks` writes it."""
    times = [{"week": w, "n": 200 - int(w), "n_positive": 40, "n_patients": 150,
              "family": "logistic",
              "model": {"auc": 0.8 + w / 100, "auc_ci": [0.7, 0.9], "sensitivity": 0.7,
                        "sensitivity_ci": [0.6, 0.8], "ppv": 0.6 + w / 50,
                        "ppv_ci": [0.5, 0.7]},
              "rules": {"T4": _rule(0.0) if w == 0 else _rule(0.6, 0.9, 0.3, 0.65),
                        "C4": _rule(1.0, 0.5, 0.8, 0.7)},
              "waiting": {"weeks_untreated_per_100_patients": 90.0 * w,
                          "weeks_untreated_per_100_patients_ci": [80.0 * w, 95.0 * w],
                          "false_reassurance_per_100_patients": 3.0,
                          "false_reassurance_per_100_patients_ci": [1.0, 6.0]}}
             for w in (0.0, 4.0, 8.0, 12.0)]
    return {"weeks": [t["week"] for t in times], "window_weeks": 2.0,
            "split": {"scheme": "holdout", "n_train_patients": 600, "n_test_patients": 150,
                      "seed": 5},
            "scans_source": "simulated follow-up (seed 5)",
            "course_features": ["volume_change_pct", "rcbv_change_pct"],
            "method": "one calibrated classifier per decision time",
            "waiting_definition": "weeks from the index scan to the decision time",
            "times": times}


@pytest.fixture(scope="module")
def evaluation():
    table = simulate_cohort(300, cohort="melanoma", prevalence=0.3, seed=2)
    return evaluate_predictions(table, bayes_posterior(table, prevalence=0.3), 0.5)


def test_metrics_md_shows_the_landmark_tables_the_report_shows(evaluation):
    lm = _landmarks()
    data = dict(evaluation.metrics) | {"landmarks": lm}
    md = render_markdown(data, title="T")
    model, rules = landmark_model_table(lm["times"]), landmark_rules_table(lm["times"])
    assert "## Follow-up landmarks by decision time" in md
    assert table_markdown(model) in md and table_markdown(rules) in md
    assert len(model.rows) == 4 and len(rules.rows) == 8
    at8 = lm["times"][2]
    assert fmt.est_ci(at8["waiting"]["weeks_untreated_per_100_patients"],
                      at8["waiting"]["weeks_untreated_per_100_patients_ci"], 1) in md
    assert "scans: simulated follow-up (seed 5)" in md
    assert "## Landmarks" not in md  # not also dumped as an unformatted entry
    # the report's section holds the very same tables
    section = waiting_section(data)
    tables = [b for b in section.blocks if hasattr(b, "headers")]
    assert [table_markdown(t) for t in tables] == [table_markdown(model), table_markdown(rules)]
    assert "Follow-up landmarks" not in render_markdown(dict(evaluation.metrics), title="T")


def test_remove_stale_files_keeps_what_was_written_and_the_users_files(tmp_path):
    for name in figure_file_names().values():
        (tmp_path / name).write_bytes(b"x")
    own = ["my_notes.png", "waiting_cost.png.bak", "old_roc.png"]
    for name in own:
        (tmp_path / name).write_bytes(b"the user's own")
    (tmp_path / "partial_effects.png.d").mkdir()
    written = {k: tmp_path / v for k, v in FILE_NAMES.items()}
    removed = remove_stale_files(tmp_path, written)
    assert {p.name for p in removed} == {"waiting_cost.png", "partial_effects.png"}
    assert {p.name for p in removed} == set(figure_file_names().values()) - set(
        FILE_NAMES.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*FILE_NAMES.values(), *own, "partial_effects.png.d"])
    assert {p.name for p in report_files(tmp_path)} >= set(figure_file_names().values())
    assert remove_stale_files(tmp_path / "absent", {}) == []



def _sensitivity() -> dict:
    """A ``landmarks["sensitivity"]`` entry as :func:`models.landmarks.followup_sensitivity`
    writes it: the model at +4 weeks under three settings, a rule under one."""
    settings = [{"setting": s, "factor": k, "size_noise_sd": 0.186 * k}
                for s, k in (("low", 0.5), ("published", 1.0), ("high", 2.0))]
    rows = [{"setting": s["setting"], "week": 4.0, "who": "model", "n": 100, "coverage": 1.0,
             "auc": auc, "auc_ci": [auc - 0.05, min(auc + 0.02, 1.0)], "sensitivity": 0.8,
             "sensitivity_ci": [0.7, 0.9], "ppv": 0.6, "ppv_ci": [0.5, 0.7],
             "weeks_untreated_per_100_patients": 360.0,
             "weeks_untreated_per_100_patients_ci": [350.0, 370.0]}
            for s, auc in zip(settings, (0.99, 0.95, 0.90), strict=True)]
    rows.append(rows[1] | {"who": "T4", "auc": 0.6, "coverage": 0.5})
    return {"settings": settings, "rows": rows, "method": "drawn again"}


def test_the_section_quotes_the_published_setting_and_what_the_result_depends_on(evaluation):
    lm = _landmarks() | {"sensitivity": _sensitivity()}
    data = dict(evaluation.metrics) | {"landmarks": lm}
    section = waiting_section(data)
    text = " ".join(b.text for b in section.blocks if hasattr(b, "text"))
    assert text.count("At the simulator's published setting (sizes measured with a "
                      "reader-to-reader log-SD of 0.186)") == 1
    at4 = lm["times"][1]["model"]
    assert f"at +4 weeks the landmark model has AUC {fmt.est_ci(at4['auc'], at4['auc_ci'])}" \
        in text
    assert "+4 weeks 0.990 (low), 0.950 (published), 0.900 (high)" in text
    assert "What the follow-up result depends on" in text
    tables = [b for b in section.blocks if hasattr(b, "headers")]
    sens = tables[-1]
    assert [r[2].split(" ")[0] for r in sens.rows] == ["low", "published", "high", "published"]
    assert sens.rows[-1][1] == "T4"  # the model first, then the rules
    md = render_markdown(data, title="T")
    assert "### Across the simulator's uncertainty" in md and "0.900 (0.850 to 0.920)" in md
    # without simulated settings: no headline about them, the dependence still stated
    plain = waiting_section(dict(evaluation.metrics) | {"landmarks": _landmarks()})
    words = " ".join(b.text for b in plain.blocks if hasattr(b, "text"))
    assert "published setting" not in words and "depends on" in words


def test_a_users_own_classes_name_every_followup_sentence_and_header(evaluation):
    """A study with its own label hears its own class names in the follow-up section, its
    tables and metrics.md, and neither the article's class names nor its clinical course."""
    from models.landmarks import waiting_definition

    lm = _landmarks() | {"waiting_definition": waiting_definition("treatment effect",
                                                                  "tumour growth")}
    study = {"positive_class": "treatment effect", "negative_class": "tumour growth",
             "article_context": False}
    data = dict(evaluation.metrics) | {"landmarks": lm, "study": study}
    section = waiting_section(data, figures={"waiting_cost": "waiting_cost.png"})
    words = [b.text for b in section.blocks if hasattr(b, "text")]
    words += [" ".join(t.headers) + " " + t.caption for t in section.blocks
              if hasattr(t, "headers")]
    words += [b.caption for b in section.blocks if hasattr(b, "caption")
              and not hasattr(b, "headers")]
    md = render_markdown(data, title="T")
    followup_md = md[md.index("## Follow-up landmarks"):]
    for text in [*words, followup_md]:
        assert "pseudoprogression" not in text and "true progression" not in text, text
        assert "steroid" not in text, text
    assert "weeks of untreated tumour growth per 100 patients (95% CI)" in followup_md
    assert "lesions (treatment effect) / patients" in followup_md
    assert "lesion of tumour growth the landmark model calls treatment effect" in followup_md
    # the contract's own label keeps the article's words
    own = waiting_section(dict(evaluation.metrics) | {"landmarks": lm})
    assert any("steroids that shrink both" in b.text for b in own.blocks
               if hasattr(b, "text"))
