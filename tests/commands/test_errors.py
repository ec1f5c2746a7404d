"""run_command: exit statuses, one message on stderr, warnings as one line only while it runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from commands.run import one_line_warning, run_command
from features.errors import UserInputError

ROOT = Path(__file__).resolve().parents[2]


def _format(message: str = "careful") -> str:
    return warnings.formatwarning(message, UserWarning, "somewhere.py", 7)


def test_status_is_main_s_return_value():
    assert run_command(lambda argv: None) == 0
    assert run_command(lambda argv: 3) == 3
    seen = []
    assert run_command(lambda argv: seen.append(argv), ["--x"]) == 0
    assert seen == [["--x"]]


def test_user_input_error_is_status_2_and_one_message(capsys):
    def main(argv):
        raise UserInputError("the table has no 'pseudoprogression' column; add it.")

    assert run_command(main) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: the table has no 'pseudoprogression' column; add it.\n"


def test_keyboard_interrupt_is_status_130(capsys):
    def main(argv):
        raise KeyboardInterrupt

    assert run_command(main) == 130
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "interrupted" in err
    assert "Traceback" not in err


def test_warnings_are_one_line_while_main_runs():
    seen = []
    run_command(lambda argv: seen.append(_format("few events")))
    assert seen == ["warning: few events\n"]


@pytest.mark.parametrize("ending", ["return", "user error", "interrupt", "crash", "exit"])
def test_previous_warning_format_is_restored(monkeypatch, ending):
    def own(message, category, filename, lineno, line=None):
        return f"mine: {message}\n"

    monkeypatch.setattr(warnings, "formatwarning", own)
    raised = {"return": None, "user error": UserInputError("bad"),
              "interrupt": KeyboardInterrupt(), "crash": RuntimeError("bug"),
              "exit": SystemExit(0)}[ending]

    def main(argv):
        assert warnings.formatwarning is one_line_warning
        if raised is not None:
            raise raised

    if isinstance(raised, RuntimeError | SystemExit):  # not handled: propagates
        with pytest.raises(type(raised)):
            run_command(main)
    else:
        run_command(main)
    assert warnings.formatwarning is own
    assert _format() == "mine: careful\n"


def test_a_python_session_keeps_its_warning_format():
    """Printed warnings, end to end: one line inside the command, the session's own
    format (file and line) before and after it."""
    script = textwrap.dedent("""
        import warnings

        from commands import run as errors  # light: imports neither numpy nor pandas

        warnings.simplefilter("always")
        warnings.warn("before", UserWarning)

        def main(argv):
            warnings.warn("inside", UserWarning)
            raise RuntimeError("a bug")

        try:
            errors.run_command(main)
        except RuntimeError:
            pass
        warnings.warn("after", UserWarning)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "warning: inside" in lines
    for word in ("before", "after"):
        assert any(line.endswith(f"UserWarning: {word}") and ":" in line.split("User")[0]
                   for line in lines), proc.stderr


def test_listed_shows_the_first_few_and_counts_the_rest():
    from features.errors import listed

    assert listed(["a", "b"]) == "a, b"
    assert listed(range(7), 3) == "0, 1, 2, ... (7 in all)"
    assert listed((f"P{i}" for i in range(5)), 5) == "P0, P1, P2, P3, P4"
