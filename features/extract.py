"""pyradiomics feature extraction over an image manifest, in parallel, cached, failure-tolerant.

:func:`extract` reads a manifest (patient_id, mask, one column per sequence holding an
image path), checks every image against its mask, runs pyradiomics with the settings of a
versioned YAML file (default ``features/params/mri.yaml``) and returns one row per patient
with columns ``<sequence>_<pyradiomics feature name>`` (e.g. ``t1c_original_glcm_Contrast``)
plus a table of failures. Any format SimpleITK reads works (NIfTI, NRRD, MHA, ...).

- A cell may name a DICOM series folder instead of a file; SimpleITK (GDCM) reads the
  series. A folder holding several series is a failure that lists them (UID, file count,
  description) unless ``series_uid_<column>`` (``series_uid_t1c``, ``series_uid_mask``)
  picks that column's series, or ``series_uid`` picks one in every folder of the row that
  holds several.
- ``mask_<sequence>`` columns give a sequence its own mask (a lesion drawn on that
  sequence); an empty cell falls back to ``mask``.
- A mask on another voxel grid than its image is a failure, unless the sequence's settings
  hold pyradiomics' ``correctMask: true``: the mask is then resampled onto the image's grid
  by nearest neighbour (the lesion must lie inside the image), and the result lists it in
  ``mask_resampled``.
- An empty manifest cell means the sequence was not acquired: no failure, its columns stay
  NaN. A patient appears in ``features`` when at least one sequence was extracted.
- Several lesions: the settings' ``lesions:`` (or ``lesions=``) makes each connected
  component of the label (``components``, SimpleITK's ConnectedComponent with the settings'
  ``lesion_connectivity``, parts under ``min_lesion_ml`` dropped and counted) or each label
  value (``labels``) a lesion of its own; or the manifest is one row per lesion
  (``lesion_id``, each row its own mask or its own ``label`` value in a shared mask). The
  features, failures and resampling notes then carry ``lesion_id``, and ``lesion_map``
  gives each lesion's label, voxels, volume (ml), centroid and bounding box (mm).
- A bad case does not sink the batch: a missing or unreadable file, a mask on another grid
  (without ``correctMask``), an empty mask, a mask with several labels, an ambiguous DICOM
  folder, or a pyradiomics error becomes a row of ``failures`` (patient_id, sequence,
  reason; the mask column, ``mask`` or ``mask_<sequence>``, for problems of a mask itself).
- Problems of the manifest itself raise :class:`~features.errors.UserInputError`.
- Patients run one after the other, in ``jobs`` local processes (joblib), or on a
  dask.distributed cluster (``scheduler``: an address, or ``"local"``); workers read the
  files themselves, so every worker must see the manifest's paths.
- Cache: one JSON file per (image, mask, settings) under ``cache_dir``, named by the
  SHA-256 of the image's bytes (of every file of a DICOM series, with its UID), the mask's
  bytes, the sequence's resolved settings (``correctMask`` included), the resampling
  method, the settings file's version and the pyradiomics version. A re-run with the same
  files and settings reads them instead of recomputing, so a run interrupted half-way
  resumes where it stopped. Default folder: ``.radiomics_cache`` beside the manifest (the
  command line: beside the output file). Failures are not cached. Delete the folder to
  clear it. Without a cache (``use_cache=False``) no file is hashed.

Command line: ``python -m features.extract --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from features.choices import (
    CACHE_FOLDER,
    DASK_INSTALL,
    DEFAULT_PARAMS,
    LESION_MODES,
    add_lesions_option,
)
from features.contract import ID, LESION, checked_ids, checked_lesions, id_text
from features.errors import UserInputError, hide_home, listed
from features.tables import atomic_path, remove_stale_temporaries, write_table_atomic
from features.yamlfile import load_yaml

MASK = "mask"
#: prefix of a per-sequence mask column (``mask_flair``)
MASK_PREFIX = "mask_"
#: the column choosing a DICOM series in every folder cell of a row
SERIES_UID = "series_uid"
#: prefix of a column choosing the DICOM series of one column (``series_uid_t1c``)
SERIES_PREFIX = "series_uid_"
#: bump when the cache entries' content or meaning changes
CACHE_FORMAT = 2
#: how a mask on another grid is brought onto its image's grid (part of the cache key)
MASK_RESAMPLING = "sitk.Resample nearest neighbour onto the image grid, identity transform"
#: tolerance of the image/mask geometry check: spacing and origin as a fraction of the
#: image's voxel spacing, direction cosines as an absolute difference
GEOMETRY_TOLERANCE = 1e-3
FAILURE_COLUMNS = (ID, "sequence", "reason")
#: the manifest column giving a row's own label value in a shared mask
LABEL_COLUMN = "label"
#: voxel neighbourhoods of ``lesion_connectivity``: SimpleITK ConnectedComponent's
#: fullyConnected (face: 6 neighbours in 3D, sharing a face; full: 26, sharing a face, an
#: edge or a corner)
CONNECTIVITY = {"face": False, "full": True}
#: ml; components smaller than this are dropped (and counted): 0.02 ml is 20 voxels of
#: 1 mm^3, the settings' minimumROISize after resampling to 1 mm, below which texture is
#: not computed anyway
DEFAULT_MIN_LESION_ML = 0.02
#: the lesion map written beside the features: one row per lesion
LESION_MAP_COLUMNS = (ID, LESION, "label", "voxels", "volume_ml",
                      "centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
                      "bbox_min_x_mm", "bbox_min_y_mm", "bbox_min_z_mm",
                      "bbox_max_x_mm", "bbox_max_y_mm", "bbox_max_z_mm")
DROPPED_COLUMNS = (ID, "label", "voxels", "volume_ml")
RESAMPLED_COLUMNS = (ID, "sequence", "mask", "reason")
SERIES_COLUMNS = (ID, "column", "series_uid", "files")
#: the ``scheduler`` value that starts a LocalCluster on this machine
LOCAL_SCHEDULER = "local"

_PYRADIOMICS_KEYS = ("setting", "imageType", "featureClass", "voxelSetting")
_OWN_KEYS = ("version", "mask_single_label", "max_bins", "sequences", "lesions",
             "min_lesion_ml", "lesion_connectivity")
_OVERRIDE_KEYS = ("setting", "imageType", "featureClass")
_SEQUENCE_NAME = re.compile(r"^[A-Za-z0-9]+$")


# --------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class ExtractionSettings:
    """The parsed settings file.

    ``base`` is the pyradiomics parameter dict (setting, imageType, featureClass) for
    sequences without an override; ``overrides`` maps a sequence to its override.
    """

    source: str
    version: str
    base: dict
    overrides: dict = field(default_factory=dict)
    mask_single_label: bool = True
    max_bins: int | None = 1000
    lesions: str = "whole"
    min_lesion_ml: float = DEFAULT_MIN_LESION_ML
    lesion_connectivity: str = "face"

    def for_sequence(self, sequence: str) -> dict:
        """The pyradiomics parameter dict for ``sequence`` (base merged with its override)."""
        params = copy.deepcopy(self.base)
        override = self.overrides.get(sequence) or {}
        if "setting" in override:
            params.setdefault("setting", {}).update(copy.deepcopy(override["setting"]))
        for key in ("imageType", "featureClass"):
            if key in override:
                params[key] = copy.deepcopy(override[key])
        params.setdefault("setting", {})["additionalInfo"] = False
        return params

    def correct_mask(self, sequence: str) -> bool:
        """Whether ``sequence``'s settings allow resampling a mask onto its grid
        (pyradiomics' ``correctMask`` in the ``setting:`` block)."""
        return bool(self.for_sequence(sequence)["setting"].get("correctMask", False))


def _validate_pyradiomics(params: dict, where: str) -> None:
    """Run pyradiomics' own schema check on ``params``; UserInputError on failure.

    The checked extractor is kept (:func:`_extractor`), so settings already checked in
    this process cost nothing the next time, and an in-process extraction reuses it.
    """
    try:
        with _quiet_radiomics():
            _extractor(json.dumps(params, sort_keys=True))
    except Exception as exc:  # pykwalify's SchemaError, or pyradiomics' checks
        msg = " ".join(str(exc).split())
        raise UserInputError(f"{where}: pyradiomics rejects these settings: {msg}") from None


def load_settings(params: str | Path = DEFAULT_PARAMS) -> ExtractionSettings:
    """Read and check a settings YAML file (see ``features/params/mri.yaml`` for the format)."""
    path = Path(params)
    if not path.is_file():
        raise UserInputError(f"settings file not found: {path}")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"), f"the settings file {path}")
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise UserInputError(f"{path} must hold a mapping with 'setting', 'featureClass', ...")
    unknown = [k for k in raw if k not in _PYRADIOMICS_KEYS + _OWN_KEYS]
    if unknown:
        raise UserInputError(
            f"{path}: unknown key(s) {', '.join(map(str, unknown))}; expected pyradiomics' "
            f"{', '.join(_PYRADIOMICS_KEYS)} or the project's {', '.join(_OWN_KEYS)}.")
    if "version" not in raw:
        raise UserInputError(f"{path}: add a 'version:' key (bump it when settings change).")
    base = {k: raw[k] for k in _PYRADIOMICS_KEYS if raw.get(k) is not None}
    overrides = raw.get("sequences") or {}
    if not isinstance(overrides, dict):
        raise UserInputError(f"{path}: 'sequences' must map sequence names to overrides.")
    for seq, override in overrides.items():
        override = override or {}
        bad = [k for k in override if k not in _OVERRIDE_KEYS] if isinstance(override, dict) \
            else ["(not a mapping)"]
        if bad:
            raise UserInputError(
                f"{path}: sequences.{seq} may hold only {', '.join(_OVERRIDE_KEYS)}; found "
                f"{', '.join(map(str, bad))}.")
        overrides[seq] = override
    max_bins = raw.get("max_bins", 1000)
    if max_bins is not None and (not isinstance(max_bins, int) or max_bins <= 0):
        raise UserInputError(f"{path}: max_bins must be a positive integer or null.")
    lesions = checked_lesion_mode(raw.get("lesions", "whole"), f"{path}: lesions")
    min_ml = raw.get("min_lesion_ml", DEFAULT_MIN_LESION_ML)
    if isinstance(min_ml, bool) or not isinstance(min_ml, int | float) or not min_ml >= 0:
        raise UserInputError(f"{path}: min_lesion_ml must be a volume in ml, 0 or more "
                             f"(default {DEFAULT_MIN_LESION_ML}), got {min_ml!r}.")
    connectivity = raw.get("lesion_connectivity", "face")
    if connectivity not in CONNECTIVITY:
        raise UserInputError(f"{path}: lesion_connectivity must be one of "
                             f"{', '.join(CONNECTIVITY)}, got {connectivity!r}.")
    settings = ExtractionSettings(
        source=str(path), version=str(raw["version"]), base=base, overrides=overrides,
        mask_single_label=bool(raw.get("mask_single_label", True)), max_bins=max_bins,
        lesions=lesions, min_lesion_ml=float(min_ml), lesion_connectivity=connectivity)
    _validate_pyradiomics(settings.for_sequence(""), f"{path} (base settings)")
    for seq in overrides:
        _validate_pyradiomics(settings.for_sequence(seq), f"{path} (sequences.{seq})")
    return settings


def checked_lesion_mode(mode: Any, where: str = "lesions") -> str:
    """``mode`` if it is one of :data:`LESION_MODES`; :class:`UserInputError` otherwise."""
    if mode not in LESION_MODES:
        raise UserInputError(f"{where} must be one of {', '.join(LESION_MODES)} (whole: the "
                             f"mask's label is one lesion; components: each connected part of "
                             f"it; labels: each label value), got {mode!r}.")
    return mode


# --------------------------------------------------------------------------------------
# manifest


def _classify_columns(columns: list[str], source: str) -> tuple[list[str], list[str], list[str]]:
    """Split manifest columns into sequences, per-sequence masks and series-UID columns."""
    mask_cols = [c for c in columns if c.startswith(MASK_PREFIX)]
    uid_cols = [c for c in columns if c == SERIES_UID or c.startswith(SERIES_PREFIX)]
    seqs = [c for c in columns
            if c not in (ID, LESION, LABEL_COLUMN, MASK, *mask_cols, *uid_cols)]
    orphans = [c for c in mask_cols if c[len(MASK_PREFIX):] not in seqs]
    if orphans:
        raise UserInputError(
            f"{source}: mask column(s) {', '.join(orphans)} name no sequence column; a "
            f"'{MASK_PREFIX}<sequence>' column holds the mask of that sequence (sequence "
            f"columns found: {', '.join(seqs) or '(none)'}).")
    path_cols = {MASK, *mask_cols, *seqs}
    orphans = [c for c in uid_cols if c != SERIES_UID and c[len(SERIES_PREFIX):] not in path_cols]
    if orphans:
        raise UserInputError(
            f"{source}: series column(s) {', '.join(orphans)} name no image or mask column; "
            f"'{SERIES_PREFIX}<column>' picks the DICOM series of that column, "
            f"'{SERIES_UID}' of every DICOM folder in the row.")
    return seqs, mask_cols, uid_cols


def read_manifest(manifest: pd.DataFrame | str | Path, base_dir: str | Path | None = None,
                  sequences: list[str] | None = None) -> tuple[pd.DataFrame, Path, list[str]]:
    """Check a manifest; return it with absolute paths, its base folder and its sequences.

    Relative paths resolve against the manifest's folder when ``manifest`` is a path, else
    against ``base_dir`` (default: the working directory). Sequences are every column but
    patient_id, mask, ``mask_<sequence>``, ``series_uid`` and ``series_uid_<column>``,
    unless ``sequences`` names a subset. The returned table holds patient_id, mask, the
    sequences, then the ``mask_<sequence>`` columns of those sequences and the series
    columns (UIDs as text, None when empty).
    """
    if isinstance(manifest, str | Path):
        path = Path(manifest)
        if not path.is_file():
            raise UserInputError(f"manifest not found: {path}")
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise UserInputError(f"cannot read the manifest {path} as CSV: {exc}") from None
        base = path.resolve().parent if base_dir is None else Path(base_dir).resolve()
        source = f"manifest {path}"
    elif isinstance(manifest, pd.DataFrame):
        df = manifest.copy()
        base = Path(base_dir if base_dir is not None else os.getcwd()).resolve()
        source = "the manifest"
    else:
        raise UserInputError(
            f"manifest must be a DataFrame or a CSV path, got {type(manifest).__name__}.")
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in (ID, MASK) if c not in df.columns]
    if missing:
        raise UserInputError(
            f"{source} has no {' and no '.join(repr(c) for c in missing)} column; a manifest "
            f"needs '{ID}', '{MASK}' and one column per sequence (e.g. t1c, flair, adc, rcbv) "
            f"holding image paths. Columns found: {', '.join(df.columns[:12]) or '(none)'}.")
    available, mask_cols, uid_cols = _classify_columns(list(df.columns), source)
    if sequences is not None:
        absent = [s for s in sequences if s not in available]
        if absent:
            raise UserInputError(
                f"{source} has no column for sequence(s) {', '.join(absent)}; sequence "
                f"columns found: {', '.join(available) or '(none)'}.")
        seqs = list(dict.fromkeys(sequences))
    else:
        seqs = available
    if not seqs:
        raise UserInputError(
            f"{source} has no sequence column: add one column per sequence (e.g. t1c, flair, "
            "adc, rcbv) holding the image path of each patient.")
    bad = [s for s in seqs if not _SEQUENCE_NAME.match(s)]
    if bad:
        raise UserInputError(
            f"{source}: sequence column name(s) {', '.join(map(repr, bad))} must hold only "
            "letters and digits (they prefix the feature names); rename them, or choose the "
            "sequence columns with `sequences` (--sequences).")

    keys = _manifest_keys(df, source)
    own_masks = [f"{MASK_PREFIX}{s}" for s in seqs if f"{MASK_PREFIX}{s}" in mask_cols]
    path_cols = [MASK, *seqs, *own_masks]
    records = []
    for key, paths, uids in zip(keys.to_dict("records"), df[path_cols].itertuples(index=False),
                                df[uid_cols].itertuples(index=False), strict=True):
        record = dict(key)
        record.update({c: _resolve(v, base) for c, v in zip(path_cols, paths, strict=True)})
        record.update({c: _cell(v) for c, v in zip(uid_cols, uids, strict=True)})
        records.append(record)
    return (pd.DataFrame(records, columns=[*keys.columns, *path_cols, *uid_cols],
                         dtype=object), base, seqs)


