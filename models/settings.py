"""What the settings of a study (:class:`models.study.StudySettings`) and of a prediction
(:class:`models.scoring.PredictionSettings`) share: how the user's table is read, how image
features are extracted, the follow-up scans and the report."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The table read through the table description ``table`` and the shortcuts
    ``patient_column``, ``label_column``, ``positive``, ``sep``, ``decimal`` and ``sheet``
    (of a workbook); image features from ``manifest``, extracted with ``params`` by ``jobs``
    workers or on ``scheduler`` and cached in ``cache``, lesions found in the masks as
    ``lesions`` says (``whole``, ``components`` or ``labels``; None: as ``params`` says);
    follow-up ``scans``; the report
    folder ``report`` with ``bootstrap`` resamples for its intervals (0 skips them); and
    ``trust_pickle``, to load a .joblib model. Path fields take any path-like value."""

    #: Settings whose command-line flag says the opposite (``--no-nested-cv``).
    NEGATED_FLAGS: ClassVar[dict[str, str]] = {}

    table: Path | None = None
    patient_column: str | None = None
    label_column: str | None = None
    positive: str | None = None
    sep: str | None = None
    decimal: str | None = None
    sheet: str | None = None
    manifest: Path | None = None
    params: Path | None = None
    jobs: int = 2
    cache: Path | None = None
    scheduler: str | None = None
    lesions: str | None = None
    scans: Path | None = None
    report: Path | None = None
    bootstrap: int = 1000
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if "Path" in str(f.type) and value is not None and not isinstance(value, Path):
                object.__setattr__(self, f.name, Path(value))

    @classmethod
    def from_arguments(cls, args):
        """The settings of a parsed command line (an argparse namespace): each field from
        the option of its name, or the opposite of its negated flag."""
        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        for name, flag in cls.NEGATED_FLAGS.items():
            if hasattr(args, flag):
                given[name] = not getattr(args, flag)
        return cls(**given)
