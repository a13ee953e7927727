"""esm's import graph keeps the layout's promises (docs/design.md "Layout", issue 12), and only a
source's own package branches on its kind (docs/design.md "Layout", issue 20).

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

# Lines outside esm/sources/ allowed to compare with a source kind's name, by module and code, each
# with its reason.
ALLOWED_KIND_BRANCHES: dict[tuple[str, str], str] = {
    ("esm.config.loading", 'if "dynamodb" not in section:  # an unknown key, reported by section()'):
        "checkpoints: {dynamodb: ...} names the checkpoint store's kind, not a source's",
}


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
    """Sources know their service and nothing about functions (docs/design.md "Layout")."""
    assert _importers(_graph(), "esm.sources", "esm.invokers") == {}


def test_the_core_imports_only_the_core() -> None:
    """The core is the ground floor (docs/design.md "Layout"): result types, condition names, records,
    decisions and the backoff policy import nothing above them, so no arrow runs from esm.core upward."""
    graph = _graph()
    upward = {module: {t for t in targets if not (t == "esm.core" or t.startswith("esm.core."))}
              for module, targets in graph.items() if module == "esm.core" or module.startswith("esm.core.")}
    assert {module: targets for module, targets in upward.items() if targets} == {}
def _source_kinds() -> frozenset[str]:
    """The registry's source kinds, read from its SOURCES table without importing esm."""
    tree = ast.parse((PACKAGE / "registry.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "SOURCES":
            table = next(n for n in ast.walk(node.value) if isinstance(n, ast.Dict))
            return frozenset(key.value for key in table.keys if isinstance(key, ast.Constant))
    raise AssertionError("esm/registry.py has no SOURCES table")


def _names_a_kind(node: ast.AST, kinds: frozenset[str]) -> bool:
    return any(isinstance(n, ast.Constant) and n.value in kinds for n in ast.walk(node))


def _kind_branches(tree: ast.AST, kinds: frozenset[str]) -> list[int]:
    """Lines that branch on a source kind: a comparison with a kind (`== "sqs"`, `in ("kinesis",
    ...)`) in any condition, a `case "kafka":`, or a dispatch through a dict keyed by kinds."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and _names_a_kind(node, kinds):
            found.add(node.lineno)
        elif isinstance(node, ast.match_case) and _names_a_kind(node.pattern, kinds):
            found.add(node.pattern.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict) and any(
                isinstance(key, ast.Constant) and key.value in kinds for key in node.value.keys):
            found.add(node.lineno)
    return sorted(found)


def test_the_kind_walker_sees_comparisons_cases_and_dispatch_tables() -> None:
    """The check below would pass vacuously if the walker missed a branch: prove it finds each form."""
    kinds = frozenset({"sqs", "kafka"})
    source = ("if source == 'sqs':\n    pass\n"
              "x = 1 if kind in ('a', 'kafka') else 2\n"
              "match kind:\n    case 'kafka':\n        pass\n"
              "{'sqs': f, 'kafka': g}[kind]()\n"
              "label = 'sqs'\n"  # naming a kind outside a branch (a metric label, a message) is fine
              "if source == 'sns':\n    pass\n")
    assert _kind_branches(ast.parse(source), kinds) == [1, 3, 5, 7]


def test_only_a_source_package_branches_on_its_kind() -> None:
    """Shared modules ask a source's descriptor (esm.descriptor) instead of testing which source it
    is: a new source is its package plus one registry line, and no shared module changes."""
    kinds = _source_kinds()
    assert kinds >= {"sqs", "kinesis", "dynamodb", "kafka"}
    found = {}
    for name, path in _modules().items():
        if name == "esm.sources" or name.startswith("esm.sources."):
            continue
        text = path.read_text()
        code = text.splitlines()
        lines = [f"{n}: {code[n - 1].strip()}" for n in _kind_branches(ast.parse(text, str(path)), kinds)
                 if (name, code[n - 1].strip()) not in ALLOWED_KIND_BRANCHES]
        if lines:
            found[name] = lines
    assert found == {}
