"""The report as a document: block types and their Markdown and HTML renderings.

A report is a list of :class:`Section` holding blocks (:class:`Para`, :class:`Bullets`,
:class:`Callout`, :class:`Table`, :class:`Figure`, nested :class:`Section`).
:func:`render_markdown_document` gives ``report.md`` (figures by relative path);
:func:`render_html_document` gives one self-contained ``report.html`` (figures as base64 PNG
data URIs, inline CSS, no script).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from models.report import format as fmt

__all__ = ["Bullets", "Callout", "Figure", "Para", "Section", "Table",
           "render_html_document", "render_markdown_document", "table_markdown",
           "table_text", "walk_sections"]

# --------------------------------------------------------------------------- blocks


@dataclass
class Para:
    """A paragraph; text in backticks is code."""

    text: str


@dataclass
class Bullets:
    """A bulleted list; ``pairs`` render as "label: value"."""

    items: Sequence[str] = ()
    pairs: Sequence[tuple[str, str]] = ()


@dataclass
class Callout:
    """A highlighted note: ``kind`` is "warning" or "info"."""

    text: str
    kind: str = "info"


@dataclass
class Table:
    """A table with a caption stating what it shows and the n behind it, and notes under
    it (each starting with the marker its cells carry, e.g. ``"† 0.5 added ..."``)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""
    notes: Sequence[str] = ()

    def columns(self, keep: Iterable[int]) -> Table:
        """The same table with only the columns at positions ``keep`` (notes kept)."""
        keep = list(keep)
        return Table([self.headers[i] for i in keep], [[r[i] for i in keep] for r in self.rows],
                     self.caption, self.notes)


@dataclass
class Figure:
    """One of :data:`models.report.figures.FILE_NAMES`, with its caption and title (alt text)."""

    key: str
    file: str
    caption: str
    number: int = 0
    title: str = ""


@dataclass
class Section:
    """A titled part of the report with the checklist items it answers."""

    title: str
    blocks: list = field(default_factory=list)
    tripod: str = ""
    clear: str = ""
    level: int = 2
    anchor: str = ""

    def __post_init__(self):
        if not self.anchor:
            self.anchor = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def walk_sections(sections: Sequence[Section]):
    """Every section, depth first, nested ones after their parent."""
    for s in sections:
        yield s
        yield from walk_sections([b for b in s.blocks if isinstance(b, Section)])


def _tags(s: Section) -> str:
    parts = []
    if s.tripod:
        parts.append(f"TRIPOD+AI {s.tripod}")
    if s.clear:
        parts.append(f"CLEAR {s.clear}")
    return " · ".join(parts)


# --------------------------------------------------------------------------- tables


def table_markdown(t: Table) -> str:
    """A :class:`Table` as a GitHub markdown table with its notes below (no caption)."""
    text = fmt.md_table(t.headers, t.rows) if t.rows else "(no rows)"
    if t.notes:
        text += "\n\n" + "; ".join(t.notes) + "."
    return text


def table_text(t: Table) -> str:
    """A :class:`Table` as padded plain text with its notes below (no caption)."""
    text = fmt.text_table([str(h) for h in t.headers], [[fmt.cell(v) for v in r]
                                                         for r in t.rows])
    return "\n".join([text, *t.notes])


# --------------------------------------------------------------------------- markdown


def render_markdown_document(title: str, sections: Sequence[Section]) -> str:
    """``report.md``: figures by their file name, relative to the report folder."""
    out = [f"# {title}"]
    for s in sections:
        out += _section_md(s)
    return "\n\n".join(out) + "\n"


def _section_md(s: Section) -> list[str]:
    out = [f"{'#' * s.level} {s.title}"]
    if _tags(s):
        out.append(f"*{_tags(s)}*")
    for b in s.blocks:
        if isinstance(b, Section):
            out += _section_md(b)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Callout):
            out.append(f"> **{'Warning' if b.kind == 'warning' else 'Note'}:** {b.text}")
        elif isinstance(b, Bullets):
            lines = [f"- {t}" for t in b.items] + [f"- {k}: {v}" for k, v in b.pairs]
            if lines:
                out.append("\n".join(lines))
        elif isinstance(b, Table):
            if b.caption:
                out.append(f"*{b.caption}*")
            out.append(table_markdown(b))
        elif isinstance(b, Figure):
            out.append(f"![{b.title or b.key}]({b.file})\n\n"
                       f"*Figure {b.number}. {b.caption}*")
    return out


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d5dae2; --band: #f3f5f8; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef1f5; color: var(--ink);
       font: 15px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 40px 60px; background: #fff; }
h1 { font-size: 1.75em; line-height: 1.25; margin: 0.2em 0 0.6em; }
h2 { font-size: 1.35em; margin: 2.2em 0 0.5em; padding-bottom: 0.25em;
     border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1em; margin: 1.8em 0 0.4em; }
