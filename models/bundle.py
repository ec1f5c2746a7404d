"""A trained model with everything needed to trust it later, and saving / loading it.

The bundle carries the calibrated estimator, the feature columns it expects, the decision
threshold and where it came from, package versions, the training data's hash and size,
and the evaluation metrics.

Model files: :func:`save_model` writes skops (the default; loading it runs no code and
builds only the types in :data:`TRUSTED_TYPES`) or, for a name ending in ``.joblib``,
``.pkl`` or ``.pickle``, a joblib pickle (faster, but loading a pickle runs whatever code
it carries, so :func:`load_model` needs ``trust_pickle=True``). Beside every model file lies
its record, ``<file name>.json`` (:func:`record_path`): the file's SHA-256 and size, the
feature columns, the threshold, the table description, the training summary and the
package versions. The file is checked against its record before anything in it is read,
and a skops file that would unpack to more than :data:`MAX_UNPACKED_BYTES` is refused
before anything in it is unpacked.

Model sets: :func:`save_model_set` writes a model and its landmark models as one unit (one
run id, the members' SHA-256 in the main record, renamed into place only when all are
written); :func:`check_set_member` refuses a member of another run, naming both runs.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
import platform
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from features.contract import ID, warn_extra_columns
from features.description import DeclaredFeature, TableDescription
from features.errors import UserInputError, listed
from features.tables import atomic_write_bytes, remove_stale_temporaries
from models.statistics import called

FORMAT_VERSION = 2
_PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "joblib", "skops",
             "SimpleITK", "pyradiomics-bhklab", "pseudoprogression")
#: Version of the record written beside every model file (:func:`record_path`).
RECORD_VERSION = 1
#: Largest size a skops model file may unpack to (its members, and the arrays their headers
#: declare), in bytes; a model train.py saves unpacks to a few megabytes.
MAX_UNPACKED_BYTES = 256 * 2**20
#: Model file names ending so are joblib pickles; every other name is a skops file.
PICKLE_SUFFIXES: tuple[str, ...] = (".joblib", ".pkl", ".pickle")

#: Every type a skops model file may hold. A file holding any other type is refused before
#: anything in it is built. Listed from every node of real models of every family, with
#: radiomic columns, with declared features, and updated (intercept, refit, auto), and
#: reviewed; a type no longer fitted stays listed so that older files still load. ``*``: a
#: type skops does not trust by default (what ``skops.io.get_untrusted_types`` reports), with
#: the reason it is safe here.
TRUSTED_TYPES: tuple[str, ...] = (
    # plain data
    "builtins.dict",
    "builtins.list",
    "builtins.slice",  # ColumnTransformer's output_indices_
    "builtins.str",
    "builtins.tuple",
    "numpy.dtype",  # * rebuilt from an empty array read without pickle
    "numpy.float64",
    "numpy.ndarray",  # read with numpy.load(allow_pickle=False)
    "numpy.random._generator.Generator",  # boosting's feature subsampling generator
    "numpy.uint64",  # boosting's random seed
    # scikit-learn estimators
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.feature_selection._univariate_selection.SelectKBest",
    "sklearn.feature_selection._variance_threshold.VarianceThreshold",
    "sklearn.impute._base.MissingIndicator",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.model_selection._classification_threshold.FixedThresholdClassifier",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._label.LabelEncoder",
    # scikit-learn internals
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.calibration._CalibratedClassifier",  # * a fitted model and its calibrator
    "sklearn.calibration._SigmoidCalibration",  # * two numbers, a and b
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    # * boosted trees: arrays of nodes that scikit-learn indexes without bounds checks, so
    # every tree is checked after loading (split nodes point inside the tree, forward)
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # * SelectKBest's score function: a reference to it, not called when loading or predicting
    "sklearn.feature_selection._univariate_selection.f_classif",
    # this project's estimators (* all): numbers and arrays set as attributes, no code run
    # on loading; their methods index arrays through numpy, which checks bounds
    "models.classifier.ContractTransformer",
    "models.classifier.CorrelationFilter",
    "models.classifier.PatientCalibratedClassifier",
    "models.classifier.RadiomicSelector",
    "models.classifier.RestrictedCubicSplines",
    "models.updating.UpdatedClassifier",
    "models.updating.MaximumLikelihoodRevision",
)


def package_versions(packages: Sequence[str] = _PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (by default those a saved model depends on), with
    Python's."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def table_sha256(df: pd.DataFrame) -> str:
    """A content hash of a table (row order and column order included)."""
    h = hashlib.sha256()
    h.update("|".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


@dataclass
class TrainedModel:
    """A calibrated classifier ready for prediction, with its provenance.

    ``estimator`` is a fitted scikit-learn classifier holding its decision threshold
    (:func:`models.classifier.with_threshold`: ``predict`` calls pseudoprogression where
    P(pseudoprogression) >= ``threshold``). It takes the model's ``feature_columns`` plus
    ``patient_id`` (used only to group a patient's rows when it is refitted), so
    ``sklearn.base.clone(model.estimator).fit(table, y)`` refits the whole procedure.
    """

    estimator: Any
    family: str
    feature_columns: list[str]
    threshold_source: str
    cv_scores: dict
    training: dict
    versions: dict = field(default_factory=package_versions)
    metrics: dict | None = None
    radiomics_settings: str | None = None
    declared_features: dict = field(default_factory=dict)
    description: dict | None = None
    population: dict | None = None
    format_version: int = FORMAT_VERSION

    def declared(self) -> dict[str, DeclaredFeature]:
        """The declared extra feature columns, by name (kind, block, range)."""
        return {k: DeclaredFeature(v["kind"], v.get("block"),
                                   None if v.get("range") is None else tuple(v["range"]))
                for k, v in self.declared_features.items()}

    def table_description(self) -> TableDescription:
        """The table description the model was trained with (the default when none)."""
        if self.description is None:
            return TableDescription()
        return TableDescription.stored_in_model(self.description)

    @property
    def training_prevalence(self) -> float:
        """The share of positive lesions in the training rows (what it is calibrated to)."""
        n = self.training.get("n") or 0
        return float(self.training.get("n_positive", 0)) / n if n else float("nan")

    @property
    def threshold(self) -> float:
        """The decision threshold on P(pseudoprogression), read from the estimator."""
        return float(self.estimator.threshold)

    @property
    def input_columns(self) -> list[str]:
        """What the estimator takes: the feature columns, then ``patient_id``."""
        return [*self.feature_columns, ID]

    def align(self, df: pd.DataFrame, warn: bool = True) -> pd.DataFrame:
        """The estimator's columns from ``df``, in training order: extra columns are ignored
        and columns seen in training but absent here are treated as missing, each with a
        warning (unless ``warn`` is False)."""
        if not warn:
            return df.reindex(columns=self.input_columns)
        warn_extra_columns(df, self.input_columns, stacklevel=3)
        absent = [c for c in self.feature_columns if c not in df.columns]
        if absent:
            warnings.warn(
                f"{len(absent)} column(s) used in training are absent and treated as missing: "
                f"{listed(absent, 8)}", UserWarning, stacklevel=2)
        return df.reindex(columns=self.input_columns)

    def predict_proba(self, df: pd.DataFrame, warn: bool = True) -> np.ndarray:
        """Class probabilities per row as scikit-learn gives them, shape (n, 2): the
        negative class, then the positive one; ``warn`` as in :meth:`align`."""
        X = self.align(df, warn=warn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            return self.estimator.predict_proba(X)

    def probability(self, df: pd.DataFrame, warn: bool = True) -> np.ndarray:
        """The calibrated probability of the positive class per row, shape (n,) (the
        second column of :meth:`predict_proba`)."""
        return self.predict_proba(df, warn=warn)[:, 1]

    def predict(self, df: pd.DataFrame, warn: bool = True) -> np.ndarray:
        """1 (pseudoprogression) / 0 per row, by the estimator at its threshold."""
        X = self.align(df, warn=warn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            return self.estimator.predict(X).astype(int)

    def decide(self, p) -> np.ndarray:
        """1/0 calls from probabilities already computed, at the model's threshold (the same
        rule as :meth:`predict`, :func:`models.statistics.called`)."""
        return called(p, self.threshold).astype(int)


def record_path(path: str | Path) -> Path:
    """The record beside a model file: ``model.skops`` -> ``model.skops.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def is_pickle_path(path: str | Path) -> bool:
    """True when a model file of this name is a joblib pickle (:data:`PICKLE_SUFFIXES`)."""
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def save_model(model: TrainedModel, path: str | Path) -> Path:
    """Write the model to ``path`` and its record beside it (:func:`record_path`), as a set
    of one (:func:`save_model_set`).

    skops, or a joblib pickle when the name ends in ``.joblib``, ``.pkl`` or ``.pickle``.
    """
    return save_model_set(model, path)