def _manifest_keys(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """patient_id, and lesion_id and label when the manifest has them: one row per patient,
    or with ``lesion_id`` one row per lesion (each with its own mask, or its own ``label``
    value in a shared mask). Labels are whole numbers above 0, None when empty."""
    keys = pd.DataFrame(index=df.index)
    if LESION in df.columns:
        ids = id_text(df[ID])
        if ids.isna().any():
            rows = ", ".join(str(i + 2) for i in np.flatnonzero(ids.isna())[:5])
            raise UserInputError(f"{source}: '{ID}' is empty in line(s) {rows}; give every "
                                 "row its patient.")
        keys[ID] = ids.astype(object)
        keys[LESION] = checked_lesions(ids, df[LESION], source)
    else:
        keys[ID] = checked_ids(df[ID], source, "one row per patient, or add a "
                               f"'{LESION}' column for one row per lesion")
    if LABEL_COLUMN in df.columns:
        cells = [_cell(v) for v in df[LABEL_COLUMN]]
        values = pd.to_numeric(pd.Series(cells, index=df.index, dtype=object),
                               errors="coerce")
        bad = [i for i, (c, v) in enumerate(zip(cells, values, strict=True))
               if c is not None and not (np.isfinite(v) and v == round(v) and v > 0)]
        if bad:
            shown = ", ".join(f"line {i + 2}: {cells[i]!r}" for i in bad[:5])
            raise UserInputError(
                f"{source}: '{LABEL_COLUMN}' must be a whole number above 0 (the row's label "
                f"value in its mask) or empty (the settings' label); {shown}.")
        keys[LABEL_COLUMN] = [None if c is None else int(v)
                              for c, v in zip(cells, values, strict=True)]
    return keys


def manifest_paths(manifest: str | Path) -> list[Path]:
    """Every image, mask or DICOM folder path a manifest file lists (resolved as
    :func:`read_manifest` resolves them), for the guard that keeps outputs off the inputs.
    Lenient: a manifest that cannot be read lists nothing here (reading it for extraction
    then says why)."""
    path = Path(manifest)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError):
        return []
    base = path.resolve().parent
    columns = [c for c in df.columns if str(c).strip() not in (ID, LESION, LABEL_COLUMN)
               and not str(c).strip().startswith(SERIES_UID)]
    listed = {_resolve(v, base) for c in columns for v in df[c].tolist()}
    return [Path(p) for p in sorted(p for p in listed if p)]


