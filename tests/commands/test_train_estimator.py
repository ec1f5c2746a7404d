"""train.py --estimator module:factory: a user's own classifier through the command line."""

from __future__ import annotations

import contextlib
import io

import pytest

import train
from commands.run import run_command
from features.synthetic.cohort import simulate_cohort
from models import load_model

FAST = ["--validation", "holdout", "--no-nested-cv", "--bootstrap", "0", "--no-progress"]
FACTORY = '''
from sklearn.linear_model import LogisticRegression


def make_classifier():
    return LogisticRegression(C=0.5, max_iter=300)
'''


def run(argv: list) -> tuple[int, str]:
    """Exit status and stderr of train.py."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_command(train.main, [str(a) for a in argv])
    assert "Traceback" not in err.getvalue()
    return code, err.getvalue()


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.csv"
    simulate_cohort(160, seed=4, prevalence=0.5).to_csv(path, index=False)
    return path


def test_own_estimator_is_trained_and_saved(data, tmp_path):
    (tmp_path / "my_models.py").write_text(FACTORY)
    out = tmp_path / "m.skops"
    code, err = run(["--data", data, "--out", out,
                     "--estimator", f"{tmp_path / 'my_models.py'}:make_classifier", *FAST])
    assert code == 0, err
    model = load_model(out)
    assert model.family == "custom"
    assert model.training["estimator"].endswith("LogisticRegression")


@pytest.mark.parametrize("spec, words", [
    ("no_colon", "is not of the form module:factory"),
    ("{tmp}/absent.py:make", "does not exist"),
    ("{tmp}/my_models.py:absent", "has no attribute 'absent'"),
])
def test_a_wrong_estimator_is_refused_before_the_table_is_read(spec, words, tmp_path):
    (tmp_path / "my_models.py").write_text(FACTORY)
    missing = tmp_path / "not_read.csv"  # never read: the estimator is checked first
    missing.write_text("patient_id,pseudoprogression\n")
    code, err = run(["--data", missing, "--out", tmp_path / "m.skops",
                     "--estimator", spec.format(tmp=tmp_path), *FAST])
    assert code == 2 and words in err and "no data rows" not in err


def test_estimator_with_update_is_refused(data, tmp_path):
    code, err = run(["--data", data, "--update", tmp_path / "m.skops", "--out",
                     tmp_path / "n.skops", "--estimator", "x:y", *FAST])
    assert code == 2 and "--estimator trains a new model" in err
