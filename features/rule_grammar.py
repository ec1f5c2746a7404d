"""The grammar of a declared rule's condition (``positive_when`` in a table description).

A condition compares columns with numbers or quoted text, and combines comparisons::

    rCBV_ratio >= 1.75
    volume_change_pct >= 40 and weeks_on_treatment > 12
    `original_shape_MajorAxisLength` >= 56 or not (site == "frontal")

Comparisons: ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=`` between a column and a number or a
quoted string ('...' or "..."), the column on either side; ``and``, ``or``, ``not`` and
parentheses combine them (``not`` binds tightest, then ``and``, then ``or``). A column
whose name holds characters other than letters, digits, ``_`` and ``.`` is written in
backquotes. Text is compared by ``==`` and ``!=`` only, stripped and case-insensitive.

The condition is read by a tokenizer and a recursive-descent parser into a small tree
(:class:`Compare`, :class:`Not`, :class:`And`, :class:`Or`) that is evaluated on a table by
:func:`evaluate`; it is never handed to Python's ``eval``, so nothing but these comparisons
can run. A syntax error is a :class:`RuleSyntaxError` with the character position. (A
hand-written parser rather than ``ast``: the grammar is ten lines, and its own error
positions and messages name what a rule's author wrote.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The comparison operators, longest first (so ``<=`` is not read as ``<``).
OPERATORS: tuple[str, ...] = ("<=", ">=", "==", "!=", "<", ">")
KEYWORDS: tuple[str, ...] = ("and", "or", "not")
_FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<op><=|>=|==|!=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<quoted>`[^`]*`?)
  | (?P<string>"[^"]*"?|'[^']*'?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
""", re.VERBOSE)


