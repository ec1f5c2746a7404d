"""The article's rules: decisions on hand-made rows, abstention, the four-part rule, T5/T6."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from features.article import FIGURES, THRESHOLDS
from models.rules import (
    Q1_COMBINED_ID,
    RULE_IDS,
    RULES,
    ArticleRule,
    apply_rules,
    describe_rules,
    risk_group,
    rule_decisions,
    rule_inputs,
)

NAN = np.nan


def rows(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


def test_every_design_rule_id_exists():
    design_ids = {"D1_perfusion_diffusion", "D2_mrs_cho_cr", "D2_mrs_lactate",
                  "D3_ctdna_clearance", "D4_cytokines", "D5_pathology", "Q1a_symptoms",
                  "Q1c_pet", "Q1d_ctdna_trend", "T5_low_risk"}
    assert design_ids <= set(RULE_IDS)
    assert "Q1_four_part" in RULE_IDS
    assert set(describe_rules()["rule"]) == set(RULE_IDS)
    assert (*RULES, Q1_COMBINED_ID) == RULE_IDS  # every id the article names is decided


def test_a_description_may_not_declare_an_article_rule_id():
    from features.description import TableDescription
    from features.errors import UserInputError

    declared = {"rules": [{"id": "D1_perfusion_diffusion", "positive_when": "rcbv < 1"},
                          {"id": "own", "positive_when": "rcbv <"}]}
    with pytest.raises(UserInputError) as caught:
        TableDescription.from_dict(declared)
    message = str(caught.value)  # both problems at once, the clash named
    assert "'D1_perfusion_diffusion' is already the name of one of the article's" in message
    assert "rules[1] (own).positive_when" in message


def test_d1_needs_both_inputs_and_uses_strict_inequalities():
    rcbv = THRESHOLDS["rcbv_low"].value
    adc = THRESHOLDS["adc_high"].value
    X = rows(rcbv=[rcbv - 0.1, rcbv - 0.1, rcbv, 2.5, NAN, 1.0],
             adc=[adc + 0.1, adc, adc + 0.5, 1.5, 1.3, NAN])
    got = ArticleRule("D1_perfusion_diffusion").fit(X).predict(X)
    np.testing.assert_array_equal(got, [1, 0, 0, 0, NAN, NAN])


def test_abstention_is_not_a_zero_and_missing_column_abstains_everywhere():
    X = rows(rcbv=[1.0, NAN])
    rule = ArticleRule("D1_perfusion_diffusion").fit(X)
    assert np.isnan(rule.predict(X)).all()  # no adc column at all
    assert not rule.covers(X).any()


@pytest.mark.parametrize("rule_id, column, below_means_pp, key", [
    ("D2_mrs_cho_cr", "cho_cr", True, "cho_cr_low"),
    ("D3_ctdna_clearance", "ctdna_change_pct", True, "ctdna_clearance"),
    ("Q1c_pet", "suvmax_change_pct", True, "suvmax_rise_low"),
    ("Q1d_ctdna_trend", "ctdna_change_pct", True, "ctdna_fall"),
])
def test_single_threshold_rules(rule_id, column, below_means_pp, key):
    t = THRESHOLDS[key].value
    X = pd.DataFrame({column: [t - 1, t, t + 1, NAN]})
    got = ArticleRule(rule_id).fit(X).predict(X)
    np.testing.assert_array_equal(got, [1, 0, 0, NAN])


def test_d2_lactate_d4_cytokines_d5_pathology():
    X = rows(lactate_peak=[0, 1, NAN], il8_pg_ml=[60, 60, 40], ifng_pg_ml=[25, 10, 30],
             cd8_tumor_ratio=[0.8, 0.8, NAN], ki67_pct=[5, 35, 5])
    r = apply_rules(X, ["D2_mrs_lactate", "D4_cytokines", "D5_pathology"])
    np.testing.assert_array_equal(r["D2_mrs_lactate"], [1, 0, NAN])
    np.testing.assert_array_equal(r["D4_cytokines"], [1, 0, 0])
    np.testing.assert_array_equal(r["D5_pathology"], [1, 0, NAN])


def test_q1a_symptomatic_without_steroid_is_zero_not_abstention():
    X = rows(symptomatic=[0, 1, 1, 1, NAN], steroid_response_pct=[NAN, NAN, 80, 50, 90])
    got = ArticleRule("Q1a_symptoms").fit(X).predict(X)
    np.testing.assert_array_equal(got, [1, 0, 1, 0, NAN])


def test_four_part_rule_combination():
    X = rows(symptomatic=[0, 0, 0, 1, 0, 0],
             steroid_response_pct=[NAN] * 6,
             rcbv=[1.2, 1.2, NAN, 1.2, 2.4, NAN],
             suvmax_change_pct=[10, NAN, NAN, 10, 10, 150],
             ctdna_change_pct=[-70, -70, NAN, -70, -70, NAN])
    got = ArticleRule("Q1_four_part").fit(X).predict(X)
    # all agree; available agree; no objective criterion; Q1a fails; rCBV disagrees; PET disagrees
    np.testing.assert_array_equal(got, [1, 1, NAN, 0, 0, 0])


def test_t5_rule_and_t6_risk_group():
    X = rows(symptomatic=[0, 1, 0, 0, 0], ctdna_change_pct=[-70, -70, NAN, -70, 10],
             rcbv=[1.2, 1.2, 1.2, NAN, NAN])
    np.testing.assert_array_equal(ArticleRule("T5_low_risk").fit(X).predict(X),
                                  [1, 0, NAN, NAN, NAN])
    assert risk_group(X).tolist() == ["low", "high", "", "", "high"]


def test_all_rules_at_once_decide_as_each_rule_alone():
    """The one pass over a table (inputs read once, the four-part rule from its parts'
    decisions) gives each rule's own estimator's calls, row by row."""
    rng = np.random.default_rng(3)
    n = 400
    X = rows(**{c: np.where(rng.random(n) < 0.3, NAN, rng.normal(m, s, n))
                for c, m, s in (("rcbv", 1.7, 0.5), ("adc", 1.3, 0.3), ("cho_cr", 1.8, 0.6),
                                ("ctdna_change_pct", -40, 40), ("il8_pg_ml", 20, 8),
                                ("ifng_pg_ml", 12, 6), ("cd8_tumor_ratio", 1.5, 0.6),
                                ("ki67_pct", 15, 8), ("suvmax_change_pct", 20, 40),
                                ("steroid_response_pct", 40, 30))},
             lactate_peak=rng.choice([0.0, 1.0, NAN], n),
             symptomatic=rng.choice([0.0, 1.0, NAN], n))
    together = rule_decisions(X)
    assert list(together) == list(RULE_IDS)
    for rule_id in RULE_IDS:
        np.testing.assert_array_equal(together[rule_id],
                                      ArticleRule(rule_id).fit(X).predict(X), rule_id)
    groups = risk_group(X).tolist()  # T6 "high" wherever a known T5 criterion fails
    assert all((g == "low") == (t == 1) for g, t in zip(groups, together["T5_low_risk"],
                                                          strict=True))


def test_rules_are_sklearn_estimators():
    rule = clone(ArticleRule("D3_ctdna_clearance"))
    assert rule.get_params() == {"rule_id": "D3_ctdna_clearance", "columns": None}
    X = rows(ctdna_change_pct=[-80, 0, NAN, -90])
    y = np.array([1, 0, 1, 0])
    assert rule.fit(X, y).score(X, y) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="unknown rule"):
        ArticleRule("nope").fit(X)


def test_predict_before_fit_is_not_fitted_error():
    X = rows(rcbv=[1.0], adc=[1.3])
    for method in ("predict", "covers"):
        with pytest.raises(NotFittedError):
            getattr(ArticleRule("D1_perfusion_diffusion"), method)(X)


def test_rules_read_arrays_by_position():
    X = rows(rcbv=[1.0, 2.0, NAN, 1.2], adc=[1.3, 1.3, 1.3, 0.8], other=[5.0, 6.0, 7.0, 8.0])
    expected = [1, 0, NAN, 0]
    # default order: the rule's inputs; columns beyond them are ignored
    assert rule_inputs("D1_perfusion_diffusion") == ("rcbv", "adc")
    got = ArticleRule("D1_perfusion_diffusion").fit(X.to_numpy()).predict(X.to_numpy())
    np.testing.assert_array_equal(got, expected)
    # named by columns, in any order
    a = X[["other", "adc", "rcbv"]].to_numpy()
    rule = ArticleRule("D1_perfusion_diffusion", columns=["other", "adc", "rcbv"]).fit(a)
    np.testing.assert_array_equal(rule.predict(a), expected)
    # an input without a column abstains
    only_rcbv = ArticleRule("D1_perfusion_diffusion").fit(X[["rcbv"]].to_numpy())
    assert not only_rcbv.covers(X[["rcbv"]].to_numpy()).any()
    # fitted on a DataFrame, an array is read in the DataFrame's column order
    rule = ArticleRule("D1_perfusion_diffusion").fit(X[["adc", "rcbv"]])
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_array_equal(rule.predict(X[["adc", "rcbv"]].to_numpy()), expected)


def test_rule_labels_and_input_checks():
    X = rows(ctdna_change_pct=[-80, 0, NAN, -90])
    rule = ArticleRule("D3_ctdna_clearance").fit(X, ["pp", "tp", "pp", "tp"])
    assert list(rule.classes_) == ["pp", "tp"]  # the rule's 1 is classes_[1]
    assert list(rule.predict(X)[[0, 1, 3]]) == ["tp", "pp", "tp"]
    assert pd.isna(rule.predict(X)[2])
    with pytest.raises(ValueError, match="Only binary"):
        ArticleRule("D3_ctdna_clearance").fit(X, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="one class"):
        ArticleRule("D3_ctdna_clearance").fit(X, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="infinity"):
        ArticleRule("D3_ctdna_clearance").fit(rows(ctdna_change_pct=[np.inf, 0.0]))


def test_every_threshold_cites_a_figure_with_a_source_when_not_the_article():
    for key, t in THRESHOLDS.items():
        assert t.figure in FIGURES, key
    for fid in ("iRANO", "RANO2"):
        assert FIGURES[fid].source, fid
    assert FIGURES["RANO2"].source.startswith("Wen et al., J Clin Oncol 2023")
    assert FIGURES["iRANO"].source.startswith("Okada et al., Lancet Oncol 2015")
    assert not any(f.source for fid, f in FIGURES.items() if fid not in ("iRANO", "RANO2"))
    # RANO 2.0's volume cut-off is its SPD cut-off for a sphere: (1.25)^(3/2) = 1.40
    spd, vol = THRESHOLDS["confirm_spd_growth"].value, THRESHOLDS["confirm_volume_growth"].value
    assert (1 + spd / 100) ** 1.5 == pytest.approx(1 + vol / 100, abs=0.005)


def test_apply_rules_reads_the_table_once_with_each_rules_answer():
    """apply_rules (one read of the table for every rule) gives each rule estimator's own
    decisions, keeps the index, and refuses infinity naming a rule that reads it."""
    from features.synthetic import simulate_cohort

    table = simulate_cohort(400, seed=4).set_index(pd.RangeIndex(1000, 1400))
    table = table.drop(columns=["suvmax_change_pct"])  # a rule input absent: it abstains
    together = apply_rules(table)
    one_by_one = pd.DataFrame({r: ArticleRule(r).fit(table).predict(table) for r in RULE_IDS},
                              index=table.index)
    pd.testing.assert_frame_equal(together, one_by_one)
    assert together["Q1c_pet"].isna().all()
    table.loc[1003, "rcbv"] = np.inf
    with pytest.raises(ValueError, match="infinity in a column D1_perfusion_diffusion reads"):
        apply_rules(table)
