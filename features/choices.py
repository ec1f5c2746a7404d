"""The names and choices the command lines offer, importable without numpy or pandas (so
that ``--help`` and an argument error answer at once): the simulated cohorts, the default
extraction settings, the radiomic cache's folder name, how to install Dask, and the
decision times of the landmark models, and which options need images to extract
(:func:`extraction_options_problem`)."""

from __future__ import annotations

from pathlib import Path

from features.article import FIGURES

#: The simulated cohorts: melanoma (P1), non-small-cell lung cancer (P2), half of each.
COHORTS: tuple[str, ...] = ("melanoma", "nsclc", "mixed")
#: The pyradiomics settings used when none are given.
DEFAULT_PARAMS = Path(__file__).resolve().parent / "params" / "mri.yaml"
#: The radiomic cache's folder, beside the output, when none is given.
CACHE_FOLDER = ".radiomics_cache"
#: How to install what extraction on a Dask cluster needs.
DASK_INSTALL = "pip install '.[dask]' (or pip install 'dask[distributed]')"
#: How a mask's voxels become lesions (the settings' ``lesions:``, ``--lesions``): ``whole``
#: the label is one lesion; ``components`` each connected component of the label is one;
#: ``labels`` each non-zero label value is one.
LESION_MODES: tuple[str, ...] = ("whole", "components", "labels")
#: Decision times, weeks after the index scan: the index, then every follow-up interval
#: (T4, 4 weeks) up to the deferred assessment (T3, 12 weeks).
LANDMARK_WEEKS: tuple[float, ...] = tuple(
    FIGURES["T4_interval"].value * k
    for k in range(int(FIGURES["T3"].value // FIGURES["T4_interval"].value) + 1))


def extraction_options_problem(params, cache, scheduler, needs: str,
                               lesions=None) -> str | None:
    """The command lines' check that ``--params``, ``--cache``, ``--scheduler`` and
    ``--lesions`` (the values given, None when not) come with images to extract: a message
    naming the options given and what they need (``needs``, ending where the option names
    follow: "... or drop"), or None when there is no problem."""
    given = [o for o, v in (("--params", params), ("--cache", cache),
                            ("--scheduler", scheduler), ("--lesions", lesions))
             if v is not None]
    if not given:
        return None
    named = " and ".join(given)
    return (f"{named} {'is' if len(given) == 1 else 'are'} for radiomic extraction, which "
            f"needs {needs} {named}.")


def add_lesions_option(parser) -> None:
    """``--lesions whole|components|labels`` on a command line (an argparse parser or
    argument group)."""
    parser.add_argument(
        "--lesions", choices=LESION_MODES, default=None,
        help="how a mask's voxels become lesions, overriding the settings' lesions: (default "
             "whole): whole = the label is one lesion; components = each connected component "
             "of the label is one (lesion_connectivity face or full in the settings; parts "
             "under min_lesion_ml dropped and counted), ids 1, 2, ... by decreasing volume; "
             "labels = each label value is one, its id the value. python -m features.extract "
             "writes a lesion map (patient, lesion, label, voxels, ml, centroid and bounding "
             "box in mm) beside its output.")


def add_extraction_arguments(parser, jobs_work: str = "radiomic extraction") -> None:
    """The extraction options ``train.py`` and ``predict.py`` share, on ``parser`` (an
    argparse parser or argument group): ``--jobs`` (worker processes for ``jobs_work``),
    ``--cache``, ``--scheduler`` and ``--lesions`` (:func:`add_lesions_option`)."""
    parser.add_argument("--jobs", type=int, default=2,
                        help=f"worker processes for {jobs_work} (default 2); with --scheduler "
                             "local, the number of Dask workers")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="radiomic feature cache, shared by train.py, predict.py and "
                             "python -m features.extract: a re-run with the same files and "
                             "settings reuses it, so an interrupted extraction resumes, and "
                             "several machines may share one folder (default: "
                             f"{CACHE_FOLDER} beside --out)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="extract on a dask.distributed cluster: its scheduler address "
                             "(tcp://host:8786; the workers must read the manifest's paths), "
                             "or 'local' for a cluster of --jobs workers on this machine. "
                             f"Needs Dask: {DASK_INSTALL}")
    add_lesions_option(parser)

