"""The study object: the command line and a research script get the same files, settings are
checked once with every problem listed, and ``--help`` loads no numerical library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from features.errors import UserInputError
from models.bundle import load_model
from models.study import StudySettings, run_study

ROOT = Path(__file__).resolve().parents[2]


def test_python_route_equals_the_command_line_byte_for_byte(same_seed_studies):
    """The shared study (:func:`shared_fixtures.same_seed_studies`) through ``train.main``
    and through ``run_study`` + ``Study.save`` in one process: the same report bytes."""
    cli = same_seed_studies.cli / "report"
    written = same_seed_studies.written
    assert written["metrics_json"] == same_seed_studies.python / "report" / "metrics.json"
    # a run's id comes from what it wrote, so the two reports name the same run
    assert (cli / "metrics.json").read_bytes() == written["metrics_json"].read_bytes()
    assert ((cli / "evaluation_predictions.csv").read_bytes()
            == (same_seed_studies.python / "report" / "evaluation_predictions.csv").read_bytes())
    # the saved model keeps the same document as the report, not an alias of it
    saved = load_model(same_seed_studies.python / "model.skops")
    report = json.loads(written["metrics_json"].read_text())
    assert saved.metrics["model"]["auc"] == report["model"]["auc"]
    study = same_seed_studies.study
    assert study.model.metrics["model"]["auc"] == study.metrics["model"]["auc"]
    assert study.model.metrics is not study.metrics
    assert study.model.metrics["model"] is not study.metrics["model"]


def test_every_problem_is_reported_at_once(tmp_path):
    settings = StudySettings(out=tmp_path / "m.skops", cohort="melanoma", n=10,
                             prevalence=2.0, threshold=3.0, validation="sometimes")
    with pytest.raises(UserInputError) as caught:
        run_study(settings, progress=False)
    message = str(caught.value)
    assert message.startswith("4 problems with the options:")
    for part in ("--n 10", "--prevalence", "threshold must be", "validation must be"):
        assert part in message
    assert not (tmp_path / "m.skops").exists()


def test_scans_imply_followup_and_need_a_table(tmp_path):
    settings = StudySettings(out=tmp_path / "m.skops", cohort="melanoma",
                             scans=tmp_path / "s.csv")
    assert settings.followup
    problems = settings.problems()
    assert any("--scans goes with --data" in p for p in problems)
    assert any("scans table not found" in p for p in problems)


@pytest.mark.parametrize("argv", [["--help"], ["--cohort", "melanoma"]])
def test_help_and_argument_errors_load_no_numerical_library(argv):
    script = ("import sys, train\n"
              "try:\n    train.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "heavy = [m for m in ('numpy', 'pandas', 'sklearn', 'SimpleITK') "
              "if m in sys.modules]\n"
              "print('loaded:' + ','.join(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.splitlines()[-1] == "loaded:", proc.stdout[-300:]
