"""The report, as one pipeline from an evaluation to files.

:func:`write_report` writes ``metrics.json`` and ``metrics.md`` (:mod:`.tables`), the figures
(:mod:`.figures`), ``report.md`` and ``report.html`` (sections in :mod:`.sections` with the
model card of :mod:`.model_card`, rendered by :mod:`.document`) and the evaluated rows;
:func:`format_benchmark_table` and :func:`format_landmark_table` are the terminal's tables;
:func:`models.report.terminal.study_summary` is what ``train.py`` prints. What each feature
does in a fitted model is model inspection, below the report (:mod:`models.inspection`).
Every table is built once in :mod:`.tables` and every number is formatted by :mod:`.format`.
The names are loaded on first use.
"""

from __future__ import annotations

from features.lazy import lazy_names

__all__ = ["check_report", "format_benchmark_table", "format_landmark_table", "report_files",
           "write_report"]

_WHERE = {"check_report": "models.report.write",
          "format_benchmark_table": "models.report.tables",
          "format_landmark_table": "models.report.tables",
          "report_files": "models.report.write", "write_report": "models.report.write"}
__getattr__ = lazy_names(__name__, _WHERE)