def save_model_set(model: TrainedModel, path: str | Path,
                   members: Mapping[str | Path, TrainedModel] | None = None,
                   run_id: str | None = None) -> Path:
    """Write a model and the ``members`` of its set (path -> model: the landmark models
    beside it) as one unit, each with its record (:func:`record_path`).

    Every file of the set names the run that wrote it (``run_id``; by default one derived
    from the files' bytes, :func:`features.outputs.run_id_of`):
    the main model's record lists each member's SHA-256, each member's record the main
    model's file. Every file is written under a temporary name first; only when all are
    written are they renamed into place, the members first and the main model last, so an
    interruption leaves a set whose main record does not list its members, which
    :func:`check_set_member` refuses. Two runs writing one set are kept apart by a lock
    (:func:`features.outputs.output_lock`). An error before the renames leaves the previous
    set as it was.
    """
    from features.outputs import output_lock, run_id_of

    path = Path(path)
    members = {Path(p): m for p, m in (members or {}).items()}
    with output_lock(path, "--out"), ExitStack() as temporaries:
        packed = {p: _pack(m, p, temporaries) for p, m in members.items()}
        main_tmp, main_data = _pack(model, path, temporaries)
        run_id = run_id or run_id_of(main_data, *(data for _, data in packed.values()))
        records = {p: _record_text(members[p], p, data, {"id": run_id, "model_file": path.name})
                   for p, (_, data) in packed.items()}
        main_record = _record_text(model, path, main_data, {"id": run_id, "members": {
            p.name: hashlib.sha256(data).hexdigest() for p, (_, data) in packed.items()}})
        staged = [(_temporary(record_path(p), temporaries), record_path(p), text)
                  for p, text in [*records.items(), (path, main_record)]]
        for tmp, _, text in staged:
            with open(tmp, "wb") as fh:
                fh.write(text.encode())
                fh.flush()
                os.fsync(fh.fileno())
        record = record_path(path)
        previous = record.read_bytes() if record.is_file() else None
        try:
            for member, (tmp, _) in packed.items():
                _publish_pair(tmp, member, *next((t, r) for t, r, _ in staged
                                                 if r == record_path(member)))
            _publish_pair(main_tmp, path, *next((t, r) for t, r, _ in staged if r == record))
        except BaseException:
            if main_tmp.exists():  # the main model was not replaced: nor is its record
                if previous is None:
                    record.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(record, previous)
            raise
    return path


