"""One formatter per kind of number, shared by every part of the report.

Proportions as percentages with their CI (``66.7% (54.1-77.3)``), ratios to three significant
digits, estimates on any scale with fixed decimals (AUC and calibration 3, Brier score and
net benefit 4), table cells; a missing value is a dash. Every table, sentence and figure
label of the report formats a number through this module, so one number reads the same
wherever it appears.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.tables import markdown_table

DASH = "-"
#: Footnote markers, in order of first use; later notes get "[5]", "[6]", ...
MARKERS: tuple[str, ...] = ("†", "‡", "§", "¶")


def num(v) -> float:
    """``v`` as a float, nan for None or anything non-numeric."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def finite(*values) -> bool:
    """True when every value is a finite number."""
    return all(np.isfinite(num(v)) for v in values)


def _bounds(ci) -> tuple:
    lo, hi = (list(ci or ()) + [None, None])[:2]
    return lo, hi


def pct(v) -> str:
    """A proportion (0-1) as a percentage to one decimal: ``66.7%``."""
    return f"{100 * num(v):.1f}%" if finite(v) else DASH


def pct_ci(v, ci) -> str:
    """A proportion and its CI as percentages: ``66.7% (54.1-77.3)``."""
    if not finite(v):
        return DASH
    lo, hi = _bounds(ci)
    if not finite(lo, hi):
        return pct(v)
    return f"{100 * num(v):.1f}% ({100 * num(lo):.1f}-{100 * num(hi):.1f})"


def g(v, digits: int = 3) -> str:
    """``v`` to ``digits`` significant digits, whole numbers from 1000 up (no e+04)."""
    if not finite(v):
        return DASH
    x = num(v)
    return f"{x:.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def ratio_ci(v, ci) -> str:
    """A ratio and its CI to 3 significant digits: ``26 (11.1-61)``."""
    if not finite(v):
        return DASH
    lo, hi = _bounds(ci)
    if not finite(lo, hi):
        return g(v)
    return f"{g(v)} ({g(lo)}-{g(hi)})"


def article_ratio(v, ci=None) -> str:
    """A ratio the article publishes, at its own precision: one decimal when every number is
    at least 1, else two (``4.3 (3.7-5.0)``)."""
    if not finite(v):
        return DASH
    lo, hi = _bounds(ci)
    values = [num(v)] + ([num(lo), num(hi)] if finite(lo, hi) else [])
    digits = 1 if min(values) >= 1 else 2
    text = f"{num(v):.{digits}f}"
    if finite(lo, hi):
        text += f" ({num(lo):.{digits}f}-{num(hi):.{digits}f})"
    return text


def est_ci(v, ci=None, digits: int = 3) -> str:
    """An estimate on any scale and its CI, fixed decimals: ``0.981 (0.912 to 1.050)``."""
    if not finite(v):
        return DASH
    lo, hi = _bounds(ci)
    text = f"{num(v):.{digits}f}"
    if finite(lo, hi):
        text += f" ({num(lo):.{digits}f} to {num(hi):.{digits}f})"
    return text


def fixed(v, digits: int = 3) -> str:
    """An estimate with fixed decimals and no CI: ``0.950``."""
    return est_ci(v, None, digits)


def brier(v, ci=None) -> str:
    """A Brier score (mean squared error, 0-1) to 4 decimals, with its CI when given."""
    return est_ci(v, ci, 4)


def net_benefit(v, ci=None) -> str:
    """A net benefit (net true positives per lesion) to 4 decimals, with its CI when given."""
    return est_ci(v, ci, 4)


def pt(v) -> str:
    """A threshold probability of the decision curve to 2 decimals: ``0.10``."""
    return f"{num(v):.2f}" if finite(v) else DASH


def mean_sd(mean, sd, digits: int = 3) -> str:
    """A mean and its SD with fixed decimals: ``0.950 ± 0.020``."""
    if not finite(mean):
        return DASH
    return f"{num(mean):.{digits}f} ± {fixed(sd, digits)}"


def pct_mean_sd(mean, sd) -> str:
    """A mean proportion and its SD as percentages: ``61.8% ± 5.0%``."""
    return f"{pct(mean)} ± {pct(sd)}" if finite(mean) else DASH


def pp_ci(v, ci) -> str:
    """A difference of proportions in percentage points with its CI: ``+5.2 pp (-1.0 to +11.3)``."""
    if not finite(v):
        return DASH
    lo, hi = _bounds(ci)
    text = f"{100 * num(v):+.1f} pp"
    if finite(lo, hi):
        text += f" ({100 * num(lo):+.1f} to {100 * num(hi):+.1f})"
    return text


def p_value(v) -> str:
    """A p-value: ``<0.001`` below 0.001, else 2 significant digits."""
    if not finite(v):
        return DASH
    x = num(v)
    return "<0.001" if x < 0.001 else f"{x:.2g}"


def count(v) -> str:
    """A count (whole number), blank when missing."""
    return str(int(num(v))) if finite(v) else ""


class Footnotes:
    """Notes attached to table cells or figure labels by a marker (†, ‡, ...), in order."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}

    def mark(self, note: str) -> str:
        """The marker of ``note`` (a new one the first time); '' for an empty note."""
        note = str(note or "").strip()
        if not note:
            return ""
        if note not in self.notes:
            k = len(self.notes)
            self.notes[note] = MARKERS[k] if k < len(MARKERS) else f"[{k + 1}]"
        return self.notes[note]

    def lines(self) -> list[str]:
        """``"† note"`` for every note, in the order first marked."""
        return [f"{m} {n}" for n, m in self.notes.items()]


def dor(v, ci, note: str = "", notes: Footnotes | None = None) -> str:
    """A diagnostic odds ratio with its CI and why it is undefined or corrected.

    An undefined ratio reads as its note (``undefined: never calls pseudoprogression``); a
    corrected one carries a footnote marker from ``notes`` (or the note in parentheses
    without ``notes``).
    """
    note = str(note or "").strip()
    if note.startswith("undefined") or (note and not finite(v)):
        return note
    text = ratio_ci(v, ci)
    if not note or text == DASH:
        return text
    return f"{text} {notes.mark(note)}" if notes is not None else f"{text} ({note})"


def cell(v) -> str:
    """A table cell for any value: numbers to 4 significant digits, missing as blank."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}" if np.isfinite(v) else ""
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x) for x in v)
    return str(v)


def md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table, each cell formatted by :func:`cell`."""
    return markdown_table([cell(h) for h in headers], [[cell(v) for v in r] for r in rows])


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [line.format(*headers), "  ".join("-" * w for w in widths)]
    lines += [line.format(*map(str, r)) for r in rows]
    return "\n".join(lines)
