"""The import graph of the library and the two command lines, read with ``ast``.

No module imports another module's underscore name, and no two modules import each other
(directly or through others), at module level or inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "models")
SCRIPTS = ("train.py", "predict.py")


def module_name(path: Path, root: Path = ROOT) -> str:
    """Dotted module name of a file under ``root`` (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files(root: Path = ROOT) -> list[Path]:
    files = [root / s for s in SCRIPTS]
    for pkg in PACKAGES:
        files += sorted((root / pkg).rglob("*.py"))
    return files


def imports_of(path: Path, known: set[str], root: Path = ROOT) -> list[tuple[str, str | None]]:
    """(imported project module, imported name or None) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root) if path.name == "__init__.py" else \
        module_name(path, root).rpartition(".")[0]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] not in (*PACKAGES, *[s[:-3] for s in SCRIPTS]):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:  # ``from models import statistics``: a module, not a name
                    out.append((sub, None))
                else:
                    out.append((base, alias.name))
    return out


def graph(root: Path = ROOT) -> tuple[dict[str, set[str]], list[str]]:
    files = project_files(root)
    known = {module_name(f, root) for f in files}
    edges: dict[str, set[str]] = {m: set() for m in known}
    private: list[str] = []
    for f in files:
        me = module_name(f, root)
        for target, name in imports_of(f, known, root):
            if target == me:
                continue
            if name and name.startswith("_") and not name.startswith("__"):
                private.append(f"{me} imports {target}.{name}")
            if target in known:
                edges[me].add(target)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def package_parents(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without edges from a package's ``__init__`` to its own submodules (a
    package face re-exporting its modules is not a cycle)."""
    return {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}


def test_no_module_imports_another_modules_private_name():
    _, private = graph()
    assert private == []


def test_no_import_cycles():
    edges, _ = graph()
    assert cycles(package_parents(edges)) == []


#: Modules below every other layer: they import nothing of the project.
FOUNDATIONS = ("models.statistics",)


def foundation_imports(edges: dict[str, set[str]]) -> dict[str, list[str]]:
    """Each module of :data:`FOUNDATIONS` that imports the project, with what it imports."""
    return {m: sorted(edges[m]) for m in FOUNDATIONS if edges.get(m)}


def test_statistics_imports_nothing_of_the_project(tmp_path):
    edges, _ = graph()
    assert "models.statistics" in edges
    assert foundation_imports(edges) == {}
    files = {"train.py": "", "predict.py": "", "features/__init__.py": "",
             "features/article.py": "PREVALENCE = {}\n", "models/__init__.py": "",
             "models/statistics.py": "import math\n\n\ndef default():\n"
                                     "    from features.article import PREVALENCE\n"}
    for name, text in files.items():  # an import inside a function is seen too
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert foundation_imports(graph(tmp_path)[0]) == {"models.statistics": ["features.article"]}


def test_package_faces_resolve_every_public_name():
    import importlib

    for package in ("features", "features.synthetic", "models", "models.report"):
        module = importlib.import_module(package)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{package}.{name}"


def test_the_checker_sees_a_cycle_and_a_private_import(tmp_path):
    """The checks above fail on a project that breaks them: a small one written here, with
    private imports (absolute, relative, inside a function) beside allowed ones, and a
    cycle through them."""
    files = {
        "train.py": "import models.b\n",
        "predict.py": "from models import b\n",
        "features/__init__.py": "",
        "features/a.py": "def _hidden():\n    pass\n\n\ndef later():\n"
                         "    from models.b import _secret  # inside a function\n",
        "features/c.py": "from .a import _hidden, later\nfrom . import a\n",
        "models/__init__.py": "__all__ = []\n",
        "models/b.py": "from features.a import __doc__, later\n_secret = 1\n"
                       "from ._own import _fine\n",
        "models/_own.py": "_fine = 2\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges, private = graph(tmp_path)
    assert sorted(private) == ["features.a imports models.b._secret",
                               "features.c imports features.a._hidden",
                               "models.b imports models._own._fine"]
    assert cycles(edges) == [["features.a", "models.b"]]
    assert edges["train"] == {"models.b"} and edges["predict"] == {"models.b"}
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    edges, _ = graph()
    assert "models.training" in edges and edges["train"]
