"""The project's estimators against scikit-learn's own estimator checks.

Rules and transformers take arrays as well as contract DataFrames (an array's columns are
named by position), so every check applies and none is expected to fail.
"""

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from models.classifier import (
    ContractTransformer,
    CorrelationFilter,
    PatientCalibratedClassifier,
    RadiomicSelector,
    RestrictedCubicSplines,
)
from models.rules import ArticleRule, DeclaredRule

#: One rule of each shape (two inputs; an optional input; the four-part combination), a rule
#: with its array columns named, a declared rule (and, or, not, backquotes), the transformers
#: (splines with and without their linear terms; the wide-block selector by F-test and by L1
#: penalty) and the calibrated classifier
#: (two folds and isotonic calibration keep its checks fast; the contract does not depend on
#: either).
ESTIMATORS = [
    ArticleRule("D1_perfusion_diffusion"),
    ArticleRule("Q1a_symptoms"),
    ArticleRule("Q1_four_part"),
    ArticleRule("D1_perfusion_diffusion", columns=("adc", "rcbv")),
    DeclaredRule("declared", "x0 >= 0.5 and not (x1 < -1 or `x2` == 3)"),
    ContractTransformer(),
    ContractTransformer(columns=("rcbv", "adc", "ctdna_change_pct")),
    CorrelationFilter(),
    RestrictedCubicSplines(),
    RestrictedCubicSplines(n_knots=5, include_linear=False),
    RadiomicSelector(k=2),
    RadiomicSelector("l1"),
    PatientCalibratedClassifier(LogisticRegression(), method="isotonic", n_splits=2),
]

#: Checks each estimator is expected to fail, with the reason. Empty: arrays work everywhere.
EXPECTED_FAILURES: dict[str, str] = {}


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS and OpenMP thread: on these small matrices a thread pool only costs time."""
    with threadpool_limits(limits=1):
        yield


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_scikit_learn_estimator_contract(estimator, check):
    check(estimator)
