"""The one exception type for problems a user can fix (bad table, wrong unit, unreadable file).
Command lines turn it into a message and an exit status (:func:`commands.run.run_command`)."""

from __future__ import annotations


class UserInputError(Exception):
    """A problem with the user's input, with a message that names the problem and the fix.

    Command lines catch it, print the message and exit with status 2; no traceback.
    """


def raise_problems(problems: list[str], what: str = "the options") -> None:
    """Raise one :class:`UserInputError` naming every problem of ``problems`` (one message
    for one problem, a list for several); return when there are none."""
    if len(problems) == 1:
        raise UserInputError(problems[0])
    if problems:
        raise UserInputError(f"{len(problems)} problems with {what}:\n"
                             + "\n".join(f"  - {p}" for p in problems))