def _pack(model: TrainedModel, path: Path, temporaries: ExitStack) -> tuple[Path, bytes]:
    """``model`` written to a temporary file beside ``path`` (removed unless renamed into
    place), flushed to disk; its path and bytes. A skops file holding types
    :func:`load_model` refuses by default gives a warning naming them."""
    tmp = _temporary(path, temporaries)
    if is_pickle_path(path):
        joblib.dump(model, tmp, compress=3)
    else:
        import skops.io as sio

        sio.dump({f.name: getattr(model, f.name) for f in fields(TrainedModel)}, tmp,
                 compression=zipfile.ZIP_DEFLATED)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
        data = fh.read()
    if not is_pickle_path(path):
        _warn_on_untrusted(model, path, data)
    return tmp, data


def _temporary(path: Path, temporaries: ExitStack) -> Path:
    """A new temporary file beside ``path`` (``.<name>.*.tmp``, the pattern
    :func:`features.tables.atomic_path` uses), removed when ``temporaries`` closes unless it
    was renamed into place; those a killed run left are swept first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, f".{glob.escape(path.name)}.*.tmp")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temporaries.callback(lambda: os.path.exists(tmp) and os.unlink(tmp))
    return Path(tmp)


def _publish_pair(model_tmp: Path, path: Path, record_tmp: Path, record: Path) -> None:
    """Rename a written record, then its model file, into place."""
    for tmp, final in ((record_tmp, record), (model_tmp, path)):
        os.chmod(tmp, final.stat().st_mode & 0o777 if final.exists() else 0o644)
        os.replace(tmp, final)


def _warn_on_untrusted(model: TrainedModel, path: Path, data: bytes) -> None:
    """A warning when the skops file ``data`` holds types :func:`load_model` refuses unless
    told to trust them (a user's own estimator's), naming them and how to load the file."""
    try:
        untrusted = untrusted_types(data)
    except ValueError:
        return
    if untrusted:
        warnings.warn(
            f"{path} holds {len(untrusted)} type(s) of the {model.family} model that a skops "
            f"model file may not hold by default: {', '.join(untrusted)}. Loading it will be "
            "refused unless you trust them: load_model(path, trusted_types="
            f"{_untrusted_text(untrusted)}) in Python; or save it as a .joblib file and load "
            "it with --trust-pickle.", UserWarning, stacklevel=3)


def _record_text(model: TrainedModel, path: Path, data: bytes, run: dict | None = None) -> str:
    """The record of the model file ``path`` holding ``data``, as JSON text; ``run`` names
    the run that wrote its set (:func:`save_model_set`)."""
    record = {
        "record_version": RECORD_VERSION,
        "model_file": path.name,
        "format": "joblib" if is_pickle_path(path) else "skops",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "model_format_version": model.format_version,
        "family": model.family,
        "threshold": model.threshold,
        "threshold_source": model.threshold_source,
        "feature_columns": list(model.feature_columns),
        "description": model.description,
        "training": model.training,
        "versions": package_versions(),
    }
    if run is not None:
        record["run"] = run
    return json.dumps(_plain(record), indent=2) + "\n"


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready dicts, lists, text, numbers and None (NaN becomes None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def load_model(path: str | Path, *, trust_pickle: bool = False,
               trusted_types: Sequence[str] = ()) -> TrainedModel:
    """Read a model written by :func:`save_model`, after checking it against its record.

    The file must match the SHA-256 and size in its record (:func:`record_path`) before
    anything in it is read. A skops file may hold only :data:`TRUSTED_TYPES` and the
    ``trusted_types`` the caller vouches for (qualified names such as
    ``sklearn.naive_bayes.GaussianNB``: the types of a user's own estimator, which
    :func:`save_model` names in a warning). A joblib
    pickle is unpickled only with ``trust_pickle=True``: unpickling runs whatever code the
    file carries, and a record shows the file is intact, not who made it. A different
    scikit-learn version than the one that saved it gives a warning. Every refusal is a
    :class:`~features.errors.UserInputError` naming the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"model file not found: {path}. Train one with train.py --out {path}.")
    record = _read_record(path)
    data = path.read_bytes()  # checked, then read from these very bytes
    _check_against_record(path, data, record)
    _warn_on_other_versions(path, record)
    if record["format"] == "joblib":
        if not trust_pickle:
            raise UserInputError(
                f"{path} is a pickle (joblib), and loading a pickle runs whatever code it "
                "carries; its record shows the file is intact, not who made it. If you made "
                "it or trust its source, load it with --trust-pickle (in Python: "
                "load_model(path, trust_pickle=True)). Models to share are safer as skops "
                "files: train.py --out model.skops.")
        model = _load_pickle(path, data)
    else:
        model = _load_skops(path, data, record, tuple(trusted_types))
    if model.format_version != FORMAT_VERSION:
        raise UserInputError(
            f"{path} was saved in model format {model.format_version}; this version reads "
            f"format {FORMAT_VERSION}. Retrain it with this version's train.py.")
    return model