def _cell(value: Any) -> str | None:
    """A manifest cell as a stripped string, None when empty or NaN."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text if text and text.lower() not in ("nan", "none") else None


def _resolve(value: Any, base: Path) -> str | None:
    text = _cell(value)
    if text is None:
        return None
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else base / path)


def _series_choice(row: dict, column: str) -> tuple[str | None, bool]:
    """(series UID, whether the column's own ``series_uid_<column>`` gave it) for a cell."""
    own = row.get(f"{SERIES_PREFIX}{column}")
    if own is not None:
        return own, True
    return row.get(SERIES_UID), False


# --------------------------------------------------------------------------------------
# reading images: files and DICOM series (runs in the worker processes)


class _CaseProblem(Exception):
    """A problem of one image or mask: becomes a failure row, never an error."""


@dataclass(frozen=True)
class _Located:
    """The file(s) of one manifest cell: one file, or a DICOM series' files in slice order."""

    files: tuple[str, ...]
    series_uid: str | None = None

    def digest(self) -> str:
        """SHA-256 of the file's bytes, or of the series' UID and every file's bytes."""
        if self.series_uid is None:
            return _sha256(self.files[0])
        h = hashlib.sha256(f"dicom-series:{self.series_uid}".encode())
        for name in self.files:
            h.update(bytes.fromhex(_sha256(name)))
        return h.hexdigest()

    def read(self):
        """The volume as a SimpleITK image."""
        import SimpleITK as sitk

        if self.series_uid is None:
            return sitk.ReadImage(self.files[0])
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(list(self.files))
        return reader.Execute()


def _series_description(first_file: str) -> str:
    """The series description (0008|103e) in a DICOM file's header, '' when absent."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(first_file)
    try:
        reader.ReadImageInformation()
        if reader.HasMetaDataKey("0008|103e"):
            return reader.GetMetaData("0008|103e").strip()
    except RuntimeError:
        pass
    return ""


def list_dicom_series(folder: str | Path) -> list[dict]:
    """The DICOM series in ``folder`` (not its subfolders): one dict each with
    ``series_uid``, ``files`` (count) and ``description`` (0008|103e, '' when absent)."""
    import SimpleITK as sitk

    out = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)):
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
        out.append({"series_uid": uid, "files": len(files),
                    "description": _series_description(files[0]) if files else ""})
    return out


def _listing(series: list[dict]) -> str:
    return "; ".join(
        f"{s['series_uid']} ({s['files']} file{'s' if s['files'] != 1 else ''}"
        + (f", '{s['description']}'" if s["description"] else "") + ")" for s in series)


def _locate(path: str, series_uid: str | None, own_uid: bool, column: str) -> _Located:
    """Where the volume of a manifest cell lives; :class:`_CaseProblem` when it cannot.

    A folder's series: the one its column's own ``series_uid_<column>`` names, else the one
    ``series_uid`` names when the folder holds several, else its only one.
    """
    import SimpleITK as sitk

    if os.path.isfile(path):
        if series_uid is not None and own_uid:
            raise _CaseProblem(
                f"{SERIES_PREFIX}{column} picks series {series_uid} but {path} is a file, not "
                "a DICOM folder; give the series' folder or leave the UID empty")
        return _Located((path,))
    if not os.path.isdir(path):
        raise _CaseProblem(f"file not found: {path}")
    uids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(path))
    if not uids:
        raise _CaseProblem(f"no DICOM series in the folder {path}")
    if series_uid in uids:
        chosen = series_uid
    elif series_uid is not None and (own_uid or len(uids) > 1):
        raise _CaseProblem(f"the folder {path} holds no DICOM series {series_uid}; it "
                           f"holds: {_listing(list_dicom_series(path))}")
    elif len(uids) > 1:
        raise _CaseProblem(
            f"the folder {path} holds {len(uids)} DICOM series: "
            f"{_listing(list_dicom_series(path))}; pick one with a '{SERIES_PREFIX}{column}' "
            f"(or '{SERIES_UID}') column in the manifest")
    else:
        chosen = uids[0]
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path, chosen)
    return _Located(tuple(files), chosen)


# --------------------------------------------------------------------------------------
# per-patient work (runs in the worker processes)


class _Quiet:
    """Silence pyradiomics and pykwalify, one SimpleITK thread; restore all afterwards.

    One thread is also the faster choice in-process: the volumes are small and SimpleITK's
    thread start-up costs more than it saves.
    """

    def __enter__(self):
        import radiomics
        import SimpleITK as sitk

        self._threads = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)

        self._handler = getattr(radiomics, "handler", None)
        self._level = self._handler.level if self._handler is not None else None
        radiomics.setVerbosity(60)
        self._pyk = logging.getLogger("pykwalify")
        self._pyk_level = self._pyk.level
        self._pyk.setLevel(logging.CRITICAL + 10)
        return self

    def __exit__(self, *exc):
        import SimpleITK as sitk

        sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(self._threads)
        if self._handler is not None:
            self._handler.setLevel(self._level)
        self._pyk.setLevel(self._pyk_level)
        return False


def _quiet_radiomics() -> _Quiet:
    return _Quiet()


def _init_worker() -> None:
    """One SimpleITK thread per worker process and no pyradiomics log output."""
    import radiomics
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    radiomics.setVerbosity(60)
    logging.getLogger("pykwalify").setLevel(logging.CRITICAL + 10)


@functools.lru_cache(maxsize=32)
def _extractor(params_json: str):
    from radiomics import featureextractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pykwalify's loader
        return featureextractor.RadiomicsFeatureExtractor(json.loads(params_json))


def _run_pyradiomics(image, mask, params_json: str) -> dict[str, float]:
    """pyradiomics' features of ``image`` in ``mask`` (diagnostics dropped), as floats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            result = _extractor(params_json).execute(image, mask)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _short_message(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # SimpleITK messages end with the useful line; keep it short
    text = lines[-1] if lines else type(exc).__name__
    return text[:300]


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in values) + ")"


