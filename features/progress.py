"""How long steps report their progress, one way everywhere: a line per stage
(:func:`stage_line`, or :func:`stage_printer` for a step that takes a callback) or a bar over
a known number of stages (:class:`StageBar`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial


def stage_line(text: str, enabled: bool = True, indent: int = 0) -> None:
    """Print ``text`` as one line (indented by ``indent`` spaces), at once, when
    ``enabled``."""
    if enabled:
        print(" " * indent + text, flush=True)


def stage_printer(enabled: bool, indent: int = 2) -> Callable[[str], None] | None:
    """A callback printing each stage it is told as a line (:func:`stage_line`), or None
    (silent) when not ``enabled``."""
    return partial(stage_line, indent=indent) if enabled else None


class StageBar:
    """A progress bar over ``total`` named stages: calling it with a stage's name completes
    the previous stage and shows the new one (silent when not ``enabled``)."""

    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm

        self.started = 0
        self.bar = tqdm(total=total, disable=not enabled, unit="step",
                        bar_format="{desc:<44}{bar:20}| {n_fmt}/{total_fmt} [{elapsed}]")

    def __call__(self, message: str) -> None:
        if 0 < self.started <= self.bar.total:
            self.bar.update(1)
        self.started += 1
        self.bar.set_description_str(message)

    def close(self) -> None:
        """Complete every stage and close the bar."""
        self.bar.update(max(self.bar.total - self.bar.n, 0))
        self.bar.close()
