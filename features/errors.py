"""The one exception type for problems a user can fix (bad table, wrong unit, unreadable file),
how a message quotes a user's value (:func:`quoted`), lists the first few of many
(:func:`listed`) and hides the home folder (:func:`hide_home`). Command lines turn the
exception into a message and an exit status (:func:`commands.run.run_command`)."""

from __future__ import annotations

import os
import reprlib

#: Longest quotation of a user's value in a message, in characters.
QUOTE_LIMIT = 80


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as ``repr`` text of at most ``limit`` characters, built without writing the
    whole of a long value (:class:`reprlib.Repr`: a hostile file's value may unfold to
    gigabytes; a message stays one readable line)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother = 3, limit, limit
    short.maxdict = short.maxlist = short.maxtuple = short.maxset = 4
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def listed(items, limit: int = 5) -> str:
    """The first ``limit`` of ``items`` as text joined by commas, then how many there are in
    all when some are left out: ``"P1, P2, P3, ... (12 in all)"``."""
    items = [str(i) for i in items]
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def hide_home(text: str) -> str:
    """``text`` with every path under the user's home folder written from ``~`` (a message
    may be pasted into a ticket; it need not carry the account name)."""
    home = os.path.expanduser("~").rstrip(os.sep)
    if not home or home == "~":
        return text
    return text.replace(home + os.sep, "~" + os.sep)


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
