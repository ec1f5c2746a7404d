"""``make demo`` by stage: where the demo's time goes.

Runs the demo's two commands (the Makefile's ``demo`` target) through ``train.main`` in
this process, writing into a temporary folder (never artifacts/), with a clock around each
stage the script calls:

1. images: 600 simulated patients with synthetic MRI (``--images``, no nested CV);
2. main: 4000 simulated patients without images (nested CV on).

Stages: simulating the cohort (with images: writing them), radiomic extraction (cold: a
fresh cache), training (model choice, tuning, calibration, threshold, validation), the
comparison without image features, the bootstrap, saving the model, the simulator's
fidelity table and writing the report. Time outside these (imports, reading options,
printing) is "other". The table is printed and written with the machine's core count and
package versions to ``benchmarks/results/demo_stages.json``.

    .venv/bin/python benchmarks/demo_stages.py               # both commands, minutes
    .venv/bin/python benchmarks/demo_stages.py --n-main 1000 # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

from common import markdown_table, run, write_result

#: stage name -> (module, function) whose calls are timed, in the order they run.
STAGES: dict[str, tuple[str, str]] = {
    "simulate cohort": ("features.synthetic", "simulate_cohort"),
    "simulate cohort and write images": ("features.synthetic",
                                         "simulated_cohort_with_images"),
    "radiomic extraction": ("features.join", "add_radiomic_features"),
    "training and validation": ("models", "train"),
    "training without images (comparison)": ("models.training", "compare_without_images"),
    "bootstrap": ("models", "add_uncertainty"),
    "landmark models (follow-up scans)": ("models.landmarks", "train_landmarks"),
    "save model": ("models", "save_model"),
    "simulator fidelity table": ("features.synthetic", "fidelity_table"),
    "write report": ("models", "write_report"),
}


@contextlib.contextmanager
def clocks(seconds: dict[str, float]) -> Iterator[None]:
    """While inside, every :data:`STAGES` function adds its wall time to ``seconds``
    (nested calls, e.g. a simulation inside the image writer, count once, outermost)."""
    from importlib import import_module

    active: list[str] = []
    saved: list[tuple[object, str, Callable]] = []

    def wrap(stage: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            if active:
                return fn(*args, **kwargs)
            active.append(stage)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t0
                active.pop()
        return timed

    for stage, (module_name, name) in STAGES.items():
        module = import_module(module_name)
        fn = getattr(module, name)
        saved.append((module, name, fn))
        setattr(module, name, wrap(stage, fn))
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def run_command(argv: list[str]) -> tuple[float, dict[str, float], str]:
    """Total seconds, seconds by stage and the printed output of one train.py command."""
    import train
    from commands.run import run_command as run

    seconds: dict[str, float] = {}
    out = io.StringIO()
    t0 = time.perf_counter()
    with clocks(seconds), contextlib.redirect_stdout(out):
        code = run(train.main, argv)
    total = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"train.py {' '.join(argv)} exited with {code}")
    return total, seconds, out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Run both demo commands, print the table, write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=600,
                        help="patients of the image command (600, as make demo)")
    parser.add_argument("--n-main", type=int, default=4000,
                        help="patients of the main command (4000, as make demo)")
    parser.add_argument("--out", default=None, help="JSON record (benchmarks/results/...)")
    args = parser.parse_args(argv)
    import warnings

    warnings.simplefilter("ignore")

    records = {}
    with tempfile.TemporaryDirectory(prefix="demo-stages-") as tmp:
        commands = {
            "images": ["--cohort", "melanoma", "--n", str(args.n_images), "--seed", "0",
                       "--images", "--no-nested-cv", "--out", f"{tmp}/images/model.skops",
                       "--report", f"{tmp}/images/report", "--no-progress"],
            "main": ["--cohort", "melanoma", "--n", str(args.n_main), "--seed", "0",
                     "--followup", "--out", f"{tmp}/model.skops", "--report", f"{tmp}/report",
                     "--no-progress"],
        }
        for name, command in commands.items():
            print(f"running the {name} command ...", file=sys.stderr, flush=True)
            total, seconds, _ = run_command(command)
            seconds["other (imports, options, printing)"] = total - sum(seconds.values())
            records[name] = {"argv": command, "total_s": total, "stages_s": seconds}
    rows = []
    for name, r in records.items():
        for stage, s in r["stages_s"].items():
            rows.append((name, stage, f"{s:.1f}", f"{100 * s / r['total_s']:.0f}%"))
        rows.append((name, "**total**", f"{r['total_s']:.1f}", "100%"))
    text = markdown_table(["command", "stage", "seconds", "share"], rows)
    print(f"make demo by stage ({args.n_images} patients with images, then {args.n_main} "
          "without):\n")
    print(text)
    grand = sum(r["total_s"] for r in records.values())
    print(f"\nboth commands: {grand:.0f} s")
    out = write_result("demo_stages", {"commands": records, "total_s": grand,
                                       "table": text}, args.out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    run(main)
