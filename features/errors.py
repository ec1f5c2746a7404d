"""The one exception type for problems a user can fix (bad table, wrong unit, unreadable file)."""


class UserInputError(Exception):
    """A problem with the user's input, with a message that names the problem and the fix.

    Command lines catch it, print the message and exit with status 2; no traceback.
    """
