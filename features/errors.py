"""The one exception type for problems a user can fix (bad table, wrong unit, unreadable file)."""


class UserInputError(Exception):
    """A problem with the user's input, with a message that names the problem and the fix.

    Command lines catch it, print the message and exit with status 2; no traceback.
    """


def run_command(main, argv=None) -> int:
    """Run a command-line ``main(argv)``; a :class:`UserInputError` becomes one message on
    stderr and exit status 2, and warnings print as one plain line each."""
    import sys
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: (
        f"warning: {message}\n")
    try:
        return int(main(argv) or 0)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no output was half-written.", file=sys.stderr)
        return 130
