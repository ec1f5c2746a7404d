"""Open a report.html in headless Chromium and check that it renders with every figure.

Usage::

    python scripts/check_report_in_browser.py REPORT.html [--screenshot out.png]

Chromium loads the file with networking switched off as far as its flags allow; the DOM it
renders (``--dump-dom``) must hold every figure of :data:`models.report.figures.FILE_NAMES` as an
``<img>`` whose source is a base64 PNG data URI that decodes to a non-empty image, and no
``src``/``href`` may point outside the file. ``--screenshot`` also writes a PNG of the page
(the top ``--window-size`` pixels) for a person to look at.

Exit status: 0 when the page passes, 1 when a check fails, 2 when Chromium is missing or
cannot render the file; the message says which.
"""

from __future__ import annotations

import argparse
import base64
import io
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio")
#: Figure keys a full report embeds (models.report.figures.FILE_NAMES), used when that module
#: cannot be imported.
FIGURE_KEYS = ("roc", "precision_recall", "calibration", "decision_curve",
               "odds_ratio_forest", "ppv_npv_prevalence")
_DATA_PNG = "data:image/png;base64,"
_EXTERNAL = ("http://", "https://", "//", "ftp://", "file:")


class BrowserCheckError(Exception):
    """The page failed a check (exit status 1)."""


class ChromiumError(Exception):
    """Chromium is missing or could not render the page (exit status 2)."""


class _DomScan(HTMLParser):
    """Collects <img> attributes and every src/href of the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "img":
            self.images.append(a)
        for key in ("src", "href", "srcset", "poster", "data"):
            if key in a:
                self.links.append((tag, key, a[key]))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _figure_keys() -> tuple[str, ...]:
    """The figure names a report embeds, from models.report.figures when importable."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        from models.report.figures import FILE_NAMES
    except Exception:  # noqa: BLE001 - the script also runs outside the project
        return FIGURE_KEYS
    return tuple(FILE_NAMES)


def _run_chromium(chromium: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="report-check-") as profile:
        cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ChromiumError(f"Chromium did not finish within {timeout:g} s.") from None
        except OSError as exc:
            raise ChromiumError(f"could not start Chromium at {chromium}: {exc}") from None


def render_dom(html_path: Path, chromium: str = DEFAULT_CHROMIUM, timeout: float = 120.0) -> str:
    """The DOM Chromium renders for ``html_path`` (``--dump-dom``)."""
    result = _run_chromium(chromium, ["--dump-dom", html_path.resolve().as_uri()], timeout)
    if result.returncode != 0 or "<html" not in result.stdout.lower():
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ChromiumError(f"Chromium could not render {html_path} (exit status "
                            f"{result.returncode}).\n{tail}")
    return result.stdout


def screenshot(html_path: Path, out: Path, chromium: str = DEFAULT_CHROMIUM,
               window_size: str = "1280,2400", timeout: float = 120.0) -> Path:
    """Write a PNG of the page's top ``window_size`` (width,height in pixels) to ``out``."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    result = _run_chromium(chromium, [f"--screenshot={out}", f"--window-size={window_size}",
                                      html_path.resolve().as_uri()], timeout)
    if result.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ChromiumError(f"Chromium wrote no screenshot of {html_path} (exit status "
                            f"{result.returncode}).\n{tail}")
    _decode_png(out.read_bytes(), f"screenshot {out}")
    return out


def _decode_png(data: bytes, what: str) -> tuple[int, int]:
    """Width and height of a PNG; BrowserCheckError when it does not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            size = im.size
            fmt = im.format
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a failed check
        raise BrowserCheckError(f"{what} does not decode as an image: {exc}") from None
    if fmt != "PNG" or size[0] < 10 or size[1] < 10:
        raise BrowserCheckError(f"{what} is not a usable PNG (format {fmt}, size {size}).")
    return size


def check_dom(dom: str, expected: tuple[str, ...] = ()) -> list[str]:
    """Check a rendered DOM; return one line per embedded figure, raise on a failure."""
    scan = _DomScan()
    scan.feed(dom)
    problems = []
    external = [f"<{t} {k}={v[:80]}>" for t, k, v in scan.links
                if v.strip().lower().startswith(_EXTERNAL)]
    if external:
        problems.append("external references: " + ", ".join(external[:5]))
    if not scan.images:
        problems.append("no <img> in the rendered page")
    lines, seen = [], set()
    for i, img in enumerate(scan.images):
        name = img.get("data-figure") or img.get("alt") or f"image {i + 1}"
        src = img.get("src", "")
        if not src.startswith(_DATA_PNG):
            problems.append(f"{name}: src is not a base64 PNG data URI ({src[:60]!r})")
            continue
        try:
            data = base64.b64decode(src[len(_DATA_PNG):], validate=True)
            w, h = _decode_png(data, name)
        except (ValueError, BrowserCheckError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        seen.add(img.get("data-figure", ""))
        lines.append(f"{name}: {w}x{h} PNG, {len(data) // 1024} KiB")
    missing = [k for k in expected if k not in seen]
    if missing:
        problems.append("figures missing from the page: " + ", ".join(missing))
    if problems:
        raise BrowserCheckError("; ".join(problems))
    return lines


def main(argv: list[str] | None = None) -> int:
    """Parse options, render, check, optionally screenshot; print what was found."""
    p = argparse.ArgumentParser(prog="check_report_in_browser.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("html", type=Path, metavar="REPORT.html")
    p.add_argument("--screenshot", type=Path, metavar="OUT.png",
                   help="also write a PNG of the rendered page")
    p.add_argument("--window-size", default="1280,2400", metavar="W,H",
                   help="screenshot size in pixels (default 1280,2400)")
    p.add_argument("--chromium", default=DEFAULT_CHROMIUM,
                   help=f"the Chromium executable (default {DEFAULT_CHROMIUM})")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per Chromium run")
    args = p.parse_args(argv)

    chromium = shutil.which(args.chromium) or args.chromium
    if not Path(chromium).is_file():
        print(f"error: Chromium not found at {args.chromium}; install it (Debian: apt-get "
              "install chromium) or pass --chromium PATH.", file=sys.stderr)
        return 2
    if not args.html.is_file():
        print(f"error: no such file: {args.html}", file=sys.stderr)
        return 2
    try:
        dom = render_dom(args.html, chromium, args.timeout)
        lines = check_dom(dom, _figure_keys())
        shot = (screenshot(args.html, args.screenshot, chromium, args.window_size, args.timeout)
                if args.screenshot else None)
    except ChromiumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrowserCheckError as exc:
        print(f"FAILED: {args.html}: {exc}", file=sys.stderr)
        return 1
    scan = _DomScan()
    scan.feed(dom)
    print(f"OK: {args.html} renders in Chromium ({scan.title.strip() or 'untitled'}), "
          f"{len(lines)} embedded figure(s), no external references.")
    for line in lines:
        print(f"  {line}")
    if shot:
        print(f"screenshot: {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
