"""Does a table come from the population a model was trained on?

A model trained on melanoma patients still predicts on an NSCLC table, but its probabilities
there need not be calibrated. :class:`TrainingProfile` records what the training table looked
like (categories seen, the range of each numeric column, how often each column was present);
:meth:`TrainingProfile.compare` lists how a new table differs (:class:`Shift`) and
:func:`warn_population_shift` says so in one warning per table.

Even rows drawn from the training population now and then hold a value just beyond the
training range, or lack a column most training rows had. So values beyond the range, and a
missing column, are reported only when chance does not explain them: the probability of as
many by chance in rows of the training population (:func:`chance_beyond`; a binomial tail
for missing cells) must fall below ``alpha`` (0.01) divided by the number of columns
profiled (a single new value lies beyond the range of ``n`` training values with chance
``2 / (n + 1)``; a single row lacks a column with chance its training share missing). An
unseen category is always reported, and so is a value of a contract column far beyond the
range: by more than half the training 1st-99th percentile spread on the scale models use
(:func:`features.contract.to_model_scale`, roughly normal, so the long right tail of a ratio
or a concentration does not count as far). Other columns (radiomic, declared) have no known
scale, so for them only the count decides.

>>> profile = TrainingProfile.from_table(train_table, model.feature_columns)  # doctest: +SKIP
>>> shifts = warn_population_shift(profile, new_table, "new.csv")            # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from features.contract import BY_NAME, CANCER_TYPE, id_text, to_model_scale
from features.errors import listed

#: Format of :meth:`TrainingProfile.to_dict`; bump when its fields change.
PROFILE_VERSION = 1
#: Kinds of :class:`Shift`, in the order they are reported.
SHIFT_KINDS: tuple[str, ...] = ("unseen_category", "out_of_range", "column_missing",
                                "mostly_missing")
#: Chance of a false report per table and kind (split over the profiled columns).
ALPHA = 0.01
#: A column present in at least this share of training rows is one the model relied on.
RELIED_ON = 0.2
#: "mostly_missing": training share at least this, and the table's share below half of it.
MOSTLY_PRESENT = 0.5
#: A value beyond the range by more than this share of the training 1st-99th percentile
#: spread (on the model scale; about 2.3 SD for a normal column) is far beyond it.
FAR = 0.5
#: Terms of :func:`chance_beyond`'s sum computed at a time.
CHANCE_BLOCK = 512
#: Columns named per warning before "... and N more".
SHOWN_COLUMNS = 8


@dataclass(frozen=True)
class NumericRange:
    """A numeric column in training, over its finite values (None when it had none):
    ``low``/``high`` its minimum and maximum, ``p01``/``p99`` its 1st and 99th percentiles,
    in the column's own unit."""

    low: float | None
    high: float | None
    p01: float | None
    p99: float | None


@dataclass(frozen=True)
class Shift:
    """One way a table differs from the training population.

    kind: one of :data:`SHIFT_KINDS`; column: the column concerned; n_rows: rows of the table
    concerned (with the unseen category, the value beyond the range, or lacking the column);
    detail: one sentence for a reader.
    """

    kind: str
    column: str
    n_rows: int
    detail: str

    def __str__(self) -> str:
        return self.detail