def _read_record(path: Path) -> dict:
    """The record beside ``path``, checked for the keys loading relies on."""
    record_file = record_path(path)
    fix = (f"Copy the model file and its record together from their source, or retrain with "
           f"train.py --out {path}.")
    if not record_file.is_file():
        raise UserInputError(
            f"the model file {path} has no record: {record_file.name} is missing beside it. "
            "train.py writes one with every model, and a model is read only when it matches "
            f"its record, so that a corrupted or swapped file is never used. {fix}")
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        record = None
    expected = "joblib" if is_pickle_path(path) else "skops"
    digest = record.get("sha256") if isinstance(record, dict) else None
    if not (isinstance(digest, str) and len(digest) == 64
            and isinstance(record.get("size_bytes"), int)
            and record.get("format") in ("skops", "joblib")):
        raise UserInputError(
            f"{record_file} is not a readable record of the model file {path} (it is "
            f"corrupted or not written by train.py), so {path.name} was not read. {fix}")
    if record["format"] != expected:
        raise UserInputError(
            f"the model file {path} is named as a {expected} file, but its record says it "
            f"is a {record['format']} file, so it was not read. Give it back the name it was "
            f"saved under, or retrain with train.py --out {path}.")
    return record


def set_members(path: str | Path) -> tuple[str | None, dict[str, str] | None]:
    """The run that wrote the model set of the model file ``path`` and its members (file
    name -> SHA-256), from its record; ``(None, None)`` for a model saved before sets named
    their run."""
    run = _read_record(Path(path)).get("run")
    if not isinstance(run, dict) or not isinstance(run.get("members"), dict):
        return None, None
    return str(run.get("id")), {str(k): str(v) for k, v in run["members"].items()}


