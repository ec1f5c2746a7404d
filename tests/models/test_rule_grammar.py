"""Declared rules: the condition grammar, its errors, and a rule's 2x2 table and coverage
against a count by hand (missing values included)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.description import TableDescription
from features.errors import UserInputError
from features.rule_grammar import RuleSyntaxError, columns, evaluate, parse
from models.evaluation import evaluate_predictions
from models.rules import DeclaredRule, apply_declared_rules

NAN = np.nan


def test_grammar_reads_precedence_parentheses_backquotes_and_flipped_comparisons():
    table = pd.DataFrame({"a": [1.0, 3.0, 3.0, NAN], "b-c": [0.0, 5.0, 1.0, 1.0],
                          "site": ["Frontal ", "parietal", "frontal", "x"]})
    # not binds tighter than and, and tighter than or
    got = evaluate(parse("a > 2 and not `b-c` < 2 or site == 'frontal'"), table)
    # row 0: (F and .) or True = 1; row 1: (T and T) or F = 1; row 2: (T and F) or T = 1;
    # row 3: a missing -> abstains even though site is known
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0, NAN])
    got = evaluate(parse("(2 < a) and (`b-c` >= 5 or site != \"FRONTAL\")"), table)
    np.testing.assert_array_equal(got, [0.0, 1.0, 0.0, NAN])
    assert columns(parse("a > 1 or (a < 0 and `b-c` == 2)")) == ["a", "b-c"]


@pytest.mark.parametrize("text, position, words", [
    ("rcbv >= ", 8, "expected a column, a number or a quoted text, found the end"),
    ("rcbv >= 1.75 and", 16, "found the end"),
    ("rcbv 1.75", 5, "expected a comparison"),
    ("(rcbv > 1", 9, "expected ')' closing the '(' at character 1"),
    ("rcbv > 1 adc < 2", 9, "expected 'and', 'or' or the end"),
    ("`rcbv > 1", 0, "backquoted column name is not closed"),
    ("site == 'x", 8, "quoted text is not closed"),
    ("rcbv > adc", 0, "found two columns"),
    ("1 < 2", 0, "found two values"),
    ("rcbv ** 2", 5, "unexpected character '*'"),
    ("", 0, "the condition is empty"),
])
def test_syntax_errors_say_what_and_where(text, position, words):
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    assert caught.value.position == position
    assert words in caught.value.message


def _description(rules, **more) -> TableDescription:
    return TableDescription.from_dict({"patient": "pid", "label": {
        "column": "status", "positive": "PD", "negative": ["SD", "PR"], "name": "progression"},
        "features": [{"columns": ["size_mm", "grade"], "kind": "number"},
                     {"columns": ["site"], "kind": "category"}], "rules": rules, **more})


def _table() -> pd.DataFrame:
    return pd.DataFrame({"pid": ["a", "b", "c", "d", "e", "f"],
                         "status": ["PD", "SD", "PD", "PR", "PD", "SD"],
                         "size_mm": [60, 50, NAN, 70, 55, 58], "grade": [3, 2, 3, NAN, 1, 3],
                         "site": ["left", "right", "left", "left", NAN, "right"],
                         "notes": ["", "", "", "", "", ""]})


@pytest.mark.parametrize("rules, words", [
    ([{"id": "r1", "positive_when": "size_mm >= "}], "rules[0] (r1).positive_when: expected a "
                                                     "column, a number or a quoted text, found "
                                                     "the end at character 11"),
    ([{"id": "r1", "positive_when": "size >= 5"}], "'size' is no column of the table. Did you "
                                                   "mean 'site' or 'size_mm'?"),
    ([{"id": "r1", "positive_when": "site > 5"}], "column 'site' holds text but is compared "
                                                 "with the number 5"),
    ([{"id": "r1", "positive_when": "size_mm == 'big'"}], "column 'size_mm' holds numbers but "
                                                          "is compared with the text"),
    ([{"id": "r1", "positive_when": "site < 'm'"}], "holds text, which has no order"),
    ([{"id": "r1", "positive_when": "notes == 'x'"}], "column 'notes' is in the table but not "
                                                      "among the columns the model may use"),
    ([{"id": "r1", "positive_when": "size_mm > 1"}, {"id": "r1", "positive_when": "grade > 1"}],
     "'r1' is already the name of another rule"),
    ([{"id": "D1_perfusion_diffusion", "positive_when": "grade > 1"}],
     "already the name of one of the article's rules"),
    ([{"id": "r 1", "positive_when": "grade > 1"}], "rules[0].id: give the rule a name"),
    ([{"id": "r1"}], "rules[0] (r1).positive_when: give the condition"),
])
def test_rule_errors_name_the_rule_before_anything_is_fitted(rules, words):
    with pytest.raises(UserInputError) as caught:
        _description(rules).apply(_table(), require_label=True)
    assert words in " ".join(str(caught.value).split())


def test_declared_rule_two_by_two_and_coverage_match_a_count_by_hand():
    rule = {"id": "big_high", "positive_when": "size_mm >= 56 and (grade >= 3 or site == "
                                               "'right')"}
    described = _description([rule], ignore=["notes"]).apply(_table(), require_label=True)
    table = described.table
    y = table["pseudoprogression"].to_numpy().astype(int)
    # by hand, row by row: abstain when size_mm, grade or site is missing
    raw = _table()
    calls = []
    for size, grade, site in zip(raw["size_mm"], raw["grade"], raw["site"], strict=True):
        if pd.isna(size) or pd.isna(grade) or pd.isna(site):
            calls.append(None)
        else:
            calls.append(int(size >= 56 and (grade >= 3 or site == "right")))
    assert calls == [1, 0, None, None, None, 1]
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for call, label in zip(calls, y, strict=True):
        if call is not None:
            key = ("t" if call == label else "f") + ("p" if call == 1 else "n")
            counts[key] += 1
    evaluation = evaluate_predictions(table, np.full(len(table), 0.5), 0.5,
                                      description=described.description)
    m = evaluation.metrics["rules"]["big_high"]
    assert {k: m[k] for k in counts} == counts == {"tp": 1, "fp": 1, "tn": 1, "fn": 0}
    assert m["coverage"] == pytest.approx(3 / 6)
    assert m["n"] == 3 and m["n_positive"] == 1
    # the article's rules have no input here: left out, each with what it needs
    study = evaluation.metrics["study"]
    assert list(evaluation.metrics["rules"]) == ["big_high"]
    assert study["rules_left_out"]["D1_perfusion_diffusion"] == "rcbv and adc"
    assert study["positive_class"] == "progression"
    assert study["negative_class"] == "not progression"
    assert study["prevalences"] == {}
    np.testing.assert_array_equal(evaluation.frame["rule_big_high"].to_numpy(),
                                  [NAN if c is None else c for c in calls])


def test_renamed_contract_column_is_read_under_the_users_name():
    desc = TableDescription.from_dict({
        "patient": "pid", "rename": {"rCBV_max": "rcbv"},
        "rules": [{"id": "rcbv_175", "positive_when": "rCBV_max >= 1.75"}]})
    raw = pd.DataFrame({"pid": ["a", "b", "c"], "pseudoprogression": [1, 0, 1],
                        "rCBV_max": [2.0, 1.0, NAN]})
    described = desc.apply(raw, require_label=True)
    calls = apply_declared_rules(described.table, desc)
    np.testing.assert_array_equal(calls["rcbv_175"].to_numpy(), [1.0, 0.0, NAN])


def test_declared_rule_is_a_classifier_like_the_articles():
    X = pd.DataFrame({"size_mm": [60.0, 50.0, NAN], "site": ["a", "b", "a"]})
    rule = DeclaredRule("r", "size_mm > 55 or site == 'b'")
    fitted = clone(rule).fit(X, ["yes", "no", "yes"])
    assert list(fitted.predict(X)[:2]) == ["yes", "yes"] and pd.isna(fitted.predict(X)[2])
    np.testing.assert_array_equal(fitted.covers(X), [True, True, False])
    assert fitted.score(X, ["yes", "no", "yes"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="infinity"):
        rule.fit(X).predict(X.assign(size_mm=[np.inf, 1.0, 1.0]))


def test_label_missing_skip_leaves_empty_labels_out_and_counts_them():
    raw = _table().assign(status=["PD", " ", "PD", np.nan, "nan", "SD"])
    desc = _description([], ignore=["notes"])
    with pytest.raises(UserInputError, match="missing: skip"):
        desc.apply(raw, require_label=True)
    skip = TableDescription.from_dict(desc.to_dict() | {
        "label": desc.to_dict()["label"] | {"missing": "skip"}})
    described = skip.apply(raw, require_label=True)
    assert described.table["patient_id"].tolist() == ["a", "c", "f"]
    assert described.unlabelled == {"n": 3, "column": "status",
                                    "values": {"(empty cell)": 2, "'nan'": 1}}
    # predicting keeps every row; a value neither positive nor negative stays an error
    assert len(skip.apply(raw, require_label=False).table) == 6
    with pytest.raises(UserInputError, match="'Unknown'"):
        skip.apply(raw.assign(status=["PD", "Unknown", "PD", "", "SD", "SD"]),
                   require_label=True)
