"""Shared test machinery: every ``metrics.json`` a test writes must follow its schema.

``models/report/metrics.schema.json`` documents the shape of ``metrics.json``. After each
test, the autouse fixture :func:`_metrics_json_follows_schema` finds every ``metrics.json``
under the test's ``tmp_path`` and under the folders that module- and session-scoped
fixtures made with ``tmp_path_factory``, and validates each against the schema; a file that
does not follow it fails the test (as an error at teardown) naming the file and the JSON
path of each mismatch. Files already validated and unchanged since are not read again, so
the check costs a directory walk per test that uses temporary folders.

The models several modules share, trained once per session, are the fixtures of
:mod:`shared_fixtures`, made available to every test module here.

``make test`` runs the tests in two processes (pytest-xdist, ``--dist loadfile``), each
test module whole in one of them, so that a module-scoped fixture is built once; the
scheduler of :func:`pytest_xdist_make_scheduler` also keeps together the modules that name a
shared fixture, so that each shared model is trained in one process only.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from shared_fixtures import SHARED_FIXTURES, same_seed_studies  # noqa: F401

from models.report.schema import SCHEMA_PATH, load_metrics_schema, schema_errors

ROOT = Path(__file__).resolve().parents[1]
METRICS_FILE = "metrics.json"
#: Mismatches listed per file in a failure message.
MAX_ERRORS = 8

#: Path -> (mtime_ns, size) of every metrics.json already checked in this session.
_checked: dict[Path, tuple[int, int]] = {}
#: Function-scoped ``tmp_path`` folders of finished tests (left out of later walks).
_finished_tmp_paths: set[Path] = set()


def _metrics_files(root: Path, skip: set[Path] = frozenset()) -> Iterator[Path]:
    """Every ``metrics.json`` under ``root`` (symbolic links not followed)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                path = Path(entry.path)
                if path not in skip:
                    stack.append(path)
            elif entry.name == METRICS_FILE and entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def check_metrics_files(paths: Iterable[Path]) -> None:
    """Validate every file of ``paths`` not checked before in its current state; fail with
    the file and the JSON path of each mismatch. A file is reported once, not again by
    later tests, unless it is rewritten."""
    problems = []
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        state = (stat.st_mtime_ns, stat.st_size)
        if _checked.get(path) == state:
            continue
        _checked[path] = state
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            problems.append(f"{path}\n    not valid JSON: {exc}")
            continue
        errors = schema_errors(data)
        if errors:
            more = len(errors) - MAX_ERRORS
            problems.append(f"{path}\n" + "\n".join(f"    {e}" for e in errors[:MAX_ERRORS])
                            + (f"\n    ... and {more} more" if more > 0 else ""))
    if problems:
        pytest.fail(f"{METRICS_FILE} does not follow "
                    f"{SCHEMA_PATH.relative_to(ROOT).as_posix()}:\n"
                    + "\n".join(problems)
                    + "\n(fix what writes it, or describe a new key in the schema)",
                    pytrace=False)


#: The slowest test modules, slowest first (the first stands for the modules that share a
#: fixture): they run before the others, so that the two processes of ``make test`` share
#: out the many quick modules at the end instead of one process ending on a slow one alone.
SLOWEST_FIRST = ("test_cli.py", "test_followup_cli.py", "test_landmark_validation.py",
                 "test_train_images.py", "test_notebook.py", "test_classifier.py",
                 "test_reporting.py", "test_own_study.py")


def pytest_collection_modifyitems(items):
    """Run the modules of :data:`SLOWEST_FIRST` first, in that order (each module's tests
    stay together and in their order)."""
    def rank(item) -> int:
        name = Path(item.nodeid.split("::", 1)[0]).name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)


@functools.cache
def names_a_shared_fixture(module: str) -> bool:
    """Whether the test module at ``module`` (a path from the project's folder) names one of
    :data:`SHARED_FIXTURES`."""
    try:
        text = (ROOT / module).read_text(encoding="utf-8")
    except OSError:
        return False
    return any(name in text for name in SHARED_FIXTURES)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's ``loadfile`` scheduling (each module whole in one process), with the
    modules naming a shared fixture as one unit, so that the fixture is built once; with
    ``--no-loadscope-reorder`` the units go out in the order of collection."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "shared fixtures" if names_a_shared_fixture(module) else module

    return SharedFixtureScheduling(config, log)


@pytest.fixture(autouse=True)
def _metrics_json_follows_schema(request):
    """After the test, validate the metrics.json files under its temporary folders."""
    yield
    names = request.fixturenames
    if "tmp_path_factory" not in names:  # tmp_path depends on it too
        return
    # The values of every fixture the test used, tmp_path among them; taken from the item
    # because tmp_path is already torn down when this (first set up) fixture finishes.
    values = getattr(request.node, "funcargs", None) or {}
    roots = []
    own = values.get("tmp_path")
    if isinstance(own, Path):
        roots.append(own)
    factory = values.get("tmp_path_factory")
    skip = set(_finished_tmp_paths)
    if own is not None:
        skip.add(own)
    if factory is not None:
        roots.append(factory.getbasetemp())
    try:
        check_metrics_files(path for root in roots for path in _metrics_files(root, skip))
    finally:
        if isinstance(own, Path):
            _finished_tmp_paths.add(own)


@pytest.fixture(scope="session")
def metrics_schema() -> dict:
    """The parsed metrics schema."""
    return load_metrics_schema()


@pytest.fixture(scope="session")
def metrics_schema_errors():
    """:func:`schema_errors`: the mismatches of a parsed metrics.json, empty when valid."""
    return schema_errors


@pytest.fixture(scope="session")
def check_metrics_json():
    """:func:`check_metrics_files`: validate metrics.json files, failing the test if not."""
    return check_metrics_files