def _numbers(values: pd.Series) -> np.ndarray:
    """A column as floats; empty cells and text that is not a number become NaN (a float
    column as it is)."""
    if values.dtype == np.float64:
        return values.to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _category_codes(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """A column as codes into its distinct values, and those values as stripped lower-case
    text (<NA> where empty; code -1: an empty cell). Each distinct value is normalised
    once: a category column holds few."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, id_text(pd.Series(uniques)).str.lower().reset_index(drop=True)


def _per_row(codes: np.ndarray, per_code: np.ndarray) -> np.ndarray:
    """``per_code[code]`` for each row's code; False where the code is -1 (empty)."""
    return np.append(per_code, False)[codes]


def _texts_of(codes: np.ndarray, texts: pd.Series, index: pd.Index) -> pd.Series:
    """Each row's text from its code (:func:`_category_codes`)."""
    normalised = pd.array([*texts.to_numpy(dtype=object, na_value=pd.NA), pd.NA],
                          dtype="string")
    return pd.Series(normalised.take(codes), index=index)  # code -1: the last, <NA>


def _texts(values: pd.Series) -> pd.Series:
    """A column as stripped lower-case text, <NA> where empty."""
    return _texts_of(*_category_codes(values), values.index)


def _is_text(values: pd.Series) -> bool:
    """True when a column holds text that is not numbers (a category)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    text = id_text(values)
    return bool((text.notna() & np.isnan(_numbers(values))).any())


def chance_beyond(k: int, m: int, n: int) -> float:
    """P(at least ``k`` of ``m`` new values lie beyond the range of ``n`` training values)
    when all ``n + m`` are exchangeable draws of one continuous variable.

    In the pooled order every placement of the ``n`` training values is equally likely; ``j``
    new values lie outside when ``i`` of them come before the first training value and
    ``j - i`` after the last, which leaves ``C(n + m - j - 2, n - 2)`` orders for each of the
    ``j + 1`` splits, out of ``C(n + m, n)``.
    """
    if k <= 0:
        return 1.0
    if n < 2 or k > m:
        return 1.0 if k <= m else 0.0
    # The terms fall about geometrically (by m / (n + m) per step), so they are summed in
    # blocks until a block's last term no longer counts (below 1e-20 of the sum).
    const = (special.gammaln(n + 1) + special.gammaln(m + 1) - special.gammaln(n - 1)
             - special.gammaln(n + m + 1))
    total, start = 0.0, k
    while start <= m:
        j = np.arange(start, min(start + CHANCE_BLOCK, m + 1))
        terms = np.exp(np.log(j + 1) + special.gammaln(n + m - j - 1)
                       - special.gammaln(m - j + 1) + const)
        total += float(terms.sum())
        if terms[-1] <= 1e-20 * total:
            break
        start += CHANCE_BLOCK
    return float(min(total, 1.0))


def _fmt(x: float) -> str:
    """A number in 4 significant digits."""
    return f"{x:.4g}"


def _few(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` items joined, then how many in all (:func:`listed`)."""
    return listed(items, limit)


@dataclass
class TrainingProfile:
    """What a model needs to recognise its training population.

    n_rows: training rows; present: per feature column, the share of training rows (0-1)
    holding a value (its share missing is 1 - present); numeric: per numeric column, its
    :class:`NumericRange`; categories: per categorical column, the values seen (stripped
    lower-case text, sorted). Every feature column is in ``present`` and in exactly one of
    ``numeric`` and ``categories``.
    """

    n_rows: int
    present: dict[str, float]
    numeric: dict[str, NumericRange]
    categories: dict[str, list[str]]

    @property
    def columns(self) -> list[str]:
        """The profiled feature columns, in training order."""
        return list(self.present)

    def missing_share(self, column: str) -> float:
        """Share of training rows (0-1) where ``column`` was missing."""
        return 1.0 - self.present[column]

    @classmethod
    def from_table(cls, table: pd.DataFrame, feature_columns: list[str],
                   categorical: Sequence[str] = (CANCER_TYPE,)) -> TrainingProfile:
        """The profile of a training table over ``feature_columns`` (a column absent from
        ``table`` is profiled as never present). Columns named in ``categorical``, and columns
        holding text that is not numbers, are categorical; the others numeric."""
        n = len(table)
        if n == 0:
            raise ValueError("cannot profile a training table without rows")
        present: dict[str, float] = {}
        numeric: dict[str, NumericRange] = {}
        categories: dict[str, list[str]] = {}
        for col in feature_columns:
            values = table[col] if col in table.columns else pd.Series(np.nan, index=table.index)
            if col in categorical or _is_text(values):
                text = _texts(values)
                present[col] = float(text.notna().mean())
                categories[col] = sorted(text.dropna().unique().tolist())
                continue
            x = _numbers(values)
            present[col] = float(np.mean(~np.isnan(x)))
            finite = x[np.isfinite(x)]
            if len(finite):
                p01, p99 = np.percentile(finite, [1, 99])
                numeric[col] = NumericRange(float(finite.min()), float(finite.max()),
                                            float(p01), float(p99))
            else:
                numeric[col] = NumericRange(None, None, None, None)
        return cls(n, present, numeric, categories)

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain Python types (JSON-ready), for a saved model."""
        return {
            "version": PROFILE_VERSION,
            "n_rows": int(self.n_rows),
            "present": {c: float(v) for c, v in self.present.items()},
            "numeric": {c: {"min": r.low, "max": r.high, "p01": r.p01, "p99": r.p99}
                        for c, r in self.numeric.items()},
            "categories": {c: list(v) for c, v in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingProfile:
        """The profile :meth:`to_dict` wrote; ValueError for anything else."""
        if not isinstance(data, dict) or data.get("version") != PROFILE_VERSION:
            found = data.get("version") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a training profile of version {PROFILE_VERSION} "
                             f"(found {found!r})")
        try:
            present = {str(c): float(v) for c, v in data["present"].items()}
            numeric = {str(c): NumericRange(r["min"], r["max"], r["p01"], r["p99"])
                       for c, r in data["numeric"].items()}
            categories = {str(c): [str(v) for v in vals]
                          for c, vals in data["categories"].items()}
            profile = cls(int(data["n_rows"]), present, numeric, categories)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed training profile ({type(exc).__name__}: {exc})") \
                from None
        if set(numeric) | set(categories) != set(present) or set(numeric) & set(categories):
            raise ValueError("malformed training profile: every column must be in 'present' "
                             "and in exactly one of 'numeric' and 'categories'")
        return profile

    def compare(self, table: pd.DataFrame, alpha: float = ALPHA) -> list[Shift]:
        """How ``table`` differs from the training population, by :data:`SHIFT_KINDS` then
        column order; [] for a table without rows. ``alpha``: chance of reporting a range
        or a missing column on a table from the training population itself."""
        return [shift for shift, _ in self._shifts(table, alpha)]

    def _shifts(self, table: pd.DataFrame, alpha: float) -> list[tuple[Shift, np.ndarray]]:
        """Each :class:`Shift` with the mask of the table's rows it concerns."""
        m = len(table)
        if m == 0:
            return []
        level = alpha / max(len(self.present), 1)
        found: dict[str, list[tuple[Shift, np.ndarray]]] = {k: [] for k in SHIFT_KINDS}
        for col, share in self.present.items():
            absent = col not in table.columns
            values = pd.Series(np.nan, index=table.index) if absent else table[col]
            if col in self.categories:
                codes, texts = _category_codes(values)
                has = _per_row(codes, texts.notna().to_numpy())
                self._unseen(col, codes, texts, found["unseen_category"], table.index)
            else:
                x = _numbers(values)
                has = ~np.isnan(x)
                self._beyond(col, x, has, level, found["out_of_range"])
            self._missing(col, share, has, absent, level, found)
        return [item for kind in SHIFT_KINDS for item in found[kind]]

    def _unseen(self, col: str, codes: np.ndarray, texts: pd.Series, out: list,
                index: pd.Index) -> None:
        """Rows whose category ``col`` (``codes`` into the distinct ``texts``,
        :func:`_category_codes`) was never seen in training."""
        seen = self.categories[col]
        mask = _per_row(codes, (texts.notna() & ~texts.isin(seen)).to_numpy())
        if not mask.any():
            return
        counts = _texts_of(codes, texts, index)[mask].value_counts()
        values = [f"'{v}' ({k})" for v, k in counts.items()]
        out.append((Shift(
            "unseen_category", col, int(mask.sum()),
            f"{col}: {int(mask.sum())} row(s) with a category not seen in training: "
            f"{_few(values)}; seen in training: {_few([repr(v) for v in seen]) or 'none'}."), mask))

    def _beyond(self, col: str, x: np.ndarray, has: np.ndarray, level: float,
                out: list) -> None:
        """Rows whose ``col`` lies beyond the training range, when chance does not explain
        it (see the module docstring)."""
        r = self.numeric[col]
        if r.low is None:
            mask = has
            what = "while training had none"
            far = bool(mask.any())
        else:
            below, above = x < r.low, x > r.high  # NaN is neither
            n_below, n_above = np.count_nonzero(below), np.count_nonzero(above)
            if n_below + n_above == 0:
                return
            mask = below | above
            what = (f"beyond the training range {_fmt(r.low)} to {_fmt(r.high)} "
                    f"({n_below} below, {n_above} above; training 1st-99th "
                    f"percentiles {_fmt(r.p01)} to {_fmt(r.p99)})")
            far = False
        k = np.count_nonzero(mask)
        if k == 0:
            return
        n_train = round(self.present[col] * self.n_rows)
        if far or chance_beyond(k, np.count_nonzero(has), n_train) < level or (
                r.low is not None and col in BY_NAME and self._far(col, x[mask])):
            out.append((Shift("out_of_range", col, k, f"{col}: {k} row(s) with a value {what}."),
                        mask))

    def _far(self, col: str, x: np.ndarray) -> bool:
        """True when a value of contract column ``col`` lies beyond the training range by
        more than :data:`FAR` times the 1st-99th percentile spread, on the model scale."""
        r = self.numeric[col]
        z, (low, high, p01, p99) = (to_model_scale(col, v)
                                    for v in (x, [r.low, r.high, r.p01, r.p99]))
        spread = FAR * (p99 - p01)
        return bool(((z < low - spread) | (z > high + spread)).any())

    def _missing(self, col: str, share: float, has: np.ndarray, absent: bool, level: float,
                 found: dict[str, list]) -> None:
        """``col`` empty in every row, or in far more rows than in training, when the model
        relied on it and chance does not explain it."""
        m, k = len(has), np.count_nonzero(has)
        if k == 0 and share >= RELIED_ON and (1.0 - share) ** m < level:
            where = "absent from the table" if absent else "empty in every row"
            found["column_missing"].append((Shift(
                "column_missing", col, m,
                f"{col}: {where}; present in {share:.0%} of training rows."), ~has))
        elif (0 < k and share >= MOSTLY_PRESENT and k / m < share / 2
              and stats.binom.cdf(k, m, share) < level):
            found["mostly_missing"].append((Shift(
                "mostly_missing", col, m - k,
                f"{col}: present in {k / m:.0%} of rows ({k} of {m}) against {share:.0%} of "
                "training rows."), ~has))


_HEADINGS = {
    "unseen_category": "categories not seen in training",
    "out_of_range": "values beyond the training range",
    "column_missing": "columns absent or empty in every row",
    "mostly_missing": "columns present far less often than in training",
}


def _grouped(shifts: list[Shift], budget: int = SHOWN_COLUMNS) -> str:
    """Shifts grouped by kind, naming at most ``budget`` columns in all."""
    parts, hidden = [], 0
    for kind in SHIFT_KINDS:
        cols = [s.column for s in shifts if s.kind == kind]
        if not cols:
            continue
        shown, budget = cols[:budget], budget - len(cols[:budget])
        hidden += len(cols) - len(shown)
        if shown:
            parts.append(f"{_HEADINGS[kind]} ({', '.join(shown)})")
        else:
            parts.append(f"{_HEADINGS[kind]}")
    return "; ".join(parts) + (f"; ... and {hidden} more column(s)" if hidden else "")


def warn_population_shift(profile: TrainingProfile, table: pd.DataFrame,
                          source: str) -> list[Shift]:
    """One ``UserWarning`` when ``table`` (called ``source`` in the message) differs from the
    training population in ``profile``, naming how many rows and which columns; returns the
    shifts (:meth:`TrainingProfile.compare`) so a report can list them."""
    found = profile._shifts(table, ALPHA)
    if not found:
        return []
    rows = np.logical_or.reduce([mask for _, mask in found])
    shifts = [shift for shift, _ in found]
    warnings.warn(
        f"{source}: {int(rows.sum())} of {len(table)} row(s) lie outside the model's training "
        f"population: {_grouped(shifts)}. Predictions outside the training population may be "
        "miscalibrated; recalibrate or update the model for this population with "
        "train.py --update (README, \"Your own data\").",
        UserWarning, stacklevel=2)
    return shifts
