"""Running a command line: :func:`run_command` turns a :class:`UserInputError` into one
message and exit status 2, and prints warnings as one plain line each while it runs; both
write paths under the home folder from ``~`` (:func:`features.errors.hide_home`)."""

from __future__ import annotations

import sys
import warnings

from features.errors import UserInputError, hide_home


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one plain line, ``warning: <message>`` (the signature of
    :func:`warnings.formatwarning`); where it was raised is left out."""
    return f"warning: {hide_home(str(message))}\n"


def run_command(main, argv=None) -> int:
    """Run a command-line ``main(argv)`` and return its exit status.

    A :class:`UserInputError` becomes one message on stderr and status 2, an interruption
    (Ctrl-C) status 130; any other exception propagates. While ``main`` runs, warnings
    print as one plain line each (:func:`one_line_warning`); the previous
    ``warnings.formatwarning`` is restored when it returns or raises, so a Python session
    that runs a command keeps its own warning format afterwards.
    """
    previous = warnings.formatwarning
    warnings.formatwarning = one_line_warning
    try:
        return int(main(argv) or 0)
    except UserInputError as exc:
        print(f"error: {hide_home(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no output was half-written.", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous
