"""Follow-up scans: one row per lesion per scan, checked, with changes over time.

A scans table is long: one row per lesion per scan, with the patient and lesion columns (named
as a :class:`~features.description.TableDescription` names them), the scan's time
``weeks_on_treatment`` (weeks since the start of treatment), the lesion's size at that scan as
``volume_ml`` (ml; a column declared as ``volume_mm3`` or ``volume_cm3`` is converted to ml,
and a volume above :data:`MAX_LESION_VOLUME_ML` is refused naming the likely unit) or
``spd_mm2`` (sum of products of perpendicular diameters, mm^2), and any
contract column measured at that scan (``rcbv``, ``adc``, ``symptomatic``,
``ctdna_change_pct``, ...; units and ranges of :mod:`features.contract`).

The *index scan* is the scan whose enlargement raised the question (pseudoprogression or
true progression): 1 in an ``index_scan`` column (0 or empty elsewhere), or without that
column the first scan at or after the lesion's ``weeks_on_treatment`` in the per-lesion
table (``lesions=``). ``weeks_from_index`` counts weeks from it (negative before it).

:func:`read_scans` checks a table, reports every problem at once in one
:class:`~features.errors.UserInputError`, and returns a :class:`ScansTable` in canonical form:
``patient_id``, ``lesion_id``, ``weeks_on_treatment``, ``weeks_from_index``, ``size``,
``size_kind`` (``volume_ml`` or ``spd_mm2``), ``index_scan`` (0/1), then the per-scan contract
columns; lesions in order of first appearance, each lesion's scans in time order.

Baseline. The per-lesion contract's ``volume_change_pct`` is the index volume against
baseline (the volume before the enlargement), so baseline = index volume /
(1 + volume_change_pct/100). :func:`baseline_volume` takes it from the index row of the scans
table, else from the per-lesion table, else from the last volume scan at or before the start
of treatment (``weeks_on_treatment <= 0``).
"""

from __future__ import annotations

import fnmatch
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.article import FIGURES
from features.contract import (
    BY_NAME,
    ID,
    LABEL,
    LESION,
    NUMERIC_FEATURES,
    data_rows,
    empty_id_problems,
    format_problems,
    id_text,
    warn_similar_ids,
)
from features.description import SCAN_ONLY_COLUMNS, TableDescription, label_token
from features.errors import UserInputError, listed

WEEKS = "weeks_on_treatment"
FROM_INDEX = "weeks_from_index"
SIZE = "size"
SIZE_KIND = "size_kind"
INDEX = "index_scan"
VOLUME = "volume_ml"
SPD = "spd_mm2"
#: Volume columns declared in other units, and the factor that puts each in ml.
VOLUME_UNITS: dict[str, tuple[str, float]] = {VOLUME: ("ml", 1.0), "volume_cm3": ("cm^3", 1.0),
                                             "volume_mm3": ("mm^3", 1e-3)}
