"""What a run reads and what it writes: one guard for every entry point, checked before any
work, and the lock and run id that keep a run's outputs whole.

:class:`RunFiles` collects every file a run reads (tables, description, scans, the manifest
and every path it lists, settings, the estimator's module, model files and their records);
:meth:`RunFiles.check_output` and :meth:`RunFiles.check_output_folder` refuse an output that
is one of them (the same file through a symbolic or hard link included), an output folder
holding one, an output file whose name is a folder, and a folder the user cannot create
files in. :func:`output_lock` keeps two runs from writing one output at once;
:func:`run_id_of` names a run in every file it writes.

>>> files = RunFiles().add("data.csv", "the input table (--data)")   # doctest: +SKIP
>>> files.check_output("--out", "pred.csv", "choose another file.")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from features.errors import UserInputError


def run_id_of(*contents: bytes) -> str:
    """A run's name, from what it wrote: the first 16 hex digits of the SHA-256 of
    ``contents``. Two runs that write different files (other data, settings or seed) get
    different names; a rerun with the same seed writes the same bytes, its name included."""
    digest = hashlib.sha256()
    for part in contents:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a folder, or a file in the way)."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate
        except OSError:  # e.g. a parent folder that may not be listed
            continue
    return Path(path.anchor or ".")


def check_writable(option: str, path: str | Path, folder: bool = False) -> None:
    """Raise :class:`UserInputError` unless ``path`` (a file, or a folder when ``folder``)
    can be written: the nearest existing folder above it must let the user create a file,
    and no regular file may stand where a folder has to be."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise UserInputError(f"{option} {path} is a file, not a folder; choose a folder name "
                             f"for {option}.")
    if not folder and path.is_dir():
        raise UserInputError(f"{option} {path} is a folder; give a file name for {option} "
                             "(or move the folder out of the way).")
    base = nearest_existing(path if folder else path.parent)
    if not base.is_dir():
        raise UserInputError(f"{option} {path} cannot be written: {base} is a file, not a "
                             f"folder; choose {option} in a folder.")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserInputError(f"{option} {path} cannot be written: no file can be created in "
                             f"{base} ({reason.lower()}); choose {option} in a folder you can "
                             "write to, or make it writable (chmod u+w "
                             f"{base}).") from None


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name one file: the same inode and device when both exist
    (so symbolic and hard links count), else the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """True when ``path`` resolves to ``folder`` or somewhere below it."""
    p, f = os.path.realpath(path), os.path.realpath(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


#: Input files as (path or None, what the message calls it) pairs; ``None`` paths are skipped.
Inputs = Iterable[tuple["str | Path | None", str]]


@dataclass
class RunFiles:
    """Every file (or folder, for a DICOM series) a run reads, with what a message calls it.

    Build it from the command line's options before any work, then check each output with
    :meth:`check_output` (a file) or :meth:`check_output_folder` (a report folder).
    """

    inputs: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: str | Path | None, what: str) -> RunFiles:
        """Add one input (nothing for ``None``); returns ``self`` for chaining."""
        if path is not None:
            self.inputs.append((Path(path), what))
        return self

    def add_all(self, inputs: Inputs) -> RunFiles:
        """Add ``(path, what)`` pairs; ``None`` paths are skipped."""
        for path, what in inputs:
            self.add(path, what)
        return self

    def add_model(self, path: str | Path | None, what: str,
                  members: Iterable[str | Path] = ()) -> RunFiles:
        """Add a model file, its record (``<file>.json``) and the ``members`` of its set (the
        landmark models beside it, :func:`models.landmarks.landmark_files`), each with its
        record."""
        if path is None:
            return self
        self.add(path, what).add(Path(str(path) + ".json"), f"the record of {what}")
        for member in members:
            self.add(member, f"a landmark model of {what} ({Path(member).name})")
            self.add(Path(str(member) + ".json"),
                     f"the record of a landmark model of {what} ({Path(member).name})")
        return self

    def add_manifest(self, path: str | Path | None, what: str,
                     listed: Iterable[str | Path] = ()) -> RunFiles:
        """Add an image manifest and every image, mask or DICOM folder it lists (``listed``:
        :func:`features.extract.manifest_paths`)."""
        if path is None:
            return self
        self.add(path, f"{what} ({path})")
        for item in listed:
            self.add(item, f"an image or mask listed in {what} ({Path(item).name})")
        return self

    def add_estimator(self, spec: str | None) -> RunFiles:
        """Add the module file of ``--estimator module:factory`` or ``path/file.py:factory``
        (a module name is looked up from the current folder without importing it)."""
        if not spec:
            return self
        source = str(spec).strip().rpartition(":")[0]
        if not source:  # not module:factory; loading the estimator says so
            return self
        if source.endswith(".py") or os.sep in source or "/" in source:
            return self.add(Path(source).expanduser(), f"your estimator's module ({source})")
        base = Path(*source.split("."))
        if not base.name:
            return self
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                self.add(candidate, f"your estimator's module ({candidate})")
        return self

    def hold(self, option: str, output: str | Path) -> None:
        """Take the lock of ``output`` (:func:`output_lock`) until :meth:`release`, or until
        this object is gone: a second run into the same output is refused now, before any
        work."""
        if not hasattr(self, "_locks"):
            self._locks = ExitStack()
        self._locks.enter_context(output_lock(output, option))

    def release(self) -> None:
        """Release the locks taken with :meth:`hold`."""
        locks = getattr(self, "_locks", None)
        if locks is not None:
            locks.close()

    def __del__(self) -> None:
        self.release()

    def clash(self, output: str | Path) -> str | None:
        """What the message calls the input ``output`` is, or that ``output`` lies inside
        (an input folder); ``None`` when it is none of them."""
        for path, what in self.inputs:
            if same_file(output, path):
                return what
            if path.is_dir() and is_inside(output, path):
                return f"inside {what}"
        return None

    def check_output(self, option: str, path: str | Path, fix: str) -> None:
        """Refuse the output file ``path`` (given with ``option``) when it cannot be written
        (:func:`check_writable`: a folder by that name, a file in the way, a read-only
        folder) or is one of the inputs: ``"<option> <path> is <what>; <fix>"``."""
        check_writable(option, path)
        what = self.clash(path)
        if what is not None:
            raise UserInputError(f"{option} {path} is {what}, which this run reads; {fix}")

    def check_outputs(self, option: str, paths: Iterable[str | Path], fix: str) -> None:
        """:meth:`check_output` for each of ``paths`` (a model and the files beside it)."""
        for path in paths:
            self.check_output(option, path, fix)

    def check_output_folder(self, option: str, folder: str | Path,
                            files: Iterable[str | Path]) -> None:
        """Refuse the output folder ``folder`` when it cannot be written, holds one of the
        inputs, or one of the ``files`` written into it is an input or a folder."""
        folder = Path(folder)
        check_writable(option, folder, folder=True)
        for path, what in self.inputs:
            if is_inside(path, folder):
                raise UserInputError(
                    f"{option} {folder} holds {what}, which this run reads, and a report "
                    f"folder is replaced as a whole; choose another folder for {option}.")
        for file in files:
            file = Path(file)
            if file.is_dir():
                raise UserInputError(
                    f"{option} {folder}: {file.name} in it is a folder, where the report "
                    f"writes a file; move it away or choose another folder for {option}.")
            what = self.clash(file)
            if what is not None:
                raise UserInputError(
                    f"{option} {folder} would overwrite {what} ({file.name}); choose another "
                    "report folder.")