def check_geometry(image, mask, sequence: str = "image",
                   tolerance: float = GEOMETRY_TOLERANCE) -> str | None:
    """Why ``mask`` does not sit on ``image``'s voxel grid, or None when it does.

    Checks dimension, size, spacing and origin (within ``tolerance`` x the image's
    spacing) and direction (within ``tolerance``); the message names the property and
    both values.
    """
    if image.GetDimension() != mask.GetDimension():
        return (f"mask is {mask.GetDimension()}D but the {sequence} image is "
                f"{image.GetDimension()}D")
    if image.GetSize() != mask.GetSize():
        return (f"mask size {mask.GetSize()} voxels differs from the {sequence} image's "
                f"{image.GetSize()}")
    spacing = np.asarray(image.GetSpacing())
    tol_mm = tolerance * spacing.min()
    if not np.allclose(mask.GetSpacing(), spacing, rtol=0, atol=tol_mm):
        return (f"mask spacing {_fmt(mask.GetSpacing())} mm differs from the {sequence} "
                f"image's {_fmt(spacing)} mm")
    if not np.allclose(mask.GetOrigin(), image.GetOrigin(), rtol=0, atol=tol_mm):
        return (f"mask origin {_fmt(mask.GetOrigin())} mm differs from the {sequence} "
                f"image's {_fmt(image.GetOrigin())} mm")
    if not np.allclose(mask.GetDirection(), image.GetDirection(), rtol=0, atol=tolerance):
        return (f"mask direction {_fmt(mask.GetDirection())} differs from the {sequence} "
                f"image's {_fmt(image.GetDirection())}")
    return None


def _mask_problem(mask_arr: np.ndarray, label: int, single_label: bool) -> str | None:
    """Why a mask array cannot serve for ``label``, or None."""
    if not np.issubdtype(mask_arr.dtype, np.integer):
        if not np.all(np.isfinite(mask_arr)) or np.any(mask_arr != np.round(mask_arr)):
            return "mask holds non-integer values; a label map (0 background, 1 lesion) is expected"
    labels = np.unique(mask_arr[mask_arr != 0])
    if labels.size == 0:
        return "mask is empty: no voxel is labelled"
    shown = listed((f"{v:g}" for v in labels), 8)
    if single_label and labels.size > 1:
        return (f"mask holds several labels ({shown}) where one is expected (label {label}); "
                "give one lesion per mask, or set mask_single_label: false in the settings")
    if label not in labels:
        return f"mask has no voxel with label {label} (labels found: {shown})"
    return None


def _too_many_bins(image, lesion: Callable[[], np.ndarray], params: dict,
                   max_bins: int | None, sequence: str) -> str | None:
    """Why the lesion's intensities need more than ``max_bins`` bins at the settings'
    binWidth, or None; ``lesion()`` gives the flat indices of the lesion's voxels on the
    image's grid (computed only when the check applies)."""
    setting = params.get("setting", {})
    if max_bins is None or setting.get("normalize", False) or setting.get("binCount"):
        return None
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image).ravel()[lesion()]
    width = float(setting.get("binWidth", 25))
    n_bins = (float(values.max()) - float(values.min())) / width
    if n_bins > max_bins:
        return (f"intensities in the mask span {values.min():.4g} to {values.max():.4g}, "
                f"{n_bins:.0f} bins at binWidth {width:g} (limit {max_bins}); check the "
                f"{sequence} map's unit (ADC in 10^-3 mm^2/s) or the binWidth")
    return None


def _grid(img) -> str:
    return f"{img.GetSize()} voxels of {_fmt(img.GetSpacing())} mm"


def _lesion_outside(image, mask, mask_arr: np.ndarray, label: int, sequence: str) -> str | None:
    """Why the lesion's voxels do not all lie inside ``image``'s extent, or None."""
    idx = np.argwhere(mask_arr == label)  # (z, y, x)
    lo, hi = idx.min(axis=0)[::-1], idx.max(axis=0)[::-1]
    size = np.asarray(image.GetSize(), dtype=float)
    for corner in np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1).T:
        point = mask.TransformContinuousIndexToPhysicalPoint([float(v) for v in corner])
        at = np.asarray(image.TransformPhysicalPointToContinuousIndex(point))
        if np.any(at < -0.5 - GEOMETRY_TOLERANCE) or np.any(at > size - 0.5 + GEOMETRY_TOLERANCE):
            return (f"the lesion reaches {_fmt(point)} mm, outside the {sequence} image's "
                    "field of view")
    return None


def _mask_on_grid(image, mask, mask_arr: np.ndarray, label: int, sequence: str,
                  mask_column: str, correct: bool):
    """``(mask, array, resampling note)`` on ``image``'s grid; :class:`_CaseProblem` when
    the mask sits elsewhere and the settings do not allow resampling, or it cannot work."""
    import SimpleITK as sitk

    problem = check_geometry(image, mask, sequence)
    if problem is None:
        return mask, mask_arr, None
    same_dim = image.GetDimension() == mask.GetDimension()
    if not correct:
        hint = ("; to resample the mask onto the image's grid (nearest neighbour) when both "
                "cover the same physical space, set correctMask: true in the setting: block "
                "of the params YAML") if same_dim else ""
        raise _CaseProblem(problem + hint)
    if not same_dim:
        raise _CaseProblem(problem)
    outside = _lesion_outside(image, mask, mask_arr, label, sequence)
    if outside:
        raise _CaseProblem(f"{problem}, and the mask cannot be resampled onto it (correctMask): "
                           f"{outside}")
    resampled = sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0,
                              mask.GetPixelID())
    arr = sitk.GetArrayFromImage(resampled)
    if not np.any(arr == label):
        raise _CaseProblem(f"{problem}; resampled onto the {sequence} image's grid "
                           f"({_grid(image)}; correctMask) the mask keeps no voxel of label "
                           f"{label}")
    note = f"{mask_column} resampled from {_grid(mask)} to the {sequence} grid, {_grid(image)}"
    return resampled, arr, note


def _cache_read(path: Path) -> tuple[dict[str, float], dict] | None:
    """(features, meta) of a cache entry, None when absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            entry = json.load(fh)
        meta = entry.get("meta", {})
        if not isinstance(meta, dict):
            return None
        return {k: float(v) for k, v in entry["features"].items()}, meta
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _cache_write(path: Path, features: dict[str, float], meta: dict) -> None:
    """Write a cache entry atomically (:func:`features.tables.atomic_path`), without
    searching the folder for a killed run's temporary files at every write, which would
    cost a listing of the whole cache per entry: :func:`remove_stale_cache_temporaries`
    does that once per extraction."""
    try:
        with atomic_path(path, remove_stale=False) as tmp:
            tmp.write_text(json.dumps({"meta": meta, "features": features}), encoding="utf-8")
    except OSError:
        pass  # a cache entry that cannot be written is recomputed next time


def remove_stale_cache_temporaries(cache_dir: str | Path) -> int:
    """Remove the temporary files a killed run left in ``cache_dir`` (``.*.tmp`` unchanged
    for :data:`features.tables.STALE_TEMPORARY_S` seconds; younger ones may belong to a
    writer still running); return how many were removed."""
    return len(remove_stale_temporaries(Path(cache_dir), ".*.tmp"))


@dataclass
class _Task:
    """One manifest row's work: paths only (workers read their own files)."""

    patient_id: str
    images: dict[str, str | None]  # sequence -> file or DICOM folder
    masks: dict[str, str | None]  # mask column (mask, mask_<sequence>) -> file or folder
    series: dict[str, tuple[str | None, bool]]  # column -> (series UID, from its own column)
    params: dict[str, str]  # sequence -> canonical JSON of the pyradiomics params
    correct_mask: dict[str, bool]  # sequence -> correctMask
    mask_single_label: bool
    max_bins: int | None
    cache_dir: str | None
    version: str = ""
    lesion_id: str | None = None  # the manifest's lesion_id of this row
    label: int | None = None  # the manifest's label of this row (overrides the settings')
    lesions: str = "whole"  # LESION_MODES
    min_lesion_ml: float = DEFAULT_MIN_LESION_ML
    connectivity: str = "face"  # CONNECTIVITY
    base_label: int = 1  # the base settings' label
    row: int = 0  # the manifest row (outcomes come back in any order)

    def mask_column(self, sequence: str) -> str:
        """The mask column serving ``sequence``: its own when given, else ``mask``."""
        own = f"{MASK_PREFIX}{sequence}"
        return own if self.masks.get(own) is not None else MASK

    @property
    def row_lesion(self) -> str:
        """The lesion id a whole-mask row's features and failures carry."""
        return self.lesion_id if self.lesion_id is not None else "1"


@dataclass
class _Outcome:
    patient_id: str
    row: int = 0
    features: dict[str, dict[str, float]] = field(default_factory=dict)  # lesion -> features
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # lesion, column, why
    cache_hits: int = 0
    resampled: list[tuple[str, str, str, str]] = field(default_factory=list)  # lesion, seq,
    #                                                                   mask column, note
    series: list[tuple[str, str, int]] = field(default_factory=list)  # column, UID, files
    lesions: list[dict] = field(default_factory=list)  # lesion map rows, without patient_id
    dropped: list[dict] = field(default_factory=list)  # components under min_lesion_ml

    def fail(self, lesion: str, column: str, reason: str) -> None:
        self.failures.append((lesion, column, reason))


