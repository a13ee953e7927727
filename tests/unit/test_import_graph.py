"""esm's import graph keeps the layout's promises (DESIGN.md "Layout", issue 12).

The graph is read from the source with `ast`, not by importing: every `import` and `from ... import`
anywhere in a module (module level or inside functions) is an edge, so a cycle hidden behind a
function-level import still counts. Imports under `if TYPE_CHECKING:` are left out: they never run,
so they cannot make an import cycle, and annotations may name each other. `from esm.pkg import name` is an edge to
`esm.pkg.name` when that is a module, else to `esm.pkg`. A package's `__init__` is not added as an
edge of its submodules: Python runs it first, but it is the package's own business what it imports.
"""

from __future__ import annotations

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "esm"

# Cycles among esm modules we accept, each with its reason. Keep this empty.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(base: str, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return base
    parts = current.split(".")
    package = parts if is_package else parts[:-1]
    package = package[: len(package) - (level - 1)]
    return ".".join(package + ([base] if base else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The esm modules `name` imports, at any level of its source."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, name, path.name == "__init__.py")
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            # `import esm.a.b` names the module esm.a.b; trim to the longest known module.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("esm") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _importers(graph: dict[str, set[str]], under: str, of: str) -> dict[str, set[str]]:
    """Modules in package `under` that import anything in package `of`."""
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return {
        module: {t for t in targets if inside(t, of)}
        for module, targets in sorted(graph.items())
        if inside(module, under) and any(inside(t, of) for t in targets)
    }


def test_the_walker_sees_function_level_imports_and_cycles(tmp_path: Path) -> None:
    """The checks below would pass vacuously if the walker missed imports: prove it finds
    function-level imports and cycles (and leaves type-only imports out)."""
    graph = {"esm.a": {"esm.b"}, "esm.b": {"esm.a"}, "esm.c": {"esm.a"}}
    assert _cycles(graph) == [frozenset({"esm.a", "esm.b"})]
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import esm.aws\n"
                      "def f():\n    from esm.config import rules\n    import esm.errors\n")
    modules = {"esm.aws": source, "esm.config.rules": source, "esm.errors": source, "esm.m": source}
    assert _imports("esm.m", source, modules) == {"esm.config.rules", "esm.errors"}


def test_esm_has_no_import_cycles() -> None:
    """No two esm modules import each other, directly or round about, at any level."""
    cycles = [sorted(c) for c in _cycles(_graph()) if c not in ALLOWED_CYCLES]
    assert cycles == []


def test_the_engine_and_the_core_never_import_a_source() -> None:
    """The engine turns answers into settle/retry/bisect for every source; it knows none of them,
    only their contract (esm.core.contract, below both), and the pure core knows no source at all."""
    graph = _graph()
    assert _importers(graph, "esm.engine", "esm.sources") == {}
    assert _importers(graph, "esm.core", "esm.sources") == {}


def test_sources_never_import_an_invoker() -> None:
    """Sources know their service and nothing about functions (DESIGN.md "Layout")."""
    assert _importers(_graph(), "esm.sources", "esm.invokers") == {}


def test_the_core_imports_only_the_core() -> None:
    """The core is the ground floor (docs/design.md "Layout"): result types, condition names, records,
    decisions and the backoff policy import nothing above them, so no arrow runs from esm.core upward."""
    graph = _graph()
    upward = {module: {t for t in targets if not (t == "esm.core" or t.startswith("esm.core."))}
              for module, targets in graph.items() if module == "esm.core" or module.startswith("esm.core.")}
    assert {module: targets for module, targets in upward.items() if targets} == {}
