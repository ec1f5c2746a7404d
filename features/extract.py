"""pyradiomics feature extraction over an image manifest, in parallel, cached, failure-tolerant.

:func:`extract` reads a manifest (patient_id, mask, one column per sequence holding an
image path), checks every image against its mask, runs pyradiomics with the settings of a
versioned YAML file (default ``features/params/mri.yaml``) and returns one row per patient
with columns ``<sequence>_<pyradiomics feature name>`` (e.g. ``t1c_original_glcm_Contrast``)
plus a table of failures. Any format SimpleITK reads works (NIfTI, NRRD, MHA, ...).

- An empty manifest cell means the sequence was not acquired: no failure, its columns stay
  NaN. A patient appears in ``features`` when at least one sequence was extracted.
- A bad case does not sink the batch: a missing or unreadable file, a mask whose size,
  spacing, origin or direction differs from its image, an empty mask, a mask with several
  labels, or a pyradiomics error becomes a row of ``failures`` (patient_id, sequence,
  reason; sequence ``mask`` for problems of the mask itself).
- Problems of the manifest itself raise :class:`~features.errors.UserInputError`.
- Cache: one JSON file per (image, mask, settings) under ``cache_dir``, named by the
  SHA-256 of the image's bytes, the mask's bytes, the sequence's resolved settings, the
  settings file's version and the pyradiomics version. A re-run with the same files and
  settings reads them instead of recomputing. Default folder: ``.radiomics_cache`` beside
  the manifest (the command line: beside the output file). Failures are not cached.
  Delete the folder to clear it.

Command line: ``python -m features.extract --help``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from features.contract import ID, checked_ids
from features.errors import UserInputError
from features.tables import atomic_path, write_table_atomic

DEFAULT_PARAMS = Path(__file__).resolve().parent / "params" / "mri.yaml"
MASK = "mask"
CACHE_FOLDER = ".radiomics_cache"
#: bump when the cache entries' content or meaning changes
CACHE_FORMAT = 1
#: tolerance of the image/mask geometry check: spacing and origin as a fraction of the
#: image's voxel spacing, direction cosines as an absolute difference
GEOMETRY_TOLERANCE = 1e-3
FAILURE_COLUMNS = (ID, "sequence", "reason")

_PYRADIOMICS_KEYS = ("setting", "imageType", "featureClass", "voxelSetting")
_OWN_KEYS = ("version", "mask_single_label", "max_bins", "sequences")
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


def _validate_pyradiomics(params: dict, where: str) -> None:
    """Run pyradiomics' own schema check on ``params``; UserInputError on failure."""
    from radiomics import featureextractor

    try:
        with _quiet_radiomics(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # pykwalify's loader
            featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(params))
    except Exception as exc:  # pykwalify's SchemaError, or pyradiomics' checks
        msg = " ".join(str(exc).split())
        raise UserInputError(f"{where}: pyradiomics rejects these settings: {msg}") from None


def load_settings(params: str | Path = DEFAULT_PARAMS) -> ExtractionSettings:
    """Read and check a settings YAML file (see ``features/params/mri.yaml`` for the format)."""
    path = Path(params)
    if not path.is_file():
        raise UserInputError(f"settings file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    settings = ExtractionSettings(
        source=str(path), version=str(raw["version"]), base=base, overrides=overrides,
        mask_single_label=bool(raw.get("mask_single_label", True)), max_bins=max_bins)
    _validate_pyradiomics(settings.for_sequence(""), f"{path} (base settings)")
    for seq in overrides:
        _validate_pyradiomics(settings.for_sequence(seq), f"{path} (sequences.{seq})")
    return settings


# --------------------------------------------------------------------------------------
# manifest