def _cache_key(image_sha: str, mask_sha: str, params_json: str, task: _Task,
               image_uid: str | None, mask_uid: str | None) -> str:
    import radiomics

    blob = json.dumps({
        "format": CACHE_FORMAT, "pyradiomics": radiomics.__version__, "version": task.version,
        "image": image_sha, "mask": mask_sha, "params": params_json,
        "image_series": image_uid, "mask_series": mask_uid,
        "mask_resampling": MASK_RESAMPLING,
        "mask_single_label": task.mask_single_label, "max_bins": task.max_bins,
        "geometry_tolerance": GEOMETRY_TOLERANCE}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _extract_patient(task: _Task, in_worker: bool = False) -> _Outcome:
    """Extract every lesion and sequence of one manifest row; a bad case becomes a failure,
    never an error."""
    if in_worker:
        _init_worker()
    try:
        return _extract_patient_unsafe(task)
    except Exception as exc:  # anything unforeseen stays this patient's problem
        return _lost(task, f"unexpected error: {type(exc).__name__}: {_short_message(exc)}")


@dataclass
class _Mask:
    located: _Located
    sha: str
    image: Any
    array: np.ndarray


def _load_mask(task: _Task, column: str, out: _Outcome) -> _Mask | None:
    """The mask of ``column``, or None after recording why it cannot serve."""
    import SimpleITK as sitk

    path = task.masks.get(column)
    if path is None:
        out.fail(task.row_lesion, column, "no mask path in the manifest")
        return None
    try:
        located = _locate(path, *task.series.get(column, (None, False)), column)
        sha = located.digest() if task.cache_dir else ""  # the hash only keys the cache
        mask = located.read()
    except _CaseProblem as exc:
        out.fail(task.row_lesion, column, str(exc))
        return None
    except (OSError, RuntimeError) as exc:
        out.fail(task.row_lesion, column, f"cannot read the mask {path}: {_short_message(exc)}")
        return None
    if mask.GetNumberOfComponentsPerPixel() != 1:
        out.fail(task.row_lesion, column, f"mask has {mask.GetNumberOfComponentsPerPixel()} "
                                          "components per voxel; a scalar label map is expected")
        return None
    if located.series_uid is not None:
        out.series.append((column, located.series_uid, len(located.files)))
    return _Mask(located, sha, mask, sitk.GetArrayFromImage(mask))


# --------------------------------------------------------------------------------------
# lesions of a mask (runs in the worker processes)


def _physical(image, index) -> list[float]:
    """The physical point (mm) of a voxel index, padded to x, y, z with NaN for 2D."""
    point = list(image.TransformIndexToPhysicalPoint([int(i) for i in index]))
    return point + [float("nan")] * (3 - len(point))


def lesion_geometry(label_image, labels: Iterable[int]) -> dict[int, dict]:
    """Voxels, volume (ml), centroid and bounding box (physical mm) of each label value of
    ``label_image`` (a SimpleITK label map), by SimpleITK's LabelShapeStatisticsImageFilter.

    The bounding box is given by the physical points of the centres of its first and last
    voxels (index order); for an image whose axes are the scanner's, its min and max.
    """
    import SimpleITK as sitk

    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(label_image, sitk.sitkUInt32))
    dim = label_image.GetDimension()
    voxel_ml = float(np.prod(label_image.GetSpacing())) / 1000.0
    out = {}
    for value in labels:
        box = stats.GetBoundingBox(int(value))
        start, size = box[:dim], box[dim:]
        first = _physical(label_image, start)
        last = _physical(label_image, [s + n - 1 for s, n in zip(start, size, strict=True)])
        centroid = list(stats.GetCentroid(int(value))) + [float("nan")] * (3 - dim)
        n = int(stats.GetNumberOfPixels(int(value)))
        out[int(value)] = {
            "voxels": n, "volume_ml": n * voxel_ml,
            **{f"centroid_{a}_mm": c for a, c in zip("xyz", centroid, strict=True)},
            **{f"bbox_min_{a}_mm": min(f, t) for a, f, t in zip("xyz", first, last,
                                                                 strict=True)},
            **{f"bbox_max_{a}_mm": max(f, t) for a, f, t in zip("xyz", first, last,
                                                                 strict=True)}}
    return out


@dataclass
class _Lesion:
    """One lesion of a mask: its id, label value, a 0/1 mask of it and its map row."""

    lesion_id: str
    label: int
    mask: _Mask
    row: dict


def _lesion_mask(mask: _Mask, region: np.ndarray, cached: bool) -> _Mask:
    """A uint8 mask (1 on ``region``) on ``mask``'s grid; its hash (for the cache key) is
    the mask file's with the region's voxels."""
    import SimpleITK as sitk

    array = region.astype(np.uint8)
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(mask.image)
    sha = ""
    if cached:
        h = hashlib.sha256(f"lesion:{mask.sha}:{array.shape}".encode())
        h.update(np.packbits(region).tobytes())
        sha = h.hexdigest()
    return _Mask(mask.located, sha, image, array)


def _split_lesions(task: _Task, mask: _Mask) -> tuple[list[_Lesion], list[dict]]:
    """The lesions of ``mask`` under ``task.lesions`` (components or labels), and the
    components dropped under ``min_lesion_ml``; :class:`_CaseProblem` when there are none.

    components: the label's connected components (SimpleITK ConnectedComponent, with
    ``task.connectivity``), ids "1", "2", ... by decreasing voxel count (SimpleITK
    RelabelComponent; equal counts keep the order of their first voxel in the image's
    index order, x fastest). labels: each non-zero label value, its id the value as text,
    in increasing order.
    """
    import SimpleITK as sitk

    cached = task.cache_dir is not None
    if task.lesions == "labels":
        present = np.unique(mask.array[mask.array != 0])
        # an empty or non-integer mask is refused as for one label (any present one)
        problem = _mask_problem(mask.array, int(present[0]) if present.size else 1, False)
        if problem:
            raise _CaseProblem(problem)
        values = [int(v) for v in present]
        labelled = sitk.Cast(mask.image, sitk.sitkUInt32)
        geometry = lesion_geometry(labelled, values)
        return [_Lesion(str(v), v, _lesion_mask(mask, mask.array == v, cached),
                        {LESION: str(v), "label": v, **geometry[v]}) for v in values], []
    label = task.label if task.label is not None else task.base_label
    problem = _mask_problem(mask.array, label,
                            task.mask_single_label and task.label is None)
    if problem:
        raise _CaseProblem(problem)
    binary = sitk.GetImageFromArray((mask.array == label).astype(np.uint8))
    binary.CopyInformation(mask.image)
    components = sitk.RelabelComponent(
        sitk.ConnectedComponent(binary, CONNECTIVITY[task.connectivity]),
        sortByObjectSize=True)
    numbered = sitk.GetArrayFromImage(components)
    geometry = lesion_geometry(components, range(1, int(numbered.max()) + 1))
    lesions, dropped = [], []
    for number, geo in geometry.items():
        if geo["volume_ml"] < task.min_lesion_ml:
            dropped.append({"label": label, "voxels": geo["voxels"],
                            "volume_ml": geo["volume_ml"]})
            continue
        lesion_id = str(len(lesions) + 1)
        lesions.append(_Lesion(lesion_id, label,
                               _lesion_mask(mask, numbered == number, cached),
                               {LESION: lesion_id, "label": label, **geo}))
    if not lesions:
        raise _CaseProblem(
            f"every one of the {len(dropped)} connected component(s) of label {label} is "
            f"smaller than min_lesion_ml {task.min_lesion_ml:g} ml (largest "
            f"{max(d['volume_ml'] for d in dropped):.3g} ml); lower min_lesion_ml in the "
            "settings")
    return lesions, dropped


def _with_label(params_json: str, label: int) -> str:
    """``params_json`` with its ``setting: label`` set to ``label``."""
    params = json.loads(params_json)
    params.setdefault("setting", {})["label"] = int(label)
    return json.dumps(params, sort_keys=True)


# --------------------------------------------------------------------------------------
# per-row work (runs in the worker processes)