#: ml: no brain lesion is larger (about a third of a brain); a larger volume is a unit error,
#: most often mm^3 read as ml (1000 times too large).
MAX_LESION_VOLUME_ML = 500.0
#: The two ways a scan gives a lesion's size: volume (ml) or SPD (mm^2).
SIZE_KINDS: tuple[str, ...] = (VOLUME, SPD)
#: Contract columns a scan may carry, measured at that scan (units of the contract).
PER_SCAN_COLUMNS: tuple[str, ...] = tuple(c for c in NUMERIC_FEATURES if c != WEEKS)
#: Scan columns a table may hold under other names (``rename``), besides contract columns.
SCAN_COLUMNS: tuple[str, ...] = (WEEKS, *SCAN_ONLY_COLUMNS)
#: The canonical columns, before the per-scan contract columns.
CANONICAL: tuple[str, ...] = (ID, LESION, WEEKS, FROM_INDEX, SIZE, SIZE_KIND, INDEX)
#: weeks: the earliest scan time accepted (a baseline scan before treatment is negative).
EARLIEST_WEEK = -52.0
#: Times are rounded to this many decimals of a week (a second is 1.7e-6 weeks), so that a
#: scan 12 weeks after the index is at 12, not 12.000000000000002.
WEEK_DECIMALS = 6
#: weeks: the index scan's time may differ from the lesion table's weeks_on_treatment by
#: this much (half the T4 follow-up interval, so it cannot be taken for the next scan).
INDEX_TOLERANCE_WEEKS = FIGURES["T4_interval"].value / 2
#: Changes (%) are rounded to this many decimals, so that 1.4 ml against 1.0 ml is a growth
#: of 40%, not 39.99999999999999%, when compared with a cut-off.
CHANGE_DECIMALS = 9


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class ScansTable:
    """A checked scans table in canonical form (see the module docstring).

    table: one row per lesion per scan. keys: every lesion of the table, (patient_id,
    lesion_id); :meth:`as_of` keeps them, so rules answer for every lesion even when the
    cut leaves a lesion without scans. per_scan: the contract columns measured per scan.
    as_of_week: the decision time the table was cut at (weeks after the index), or None.
    """

    table: pd.DataFrame
    keys: pd.MultiIndex
    per_scan: tuple[str, ...] = ()
    as_of_week: float | None = None

    @property
    def n_patients(self) -> int:
        """Number of patients."""
        return int(self.keys.get_level_values(0).nunique())

    @property
    def n_lesions(self) -> int:
        """Number of lesions."""
        return len(self.keys)

    def as_of(self, weeks_from_index: float | None) -> ScansTable:
        """Only the scans known ``weeks_from_index`` weeks after each lesion's index scan
        (at or before that time); None keeps every scan."""
        if weeks_from_index is None:
            return self
        t = round(float(weeks_from_index), WEEK_DECIMALS)
        if self.as_of_week is not None and t > self.as_of_week:
            raise ValueError(f"this table was cut at {self.as_of_week:g} weeks after the index "
                             f"scan; it cannot be read as of {t:g} weeks.")
        kept = self.table[self.table[FROM_INDEX] <= t].reset_index(drop=True)
        return replace(self, table=kept, as_of_week=t)


def lesion_keys(frame: pd.DataFrame) -> pd.MultiIndex:
    """(patient_id, lesion_id) of every row of a canonical table (a scans table or a
    per-lesion table); lesion "1" when the table has no ``lesion_id`` column."""
    patients = id_text(frame[ID]).astype(object).to_numpy()
    lesions = (id_text(frame[LESION]).astype(object).to_numpy() if LESION in frame.columns
               else np.full(len(frame), "1", dtype=object))
    return pd.MultiIndex.from_arrays([patients, lesions], names=[ID, LESION])


def _row_keys(scans: ScansTable) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(scans.table[[ID, LESION]])


# --------------------------------------------------------------------------- changes


def index_value(scans: ScansTable, column: str = SIZE) -> pd.Series:
    """Each lesion's value of ``column`` at its index scan (NaN when missing or cut away),
    indexed by ``scans.keys``."""
    t = scans.table
    at = t[t[INDEX] == 1]
    values = pd.Series(at[column].to_numpy(), index=pd.MultiIndex.from_frame(at[[ID, LESION]]))
    return values.reindex(scans.keys)


def change_from_index(scans: ScansTable, column: str = SIZE) -> pd.Series:
    """Per scan row: ``column`` against the lesion's index scan, % (100 * (value / index
    value - 1), rounded to :data:`CHANGE_DECIMALS`); NaN where either is missing or the index
    value is not positive. Aligned with ``scans.table``'s rows."""
    ref = index_value(scans, column).reindex(_row_keys(scans)).to_numpy(dtype=float)
    value = scans.table[column].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(ref > 0, np.round(100.0 * (value / ref - 1.0), CHANGE_DECIMALS), np.nan)
    return pd.Series(pct, index=scans.table.index, name=f"{column}_change_from_index_pct")


