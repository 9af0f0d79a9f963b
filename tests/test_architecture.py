"""The layout is the architecture: the layer rules (import-linter's contracts in
pyproject.toml), no import circle in the control plane, small modules, and imports at the
top of a module except where they keep an optional dependency out."""
from __future__ import annotations

import ast
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

from tests.conftest import ROOT

PACKAGES = ("control", "handler", "shared")
MAX_MODULE_LINES = 400
# Imports inside functions are allowed only here: the command line keeps torch (the training
# stack) and the control plane's extra (flask, sqlalchemy, rq) out of `pip install .`'s CLI;
# the GPU endpoint's client imports runpod only where it calls it (importing runpod configures
# the root logger and takes seconds).
LAZY_IMPORTS_ALLOWED = {"control/cli.py", "control/service_cli.py", "control/services/gpu_endpoint.py"}


def _modules():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_the_layer_contracts_hold():
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0, \
        "an import breaks a layer contract of pyproject.toml: the report above names it"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_control_plane_has_no_import_circle():
    graph = grimp.build_graph("control")
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("control")}
             for m in graph.modules if m.startswith("control")}
    assert _cycles(edges) == []


def test_no_module_is_over_the_size_limit():
    big = {str(p.relative_to(ROOT)): n for p in _modules()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}, f"split these by concept (at most about {MAX_MODULE_LINES} lines): {big}"


def _imports_inside_functions(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    return sorted({sub.lineno for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))})


def test_the_control_plane_imports_at_the_top_of_its_modules():
    lazy = {str(p.relative_to(ROOT)): lines for p in (ROOT / "control").rglob("*.py")
            if (lines := _imports_inside_functions(p)) and str(p.relative_to(ROOT)) not in LAZY_IMPORTS_ALLOWED}
    assert lazy == {}, f"imports inside functions (move them to the top of the module): {lazy}"
