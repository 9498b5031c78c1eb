"""hpt's modules import each other without a circle: the spec knows nothing of the schedulers that run it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from hpt.scheduling.strategies import BUILDERS
from hpt.spec.search import STRATEGIES
from tests.conftest import ROOT

HPT = ROOT / "hpt"

# hpt.sinks opens the sink a URI names (open_sink) and imports its module then; those modules take the
# sink machinery they share (BucketSink, the retries) from hpt.sinks: a package and the plug-ins it loads.
_PLUGINS = {("hpt.sinks", "hpt.sinks.gcs"), ("hpt.sinks", "hpt.sinks.s3")}


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The hpt modules `path` imports anywhere: at the top, in functions, for type checking only."""
    name = _name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            # importing a.b.c runs a/__init__.py and a/b/__init__.py first (not those of the importer's own packages)
            parts = target.split(".")
            found |= {m for m in (".".join(parts[:i]) for i in range(2, len(parts) + 1))
                      if m in modules and not name.startswith(m + ".") and m != name}
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_hpt_module_imports_one_that_imports_it_back_not_even_inside_a_function() -> None:
    paths = sorted(HPT.rglob("*.py"))
    modules = {_name(p) for p in paths}
    graph = {_name(p): _imports(p, modules) - {t for s, t in _PLUGINS if s == _name(p)} for p in paths}
    assert graph["hpt.scheduling.strategies"] >= {"hpt.spec", "hpt.search"}  # the reading works: builders take the spec
    assert "hpt.sinks.gcs" in _imports(HPT / "sinks" / "__init__.py", modules)  # and sees imports in functions
    assert _circles(graph) == []
    assert _circles({**graph, "hpt.spec.search": graph["hpt.spec.search"] | {"hpt.scheduling.strategies"}})  # seen


def test_the_spec_imports_no_scheduler_and_its_search_schema_only_the_errors() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, hpt.spec; "
                           "print(sorted(m for m in sys.modules if m.startswith('hpt.scheduling')))"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"
    modules = {_name(p) for p in HPT.rglob("*.py")}
    assert _imports(HPT / "spec" / "search.py", modules) == {"hpt.errors"}


def test_every_strategy_the_spec_accepts_has_a_scheduler() -> None:
    assert set(BUILDERS) == set(STRATEGIES)