class RuleSyntaxError(ValueError):
    """A condition that does not parse; ``position`` is the 0-based character index."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Token:
    kind: str  # number, op, lparen, rparen, name, string, keyword, end
    text: str
    position: int
    value: object = None


@dataclass(frozen=True)
class Compare:
    """``column op value``: value a float or a str; ``position`` of the comparison."""

    column: str
    op: str
    value: float | str
    position: int


@dataclass(frozen=True)
class Not:
    item: object


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token; :class:`RuleSyntaxError` at the
    first character that starts no token, or at an unclosed quote."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RuleSyntaxError(f"unexpected character {text[pos]!r}", pos)
        kind, raw = match.lastgroup, match.group()
        if kind == "quoted":
            if len(raw) < 2 or not raw.endswith("`"):
                raise RuleSyntaxError("a backquoted column name is not closed", pos)
            if len(raw) == 2:
                raise RuleSyntaxError("an empty backquoted column name", pos)
            tokens.append(Token("name", raw, pos, raw[1:-1]))
        elif kind == "string":
            if len(raw) < 2 or raw[-1] != raw[0]:
                raise RuleSyntaxError("a quoted text is not closed", pos)
            tokens.append(Token("string", raw, pos, raw[1:-1]))
        elif kind == "number":
            tokens.append(Token("number", raw, pos, float(raw)))
        elif kind == "name" and raw.lower() in KEYWORDS:
            tokens.append(Token("keyword", raw, pos, raw.lower()))
        elif kind == "name":
            tokens.append(Token("name", raw, pos, raw))
        elif kind != "space":
            tokens.append(Token(kind, raw, pos, raw))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over :func:`tokenize`'s tokens (one method per grammar level)."""

    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.token
        self.i += 1
        return token

    def keyword(self, word: str) -> bool:
        if self.token.kind == "keyword" and self.token.value == word:
            self.i += 1
            return True
        return False

    def parse(self):
        if self.token.kind == "end":
            raise RuleSyntaxError("the condition is empty", 0)
        tree = self.disjunction()
        if self.token.kind != "end":
            raise RuleSyntaxError(f"expected 'and', 'or' or the end, found {self._found()}",
                                  self.token.position)
        return tree

    def disjunction(self):
        items = [self.conjunction()]
        while self.keyword("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self):
        items = [self.negation()]
        while self.keyword("and"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self):
        if self.keyword("not"):
            return Not(self.negation())
        if self.token.kind == "lparen":
            opened = self.take()
            inner = self.disjunction()
            if self.token.kind != "rparen":
                raise RuleSyntaxError(f"expected ')' closing the '(' at character "
                                      f"{opened.position + 1}, found {self._found()}",
                                      self.token.position)
            self.take()
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        left = self.operand()
        if self.token.kind != "op":
            raise RuleSyntaxError(f"expected a comparison ({', '.join(OPERATORS)}) after "
                                  f"{left.text}, found {self._found()}", self.token.position)
        op = self.take().text
        right = self.operand()
        if (left.kind == "name") == (right.kind == "name"):
            what = "two columns" if left.kind == "name" else "two values"
            raise RuleSyntaxError(f"a comparison sets a column against a number or a quoted "
                                  f"text; found {what} ({left.text} {op} {right.text})",
                                  left.position)
        if left.kind == "name":
            return Compare(str(left.value), op, right.value, left.position)
        return Compare(str(right.value), _FLIPPED[op], left.value, left.position)

    def operand(self) -> Token:
        if self.token.kind in ("name", "number", "string"):
            return self.take()
        raise RuleSyntaxError(f"expected a column, a number or a quoted text, found "
                              f"{self._found()}", self.token.position)

    def _found(self) -> str:
        token = self.token
        return "the end" if token.kind == "end" else repr(token.text)


def parse(text: str):
    """The tree of a condition; :class:`RuleSyntaxError` (with its position) when it does not
    follow the grammar."""
    if not isinstance(text, str):
        raise RuleSyntaxError(f"a condition is text, found {type(text).__name__}", 0)
    return _Parser(text).parse()


def comparisons(tree) -> list[Compare]:
    """Every comparison of a tree, in reading order."""
    if isinstance(tree, Compare):
        return [tree]
    if isinstance(tree, Not):
        return comparisons(tree.item)
    return [c for item in tree.items for c in comparisons(item)]


def columns(tree) -> list[str]:
    """The columns a tree reads, each once, in reading order."""
    return list(dict.fromkeys(c.column for c in comparisons(tree)))


def type_problems(tree, is_text: dict[str, bool]) -> list[str]:
    """Comparisons that set a text column against a number, a number column against text,
    or order text (``<`` on text); ``is_text`` maps each column read to whether it holds
    text."""
    problems = []
    for c in comparisons(tree):
        text_column = is_text.get(c.column, False)
        if text_column and not isinstance(c.value, str):
            problems.append(f"column '{c.column}' holds text but is compared with the number "
                            f"{c.value:g}; compare it with a quoted text, e.g. "
                            f"{c.column} == \"value\"")
        elif not text_column and isinstance(c.value, str):
            problems.append(f"column '{c.column}' holds numbers but is compared with the text "
                            f"\"{c.value}\"; compare it with a number (no quotes)")
        elif text_column and c.op not in ("==", "!="):
            problems.append(f"column '{c.column}' holds text, which has no order: compare it "
                            "with == or !=")
    return problems


def _compare(values: pd.Series, op: str, value) -> np.ndarray:
    if isinstance(value, str):
        text = values.astype("string").str.strip().str.lower()
        same = (text == value.strip().lower()).fillna(False).to_numpy(dtype=bool)
        return same if op == "==" else ~same
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return {"<": x < value, "<=": x <= value, ">": x > value, ">=": x >= value,
                "==": x == value, "!=": x != value}[op]


def _truth(tree, table: pd.DataFrame) -> np.ndarray:
    if isinstance(tree, Compare):
        return _compare(table[tree.column], tree.op, tree.value)
    if isinstance(tree, Not):
        return ~_truth(tree.item, table)
    parts = [_truth(item, table) for item in tree.items]
    return np.logical_and.reduce(parts) if isinstance(tree, And) else \
        np.logical_or.reduce(parts)


def evaluate(tree, table: pd.DataFrame) -> np.ndarray:
    """1.0 where the condition holds, 0.0 where it does not, NaN where the rule abstains: a
    row missing any column the condition reads (or a table without that column)."""
    needed = columns(tree)
    frame = pd.DataFrame({c: table[c] if c in table.columns else np.nan for c in needed},
                         index=table.index)
    covered = frame.notna().all(axis=1).to_numpy()
    says = _truth(tree, frame)
    return np.where(covered, says.astype(float), np.nan)
