"""One formatter per kind of number, shared by every part of the report.

Proportions as percentages with their CI (``66.7% (54.1-77.3)``), ratios to three significant
digits, estimates on any scale with fixed decimals, table cells; a missing value is a dash.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.tables import markdown_table

DASH = "-"



def num(v) -> float:
    """``v`` as a float, nan for None or anything non-numeric."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def finite(*values) -> bool:
    return all(np.isfinite(num(v)) for v in values)


def pct(v) -> str:
    return f"{100 * num(v):.1f}%" if finite(v) else DASH


def pct_ci(v, ci) -> str:
    """A proportion and its CI as percentages: ``66.7% (54.1-77.3)``."""
    if not finite(v):
        return DASH
    lo, hi = (ci or (None, None))[:2]
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
    lo, hi = (ci or (None, None))[:2]
    if not finite(lo, hi):
        return g(v)
    return f"{g(v)} ({g(lo)}-{g(hi)})"


def est_ci(v, ci, digits: int = 3) -> str:
    """An estimate on any scale and its CI, fixed decimals: ``0.981 (0.912 to 1.05)``."""
    if not finite(v):
        return DASH
    lo, hi = (ci or (None, None))[:2]
    text = f"{num(v):.{digits}f}"
    if finite(lo, hi):
        text += f" ({num(lo):.{digits}f} to {num(hi):.{digits}f})"
    return text


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
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*headers), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(lines)