def check_set_member(path: str | Path, member: str | Path) -> None:
    """Refuse the file ``member`` beside the model ``path`` unless it is the member of
    ``path``'s set that the same run wrote (the run id and the SHA-256 in the main record;
    :func:`save_model_set`); the message names both runs."""
    path, member = Path(path), Path(member)
    run_id, members = set_members(path)
    own = _read_record(member).get("run")
    own_id = str(own.get("id")) if isinstance(own, dict) else None
    if run_id is None and own_id is None:
        return  # both saved before sets named their run
    listed = (members or {}).get(member.name)
    if own_id == run_id and listed is not None and listed == hashlib.sha256(
            member.read_bytes()).hexdigest():
        return
    theirs = f"run {own_id}" if own_id else "a run that named none"
    ours = f"run {run_id}" if run_id else "a run that named none"
    why = ("which has no such member" if listed is None else
           "which saved another file by that name")
    raise UserInputError(
        f"{member.name} beside {path} was written by {theirs}, but {path.name} by {ours}, "
        f"{why}: an interrupted or later train.py --out {path} left a mixture of two runs, "
        f"and using them together would mix two models. Retrain with train.py --out {path} "
        f"(with --followup for landmark models), or remove the files of {theirs}.")


def _check_against_record(path: Path, data: bytes, record: dict) -> None:
    """Refuse ``data`` (the bytes of ``path``) unless it has its record's size and SHA-256."""
    fix = (f"Nothing was read from it. Copy the model file and its record together from their "
           f"source, or retrain with train.py --out {path}.")
    if len(data) != record["size_bytes"]:
        shorter = "truncated or " if len(data) < record["size_bytes"] else ""
        raise UserInputError(
            f"the model file {path} is {len(data)} bytes but its record "
            f"{record_path(path).name} says {record['size_bytes']}: it is {shorter}not the "
            f"model the record was written for. {fix}")
    if hashlib.sha256(data).hexdigest() != record["sha256"].lower():
        raise UserInputError(
            f"the model file {path} does not match the SHA-256 in its record "
            f"{record_path(path).name}: it is corrupted, or another model file was put in "
            f"its place. {fix}")


def _warn_on_other_versions(path: Path, record: dict) -> None:
    """A warning when the file was saved with another scikit-learn than the installed one."""
    versions = record.get("versions")
    saved = versions.get("scikit-learn") if isinstance(versions, dict) else None
    try:
        installed = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        installed = "not installed"
    if saved != installed:
        warnings.warn(
            f"{path} was saved with scikit-learn {saved or 'of an unknown version'}, and this "
            f"is scikit-learn {installed}: the model may fail to load or predict differently. "
            f"Install scikit-learn {saved} to use it, or retrain it with this version.",
            UserWarning, stacklevel=3)