def read_manifest(manifest: pd.DataFrame | str | Path, base_dir: str | Path | None = None,
                  sequences: list[str] | None = None) -> tuple[pd.DataFrame, Path, list[str]]:
    """Check a manifest; return it with absolute paths, its base folder and its sequences.

    Relative paths resolve against the manifest's folder when ``manifest`` is a path, else
    against ``base_dir`` (default: the working directory). Sequences are every column but
    patient_id and mask, unless ``sequences`` names a subset.
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
    available = [c for c in df.columns if c not in (ID, MASK)]
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

    ids = checked_ids(df[ID], source, "one row per lesion")
    records = [{ID: pid, **{col: _resolve(value, base) for col, value in zip(
        (MASK, *seqs), row, strict=True)}}
        for pid, row in zip(ids.tolist(), df[[MASK, *seqs]].itertuples(index=False),
                            strict=True)]
    return pd.DataFrame(records, columns=[ID, MASK, *seqs], dtype=object), base, seqs


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
    shown = ", ".join(f"{v:g}" for v in labels[:8]) + (" ..." if labels.size > 8 else "")
    if single_label and labels.size > 1:
        return (f"mask holds several labels ({shown}) where one is expected (label {label}); "
                "give one lesion per mask, or set mask_single_label: false in the settings")
    if label not in labels:
        return f"mask has no voxel with label {label} (labels found: {shown})"
    return None


def _too_many_bins(image, mask_arr: np.ndarray, label: int, params: dict,
                   max_bins: int | None, sequence: str) -> str | None:
    setting = params.get("setting", {})
    if max_bins is None or setting.get("normalize", False) or setting.get("binCount"):
        return None
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image)[mask_arr == label]
    width = float(setting.get("binWidth", 25))
    n_bins = (float(values.max()) - float(values.min())) / width
    if n_bins > max_bins:
        return (f"intensities in the mask span {values.min():.4g} to {values.max():.4g}, "
                f"{n_bins:.0f} bins at binWidth {width:g} (limit {max_bins}); check the "
                f"{sequence} map's unit (ADC in 10^-3 mm^2/s) or the binWidth")
    return None


def _cache_read(path: Path) -> dict[str, float] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            entry = json.load(fh)
        return {k: float(v) for k, v in entry["features"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _cache_write(path: Path, features: dict[str, float], meta: dict) -> None:
    try:
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "features": features}, fh)
    except OSError:
        pass  # a cache entry that cannot be written is recomputed next time


@dataclass
class _Task:
    patient_id: str
    mask: str | None
    images: dict[str, str | None]
    params: dict[str, str]  # sequence -> canonical JSON of the pyradiomics params
    mask_single_label: bool
    max_bins: int | None
    cache_dir: str | None
    version: str = ""


@dataclass
class _Outcome:
    patient_id: str
    features: dict[str, float]
    failures: list[tuple[str, str]]
    cache_hits: int = 0


def _cache_key(image_sha: str, mask_sha: str, params_json: str, task: _Task) -> str:
    import radiomics

    blob = json.dumps({
        "format": CACHE_FORMAT, "pyradiomics": radiomics.__version__, "version": task.version,
        "image": image_sha, "mask": mask_sha, "params": params_json,
        "mask_single_label": task.mask_single_label, "max_bins": task.max_bins,
        "geometry_tolerance": GEOMETRY_TOLERANCE}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _extract_patient(task: _Task, in_worker: bool = False) -> _Outcome:
    """Extract every sequence of one patient; a bad case becomes a failure, never an error."""
    if in_worker:
        _init_worker()
    try:
        return _extract_patient_unsafe(task)
    except Exception as exc:  # anything unforeseen stays this patient's problem
        return _Outcome(task.patient_id, {}, [
            ("all", f"unexpected error: {type(exc).__name__}: {_short_message(exc)}")])


def _extract_patient_unsafe(task: _Task) -> _Outcome:
    import SimpleITK as sitk

    out = _Outcome(task.patient_id, {}, [])
    given = {s: p for s, p in task.images.items() if p is not None}
    if task.mask is None:
        out.failures.append((MASK, "no mask path in the manifest"))
        return out
    if not given:
        out.failures.append(("all", "no image path in any sequence column"))
        return out
    if not os.path.isfile(task.mask):
        out.failures.append((MASK, f"file not found: {task.mask}"))
        return out
    try:
        mask_sha = _sha256(task.mask)
        mask = sitk.ReadImage(task.mask)
    except (OSError, RuntimeError) as exc:
        out.failures.append((MASK, f"cannot read the mask {task.mask}: {_short_message(exc)}"))
        return out
    if mask.GetNumberOfComponentsPerPixel() != 1:
        out.failures.append((MASK, f"mask has {mask.GetNumberOfComponentsPerPixel()} "
                                   "components per voxel; a scalar label map is expected"))
        return out
    mask_arr = sitk.GetArrayFromImage(mask)
    mask_reasons: set[str] = set()

    for seq, path in given.items():
        params_json = task.params[seq]
        params = json.loads(params_json)
        label = int(params.get("setting", {}).get("label", 1))
        problem = _mask_problem(mask_arr, label, task.mask_single_label)
        if problem:
            if problem not in mask_reasons:
                mask_reasons.add(problem)
                out.failures.append((MASK, problem))
            continue
        if not os.path.isfile(path):
            out.failures.append((seq, f"file not found: {path}"))
            continue
        try:
            image_sha = _sha256(path)
        except OSError as exc:
            out.failures.append((seq, f"cannot read {path}: {_short_message(exc)}"))
            continue
        key = _cache_key(image_sha, mask_sha, params_json, task)
        cache_file = Path(task.cache_dir) / f"{key}.json" if task.cache_dir else None
        feats = _cache_read(cache_file) if cache_file is not None and cache_file.is_file() \
            else None
        if feats is not None:
            out.cache_hits += 1
        else:
            try:
                image = sitk.ReadImage(path)
            except RuntimeError as exc:
                out.failures.append(
                    (seq, f"cannot read the image {path}: {_short_message(exc)}"))
                continue
            if image.GetNumberOfComponentsPerPixel() != 1:
                out.failures.append((seq, f"image has {image.GetNumberOfComponentsPerPixel()}"
                                          " components per voxel; a scalar image is expected"))
                continue
            problem = check_geometry(image, mask, seq) or _too_many_bins(
                image, mask_arr, label, params, task.max_bins, seq)
            if problem:
                out.failures.append((seq, problem))
                continue
            try:
                feats = _run_pyradiomics(image, mask, params_json)
            except Exception as exc:  # pyradiomics raises ValueError, RuntimeError, ...
                out.failures.append((seq, f"pyradiomics: {_short_message(exc)}"))
                continue
            if cache_file is not None:
                import radiomics

                _cache_write(cache_file, feats, {
                    "pyradiomics": radiomics.__version__, "image_sha256": image_sha,
                    "mask_sha256": mask_sha, "params": params})
        out.features.update({f"{seq}_{name}": value for name, value in feats.items()})
    return out


# --------------------------------------------------------------------------------------
# public entry point


@dataclass
class ExtractionResult:
    """What :func:`extract` returns.

    features: one row per patient with at least one extracted sequence: patient_id, then
    ``<sequence>_<pyradiomics name>`` columns (NaN for a sequence not extracted).
    failures: patient_id, sequence (``mask`` for the mask, ``all`` when no image was
    given), reason. n_patients: rows in the manifest. cache_hits: sequences read from the
    cache. version: the settings file's version.
    """

    features: pd.DataFrame
    failures: pd.DataFrame
    n_patients: int = 0
    cache_hits: int = 0
    version: str = ""

    def summary(self) -> str:
        """A short text: counts, then one line per failure."""
        n_failed = self.failures[ID].nunique() if len(self.failures) else 0
        lines = [f"patients: {self.n_patients}, extracted: {len(self.features)}, "
                 f"with failures: {n_failed} ({len(self.failures)} failure(s)), "
                 f"from cache: {self.cache_hits} sequence(s)"]
        for row in self.failures.itertuples(index=False):
            lines.append(f"  FAILED {row[0]} [{row[1]}]: {row[2]}")
        return "\n".join(lines)


def _jobs(jobs: int) -> int:
    if not isinstance(jobs, int | np.integer) or jobs == 0 or jobs < -1:
        raise UserInputError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}.")
    return int(jobs)


def _run(tasks: list[_Task], jobs: int, progress: bool) -> Iterable[_Outcome]:
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="radiomics", unit="patient", disable=not progress,
               file=sys.stderr, leave=True)
    try:
        if jobs == 1 or len(tasks) < 2:
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


def extract(manifest: pd.DataFrame | str | Path, params: str | Path = DEFAULT_PARAMS,
            jobs: int = 1, cache_dir: str | Path | None = None,
            sequences: list[str] | None = None, progress: bool = True, *,
            base_dir: str | Path | None = None, use_cache: bool = True) -> ExtractionResult:
    """Extract pyradiomics features for every patient of ``manifest``.

    manifest: DataFrame or CSV path with patient_id, mask and one column per sequence;
    relative paths resolve against the CSV's folder, or ``base_dir`` (default: the working
    directory) for a DataFrame. params: settings YAML. jobs: worker processes (-1: all
    cores). cache_dir: cache folder (default ``<manifest folder>/.radiomics_cache``);
    ``use_cache=False`` turns the cache off. sequences: the sequence columns to extract
    (default: all but patient_id and mask). progress: show a progress bar on stderr.
    """
    import radiomics  # noqa: F401  (fails early if pyradiomics is missing)

    n_jobs = _jobs(jobs)
    settings = load_settings(params)
    table, base, seqs = read_manifest(manifest, base_dir, sequences)
    cache = None
    if use_cache:
        cache = Path(cache_dir) if cache_dir is not None else base / CACHE_FOLDER
    params_json = {s: json.dumps(settings.for_sequence(s), sort_keys=True) for s in seqs}
    tasks = [
        _Task(patient_id=row[ID], mask=row[MASK], images={s: row[s] for s in seqs},
              params=params_json, mask_single_label=settings.mask_single_label,
              max_bins=settings.max_bins, cache_dir=str(cache) if cache else None,
              version=settings.version)
        for row in table.to_dict("records")]

    outcomes = {o.patient_id: o for o in _run(tasks, n_jobs, progress)}
    ordered = [outcomes[t.patient_id] for t in tasks]

    columns: dict[str, None] = {}
    for seq in seqs:  # sequence order of the manifest, pyradiomics' order within
        prefix = f"{seq}_"
        for o in ordered:
            for name in o.features:
                if name.startswith(prefix):
                    columns.setdefault(name)
    rows = [{ID: o.patient_id, **o.features} for o in ordered if o.features]
    features = pd.DataFrame(rows, columns=[ID, *columns])
    failures = pd.DataFrame(
        [(o.patient_id, seq, reason) for o in ordered for seq, reason in o.failures],
        columns=list(FAILURE_COLUMNS))
    return ExtractionResult(features=features.reset_index(drop=True), failures=failures,
                            n_patients=len(tasks),
                            cache_hits=sum(o.cache_hits for o in ordered),
                            version=settings.version)


# --------------------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m features.extract",
        description=(
            "Extract pyradiomics features for every patient of an image manifest and write "
            "one row per patient, columns <sequence>_<pyradiomics feature name>."),
        epilog=(
            "Exit status: 0 all extracted, 1 some patient or sequence failed (listed in the "
            "summary and in --failures), 2 a problem with the inputs (manifest, settings, "
            "options)."),
    )
    parser.add_argument(
        "--manifest", required=True, metavar="M.csv",
        help="CSV with columns patient_id, mask and one per sequence (t1c, flair, adc, rcbv, "
             "...) holding image paths in any format SimpleITK reads (.nii.gz, .nrrd, ...); "
             "relative paths are read from the manifest's folder; an empty cell means the "
             "sequence was not acquired.")
    parser.add_argument(
        "--params", default=str(DEFAULT_PARAMS), metavar="P.yaml",
        help="pyradiomics settings YAML with a version key and optional per-sequence "
             "overrides (default: features/params/mri.yaml).")
    parser.add_argument(
        "--out", required=True, metavar="F.csv",
        help="output CSV, one row per extracted patient; written atomically (a temporary "
             "file renamed into place).")
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="patients extracted in parallel, one process each (-1: all cores; default 1).")
    parser.add_argument(
        "--cache", default=None, metavar="DIR",
        help="cache folder; a re-run with the same files, settings and pyradiomics version "
             "reuses its results (default: .radiomics_cache beside --out).")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write a cache.")
    parser.add_argument(
        "--failures", default=None, metavar="FAILS.csv",
        help="also write the failures (patient_id, sequence, reason) to this CSV.")
    parser.add_argument(
        "--sequences", nargs="+", default=None, metavar="SEQ",
        help="extract only these sequence columns (default: every column but patient_id "
             "and mask).")
    parser.add_argument("--quiet", action="store_true", help="no progress bar.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    out = Path(args.out)
    cache_dir = Path(args.cache) if args.cache else out.resolve().parent / CACHE_FOLDER
    result = extract(args.manifest, params=args.params, jobs=args.jobs,
                     cache_dir=cache_dir, sequences=args.sequences,
                     progress=not args.quiet, use_cache=not args.no_cache)
    try:
        write_table_atomic(result.features, out)
        if args.failures:
            write_table_atomic(result.failures, Path(args.failures))
    except OSError as exc:
        raise UserInputError(f"cannot write the output: {exc}") from None
    print(result.summary())
    print(f"features written to {out}")
    return 1 if len(result.failures) else 0


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy, so that the worker
    # processes unpickle functions of `features.extract`.
    from features.errors import run_command
    from features.extract import main as _main

    sys.exit(run_command(_main))