def baseline_volume(scans: ScansTable, lesions: pd.DataFrame | None = None) -> pd.Series:
    """Each lesion's volume before the enlargement (ml), indexed by ``scans.keys``.

    First choice: index volume / (1 + volume_change_pct/100) with ``volume_change_pct`` from
    the index row; then from ``lesions`` (a per-lesion table in canonical form, e.g.
    ``TableDescription.apply(...).table`` or :func:`~features.synthetic.cohort.simulate_cohort`);
    then the last volume scan at or before the start of treatment. NaN when none applies or
    the lesion is measured in SPD (mm^2).
    """
    t = scans.table
    index_vol = index_value(scans, SIZE).where(index_value(scans, SIZE_KIND) == VOLUME)
    change = (index_value(scans, "volume_change_pct") if "volume_change_pct" in t.columns
              else pd.Series(np.nan, index=scans.keys))
    if lesions is not None and "volume_change_pct" in lesions.columns:
        per_lesion = pd.Series(pd.to_numeric(lesions["volume_change_pct"], errors="coerce")
                               .to_numpy(dtype=float), index=lesion_keys(lesions))
        per_lesion = per_lesion[~per_lesion.index.duplicated()]
        change = change.fillna(per_lesion.reindex(scans.keys))
    factor = 1.0 + change.to_numpy(dtype=float) / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where(factor > 0, index_vol.to_numpy(dtype=float) / factor, np.nan)
    out = pd.Series(base, index=scans.keys, name="baseline_volume_ml")
    before = t[(t[WEEKS] <= 0) & (t[SIZE_KIND] == VOLUME) & t[SIZE].notna()]
    if len(before):
        last = before.groupby([ID, LESION], sort=False)[SIZE].last()
        out = out.fillna(last.reindex(scans.keys))
    return out


def change_from_baseline(scans: ScansTable, lesions: pd.DataFrame | None = None) -> pd.Series:
    """Per scan row: the volume against the lesion's baseline (:func:`baseline_volume`), %;
    NaN for SPD scans, scans without a size and lesions without a baseline. Aligned with
    ``scans.table``'s rows."""
    base = baseline_volume(scans, lesions).reindex(_row_keys(scans)).to_numpy(dtype=float)
    t = scans.table
    value = np.where(t[SIZE_KIND].to_numpy() == VOLUME, t[SIZE].to_numpy(dtype=float), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(base > 0, np.round(100.0 * (value / base - 1.0), CHANGE_DECIMALS), np.nan)
    return pd.Series(pct, index=t.index, name="volume_change_from_baseline_pct")


# --------------------------------------------------------------------------- reading


def _lesion_list(keys) -> str:
    return listed(f"{p}/{les}" for p, les in keys)


def _numbers(raw: pd.Series, name: str, unit: str, problems: list[str]) -> pd.Series:
    """``raw`` as float; text that is not a number is a problem (the cell counts as empty)."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype(float)
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    text = raw.astype("string").str.strip()
    bad = num.isna() & text.notna() & text.ne("") & ~text.str.lower().isin(["nan", "<na>"])
    if bad.any():
        shown = ", ".join(repr(v) for v in pd.unique(text[bad])[:3])
        problems.append(f"column '{name}' ({unit}) must be numeric; found {shown} in "
                        f"{int(bad.sum())} row(s) ({data_rows(bad)}). Use numbers (a '.' for "
                        "decimals), and leave the cell empty when unknown.")
    return num


def _range(num: pd.Series, name: str, unit: str, low: float, high: float,
           problems: list[str], low_open: bool = False) -> None:
    below = (num <= low) if low_open else (num < low)
    outside = below | (num > high) | np.isinf(num)
    if outside.any():
        where = f"above {low:g}" if low_open and np.isinf(high) else \
            f"within ({low:g}, {high:g}]" if low_open else f"within [{low:g}, {high:g}]"
        problems.append(f"column '{name}' should be in {unit} {where}; {int(outside.sum())} "
                        f"value(s) are outside (e.g. {num[outside].iloc[0]:g}; "
                        f"{data_rows(outside)}).")


def _volume_ml(raw: pd.Series, name: str, user_name: str, problems: list[str]) -> pd.Series:
    """A volume column (``name``, one of :data:`VOLUME_UNITS`; ``user_name`` as the table
    calls it) in ml. Above :data:`MAX_LESION_VOLUME_ML` is a problem that names the likely
    unit."""
    unit, factor = VOLUME_UNITS[name]
    v = _numbers(raw, user_name, unit, problems)
    _range(v, user_name, unit, 0.0, np.inf, problems, low_open=True)
    ml = v * factor
    big = ml > MAX_LESION_VOLUME_ML
    if big.any():
        example = v[big].iloc[0]
        if name != "volume_mm3" and (ml[big] / 1000.0 <= MAX_LESION_VOLUME_ML).all():
            likely = (f"they look like mm^3 (1000 mm^3 = 1 ml): declare the column in its unit, "
                      f"e.g. under the table description's scans: rename: {{{user_name}: "
                      "volume_mm3}, and it is converted to ml")
        else:
            likely = "check the column's unit (volume_ml, volume_cm3 or volume_mm3)"
        problems.append(f"column '{user_name}' ({unit}) has {int(big.sum())} volume(s) above "
                        f"{MAX_LESION_VOLUME_ML:g} ml (e.g. {example:g} {unit}; {data_rows(big)}), "
                        f"larger than any brain lesion: {likely}.")
    return ml


def _index_flags(raw: pd.Series, name: str, problems: list[str]) -> pd.Series:
    """The index flag as 0/1 (empty is 0); other values are a problem."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    tokens = pd.Series(np.array([label_token(u) for u in uniques] + [None], dtype=object)[codes],
                       index=raw.index)
    bad = tokens.notna() & ~tokens.isin(["0", "1"])
    if bad.any():
        shown = ", ".join(repr(v) for v in pd.unique(raw[bad].astype(str))[:3])
        problems.append(f"column '{name}' marks the index scan with 1 (0 or empty elsewhere); "
                        f"found {shown} ({data_rows(bad)}).")
    return (tokens == "1").astype(int)


