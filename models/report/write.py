"""Writing the report: ``metrics.json``, ``metrics.md``, figures, ``report.md``, ``report.html``.

- :func:`write_report` writes ``metrics.json``, ``metrics.md``, the six figures (and the
  partial-effect figure of a spline model, and the cost-of-waiting figure when the metrics
  hold follow-up landmarks, ``landmarks``),
  ``report.md`` (figures by relative path), ``report.html`` (one self-contained file:
  figures as base64 PNG data URIs, inline CSS, no script) and ``evaluation_predictions.csv``;
- :func:`report_files` lists those files, so callers can refuse to overwrite an input;
- :func:`check_report` tells a whole report from a mixture of two: the report is written
  into a staging folder and put in place as a unit, ``metrics.json`` naming its run and the
  SHA-256 of every other file, ``report.md`` and ``report.html`` the run in a closing
  comment.

Both report files are rendered (:mod:`models.report.document`) from one document built
(:mod:`models.report.sections`) from the metrics document
(:func:`models.metrics_document.build_metrics_document`) exactly as it is written to
``metrics.json`` (numpy types made plain, nan as None), so every number in them is the one in
``metrics.json``; the report reads that document and adds nothing to it. Sections name the
TRIPOD+AI 2024 items (Collins et al., BMJ 2024;385:e078378) and CLEAR items (Kocak et al.,
Insights Imaging 2023;14:75) they answer; a closing table says where each TRIPOD+AI item is
answered or why it is not.

>>> from models.study import StudySettings, run_study                   # doctest: +SKIP
>>> from models.report import write_report                              # doctest: +SKIP
>>> study = run_study(StudySettings(out=Path("m.skops"), cohort="melanoma",
...                                  n=600))                          # doctest: +SKIP
>>> paths = write_report("report/", study.metrics, study.evaluation.frame,
...                      model=study.model)                            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from features.contract import LABEL
from features.errors import UserInputError
from features.outputs import is_inside, output_lock, run_id_of
from features.tables import atomic_write_bytes, atomic_write_text
from models.bundle import TrainedModel
from models.evaluation import (
    BAYES_COLUMN,
    P_COLUMN,
    labels_and_probabilities,
    patient_groups,
    pooled_probabilities,
    rule_calls,
)
from models.metrics_document import AP_KEY, FIDELITY_KEY, RUN_KEY, metrics_json
from models.report import format as fmt
from models.report.document import render_html_document, render_markdown_document
from models.report.sections import build_document
from models.report.tables import DEFAULT_TITLE, REPORT_FILES, render_markdown
from models.report.words import words_of
from models.statistics import to_jsonable

__all__ = ["check_report", "remove_stale_files", "report_files", "write_report"]

#: How report.md and report.html name their run (in a closing comment).
RUN_STAMP = "report run"
# --------------------------------------------------------------------------- write


def _odds_ratio_table(data: Mapping) -> pd.DataFrame:
    """Each rule's diagnostic odds ratio and its note from the metrics, for the forest plot."""
    rows = []
    for rid, m in (data.get("rules") or {}).items():
        ci = m.get("dor_ci") or [None, None]
        rows.append({"label": rid, "odds_ratio": fmt.num(m.get("dor")), "ci_low": fmt.num(ci[0]),
                     "ci_high": fmt.num(ci[1]), "n": fmt.num(m.get("n")),
                     "note": str(m.get("dor_note") or "")})
    return pd.DataFrame(rows, columns=["label", "odds_ratio", "ci_low", "ci_high", "n", "note"])


def report_files(report_dir: str | Path) -> list[Path]:
    """Every file :func:`write_report` may write into ``report_dir``."""
    from models.report.figures import figure_file_names

    return [Path(report_dir) / n for n in (*REPORT_FILES.values(),
                                           *figure_file_names().values())]