def _extract_patient_unsafe(task: _Task) -> _Outcome:
    out = _Outcome(task.patient_id, task.row)
    given = {s: p for s, p in task.images.items() if p is not None}
    if not given:
        out.fail(task.row_lesion, "all", "no image path in any sequence column")
        return out
    if task.lesions == "whole":
        masks: dict[str, _Mask | None] = {}
        features = _extract_lesion(task, given, task.row_lesion, masks, out, task.label)
        if features:
            out.features[task.row_lesion] = features
        mask = masks.get(MASK)
        label = task.label if task.label is not None else task.base_label
        if mask is not None and np.any(mask.array == label):
            image = _label_map(mask, label)
            out.lesions.append({LESION: task.row_lesion, "label": label,
                                **lesion_geometry(image, [1])[1]})
        return out
    mask = _load_mask(task, MASK, out)
    if mask is None:
        return out
    try:
        lesions, out.dropped = _split_lesions(task, mask)
    except _CaseProblem as exc:
        out.fail(task.row_lesion, MASK, str(exc))
        return out
    for lesion in lesions:
        out.lesions.append(lesion.row)
        features = _extract_lesion(task, given, lesion.lesion_id, {MASK: lesion.mask}, out, 1)
        if features:
            out.features[lesion.lesion_id] = features
    return out


def _label_map(mask: _Mask, label: int):
    """A uint8 SimpleITK image, 1 where ``mask`` holds ``label``, on the mask's grid."""
    return _lesion_mask(mask, mask.array == label, False).image


def _extract_lesion(task: _Task, given: dict[str, str], lesion_id: str,
                    masks: dict[str, _Mask | None], out: _Outcome,
                    label_override: int | None) -> dict[str, float]:
    """Every sequence of one lesion: its features, failures recorded in ``out``.

    ``masks`` maps mask columns to loaded masks (loaded here when absent); a lesion split
    from a mask comes as its own 0/1 mask under ``mask``. ``label_override``: the label
    value to extract (the lesion's 1, or the manifest's ``label``) instead of the settings'.
    """
    features: dict[str, float] = {}
    reported: set[tuple[str, str]] = set()
    checked: dict[tuple[str, int], str | None] = {}  # (mask column, label) -> its problem
    voxels: dict[tuple[str, int], np.ndarray] = {}  # (mask column, label) -> lesion indices
    single_label = task.mask_single_label and label_override is None

    for seq, path in given.items():
        mask_col = task.mask_column(seq)
        if mask_col not in masks:
            masks[mask_col] = _load_mask(task, mask_col, out)
        mask = masks[mask_col]
        if mask is None:
            continue
        params_json = task.params[seq]
        if label_override is not None:
            params_json = _with_label(params_json, label_override)
        params = json.loads(params_json)
        label = int(params.get("setting", {}).get("label", 1))
        if (mask_col, label) not in checked:
            checked[mask_col, label] = _mask_problem(mask.array, label, single_label)
        problem = checked[mask_col, label]
        if problem:
            if (mask_col, problem) not in reported:
                reported.add((mask_col, problem))
                out.fail(lesion_id, mask_col, problem)
            continue
        try:
            located = _locate(path, *task.series.get(seq, (None, False)), seq)
            image_sha = located.digest() if task.cache_dir else ""
        except _CaseProblem as exc:
            out.fail(lesion_id, seq, str(exc))
            continue
        except (OSError, RuntimeError) as exc:
            out.fail(lesion_id, seq, f"cannot read {path}: {_short_message(exc)}")
            continue
        cache_file = None
        if task.cache_dir:
            key = _cache_key(image_sha, mask.sha, params_json, task, located.series_uid,
                             mask.located.series_uid)
            cache_file = Path(task.cache_dir) / f"{key}.json"
        cached = _cache_read(cache_file) if cache_file is not None and cache_file.is_file() \
            else None
        if cached is not None:
            feats, meta = cached
            note = meta.get("mask_resampled")
            out.cache_hits += 1
        else:
            try:
                image = located.read()
            except RuntimeError as exc:
                out.fail(lesion_id, seq, f"cannot read the image {path}: {_short_message(exc)}")
                continue
            if image.GetNumberOfComponentsPerPixel() != 1:
                out.fail(lesion_id, seq, f"image has {image.GetNumberOfComponentsPerPixel()}"
                                         " components per voxel; a scalar image is expected")
                continue
            try:
                mask_img, mask_arr, note = _mask_on_grid(
                    image, mask.image, mask.array, label, seq, mask_col,
                    task.correct_mask.get(seq, False))
            except _CaseProblem as exc:
                out.fail(lesion_id, seq, str(exc))
                continue
            if note:  # a mask resampled for this image: its own voxels
                def lesion(arr=mask_arr, label=label):
                    return np.flatnonzero(arr.ravel() == label)
            else:  # the mask as read, shared by the sequences on its grid: found once
                def lesion(key=(mask_col, label), arr=mask_arr, label=label):
                    if key not in voxels:
                        voxels[key] = np.flatnonzero(arr.ravel() == label)
                    return voxels[key]
            problem = _too_many_bins(image, lesion, params, task.max_bins, seq)
            if problem:
                out.fail(lesion_id, seq, problem)
                continue
            try:
                feats = _run_pyradiomics(image, mask_img, params_json)
            except Exception as exc:  # pyradiomics raises ValueError, RuntimeError, ...
                out.fail(lesion_id, seq, f"pyradiomics: {_short_message(exc)}")
                continue
            if cache_file is not None:
                import radiomics

                _cache_write(cache_file, feats, {
                    "pyradiomics": radiomics.__version__, "image_sha256": image_sha,
                    "mask_sha256": mask.sha, "image_series": located.series_uid,
                    "mask_series": mask.located.series_uid, "mask_resampled": note,
                    "params": params})
        if note:
            out.resampled.append((lesion_id, seq, mask_col, str(note)))
        if located.series_uid is not None and (seq, located.series_uid,
                                               len(located.files)) not in out.series:
            out.series.append((seq, located.series_uid, len(located.files)))
        features.update({f"{seq}_{name}": value for name, value in feats.items()})
    return features


# --------------------------------------------------------------------------------------
# public entry point


@dataclass
class ExtractionResult:
    """What :func:`extract` returns.

    features: one row per lesion with at least one extracted sequence: patient_id (and
    lesion_id when the extraction is per lesion, see ``per_lesion``), then
    ``<sequence>_<pyradiomics name>`` columns (NaN for a sequence not extracted).
    failures: patient_id (, lesion_id), sequence (the mask column for a mask, ``all`` when
    no image was given or the patient was lost), reason. n_patients: rows in the manifest.
    cache_hits: sequences read from the cache. version: the settings file's version.
    mask_resampled: patient_id (, lesion_id), sequence, mask (column), reason (both grids):
    the sequences whose mask was resampled onto their grid (``correctMask``). series:
    patient_id, column, series_uid, files: the DICOM series read for each image or mask
    column. lesion_map: one row per lesion (:data:`LESION_MAP_COLUMNS`: patient_id,
    lesion_id, label value, voxels, volume in ml, centroid and bounding box in physical mm),
    to match each lesion with its clinical row. dropped: connected components smaller than
    ``min_lesion_ml`` (patient_id, label, voxels, volume_ml). lesions: the lesion mode
    (:data:`LESION_MODES`). per_lesion: True when lesions have ids (a mode other than
    ``whole``, or a manifest with lesion_id): features and failures then carry lesion_id.
    """

    features: pd.DataFrame
    failures: pd.DataFrame
    n_patients: int = 0
    cache_hits: int = 0
    version: str = ""
    mask_resampled: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(RESAMPLED_COLUMNS)))
    series: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(SERIES_COLUMNS)))
    lesion_map: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(LESION_MAP_COLUMNS)))
    dropped: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(DROPPED_COLUMNS)))
    lesions: str = "whole"
    per_lesion: bool = False

    def summary(self) -> str:
        """A short text: counts, then one line per failure."""
        n_failed = self.failures[ID].nunique() if len(self.failures) else 0
        lines = [f"patients: {self.n_patients}, extracted: {len(self.features)}, "
                 f"with failures: {n_failed} ({len(self.failures)} failure(s)), "
                 f"from cache: {self.cache_hits} sequence(s)"]
        if self.per_lesion:
            n_patients = self.lesion_map[ID].nunique() if len(self.lesion_map) else 0
            lines[0] = (f"patients: {self.n_patients}, lesions ({self.lesions}): "
                        f"{len(self.lesion_map)} in {n_patients} patient(s), extracted: "
                        f"{len(self.features)} lesion(s), " + lines[0].split(", ", 2)[2])
        if len(self.dropped):
            lines.append(f"components smaller than min_lesion_ml dropped: {len(self.dropped)} "
                         f"in {self.dropped[ID].nunique()} patient(s), "
                         f"{int(self.dropped['voxels'].sum())} voxel(s)")
        if len(self.mask_resampled):
            seqs = ", ".join(sorted(set(self.mask_resampled["sequence"])))
            lines.append(f"masks resampled onto the image grid (correctMask): "
                         f"{len(self.mask_resampled)} sequence(s) ({seqs})")
        for row in self.failures.to_dict("records"):
            lesion = f" lesion {row[LESION]}" if row.get(LESION) else ""
            lines.append(f"  FAILED {row[ID]}{lesion} [{row['sequence']}]: {row['reason']}")
        return "\n".join(lines)

    def write_lesion_map(self, features_path: str | Path) -> Path:
        """Write :attr:`lesion_map` beside ``features_path`` (``radiomics.csv`` ->
        ``radiomics.lesions.csv``), atomically; return its path."""
        path = lesion_map_path(features_path)
        write_table_atomic(self.lesion_map, path)
        return path


