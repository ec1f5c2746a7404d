"""Models trained once per test session and shared by the modules that need one.

Training is what makes tests slow (a built-in model tunes three families on a grid, however
small the cohort), so the modules that only need *a* trained model, or that compare runs of
the same study, share the runs made here. Each fixture is session-scoped; its folders live
under pytest's session temporary folder, and no test may change what is in them (copy a
file first to change it).

- :func:`same_seed_studies`: one small study on a simulated cohort run three ways with the
  same seed: the command line in this process (one worker, one thread), the Python route
  (:func:`models.study.run_study`) in this process, and ``train.py`` as a program with two
  workers, two threads and another hash seed, run side by side with the other two.

Nothing heavy is imported at module level: ``conftest.py`` imports this module for every
test run, including ones that never use a model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: File name of the model in every study folder below.
MODEL = "model.skops"
#: The small study of :func:`same_seed_studies`, as ``train.py`` options but its seed (a
#: held-out 30% of 300 simulated melanoma patients, 50 bootstrap resamples).
STUDY_ARGS = ("--cohort", "melanoma", "--n", "300", "--prevalence", "0.3",
              "--validation", "holdout", "--no-nested-cv", "--bootstrap", "50",
              "--no-progress")
STUDY_SEED = 5
#: Seconds a program run may take before the fixture gives up on it.
TIMEOUT = 600
#: The session fixtures below (the tests using one run in one process under pytest-xdist).
SHARED_FIXTURES = ("same_seed_studies",)


def program_environment(threads: int, hash_seed: int) -> dict[str, str]:
    """This process's environment with ``threads`` BLAS/OpenMP threads and this hash seed."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads), "PYTHONHASHSEED": str(hash_seed)}


def start_program(args, threads: int = 1, hash_seed: int = 0) -> subprocess.Popen:
    """Start ``python <args>`` in the project folder; stderr is kept, stdout dropped."""
    return subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=program_environment(threads, hash_seed))


def study_argv(folder: Path, jobs: int) -> list[str]:
    """``train.py`` options of the shared study writing into ``folder``."""
    return [*STUDY_ARGS, "--seed", str(STUDY_SEED), "--jobs", str(jobs),
            "--out", str(folder / MODEL),
            "--report", str(folder / "report")]


@dataclass(frozen=True)
class SameSeedStudies:
    """Folders (each with ``model.skops``, its record and ``report/``) of one study run three
    ways with the same seed."""

    #: ``train.main`` through :func:`commands.run.run_command` in the test process
    #: (``--jobs 1``, one BLAS thread).
    cli: Path
    #: :func:`models.study.run_study` and :meth:`Study.save` in the test process.
    python: Path
    #: ``train.py`` as a program, ``--jobs 2``, two threads, ``PYTHONHASHSEED=2``.
    program: Path
    #: The :class:`models.study.Study` of the Python route (read it, do not change it).
    study: Any = None
    #: What its :meth:`~models.study.Study.save` returned: the written files by name.
    written: Any = None

    @staticmethod
    def settings(folder: Path):
        """The :class:`models.study.StudySettings` of the study writing into ``folder``."""
        from models.study import StudySettings

        return StudySettings(out=folder / MODEL, report=folder / "report", cohort="melanoma",
                             n=300, prevalence=0.3, seed=STUDY_SEED, validation="holdout",
                             nested_cv=False, bootstrap=50, jobs=1)


@pytest.fixture(scope="session")
def same_seed_studies(tmp_path_factory) -> SameSeedStudies:
    """The small study run three ways (:class:`SameSeedStudies`); the program runs side by
    side with the two runs in this process."""
    from threadpoolctl import threadpool_limits

    import train
    from commands.run import run_command
    from models.study import run_study

    root = tmp_path_factory.mktemp("same_seed_studies")
    cli, python, program = root / "cli", root / "python", root / "program"
    proc = start_program(["train.py", *study_argv(program, jobs=2)], threads=2, hash_seed=2)
    try:
        with threadpool_limits(limits=1):
            assert run_command(train.main, study_argv(cli, jobs=1)) == 0
            study = run_study(SameSeedStudies.settings(python), progress=False)
            written = study.save()
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return SameSeedStudies(cli=cli, python=python, program=program, study=study,
                           written=written)
