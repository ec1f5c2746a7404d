"""The report, as one pipeline from an evaluation to files.

:func:`write_report` writes ``metrics.json`` and ``metrics.md`` (:mod:`.tables`), the figures
(:mod:`.figures`), ``report.md`` and ``report.html`` (sections in :mod:`.sections` with the
model card of :mod:`.model_card`, rendered by :mod:`.document`) and the evaluated rows;
:func:`format_benchmark_table` is the terminal's table. Every number is formatted by
:mod:`.format`.
"""

from models.report.tables import format_benchmark_table
from models.report.write import report_files, write_report

__all__ = ["format_benchmark_table", "report_files", "write_report"]