def settings_with_lesions(text: str, lesions: str | None) -> str:
    """Settings YAML ``text`` with its top-level ``lesions:`` set to ``lesions`` (unchanged
    when None), so that settings stored with a model say how its lesions were found."""
    if lesions is None:
        return text
    kept = [line for line in text.splitlines() if not re.match(r"lesions\s*:", line)]
    return "\n".join([*kept, f"lesions: {checked_lesion_mode(lesions)}", ""])


def lesion_map_path(features_path: str | Path) -> Path:
    """Where the lesion map of ``features_path`` goes: ``<stem>.lesions.csv`` beside it."""
    path = Path(features_path)
    return path.with_name(f"{path.stem}.lesions.csv")


def _jobs(jobs: int) -> int:
    if not isinstance(jobs, int | np.integer) or jobs == 0 or jobs < -1:
        raise UserInputError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}.")
    return int(jobs)


def _run(tasks: list[_Task], jobs: int, progress: bool,
         scheduler: str | None = None) -> Iterable[_Outcome]:
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="radiomics", unit="lesion", disable=not progress,
               file=sys.stderr, leave=True)
    try:
        if scheduler is not None:
            with _dask_client(scheduler, jobs) as client:
                for outcome in _run_dask(client, tasks):
                    yield outcome
                    bar.update(1)
        elif jobs == 1 or len(tasks) < 2:
            with _quiet_radiomics():
                for task in tasks:
                    yield _extract_patient(task)
                    bar.update(1)
        else:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
            for outcome in parallel(delayed(_extract_patient)(t, True) for t in tasks):
                yield outcome
                bar.update(1)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------
# dask.distributed


def _import_dask():
    """dask.distributed's Client, LocalCluster and as_completed; UserInputError if absent."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UserInputError(
            f"a Dask scheduler was given but Dask is not installed; install it with "
            f"{DASK_INSTALL}, or leave out the scheduler (--scheduler) to run on local "
            "processes (--jobs).") from None
    return Client, LocalCluster, as_completed


@contextlib.contextmanager
def _dask_client(scheduler: str, jobs: int) -> Iterator[Any]:
    """A client of ``scheduler``: ``"local"`` starts (and afterwards closes) a LocalCluster
    of ``jobs`` single-threaded worker processes on the loopback interface."""
    Client, LocalCluster, _ = _import_dask()
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise UserInputError(f"scheduler must be a Dask scheduler address (tcp://host:8786) "
                             f"or '{LOCAL_SCHEDULER}', got {scheduler!r}.")
    scheduler = scheduler.strip()
    if scheduler == LOCAL_SCHEDULER:
        import dask

        n_workers = (os.cpu_count() or 1) if jobs == -1 else jobs
        # A worker that dies while extracting a patient: its patient is tried once more on
        # another worker, then given up (allowed_failures=1). One task per worker at a time
        # (worker-saturation 1.0), so a death involves only the patient being extracted.
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                   host="127.0.0.1", dashboard_address=None, processes=True,
                                   scheduler_kwargs={"allowed_failures": 1,
                                                     # metrics endpoint: any free port
                                                     "dashboard_address": "127.0.0.1:0"})
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:  # waits distributed.comm.timeouts.connect (default 30 s) for the scheduler
        client = Client(scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserInputError(f"cannot reach the Dask scheduler at {scheduler}: "
                             f"{_short_message(exc)}; check the address (tcp://host:8786) "
                             f"or use --scheduler {LOCAL_SCHEDULER}.") from None
    with client:
        yield client


def _lost(task: _Task, why: str) -> _Outcome:
    """The outcome of a row that could not be extracted at all, for ``why``."""
    out = _Outcome(task.patient_id, task.row)
    out.fail(task.row_lesion, "all", why)
    return out


def _run_dask(client, tasks: list[_Task]) -> Iterator[_Outcome]:
    """Each patient as one task (paths in, feature values out), in completion order.

    A task whose worker dies is rerun by the scheduler on another worker until the
    scheduler's ``allowed-failures`` (1 on a local cluster) is exhausted; an error raised
    by the task is retried once. Either way, a patient that cannot be finished becomes a
    failure; the other patients go on.
    """
    _, _, as_completed = _import_dask()
    batch = uuid.uuid4().hex[:12]
    futures = {}
    for i, task in enumerate(tasks):
        key = f"radiomics-{batch}-{i}-{task.patient_id}"
        futures[client.submit(_extract_patient, task, True, key=key, retries=1,
                              pure=False)] = task
    try:
        for future in as_completed(list(futures)):
            task = futures.pop(future)
            try:  # waits again if the result was lost with its worker and is being redone
                outcome = future.result()
            except CancelledError:
                outcome = _lost(task, "cancelled on the Dask cluster (scheduler lost?)")
            except Exception as exc:  # KilledWorker: its workers died on it
                outcome = _lost(task, f"lost on the Dask cluster: {type(exc).__name__}: "
                                      f"{_short_message(exc)}")
            yield outcome
    finally:  # an interrupted run: stop what is left (the cache keeps what is done)
        if futures:
            client.cancel(list(futures))


def extract(manifest: pd.DataFrame | str | Path, params: str | Path = DEFAULT_PARAMS,
            jobs: int = 1, cache_dir: str | Path | None = None,
            sequences: list[str] | None = None, progress: bool = True, *,
            base_dir: str | Path | None = None, use_cache: bool = True,
            scheduler: str | None = None, lesions: str | None = None) -> ExtractionResult:
    """Extract pyradiomics features for every patient (or lesion) of ``manifest``.

    manifest: DataFrame or CSV path with patient_id, mask and one column per sequence
    (files or DICOM series folders), optionally ``mask_<sequence>``, ``series_uid`` and
    ``series_uid_<column>``; relative paths resolve against the CSV's folder, or
    ``base_dir`` (default: the working directory) for a DataFrame. params: settings YAML.
    jobs: worker processes (-1: all cores). cache_dir: cache folder (default
    ``<manifest folder>/.radiomics_cache``); ``use_cache=False`` turns the cache off.
    sequences: the sequence columns to extract (default: all). progress: show a progress
    bar on stderr. scheduler: run the patients on a dask.distributed cluster, given by its
    scheduler address (``tcp://host:8786``; its workers must read the same paths and have
    this package installed), or ``"local"`` for a LocalCluster of ``jobs`` workers on the
    loopback interface, closed afterwards (``jobs`` is not used with an address); needs
    ``pip install '.[dask]'``. The result does not depend on ``jobs`` or ``scheduler``.
    lesions: how the mask's voxels become lesions (:data:`LESION_MODES`), overriding the
    settings' ``lesions:`` (default ``whole``). The manifest may also be one row per lesion:
    a ``lesion_id`` column, each row with its own mask or its own ``label`` value in a
    shared mask (``label`` also serves one-row-per-patient manifests).
    """
    import radiomics  # noqa: F401  (fails early if pyradiomics is missing)

    n_jobs = _jobs(jobs)
    if scheduler is not None:
        _import_dask()
    settings = load_settings(params)
    mode = settings.lesions if lesions is None else checked_lesion_mode(lesions)
    table, base, seqs = read_manifest(manifest, base_dir, sequences)
    _check_lesion_mode(table, mode, manifest)
    cache = None
    if use_cache:
        cache = Path(cache_dir) if cache_dir is not None else base / CACHE_FOLDER
        remove_stale_cache_temporaries(cache)
    params_json = {s: json.dumps(settings.for_sequence(s), sort_keys=True) for s in seqs}
    correct = {s: settings.correct_mask(s) for s in seqs}
    mask_cols = [MASK, *(c for c in table.columns if c.startswith(MASK_PREFIX))]
    base_label = int(settings.for_sequence("")["setting"].get("label", 1))
    tasks = [
        _Task(patient_id=row[ID], images={s: row[s] for s in seqs},
              masks={c: row[c] for c in mask_cols},
              series={c: _series_choice(row, c) for c in (*mask_cols, *seqs)},
              params=params_json, correct_mask=correct,
              mask_single_label=settings.mask_single_label,
              max_bins=settings.max_bins, cache_dir=str(cache) if cache else None,
              version=settings.version, lesion_id=row.get(LESION), label=row.get(LABEL_COLUMN),
              lesions=mode, min_lesion_ml=settings.min_lesion_ml,
              connectivity=settings.lesion_connectivity, base_label=base_label, row=i)
        for i, row in enumerate(table.to_dict("records"))]

    outcomes = {o.row: o for o in _run(tasks, n_jobs, progress, scheduler)}
    ordered = [outcomes[t.row] for t in tasks]
    per_lesion = mode != "whole" or LESION in table.columns
    return _assemble(ordered, seqs, settings, mode, per_lesion)


def _check_lesion_mode(table: pd.DataFrame, mode: str, manifest: Any) -> None:
    """UserInputError when the manifest's columns contradict the lesion mode ``mode``."""
    if mode == "whole":
        return
    source = f"manifest {manifest}" if isinstance(manifest, str | Path) else "the manifest"
    if LESION in table.columns:
        raise UserInputError(
            f"{source} is one row per lesion ('{LESION}') but lesions: {mode} would split "
            f"each row's mask again; use lesions: whole (--lesions whole) with a lesion "
            f"manifest, or drop its '{LESION}' column to let {mode} find the lesions.")
    own = [c for c in table.columns if c.startswith(MASK_PREFIX)]
    if own:
        raise UserInputError(
            f"{source} has per-sequence mask column(s) {', '.join(own)}, but lesions: {mode} "
            f"finds the lesions in the '{MASK}' column only and could not match them in "
            f"another mask; give one row per lesion ('{LESION}') with its own masks, or drop "
            f"{', '.join(own)}.")
    if mode == "labels" and LABEL_COLUMN in table.columns:
        raise UserInputError(
            f"{source} has a '{LABEL_COLUMN}' column, but lesions: labels makes every label "
            f"value a lesion; drop the column, or use lesions: components to split the "
            "row's label into its connected parts.")