.tags { display: inline-block; margin: 0 0 0.8em; padding: 2px 8px; border-radius: 4px;
        background: #e8eef8; color: #2b4a7a; font-size: 0.78em; }
p { margin: 0.5em 0 0.9em; }
ul { margin: 0.3em 0 1em; padding-left: 1.4em; }
li { margin: 0.15em 0; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       background: var(--band); padding: 0 3px; border-radius: 3px; }
.callout { margin: 0.8em 0 1.2em; padding: 10px 14px; border-radius: 4px; }
.callout.warning { background: #fff5e6; border-left: 5px solid #d98a00; }
.callout.info { background: #edf4ff; border-left: 5px solid #3d7ad6; }
.table-wrap { overflow-x: auto; margin: 0.3em 0 1.4em; }
.caption { margin: 0.9em 0 0.3em; color: var(--muted); font-size: 0.88em; }
table { border-collapse: collapse; font-size: 0.82em; }
th, td { border: 1px solid var(--line); padding: 4px 7px; vertical-align: top; text-align: left; }
th { background: var(--band); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) td { background: #fafbfc; }
.table-note { margin: 0.2em 0; color: var(--muted); font-size: 0.82em; }
figure { margin: 1.2em 0 1.8em; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { margin-top: 0.4em; color: var(--muted); font-size: 0.88em; }
nav.toc { margin: 1em 0 1.5em; padding: 10px 16px; background: var(--band); border-radius: 4px;
          font-size: 0.9em; }
nav.toc ol { margin: 0.3em 0; padding-left: 1.4em; columns: 2; }
a { color: #1f5fbf; }
@media print { body { background: #fff; } main { padding: 0; max-width: none; }
               .table-wrap { overflow: visible; } figure { break-inside: avoid; } }
"""
_NUMERIC = re.compile(r"^([-+\u2212]?\d[\d.]*(%| |$)|-$|<0\.)")


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    parts = str(text).split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


def render_html_document(title: str, sections: Sequence[Section],
                         images: Mapping[str, bytes]) -> str:
    """``report.html`` in one file; ``images`` maps each figure key to its PNG bytes."""
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>'
                  for s in sections)
    body = "\n".join(_section_html(s, images) for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav class=\"toc\"><strong>Contents</strong>"
        f"<ol>{toc}</ol></nav>\n{body}\n</main>\n</body>\n</html>\n")


def _section_html(s: Section, images: Mapping[str, bytes]) -> str:
    h = f"h{min(s.level, 6)}"
    out = [f'<section id="{s.anchor}">', f"<{h}>{html.escape(s.title)}</{h}>"]
    if _tags(s):
        out.append(f'<div class="tags">{html.escape(_tags(s))}</div>')
    for b in s.blocks:
        if isinstance(b, Section):
            out.append(_section_html(b, images))
        elif isinstance(b, Para):
            out.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Callout):
            label = "Warning" if b.kind == "warning" else "Note"
            out.append(f'<div class="callout {html.escape(b.kind)}"><strong>{label}:</strong> '
                       f"{_inline(b.text)}</div>")
        elif isinstance(b, Bullets):
            lis = [f"<li>{_inline(t)}</li>" for t in b.items]
            lis += [f"<li><strong>{html.escape(k)}:</strong> {_inline(v)}</li>"
                    for k, v in b.pairs]
            if lis:
                out.append("<ul>" + "".join(lis) + "</ul>")
        elif isinstance(b, Table):
            out.append(_table_html(b))
        elif isinstance(b, Figure):
            data = base64.b64encode(images[b.key]).decode("ascii")
            alt = html.escape(b.title or b.key)
            out.append(f'<figure id="figure-{b.key}"><img data-figure="{b.key}" alt="{alt}" '
                       f'src="data:image/png;base64,{data}"><figcaption><strong>Figure '
                       f"{b.number}.</strong> {_inline(b.caption)}</figcaption></figure>")
    out.append("</section>")
    return "\n".join(out)


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in t.headers)
    rows = []
    for r in t.rows:
        cells = []
        for i, v in enumerate(r):
            text = fmt.cell(v)
            numeric = _NUMERIC.match(text) and sum(ch.isalpha() for ch in text) <= 8
            cls = ' class="num"' if i > 0 and numeric else ""
            cells.append(f"<td{cls}>{_inline(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = f'<p class="caption">{_inline(t.caption)}</p>' if t.caption else ""
    body = "".join(rows) or f'<tr><td colspan="{len(t.headers)}">(no rows)</td></tr>'
    notes = "".join(f'<p class="table-note">{_inline(n)}</p>' for n in t.notes)
    return (f'{caption}<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>{notes}</div>")