def read_scans(df: pd.DataFrame, description: TableDescription | None = None, *,
               rename: Mapping[str, str] | None = None, lesions: pd.DataFrame | None = None,
               source: str = "the scans table") -> ScansTable:
    """A scans table (one row per lesion per scan) checked and in canonical form.

    description: names the patient and lesion columns (``patient``, ``lesion``) and contract
    columns held under other names (``rename``); its ``ignore`` patterns drop columns
    silently, and its ``scans: rename:`` pairs name the scan columns. Without a lesion column
    every patient has one lesion, "1". rename: more ``{your column: name}`` pairs, for the
    scan columns (``weeks_on_treatment``, ``volume_ml``, ``spd_mm2``, ``index_scan``) or
    contract columns. lesions: the per-lesion
    table in canonical form; it places the index scan when the table has no ``index_scan``
    column. A table already canonical (``size`` and ``size_kind``) reads as it is.
    Columns that are none of these are dropped with one warning. Every problem (missing or
    non-numeric columns, values out of range, empty identifiers, two scans of a lesion at
    the same time, a lesion measured both ways, not exactly one index scan per lesion) is
    reported at once in one :class:`UserInputError`. ``df`` is not modified.
    """
    if not isinstance(df, pd.DataFrame):
        raise UserInputError(f"{source} must be a pandas DataFrame, got {type(df).__name__}.")
    desc = description or TableDescription()
    src = df.copy(deep=False).reset_index(drop=True)
    src.columns = [str(c) for c in df.columns]
    names = list(src.columns)
    doubled = sorted(c for c, n in Counter(names).items() if n > 1)
    if doubled:
        raise UserInputError(f"{source} has several columns named "
                             f"{', '.join(map(repr, doubled))}; give each column its own name.")
    problems: list[str] = []

    # --- where each column goes
    mapping: dict[str, str] = {}
    targets = (*SCAN_COLUMNS, *PER_SCAN_COLUMNS)
    # The description's rename serves the per-lesion table too: only its pairs that apply
    # to a scan count here. The ``rename`` argument is read strictly.
    shared = {name: target for name, target in desc.rename.items()
              if name in names and target in targets}
    for name, target in {**shared, **desc.scans_rename, **dict(rename or {})}.items():
        if target not in targets:
            problems.append(f"rename: '{target}' (for '{name}') is neither a scan column "
                            f"({', '.join(SCAN_COLUMNS)}) nor a per-scan contract column.")
        elif name not in names:
            problems.append(f"rename: {source} has no column '{name}' (to read as '{target}'). "
                            f"Columns found: {', '.join(names[:12])}.")
        elif target in mapping.values():
            problems.append(f"rename: two columns are read as '{target}'; keep one of them.")
        elif target in names and target not in mapping:
            problems.append(f"rename: {source} already has a column '{target}'; remove "
                            f"'{name}' from rename or drop one of the two.")
        else:
            mapping[name] = target
    patient_col = desc.patient_column
    lesion_col = desc.lesion_column or (LESION if LESION in names else None)
    special = {patient_col, lesion_col, desc.label_column, LABEL, FROM_INDEX}
    cols: dict[str, pd.Series] = {}
    dropped: list[str] = []
    for name in names:
        target = mapping.get(name, name)
        if name in special:
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in desc.ignore):
            continue
        if target in targets or target in (SIZE, SIZE_KIND):
            cols[target] = src[name]
        else:
            dropped.append(name)
    if dropped:
        warnings.warn(f"{source}: dropping {len(dropped)} column(s) that are neither scan nor "
                      f"per-scan contract columns: {listed(dropped, 12)}. Name them under "
                      "rename, or list "
                      "them under ignore.", UserWarning, stacklevel=2)

    # --- identifiers
    n = len(src)
    if patient_col in names:
        patients = id_text(src[patient_col])
        warn_similar_ids(src[patient_col], source, "patient")
        problems += empty_id_problems(patients, patient_col,
                                      "give every scan its patient.")
    else:
        problems.append(f"{source} has no patient column '{patient_col}'. Columns found: "
                        f"{', '.join(names[:12])}. Name it with the description's 'patient'.")
        patients = pd.Series(pd.NA, index=src.index, dtype="string")
    if lesion_col is not None and lesion_col in names:
        lesion_ids = id_text(src[lesion_col])
        problems += empty_id_problems(lesion_ids, lesion_col,
                                      "give every scan its lesion.")
    else:
        if lesion_col is not None:
            problems.append(f"{source} has no lesion column '{lesion_col}'; correct the "
                            "description's 'lesion', or leave it out (one lesion per patient).")
        lesion_ids = pd.Series("1", index=src.index, dtype="string")

    # --- time
    if WEEKS in cols:
        weeks = _numbers(cols[WEEKS], WEEKS, "weeks", problems)
        empty = weeks.isna() & id_text(cols[WEEKS].astype(object)).isna()
        if empty.any():
            problems.append(f"column '{WEEKS}' is empty in {int(empty.sum())} row(s) "
                            f"({data_rows(empty)}); every scan needs its time.")
        _range(weeks, WEEKS, "weeks", EARLIEST_WEEK, BY_NAME[WEEKS].high, problems)
    else:
        problems.append(f"{source} has no '{WEEKS}' column (the scan's time, weeks since the "
                        "start of treatment); add it, or name yours under rename.")
        weeks = pd.Series(np.nan, index=src.index)

    # --- size
    if not any(c in cols for c in (SIZE, SPD, *VOLUME_UNITS)):
        problems.append(f"{source} has no size column: give each scan's {VOLUME} (ml; or "
                        f"volume_mm3, volume_cm3) or {SPD} (mm^2), or name yours under the "
                        "table description's "
                        "'scans: rename:' (e.g. {your_volume: volume_ml}).")
    size = pd.Series(np.nan, index=src.index)
    kind = pd.Series(np.nan, index=src.index, dtype=object)
    if SIZE in cols or SIZE_KIND in cols:
        size = _numbers(cols.get(SIZE, size), SIZE, "ml or mm^2", problems)
        kind = cols.get(SIZE_KIND, kind).astype("string").str.strip().astype(object)
        bad = size.notna() & ~kind.isin(SIZE_KINDS)
        if bad.any():
            problems.append(f"column '{SIZE_KIND}' must say {' or '.join(SIZE_KINDS)} where "
                            f"'{SIZE}' is given ({data_rows(bad)}).")
        kind = kind.where(size.notna(), np.nan)
        _range(size, SIZE, "ml or mm^2", 0.0, np.inf, problems, low_open=True)
    if SPD in cols:
        v = _numbers(cols[SPD], SPD, "mm^2", problems)
        _range(v, SPD, "mm^2", 0.0, np.inf, problems, low_open=True)
        size, kind = size.mask(v.notna(), v), kind.mask(v.notna(), SPD)
    volumes = [c for c in VOLUME_UNITS if c in cols]
    if len(volumes) > 1:
        problems.append(f"{source} has {len(volumes)} volume columns "
                        f"({', '.join(_user_name(mapping, c) for c in volumes)}); keep one, "
                        "declared in its unit.")
    for name in volumes[:1]:  # volume wins where SPD is also given
        v = _volume_ml(cols[name], name, _user_name(mapping, name), problems)
        size, kind = size.mask(v.notna(), v), kind.mask(v.notna(), VOLUME)

    # --- per-scan contract columns
    per_scan = [c for c in PER_SCAN_COLUMNS if c in cols]
    values: dict[str, pd.Series] = {}
    for c in per_scan:
        col = BY_NAME[c]
        v = _numbers(cols[c], c, col.unit, problems)
        if col.kind == "binary":
            bad = v.notna() & ~v.isin([0.0, 1.0])
            if bad.any():
                problems.append(f"column '{c}' must be 0 or 1; found "
                                f"{', '.join(f'{x:g}' for x in pd.unique(v[bad])[:3])} "
                                f"({data_rows(bad)}).")
        elif col.low is not None:
            _range(v, c, col.unit, col.low, col.high, problems)
        values[c] = v

    # --- lesions: duplicated scans, one size kind, exactly one index scan
    frame = pd.DataFrame({ID: patients.astype(object), LESION: lesion_ids.astype(object),
                          WEEKS: weeks, SIZE: size, SIZE_KIND: kind}, index=src.index)
    known = frame[ID].notna() & frame[LESION].notna()
    keyed = frame[known & frame[WEEKS].notna()]
    repeated = keyed.duplicated([ID, LESION, WEEKS], keep=False)
    if repeated.any():
        twice = keyed[repeated].drop_duplicates([ID, LESION, WEEKS])
        shown = listed(f"{p}/{les} at {w:g} weeks" for p, les, w in
                       twice[[ID, LESION, WEEKS]].itertuples(index=False))
        problems.append(f"{int(repeated.sum())} rows are scans of the same lesion at the same "
                        f"time ({shown}); times must increase "
                        "from scan to scan: keep one row per scan.")
    kinds = frame[known & frame[SIZE_KIND].notna()].groupby([ID, LESION], sort=False)[
        SIZE_KIND].nunique()
    mixed = kinds[kinds > 1]
    if len(mixed):
        problems.append(f"lesions {_lesion_list(mixed.index)} are measured as {VOLUME} at some "
                        f"scans and as {SPD} at others; give each lesion one kind of size (a "
                        "change needs the same measure at both scans).")
    if INDEX in cols:
        flag = _index_flags(cols[INDEX], _user_name(mapping, INDEX), problems)
    elif lesions is not None:
        flag = _index_from_lesions(frame, known, lesions, problems)
    else:
        problems.append(f"{source} has no '{INDEX}' column: mark the scan that showed the "
                        "enlargement with 1 (0 or empty elsewhere), name your column under "
                        "rename, or pass the per-lesion table (lesions=) so that the index is "
                        "the first scan at or after its weeks_on_treatment.")
        flag = pd.Series(0, index=src.index)
    if INDEX in cols or lesions is not None:
        counts = flag[known].groupby([frame.loc[known, ID], frame.loc[known, LESION]],
                                     sort=False).sum()
        for count, what in ((0, "no index scan"), (2, "several index scans")):
            odd = counts[counts == 0] if count == 0 else counts[counts > 1]
            if len(odd) and (INDEX in cols or count > 1):
                problems.append(f"{len(odd)} lesion(s) have {what} ({_lesion_list(odd.index)}); "
                                f"each lesion needs exactly one scan with {INDEX} = 1.")
    if lesions is not None and isinstance(lesions, pd.DataFrame) and ID in lesions.columns:
        _match_lesions(frame, known, flag, lesions, source, problems)
    if problems:
        raise UserInputError(format_problems(f"{source} has problems to correct", problems))

    # --- canonical form
    frame[INDEX] = flag.astype(int)
    for c in per_scan:
        frame[c] = values[c]
    order = pd.MultiIndex.from_frame(frame[[ID, LESION]])
    first = pd.Series(np.arange(n), index=order).groupby(level=[0, 1], sort=False).transform(
        "min").to_numpy()
    frame = frame.assign(_first=first).sort_values(["_first", WEEKS], kind="stable")
    frame = frame.drop(columns="_first").reset_index(drop=True)
    at = frame.loc[frame[INDEX] == 1, [ID, LESION, WEEKS]].set_index([ID, LESION])[WEEKS]
    ref = at.reindex(pd.MultiIndex.from_frame(frame[[ID, LESION]])).to_numpy(dtype=float)
    frame.insert(3, FROM_INDEX, np.round(frame[WEEKS].to_numpy(dtype=float) - ref,
                                         WEEK_DECIMALS))
    frame[WEEKS] = np.round(frame[WEEKS].to_numpy(dtype=float), WEEK_DECIMALS)
    frame = frame[[*CANONICAL, *per_scan]]
    keys = pd.MultiIndex.from_frame(frame[[ID, LESION]]).unique()
    return ScansTable(table=frame, keys=keys, per_scan=tuple(per_scan))