def _assemble(ordered: list[_Outcome], seqs: list[str], settings: ExtractionSettings,
              mode: str, per_lesion: bool) -> ExtractionResult:
    """The result's tables from the rows' outcomes, in manifest order."""
    columns: dict[str, None] = {}
    for seq in seqs:  # sequence order of the manifest, pyradiomics' order within
        prefix = f"{seq}_"
        for o in ordered:
            for feats in o.features.values():
                for name in feats:
                    if name.startswith(prefix):
                        columns.setdefault(name)

    def keyed(rows: list[tuple], names: tuple[str, ...]) -> pd.DataFrame:
        """A table of (patient, lesion, *rest) rows, lesion_id kept only per lesion."""
        frame = pd.DataFrame(rows, columns=[ID, LESION, *names[1:]])
        return frame if per_lesion else frame.drop(columns=LESION)

    features = pd.DataFrame(
        [{ID: o.patient_id, LESION: lesion, **feats} for o in ordered
         for lesion, feats in o.features.items()], columns=[ID, LESION, *columns])
    if not per_lesion:
        features = features.drop(columns=LESION)
    failures = keyed([(o.patient_id, *f) for o in ordered for f in o.failures],
                     FAILURE_COLUMNS)
    resampled = keyed([(o.patient_id, *r) for o in ordered for r in o.resampled],
                      RESAMPLED_COLUMNS)
    series = pd.DataFrame(
        [(o.patient_id, *s) for o in ordered for s in o.series], columns=list(SERIES_COLUMNS))
    lesion_map = pd.DataFrame([{ID: o.patient_id, **row} for o in ordered for row in o.lesions],
                              columns=list(LESION_MAP_COLUMNS))
    dropped = pd.DataFrame([{ID: o.patient_id, **row} for o in ordered for row in o.dropped],
                           columns=list(DROPPED_COLUMNS))
    return ExtractionResult(features=features.reset_index(drop=True), failures=failures,
                            n_patients=len(ordered),
                            cache_hits=sum(o.cache_hits for o in ordered),
                            version=settings.version, mask_resampled=resampled,
                            series=series, lesion_map=lesion_map, dropped=dropped,
                            lesions=mode, per_lesion=per_lesion)


# --------------------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m features.extract",
        description=(
            "Extract pyradiomics features for every patient of an image manifest and write "
            "one row per patient (per lesion with --lesions or a lesion_id column), columns "
            "<sequence>_<pyradiomics feature name>."),
        epilog=(
            "Exit status: 0 all extracted, 1 some patient or sequence failed (listed in the "
            "summary and in --failures), 2 a problem with the inputs (manifest, settings, "
            "options)."),
    )
    parser.add_argument(
        "--manifest", required=True, metavar="M.csv",
        help="CSV with columns patient_id, mask and one per sequence (t1c, flair, adc, rcbv, "
             "...) holding image paths in any format SimpleITK reads (.nii.gz, .nrrd, ...) "
             "or DICOM series folders; relative paths are read from the manifest's folder; "
             "an empty cell means the sequence was not acquired. Optional: mask_<sequence> "
             "(that sequence's own mask), series_uid or series_uid_<column> (the DICOM "
             "series to read from a folder holding several).")
    parser.add_argument(
        "--params", default=str(DEFAULT_PARAMS), metavar="P.yaml",
        help="pyradiomics settings YAML with a version key and optional per-sequence "
             "overrides (default: features/params/mri.yaml); correctMask: true in its "
             "setting: block resamples a mask drawn on another grid onto each image's grid.")
    parser.add_argument(
        "--out", required=True, metavar="F.csv",
        help="output CSV, one row per extracted patient; written atomically (a temporary "
             "file renamed into place).")
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="patients extracted in parallel, one process each (-1: all cores; default 1); "
             "with --scheduler local, the number of Dask workers.")
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="run the patients on a dask.distributed cluster: its scheduler address "
             "(tcp://host:8786; the workers must read the manifest's paths), or 'local' to "
             "start a cluster of --jobs workers on this machine (loopback only) and close it "
             f"afterwards. Needs Dask: {DASK_INSTALL}.")
    parser.add_argument(
        "--cache", default=None, metavar="DIR",
        help="cache folder; a re-run with the same files, settings and pyradiomics version "
             "reuses its results, so an interrupted run resumes (default: .radiomics_cache "
             "beside --out).")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write a cache.")
    parser.add_argument(
        "--failures", default=None, metavar="FAILS.csv",
        help="also write the failures (patient_id, sequence, reason) to this CSV.")
    parser.add_argument(
        "--sequences", nargs="+", default=None, metavar="SEQ",
        help="extract only these sequence columns (default: every column but patient_id, "
             "the mask and series columns).")
    add_lesions_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar.")
    return parser


def check_outputs(args: argparse.Namespace) -> None:
    """--out, its lesion map and --failures: writable, not the same file, and neither the
    manifest, an image or mask it lists, nor the settings file (checked before anything is
    extracted)."""
    from features.outputs import RunFiles

    files = (RunFiles().add_manifest(args.manifest, "the manifest (--manifest)",
                                     manifest_paths(args.manifest))
             .add(args.params, "the settings file (--params)"))
    fix = "choose another file, so that no input is overwritten."
    files.check_output("--out", args.out, fix)
    files.add(args.out, "the features file (--out)")
    files.check_output("the lesion map beside --out", lesion_map_path(args.out), fix)
    if args.failures:
        files.add(lesion_map_path(args.out), "the lesion map beside --out")
        files.check_output("--failures", args.failures, fix)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    out = Path(args.out)
    check_outputs(args)
    cache_dir = Path(args.cache) if args.cache else out.resolve().parent / CACHE_FOLDER
    result = extract(args.manifest, params=args.params, jobs=args.jobs,
                     cache_dir=cache_dir, sequences=args.sequences,
                     progress=not args.quiet, use_cache=not args.no_cache,
                     scheduler=args.scheduler, lesions=args.lesions)
    try:
        write_table_atomic(result.features, out)
        lesion_map = result.write_lesion_map(out)
        if args.failures:
            write_table_atomic(result.failures, Path(args.failures))
    except OSError as exc:
        raise UserInputError(f"cannot write the output: {exc}") from None
    print(hide_home(result.summary()))
    print(hide_home(f"features written to {out}, lesion map to {lesion_map}"))
    return 1 if len(result.failures) else 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so that the worker
    # processes unpickle functions of `features.extract`.
    from commands.run import run_command
    from features.extract import main as _main

    sys.exit(run_command(_main))