def _load_pickle(path: Path, data: bytes) -> TrainedModel:
    """Unpickle ``data``, the checked bytes of ``path``."""
    try:
        model = joblib.load(io.BytesIO(data))  # scikit-learn's version warnings stay visible
    except Exception as exc:
        raise UserInputError(
            f"could not read the model file {path} ({type(exc).__name__}), though it matches "
            "its record: it was saved by other package versions or is not a model saved by "
            "train.py. Retrain it with train.py.") from None
    if not isinstance(model, TrainedModel):
        raise UserInputError(
            f"{path} holds a {type(model).__name__}, not a model saved by train.py. "
            "Retrain it with train.py.")
    return model


def untrusted_types(data: bytes, trusted: Sequence[str] = ()) -> list[str]:
    """The types named in the skops file ``data`` that are neither in :data:`TRUSTED_TYPES`
    nor in ``trusted``, sorted (nothing is built). ValueError when ``data`` is not a skops
    file."""
    import skops.io as sio

    allowed = set(TRUSTED_TYPES) | set(trusted)
    try:
        found = _skops_types(data)
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError) as exc:
        raise ValueError("no readable skops schema") from exc
    untrusted = sorted(found - allowed)
    if not untrusted:
        try:
            untrusted = sorted(set(sio.get_untrusted_types(data=data)) - allowed)
        except Exception:  # a schema skops cannot parse; loading says why
            untrusted = []
    return untrusted


def _untrusted_text(untrusted: Sequence[str]) -> str:
    """The untrusted types as the ``trusted_types`` argument that would admit them."""
    return "[" + ", ".join(repr(t) for t in untrusted) + "]"


def _load_skops(path: Path, data: bytes, record: dict,
                trusted: tuple[str, ...] = ()) -> TrainedModel:
    """Build the model from ``data``, the checked bytes of the skops file ``path``, when
    every type in it is in :data:`TRUSTED_TYPES` or ``trusted``. ``record`` (the file's
    record) only words the refusal: a model of a user's own estimator is told how to trust
    its types."""
    import skops.io as sio

    _check_unpacked_size(path, data)
    try:
        untrusted = untrusted_types(data, trusted)
    except ValueError:
        raise UserInputError(
            f"{path} is not a skops model file (no readable skops schema), though it "
            "matches its record; retrain it with train.py --out model.skops.") from None
    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    if untrusted and (record.get("family") == "custom" or training.get("estimator")):
        raise UserInputError(
            f"{path} holds a model of your own estimator"
            + (f" ({training['estimator']})" if training.get("estimator") else "")
            + f" with {len(untrusted)} type(s) outside the types a skops model file may hold "
            f"by default: {', '.join(untrusted)}. Building a type can run its code, so the "
            "file was refused and nothing in it was built or run. If you trust the file "
            "(you trained it, or know who did), load it in Python with load_model(path, "
            f"trusted_types={_untrusted_text(untrusted)}); or train with --out model.joblib "
            "and load it with --trust-pickle.")
    if untrusted:
        raise UserInputError(
            f"{path} holds {len(untrusted)} type(s) no model saved by train.py holds: "
            f"{', '.join(untrusted)}. It was refused and nothing in it was built or run. "
            "Use a model file saved by train.py, or retrain with train.py --out model.skops.")
    try:
        content = sio.loads(data, trusted=[*TRUSTED_TYPES, *trusted])
    except Exception as exc:
        raise UserInputError(
            f"could not read the model file {path} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}), though it matches its "
            "record: it was saved by other package versions or is corrupted. Retrain it with "
            "train.py.") from None
    names = {f.name for f in fields(TrainedModel)}
    if not (isinstance(content, dict) and "estimator" in content and set(content) <= names):
        raise UserInputError(
            f"{path} holds a {type(content).__name__} that is not a model saved by train.py. "
            "Retrain it with train.py.")
    model = TrainedModel(**content)
    _check_trees(model.estimator, path)
    return model