def _user_name(mapping: Mapping[str, str], target: str) -> str:
    """The user's name of a canonical column (``target`` itself when not renamed)."""
    return next((name for name, t in mapping.items() if t == target), target)


def _index_from_lesions(frame: pd.DataFrame, known: pd.Series, lesions: pd.DataFrame,
                        problems: list[str]) -> pd.Series:
    """The index flag: each lesion's first scan at or after its weeks_on_treatment in the
    per-lesion table ``lesions`` (canonical)."""
    flag = pd.Series(0, index=frame.index)
    if not isinstance(lesions, pd.DataFrame) or ID not in lesions.columns \
            or WEEKS not in lesions.columns:
        problems.append(f"lesions= must be the per-lesion table in canonical form, with "
                        f"'{ID}' and '{WEEKS}' (and '{LESION}' when a patient has several).")
        return flag
    when = pd.Series(pd.to_numeric(lesions[WEEKS], errors="coerce").to_numpy(dtype=float),
                     index=lesion_keys(lesions))
    when = when[~when.index.duplicated()]
    keys = pd.MultiIndex.from_frame(frame[[ID, LESION]])
    start = when.reindex(keys).to_numpy(dtype=float)
    eligible = known.to_numpy() & (frame[WEEKS].to_numpy(dtype=float)
                                   >= start - 10.0 ** -WEEK_DECIMALS)
    candidates = frame[eligible]
    if len(candidates):
        first = candidates.sort_values(WEEKS, kind="stable").groupby(
            [ID, LESION], sort=False).head(1).index
        flag.loc[first] = 1
    lesion_keys_seen = keys[known.to_numpy()].unique()
    unknown_time = [k for k in lesion_keys_seen if k in when.index and np.isnan(when[k])]
    if unknown_time:
        problems.append(f"{len(unknown_time)} lesion(s) have no weeks_on_treatment in the "
                        f"per-lesion table: {_lesion_list(unknown_time)}.")
    placed = set(frame.loc[flag == 1, [ID, LESION]].itertuples(index=False, name=None))
    late = [k for k in lesion_keys_seen if k in when.index and not np.isnan(when[k])
            and k not in placed]
    if late:
        problems.append(f"{len(late)} lesion(s) have no scan at or after their "
                        f"weeks_on_treatment in the per-lesion table: {_lesion_list(late)}; "
                        "check the times, or give an index_scan column.")
    return flag


