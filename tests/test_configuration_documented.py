"""The configuration is documented once, and truly: every environment variable the code reads
is in a configuration table of README.md, every variable there is read by the code, and no
variable has two rows.

What the code reads is found statically, in the syntax tree of every ``.py`` file under
``control/``, ``handler/`` and ``shared/``, and of ``wsgi.py``. An environment mapping is
``os.environ``; a parameter named ``env`` or ``environ``; a name bound to one of those, to
``dict(<mapping>)``, ``<mapping>.copy()``, ``{**<mapping>, ...}``, ``a if c else b`` of
one, or a dict comprehension over one (``{k: v for k, v in env.items() if
k.startswith(...)}``); and the result of a function that returns one (the local endpoint's
``worker_env(...)``). On such a mapping a read is::

    env["X"]   env.get("X")   env.setdefault("X", ...)   env.pop("X")   "X" in env

and besides: ``os.getenv("X")``; click's ``envvar="X"``; a setting declared with
``metadata={"env": "X"}``, or through a helper that puts its parameter there
(``handler/settings.py``: ``_setting("X", float, ...)``). A key may be a module-level string
constant. Writes are not reads: ``env["X"] = ...`` and ``env.update({...})`` only set a
variable for a child process (the ``RUNPOD_WEBHOOK_*`` the local endpoint gives its workers),
so they are not configuration. What third-party libraries read (``HF_HOME``,
``HF_HUB_OFFLINE``) counts only where our code reads it too.

A prefix filter (``k.startswith(("STORAGE_", "SUPABASE_"))``) passes variables on to the code
that reads them; it gives no name a meaning, so it counts for no name by itself (the failure
message shows it next to a documented name it would cover).

Documented means named in backticks, in the first cell of a row of a README.md table whose
header's first cell is ``variable``; a cell may name several: "`A`, `B`" or
"`A` (+ `B` or `C`)".
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("control", "handler", "shared", "wsgi.py")
README = ROOT / "README.md"

# Variables the code reads that are deliberately not configuration, each with its reason.
# Empty: what is only set for a child process is a write, never collected above.
NOT_CONFIGURATION: dict[str, str] = {
    "XDG_CACHE_HOME": "read by the deployment package's inference.py, on the client's machine, not the service's",
}

ENV_PARAMETERS = frozenset({"env", "environ"})     # a parameter so named is an env mapping
GETTERS = frozenset({"get", "setdefault", "pop"})
DECLARATION_KEYS = frozenset({"env", "envvar", "env_var"})  # metadata={"env": "X"}
VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")    # how a variable's name looks


@dataclass(frozen=True)
class Read:
    """One place that reads one variable."""

    name: str
    path: str
    line: int
    how: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.how})"


@dataclass(frozen=True)
class PrefixFilter:
    """A comprehension over an environment mapping that keeps the names with these prefixes."""

    prefixes: tuple[str, ...]
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} (startswith{self.prefixes!r})"


# ---------------------------------------------------------------------- the code's reads

def _own_nodes(scope: ast.AST):
    """The nodes of a scope, not descending into nested functions, lambdas or classes."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def _nested_scopes(scope: ast.AST):
    for node in _own_nodes(scope):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            yield node