def unpacked_size(data: bytes) -> int:
    """Bytes the skops file ``data`` unpacks to: each member's declared size, or for an
    array the size its header declares when that is larger (numpy allocates the whole array
    before reading it). Read from the zip directory and the arrays' headers only."""
    from numpy.lib import format as npy

    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            size = info.file_size
            if info.filename.endswith(".npy"):
                with archive.open(info) as fh:
                    version = npy.read_magic(fh)
                    read_header = (npy.read_array_header_1_0 if version == (1, 0)
                                   else npy.read_array_header_2_0)
                    shape, _, dtype = read_header(fh)
                size = max(size, math.prod(int(n) for n in shape) * dtype.itemsize)
            total += size
    return total


def _check_unpacked_size(path: Path, data: bytes) -> None:
    """Refuse a skops file that would unpack to more than :data:`MAX_UNPACKED_BYTES`
    (a small file can hold a compressed array of gigabytes), before anything is unpacked."""
    try:
        size = unpacked_size(data)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise UserInputError(
            f"{path} is not a skops model file (its archive or an array in it cannot be "
            "read), though it matches its record; retrain it with train.py --out "
            "model.skops.") from None
    if size > MAX_UNPACKED_BYTES:
        raise UserInputError(
            f"{path} would unpack to {size / 2**20:,.0f} MB, more than the "
            f"{MAX_UNPACKED_BYTES / 2**20:,.0f} MB any model saved by train.py needs (it is "
            f"{len(data) / 2**20:,.1f} MB packed); it was refused before anything in it was "
            "unpacked. Use a model file saved by train.py, or retrain with train.py --out "
            "model.skops.")


def _skops_types(data: bytes) -> set[str]:
    """Every type named in the schema of a skops file (read as JSON, nothing built)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__module__" in node or "__class__" in node:
                found.add(f"{node.get('__module__')}.{node.get('__class__')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


#: Fields of a boosted tree's node array that prediction reads.
_TREE_FIELDS = ("is_leaf", "left", "right", "feature_idx", "is_categorical")


def _check_trees(estimator: Any, path: Path) -> None:
    """Refuse boosted trees that could make prediction read outside their arrays.

    scikit-learn walks a tree's node array without bounds checks, and a skops file restores
    that array as saved. Every split node must point to children after it within the tree
    (so a walk ends), split on one of the model's input columns, and not be a categorical
    split (this project's boosting has none).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    for obj in _estimators_in(estimator):
        if not isinstance(obj, HistGradientBoostingClassifier):
            continue
        n_features = getattr(obj, "n_features_in_", None)
        try:
            trees = [t for group in getattr(obj, "_predictors", []) for t in group]
        except TypeError:
            trees = [None]
        for tree in trees:
            if not (isinstance(n_features, int | np.integer)
                    and _tree_is_sound(tree, int(n_features))):
                raise UserInputError(
                    f"{path} holds a boosted tree whose nodes point outside the tree or "
                    "its input columns; it was refused before any prediction. Use a model "
                    "file saved by train.py, or retrain with train.py --out model.skops.")


def _tree_is_sound(tree: Any, n_features: int) -> bool:
    """True when ``tree.nodes`` is a non-empty node array whose split nodes point forward
    inside it and to a column below ``n_features``, none categorical."""
    nodes = getattr(tree, "nodes", None)
    if not (isinstance(nodes, np.ndarray) and nodes.ndim == 1 and len(nodes)
            and nodes.dtype.names and set(_TREE_FIELDS) <= set(nodes.dtype.names)):
        return False
    split = nodes["is_leaf"] == 0
    here = np.arange(len(nodes))[split]
    left, right = nodes["left"][split].astype(np.int64), nodes["right"][split].astype(np.int64)
    column = nodes["feature_idx"][split].astype(np.int64)
    return bool(np.all((left > here) & (left < len(nodes)) & (right > here)
                       & (right < len(nodes)) & (column >= 0) & (column < n_features))
                and not np.any(nodes["is_categorical"][split]))


def _estimators_in(obj: Any) -> list:
    """Every scikit-learn or project object reachable from ``obj`` through attributes,
    lists, tuples and dicts (each once)."""
    out, seen, stack = [], set(), [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif type(item).__module__.split(".")[0] in ("sklearn", "models") \
                and hasattr(item, "__dict__"):
            out.append(item)
            stack.extend(vars(item).values())
    return out