# --------------------------------------------------------------------------- locks

_HELD: dict[str, tuple[int, int]] = {}  # lock file -> (open descriptor, holders)


def lock_path(output: str | Path) -> Path:
    """The lock file of an output (a file or a folder): ``.<name>.lock`` beside it."""
    output = Path(os.path.abspath(output))
    return output.with_name(f".{output.name}.lock")


@contextmanager
def output_lock(output: str | Path, option: str) -> Iterator[Path]:
    """Hold the lock of ``output`` while the block runs, so that two runs never write one
    model set or one report folder at once: a second run is refused at once with a
    :class:`UserInputError` naming the process that holds it. Re-entrant within a process.
    An advisory ``fcntl.flock`` lock, released by the system when a process dies; the lock
    file is removed when the last holder leaves. Where ``fcntl`` does not exist (Windows) no
    lock is taken."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield lock_path(output)
        return
    path = lock_path(output)
    key = str(path)
    if key in _HELD:
        fd, holders = _HELD[key]
        _HELD[key] = (fd, holders + 1)
        try:
            yield path
        finally:
            fd, holders = _HELD[key]
            _HELD[key] = (fd, holders - 1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserInputError(
                f"{option} {output} is being written by another run ({holder}); wait for it "
                f"to finish, or choose another {option}.") from None
        try:  # the file may have been removed by the holder we waited for: lock the new one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
    _HELD[key] = (fd, 1)
    try:
        yield path
    finally:
        fd, holders = _HELD[key]
        if holders > 1:
            _HELD[key] = (fd, holders - 1)
        else:
            del _HELD[key]
            try:
                os.unlink(path)
            except OSError:
                pass
            os.close(fd)