def _parameters(func: ast.AST) -> list[str]:
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return []
    a = func.args
    return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs,
                            *(x for x in (a.vararg, a.kwarg) if x is not None))]


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _iterated(node: ast.AST) -> ast.AST:
    """``m`` for ``m.items()`` / ``m.keys()``, else the node itself."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("items", "keys") and not node.args):
        return node.func.value
    return node


class _Module:
    """One source file: its environment mappings, scope by scope, and what it reads."""

    def __init__(self, path: str, tree: ast.Module, env_functions: set[str]):
        self.path, self.tree, self.env_functions = path, tree, env_functions
        self.constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                          and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                          for t in n.targets if isinstance(t, ast.Name)}
        self.imported = {a.asname or a.name: a.name for n in ast.walk(tree)
                         if isinstance(n, ast.ImportFrom) and n.module == "os" for a in n.names}
        self.declarers = self._declarers()

    # -- what is an environment mapping
    def is_env(self, node: ast.AST, names: set[str]) -> bool:
        if isinstance(node, ast.Attribute):
            return (node.attr == "environ" and isinstance(node.value, ast.Name)
                    and node.value.id == "os")
        if isinstance(node, ast.Name):
            return node.id in names or self.imported.get(node.id) == "environ"
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "dict" and len(node.args) == 1:
                return self.is_env(node.args[0], names)
            if (isinstance(node.func, ast.Attribute) and node.func.attr == "copy"
                    and not node.args):
                return self.is_env(node.func.value, names)
            return _callee(node) in self.env_functions
        if isinstance(node, ast.IfExp):
            return self.is_env(node.body, names) or self.is_env(node.orelse, names)
        if isinstance(node, ast.BoolOp):
            return any(self.is_env(v, names) for v in node.values)
        if isinstance(node, ast.Dict):
            return any(k is None and self.is_env(v, names) for k, v in zip(node.keys, node.values))
        if isinstance(node, ast.DictComp):
            return any(self.is_env(_iterated(g.iter), names) for g in node.generators)
        return False

    def env_names(self, scope: ast.AST, inherited: set[str]) -> set[str]:
        """The names that hold an environment mapping in ``scope``."""
        params = _parameters(scope)
        names = (inherited - set(params)) | (set(params) & ENV_PARAMETERS)
        while True:
            before = len(names)
            for node in _own_nodes(scope):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if self.is_env(node.value, names):
                        names |= {t.id for t in targets if isinstance(t, ast.Name)}
            if len(names) == before:
                return names

    def scopes(self):
        """(scope, its environment names), the module first, then every nested scope."""
        todo = [(self.tree, set())]
        while todo:
            scope, inherited = todo.pop()
            names = self.env_names(scope, inherited)
            yield scope, names
            todo.extend((nested, names) for nested in _nested_scopes(scope))

    def functions_returning_env(self) -> set[str]:
        return {scope.name for scope, names in self.scopes()
                if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef))
                and any(isinstance(n, ast.Return) and n.value is not None
                        and self.is_env(n.value, names) for n in _own_nodes(scope))}

    # -- keys
    def key(self, node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        return None

    def _declarers(self) -> dict[str, tuple[int, str]]:
        """Helpers that declare a setting's variable: ``def _setting(variable, ...)`` whose
        body puts ``variable`` under ``"env"`` in a dict (a dataclass field's metadata)."""
        found = {}
        for func in ast.walk(self.tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            params = _parameters(func)
            for node in _own_nodes(func):
                if isinstance(node, ast.Dict):
                    for k, v in zip(node.keys, node.values):
                        if (self.key(k) in DECLARATION_KEYS and isinstance(v, ast.Name)
                                and v.id in params):
                            found[func.name] = (params.index(v.id), v.id)
        return found

    # -- reads
    def reads(self) -> tuple[list[Read], list[PrefixFilter]]:
        reads, prefixes = [], []

        def read(name: str | None, node: ast.AST, how: str) -> None:
            if name is not None:
                reads.append(Read(name, self.path, node.lineno, how))

        for scope, names in self.scopes():
            for node in _own_nodes(scope):
                if (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                        and self.is_env(node.value, names)):
                    read(self.key(node.slice), node, f"{ast.unparse(node.value)}[...]")
                elif isinstance(node, ast.Compare) and any(
                        isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                    if self.is_env(node.comparators[0], names):
                        read(self.key(node.left), node, f"in {ast.unparse(node.comparators[0])}")
                elif isinstance(node, ast.Call):
                    self._call_reads(node, names, read)
                elif isinstance(node, ast.Dict):
                    for k, v in zip(node.keys, node.values):
                        if self.key(k) in DECLARATION_KEYS and VARIABLE.fullmatch(self.key(v) or ""):
                            read(self.key(v), node, f'{{"{self.key(k)}": ...}} setting')
                if (isinstance(node, (ast.DictComp, ast.ListComp, ast.SetComp, ast.GeneratorExp))
                        and any(self.is_env(_iterated(g.iter), names) for g in node.generators)):
                    for g in node.generators:
                        for cond in g.ifs:
                            prefixes += self._prefix_filters(cond)
        return reads, prefixes

    def _call_reads(self, call: ast.Call, names: set[str], read) -> None:
        func = call.func
        first = call.args[0] if call.args else None
        if (isinstance(func, ast.Attribute) and func.attr in GETTERS
                and self.is_env(func.value, names)):
            read(self.key(first), call, f"{ast.unparse(func)}")
        elif ((isinstance(func, ast.Attribute) and func.attr == "getenv"
               and isinstance(func.value, ast.Name) and func.value.id == "os")
              or (isinstance(func, ast.Name) and self.imported.get(func.id) == "getenv")):
            read(self.key(first), call, "os.getenv")
        for kw in call.keywords:
            if kw.arg == "envvar":                        # click.option(..., envvar="X")
                values = kw.value.elts if isinstance(kw.value, (ast.List, ast.Tuple)) else [kw.value]
                for value in values:
                    read(self.key(value), call, "click envvar")
        declarer = self.declarers.get(_callee(call)) if isinstance(func, ast.Name) else None
        if declarer is not None:
            index, param = declarer
            arg = call.args[index] if index < len(call.args) else next(
                (kw.value for kw in call.keywords if kw.arg == param), None)
            read(self.key(arg), call, f"{func.id}(...) setting")

    def _prefix_filters(self, cond: ast.AST) -> list[PrefixFilter]:
        found = []
        for node in ast.walk(cond):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "startswith" and node.args):
                arg = node.args[0]
                values = arg.elts if isinstance(arg, ast.Tuple) else [arg]
                keys = tuple(k for k in map(self.key, values) if k)
                if keys:
                    found.append(PrefixFilter(keys, self.path, node.lineno))
        return found


def collect(sources: dict[str, str]) -> tuple[dict[str, list[Read]], list[PrefixFilter]]:
    """Every variable read in ``sources`` ({path: text}), with where, and the prefix filters."""
    trees = {path: ast.parse(text, filename=path) for path, text in sources.items()}
    env_functions: set[str] = set()
    while True:                  # a function returning another's environment: to a fixpoint
        found = set().union(*(_Module(p, t, env_functions).functions_returning_env()
                              for p, t in trees.items()))
        if found <= env_functions:
            break
        env_functions |= found
    reads: dict[str, list[Read]] = defaultdict(list)
    prefixes: list[PrefixFilter] = []
    for path, tree in sorted(trees.items()):
        module_reads, module_prefixes = _Module(path, tree, env_functions).reads()
        for r in module_reads:
            reads[r.name].append(r)
        prefixes += module_prefixes
    return ({name: sorted(set(rs), key=lambda r: (r.path, r.line)) for name, rs in reads.items()},
            prefixes)


def code_sources() -> dict[str, str]:
    files = []
    for entry in SOURCES:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in files}


# ---------------------------------------------------------------------- the README's tables

def _cells(line: str) -> list[str]:
    line = line.strip()
    if not line.startswith("|"):
        return []
    return [cell.strip() for cell in line.strip("|").split("|")]


def documented(readme: str) -> dict[str, list[int]]:
    """Every variable named in the first column of a ``| variable | ...`` table: its lines."""
    lines = readme.splitlines()
    names: dict[str, list[int]] = defaultdict(list)
    for i, line in enumerate(lines):
        cells = _cells(line)
        if not cells or cells[0].lower() != "variable" or i + 1 >= len(lines):
            continue
        if not all(re.fullmatch(r":?-+:?", c) for c in _cells(lines[i + 1])):
            continue
        for j in range(i + 2, len(lines)):
            row = _cells(lines[j])
            if not row:
                break
            for name in re.findall(r"`([^`]+)`", row[0]):
                if VARIABLE.fullmatch(name):
                    names[name].append(j + 1)
    return dict(names)


# ---------------------------------------------------------------------- the tests

@dataclass
class CodeReads:
    reads: dict[str, list[Read]]          # variable: where it is read
    prefixes: list[PrefixFilter]

    def __repr__(self) -> str:            # pytest shows fixtures: the messages say the rest
        return f"<{len(self.reads)} variables read in {', '.join(SOURCES)}>"


@dataclass
class Documented:
    lines: dict[str, list[int]]           # variable: the README.md lines of its rows

    def __repr__(self) -> str:
        return f"<{len(self.lines)} variables in README.md's configuration tables>"


@pytest.fixture(scope="module")
def code() -> CodeReads:
    reads, prefixes = collect(code_sources())
    assert reads, "found no environment read at all: the collector is broken"
    return CodeReads(reads, prefixes)


@pytest.fixture(scope="module")
def readme() -> Documented:
    names = documented(README.read_text(encoding="utf-8"))
    assert names, "README.md has no configuration table (| variable | meaning | default |)"
    return Documented(names)


def test_every_variable_the_code_reads_is_documented(code, readme):
    reads = code.reads
    missing = sorted(set(reads) - set(readme.lines) - set(NOT_CONFIGURATION))
    assert not missing, (
        "read by the code but in no README.md configuration table:\n"
        + "\n".join(f"  {name}: read at " + ", ".join(map(str, reads[name]))
                    for name in missing))


def test_every_documented_variable_is_read(code, readme):
    unread = sorted(set(readme.lines) - set(code.reads))

    def line(name: str) -> str:
        text = f"  {name}: README.md:" + ", README.md:".join(map(str, readme.lines[name]))
        covering = [str(p) for p in code.prefixes if name.startswith(p.prefixes)]
        if covering:
            text += "; only passed on by the prefix filter at " + ", ".join(covering)
        return text

    assert not unread, (
        f"in a README.md configuration table but read nowhere in {', '.join(SOURCES)}:\n"
        + "\n".join(map(line, unread)))


def test_no_variable_is_documented_twice(readme):
    twice = {name: lines for name, lines in sorted(readme.lines.items()) if len(lines) > 1}
    assert not twice, (
        "named in more than one row of README.md's configuration tables:\n"
        + "\n".join(f"  {name}: README.md:" + ", README.md:".join(map(str, lines))
                    for name, lines in twice.items()))


def test_not_configuration_names_only_variables_the_code_reads(code):
    stale = sorted(set(NOT_CONFIGURATION) - set(code.reads))
    assert not stale, f"NOT_CONFIGURATION names variables the code no longer reads: {stale}"


# ---------------------------------------------------------------------- the collector itself

EXAMPLE = '''
import os
from dataclasses import field
from os import environ, getenv

import click

KEY = "CONSTANT_KEY"


def settings(env=None):
    env = os.environ if env is None else env
    storage = {k: v for k, v in env.items() if k.startswith(("STORAGE_", "SUPABASE_"))}
    storage.setdefault("STORAGE_ROOT", "x")
    return {"a": env.get("PARAM_GET"), "b": env["PARAM_ITEM"], "c": "PARAM_IN" in env,
            "d": env.pop("PARAM_POP", None), "e": env.get(KEY)}


def direct():
    return (os.environ.get("OS_GET"), os.environ["OS_ITEM"], os.getenv("OS_GETENV"),
            environ.get("FROM_OS_ENVIRON"), getenv("FROM_OS_GETENV"))


def child_env(worker_id):
    env = {**DEFAULTS, **os.environ}
    env.update({"SET_FOR_CHILD": worker_id})
    env["ALSO_SET_FOR_CHILD"] = "1"
    return env


def ping():
    copy = dict(os.environ)
    return child_env("-")["VIA_FUNCTION"], copy.get("VIA_COPY")


def config(app, cfg, env_for):
    return app.config["NOT_ENV_CONFIG"], cfg.get("NOT_ENV_CFG"), env_for("NOT_ENV_CALL")


def _setting(variable, parse, help):
    return field(default=None, metadata={"env": variable, "parse": parse, "help": help})


class Settings:
    heartbeat: float = _setting("DECLARED", float, help="...")
    poll: float = _setting(variable="DECLARED_BY_KEYWORD", parse=float, help="...")
    direct: str = field(default=None, metadata={"env": "DECLARED_IN_METADATA"})


@click.option("--api-key", envvar="CLICK_ENVVAR")
def command(api_key):
    pass
'''


def test_the_collector_sees_every_way_the_code_reads_the_environment():
    reads, prefixes = collect({"example.py": EXAMPLE})
    assert sorted(reads) == sorted([
        "STORAGE_ROOT", "PARAM_GET", "PARAM_ITEM", "PARAM_IN", "PARAM_POP", "CONSTANT_KEY",
        "OS_GET", "OS_ITEM", "OS_GETENV", "FROM_OS_ENVIRON", "FROM_OS_GETENV",
        "VIA_FUNCTION", "VIA_COPY", "DECLARED", "DECLARED_BY_KEYWORD", "DECLARED_IN_METADATA",
        "CLICK_ENVVAR"])
    assert [str(r) for r in reads["PARAM_GET"]] == ["example.py:15 (env.get)"]
    assert [p.prefixes for p in prefixes] == [("STORAGE_", "SUPABASE_")]


def test_the_readme_parser_takes_every_name_of_a_first_cell():
    text = """
| variable | meaning | default |
| --- | --- | --- |
| `A_B`, `C` | see `NOT_THIS` | `local` |
| `STORAGE_BACKEND` (+ `STORAGE_LOCAL_ROOT` or `SUPABASE_URL`, `SUPABASE_BUCKET`) | x | y |

| name | where |
| --- | --- |
| `OTHER_TABLE` | x |
"""
    assert documented(text) == {"A_B": [4], "C": [4], "STORAGE_BACKEND": [5],
                                "STORAGE_LOCAL_ROOT": [5], "SUPABASE_URL": [5],
                                "SUPABASE_BUCKET": [5]}