def _casefolded(keys) -> dict[tuple[str, str], tuple[str, str]]:
    """Lesion keys by their case-folded, stripped spelling."""
    return {(str(p).strip().casefold(), str(les).strip().casefold()): (p, les)
            for p, les in keys}


def _match_lesions(frame: pd.DataFrame, known: pd.Series, flag: pd.Series,
                   lesions: pd.DataFrame, source: str, problems: list[str]) -> None:
    """Match the lesions of the scans ``frame`` with those of the per-lesion table
    ``lesions`` (canonical), before anything is fitted on them: a scanned lesion absent from
    the lesion table, no lesion in common, an index scan before the start of treatment or
    more than :data:`INDEX_TOLERANCE_WEEKS` from the lesion table's ``weeks_on_treatment``
    are problems; lesions without scans are one warning with their count. Ids that match
    only when letter case and spaces are ignored are counted in each message."""
    table_keys = lesion_keys(lesions).unique()
    scan_keys = pd.MultiIndex.from_frame(frame.loc[known, [ID, LESION]]).unique()
    in_table, in_scans = set(table_keys), set(scan_keys)
    absent = [k for k in scan_keys if k not in in_table]
    unscanned = [k for k in table_keys if k not in in_scans]
    folded_table, folded_scans = _casefolded(table_keys), _casefolded(scan_keys)

    def by_case(keys, other) -> str:
        close = [k for k in keys if (str(k[0]).strip().casefold(),
                                     str(k[1]).strip().casefold()) in other]
        if not close:
            return ""
        k = close[0]
        twin = other[(str(k[0]).strip().casefold(), str(k[1]).strip().casefold())]
        return (f" {len(close)} of them differ from a lesion of the other table only in letter "
                f"case or spaces (e.g. {k[0]}/{k[1]} and {twin[0]}/{twin[1]}): write each id "
                "the same way in both tables.")

    if absent:
        problems.append(f"{len(absent)} lesion(s) of {source} are not in the per-lesion "
                        f"table: {_lesion_list(absent)}; their scans would be left out. Add "
                        "them to the per-lesion table or correct their ids."
                        + by_case(absent, folded_table))
    if table_keys.size and len(unscanned) == len(table_keys):
        problems.append(f"no lesion of the per-lesion table has a scan in {source} "
                        f"(per-lesion table: {_lesion_list(table_keys)}; scans: "
                        f"{_lesion_list(scan_keys)}); "
                        "check that both tables name patients and lesions the same way."
                        + by_case(unscanned, folded_scans))
    elif unscanned and not problems:
        warnings.warn(f"{len(unscanned)} of {len(table_keys)} lesion(s) of the per-lesion "
                      f"table have no scan in {source} ({_lesion_list(unscanned)}): they have "
                      "no follow-up and reach only the index landmark, without a course."
                      + by_case(unscanned, folded_scans), UserWarning, stacklevel=3)
    index = frame[(flag == 1) & known]
    before = index[index[WEEKS] < 0]
    if len(before):
        problems.append(f"{len(before)} lesion(s) have their index scan before the start of "
                        f"treatment (weeks_on_treatment < 0): "
                        f"{_lesion_list(before[[ID, LESION]].itertuples(index=False))}; the "
                        "index scan is the one whose enlargement raised the question, on "
                        "treatment.")
    if WEEKS in lesions.columns:
        when = pd.Series(pd.to_numeric(lesions[WEEKS], errors="coerce").to_numpy(dtype=float),
                         index=lesion_keys(lesions))
        when = when[~when.index.duplicated()]
        expected = when.reindex(pd.MultiIndex.from_frame(index[[ID, LESION]])).to_numpy()
        gap = np.abs(index[WEEKS].to_numpy(dtype=float) - expected)
        far = index[gap > INDEX_TOLERANCE_WEEKS]
        if len(far):
            pairs = zip(far[[ID, LESION, WEEKS]].head(5).itertuples(index=False),
                        expected[gap > INDEX_TOLERANCE_WEEKS][:5], strict=False)
            shown = ", ".join(f"{p}/{les} (scan {w:g}, per-lesion table {e:g})"
                              for (p, les, w), e in pairs)
            problems.append(f"{len(far)} lesion(s) have an index scan more than "
                            f"{INDEX_TOLERANCE_WEEKS:g} weeks from their weeks_on_treatment in "
                            f"the per-lesion table: {shown}{' ...' if len(far) > 5 else ''}; the "
                            "index scan is the assessment the lesion table describes: correct "
                            "the times or the index_scan flags.")