def remove_stale_files(report_dir: str | Path, written: Mapping[str, Path]) -> list[Path]:
    """Delete the optional files of an earlier report in ``report_dir`` that this one did
    not write: only the figures named in :func:`models.report.figures.figure_file_names`
    and the lesion map, when absent from ``written`` (key -> path); any other file is left
    alone. Returns the removed paths."""
    from models.report.figures import figure_file_names

    report_dir = Path(report_dir)
    kept = {Path(p).name for p in written.values()}
    removed = []
    for name in (*figure_file_names().values(), REPORT_FILES["lesion_map"]):
        path = report_dir / name
        if name not in kept and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_report(report_dir: str | Path, metrics: Mapping, frame: pd.DataFrame,
                 model: TrainedModel | None = None,
                 title: str = DEFAULT_TITLE,
                 predictions: pd.DataFrame | None = None,
                 lesion_map: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the full report into ``report_dir`` (created if needed); return name -> path.

    Files: ``metrics.json`` (``metrics`` and the report's run,
    :func:`models.metrics_document.metrics_json`) and ``metrics.md``
    (:func:`models.report.tables.render_markdown`), the six figures of
    :func:`models.report.figures.write_all_figures` (the simulator's posterior from
    ``frame["bayes_posterior"]`` when present), for a spline model's feature effects with
    curves the partial-effect figure
    (:func:`models.report.figures.write_partial_effects_figure`), with ``metrics["landmarks"]``
    (:func:`models.landmarks.train_landmarks`) the cost-of-waiting figure
    (:func:`models.report.waiting.write_waiting_figure`), ``report.md``, ``report.html`` and
    ``evaluation_predictions.csv`` (``frame``, or ``predictions`` when given: every
    prediction behind ``frame`` when a lesion was predicted more than once, e.g. once per
    cross-validation repeat) and, with ``lesion_map`` (an image extraction's,
    :attr:`features.extract.ExtractionResult.lesion_map`), ``lesions.csv``: where each
    lesion lies. Every file is written atomically. A figure of an earlier report in the
    folder that this one does not have (a cost-of-waiting figure when these metrics hold no
    landmarks, say), or its lesion map, is removed (:func:`remove_stale_files`); files the
    project does not name are never touched.

    ``metrics`` is the metrics document (a study's, :attr:`models.study.Study.metrics`, or
    any built by :func:`models.metrics_document.build_metrics_document`, which holds the report's
    own figures when given :func:`~models.metrics_document.report_facts`); it is read, never
    changed. Missing parts (no bootstrap, no internal validation, no Bayes ceiling, no
    simulator fidelity) are left out or said to be missing. ``model`` is the
    :class:`models.bundle.TrainedModel` behind it, or None (then versions and the training
    data hash are not shown).
    """
    threshold = metrics.get("threshold")
    if threshold is None:
        threshold = getattr(model, "threshold", None)
    if threshold is None:
        raise ValueError("metrics has no 'threshold' and no model was given.")
    final = Path(report_dir)
    target = Path(os.path.abspath(final))  # "." has no name to stage beside
    name = run_id_of(json.dumps(to_jsonable(metrics), sort_keys=True).encode(), title.encode(),
                     frame.to_csv(index=False).encode())
    with output_lock(target, "--report"), _staging_folder(target, name) as report_dir:
        written = _write_files(report_dir, metrics, frame, model, title, predictions,
                               float(threshold), name, lesion_map)
        _publish(report_dir, target, written, name)
    return {k: final / Path(v).name for k, v in written.items()}


def _write_files(report_dir: Path, metrics: Mapping, frame: pd.DataFrame,
                 model: TrainedModel | None, title: str,
                 predictions: pd.DataFrame | None, threshold: float,
                 run_id: str, lesion_map: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write every file of the report into the (staging) folder ``report_dir``; the last,
    ``metrics.json``, names the run and the SHA-256 of every other file
    (:func:`check_report`). Returns name -> path."""
    from models.report.figures import write_all_figures, write_partial_effects_figure
    from models.report.waiting import write_waiting_figure

    data = to_jsonable(metrics)  # the numbers exactly as metrics.json holds them
    paths: dict[str, Path] = {"metrics_md": atomic_write_text(
        report_dir / REPORT_FILES["metrics_md"], render_markdown(data, title))}
    y, p = labels_and_probabilities(frame)
    rules = rule_calls(frame)
    bayes = (frame[BAYES_COLUMN].to_numpy(dtype=float) if BAYES_COLUMN in frame.columns
             else None)
    # the figures draw the frame's probabilities: under cv and bootstrap the pooled ones,
    # whose figures (not the headline's) their legends state
    pooled = pooled_probabilities(data)
    m = (pooled[1] if pooled else data).get("model") or {}
    ap = data.get(AP_KEY) or {}
    fig_metrics = {"odds_ratios": _odds_ratio_table(data),
                   "model": m | {"average_precision": ap.get("model")},
                   "bayes_ceiling": (data.get("bayes_ceiling") or {})
                   | {"average_precision": ap.get("bayes_ceiling")}}
    if m.get("auc_ci") and all(v is not None for v in m["auc_ci"]):
        fig_metrics["auc_ci"] = m["auc_ci"]
    words = words_of(data)
    figure_paths = write_all_figures(report_dir, y.astype(int), p, float(threshold), rules,
                                     bayes_p=bayes, metrics=fig_metrics, words=words,
                                     groups=patient_groups(frame)[0])
    figure_paths.update(write_partial_effects_figure(data, report_dir))
    figure_paths.update(write_waiting_figure(data, report_dir))
    paths.update(figure_paths)
    sections = build_document(data, frame, model, data.get(FIDELITY_KEY),
                              {k: Path(v).name for k, v in figure_paths.items()},
                              every_prediction=predictions is not None)
    images = {k: Path(v).read_bytes() for k, v in figure_paths.items()}
    stamp = f"\n<!-- {RUN_STAMP} {run_id} -->\n"
    paths["report_md"] = atomic_write_text(report_dir / REPORT_FILES["report_md"],
                                           render_markdown_document(title, sections) + stamp)
    paths["report_html"] = atomic_write_text(report_dir / REPORT_FILES["report_html"],
                                             render_html_document(title, sections, images)
                                             + stamp)
    rows = frame if predictions is None else predictions
    if LABEL in rows.columns:  # the label as its 0/1, however the rows were stacked
        rows = rows.assign(**{LABEL: rows[LABEL].astype("Int64")})
    rows = rows.rename(columns={LABEL: words.positive, P_COLUMN: words.probability_column})
    paths["predictions_csv"] = atomic_write_bytes(
        report_dir / REPORT_FILES["predictions_csv"], rows.to_csv(index=False).encode("utf-8"))
    if lesion_map is not None:
        paths["lesion_map"] = atomic_write_bytes(
            report_dir / REPORT_FILES["lesion_map"],
            lesion_map.to_csv(index=False).encode("utf-8"))
    run = {"id": run_id, "files": {Path(p).name: _sha256(p) for _, p in sorted(paths.items())}}
    paths["metrics_json"] = atomic_write_text(report_dir / REPORT_FILES["metrics_json"],
                                              metrics_json(metrics, run))
    return paths


# --------------------------------------------------------------------------- publishing


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _own_names() -> set[str]:
    """The names of every file a report may hold."""
    return {p.name for p in report_files(".")}


@contextmanager
def _staging_folder(report_dir: Path, run_id: str) -> Iterator[Path]:
    """A new, empty folder to write a report into before it is published: beside
    ``report_dir`` (``.<name>.<run>.tmp``), or inside it when its parent cannot be written.
    Removed afterwards, with what killed runs left (the caller holds the folder's lock, so no
    other run is writing one)."""
    parent = report_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    for leftover in (*parent.glob(f".{report_dir.name}.*.tmp"),
                     *parent.glob(f".{report_dir.name}.*.old")):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = parent / f".{report_dir.name}.{run_id}.tmp"
    try:
        staging.mkdir()
    except PermissionError:
        report_dir.mkdir(exist_ok=True)
        staging = report_dir / f".report.{run_id}.tmp"
        staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, report_dir: Path, written: Mapping[str, Path], run_id: str) -> None:
    """Put the complete report in ``staging`` in place as ``report_dir``: by renaming the
    folder when ``report_dir`` is new or holds nothing but an earlier report (so a reader sees
    either report whole), else file by file with ``metrics.json`` last (each rename atomic;
    :func:`check_report` tells a mixture). An earlier report's figures this one lacks are
    removed; files the project does not name are never touched."""
    swappable = (staging.parent == report_dir.parent and not report_dir.is_symlink()
                 and not is_inside(os.getcwd(), report_dir))  # never move the working folder
    if swappable:
        if not report_dir.exists():
            os.replace(staging, report_dir)
            return
        if report_dir.is_dir() and {p.name for p in report_dir.iterdir()} <= _own_names():
            old = report_dir.with_name(f".{report_dir.name}.{run_id}.old")
            os.replace(report_dir, old)
            os.replace(staging, report_dir)
            shutil.rmtree(old, ignore_errors=True)
            return
    report_dir.mkdir(parents=True, exist_ok=True)
    last = REPORT_FILES["metrics_json"]
    for name in sorted((Path(p).name for p in written.values()), key=lambda n: n == last):
        os.replace(staging / name, report_dir / name)
    remove_stale_files(report_dir, {k: report_dir / Path(p).name for k, p in written.items()})


def check_report(report_dir: str | Path) -> str:
    """The run id of the report in ``report_dir`` after checking that every file
    ``metrics.json`` lists is the one that run wrote; :class:`UserInputError` naming both
    runs when a file belongs to another."""
    import re

    report_dir = Path(report_dir)
    try:
        run = json.loads((report_dir / REPORT_FILES["metrics_json"]).read_text())[RUN_KEY]
        run_id, files = run["id"], dict(run["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserInputError(f"{report_dir} holds no complete report (its metrics.json is "
                             "missing or names no run); write it again.") from None
    for name, digest in files.items():
        path = report_dir / name
        if path.is_file() and _sha256(path) == digest:
            continue
        other = None
        if path.is_file() and path.suffix in (".md", ".html"):
            found = re.search(rf"<!-- {RUN_STAMP} (\S+) -->", path.read_text(errors="replace"))
            other = found.group(1) if found else None
        raise UserInputError(
            f"{report_dir} mixes two reports: metrics.json is of run {run_id}, but {name} "
            + ("is missing" if not path.is_file() else
               f"is of run {other}" if other else "is not the file that run wrote")
            + "; write the report again.")
    return run_id
