"""Pulling the values of the paths the patterns use out of one event, and nothing else.

The paths of a plan form a small tree (``build_tree``). An event is walked along that tree only,
by dict look-ups of the keys the patterns name, never by a scan of the event's own keys: objects,
arrays and numbers no pattern can reach are never visited. Each leaf value found is appended to
its path's list. Values found inside objects or arrays that are elements of an array keep their
*position* (array id, element index), because fields from different elements of one array must
not combine (behaviour §11.1, array consistency).

Most events reach the used leaves through objects alone. For that case ``compile_walker``
writes the walk of one tree out as straight-line Python (one ``dict.get`` per key, no call per
level); arrays, and trees too large to write out, go through the general ``_visit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

_MISSING = object()


class Node:
    """A point in the tree of used paths. ``edges`` are (event key, child) pairs: a key may span
    several dotted steps, because an event key may itself contain dots."""

    __slots__ = ("edges", "edge_map", "edge_keys", "leaf")

    def __init__(self) -> None:
        self.edges: tuple[tuple[str, Node], ...] = ()
        self.edge_map: dict[str, Node] = {}
        self.edge_keys: frozenset[str] = frozenset()  # set only when there are many edges
        self.leaf = -1  # path id when a used path ends here


def build_tree(paths: Sequence[str]) -> Node:
    nodes: dict[tuple[str, ...], Node] = {(): Node()}
    split = [tuple(path.split(".")) for path in paths]
    for atoms in split:
        for end in range(1, len(atoms) + 1):
            nodes.setdefault(atoms[:end], Node())
    edges: dict[tuple[str, ...], dict[str, Node]] = {}
    for prefix in nodes:
        for atoms in split:
            if atoms[: len(prefix)] != prefix or len(atoms) == len(prefix):
                continue
            for end in range(len(prefix) + 1, len(atoms) + 1):
                key = ".".join(atoms[len(prefix) : end])
                edges.setdefault(prefix, {})[key] = nodes[atoms[:end]]
    for prefix, node in nodes.items():
        node.edges = tuple(edges.get(prefix, {}).items())
        node.edge_map = dict(node.edges)
        if len(node.edges) > 8:
            node.edge_keys = frozenset(node.edge_map)
    for path_id, atoms in enumerate(split):
        nodes[atoms].leaf = path_id
    return nodes[()]


class Extraction:
    """Leaf values found in one event, per path id, with array positions where they matter."""

    __slots__ = ("values", "positions", "arrays")

    def __init__(self) -> None:
        self.values: dict[int, list[Any]] = {}
        # path id -> {index in values: ((array id, element index), ...)}; only for values found
        # inside an object or array that is itself an element of an array.
        self.positions: dict[int, dict[int, tuple[tuple[int, int], ...]]] | None = None
        self.arrays = 0


def _from_object(found: Extraction, node: Node, value: dict[str, Any], track_arrays: bool) -> None:
    """The common case, kept cheap: an object that is not inside an array, so the leaves found
    under it need no array positions. Only keys the patterns use are looked up; an array on the
    way hands over to ``_visit``, which keeps positions."""
    edges: Sequence[tuple[str, Node]] = node.edges
    if node.edge_keys and len(value) < len(edges):
        # Many used keys here and a small object: look only at the keys it has.
        edge_map = node.edge_map
        edges = [(key, edge_map[key]) for key in node.edge_keys.intersection(value)]
    values = found.values
    for key, child in edges:
        inner = value.get(key, _MISSING)
        if inner is _MISSING:
            continue
        kind = type(inner)
        if kind is dict:
            if child.edges:
                _from_object(found, child, inner, track_arrays)
        elif kind is list:
            _visit(found, child, inner, (), track_arrays)
        elif child.leaf >= 0:
            bucket = values.get(child.leaf)
            if bucket is None:
                values[child.leaf] = [inner]
            else:
                bucket.append(inner)


def _visit(
    found: Extraction, node: Node, value: Any, where: tuple[tuple[int, int], ...], track_arrays: bool
) -> None:
    """Any value at ``node``, with ``where`` the (array id, element index) steps taken to reach it:
    leaves found inside objects or arrays that are array elements keep their positions."""
    values = found.values
    kind = type(value)
    if kind is dict:
        if node.edge_keys and len(value) < len(node.edges):
            for key in node.edge_keys.intersection(value):
                _visit(found, node.edge_map[key], value[key], where, track_arrays)
            return
        for key, child in node.edges:
            inner = value.get(key, _MISSING)
            if inner is _MISSING:
                continue
            inner_kind = type(inner)
            if inner_kind is dict or inner_kind is list or where:
                _visit(found, child, inner, where, track_arrays)
            elif child.leaf >= 0:
                bucket = values.get(child.leaf)
                if bucket is None:
                    values[child.leaf] = [inner]
                else:
                    bucket.append(inner)
    elif kind is list:
        array_id = found.arrays
        found.arrays += 1
        leaf = node.leaf
        for index, element in enumerate(value):
            element_kind = type(element)
            if element_kind is dict or element_kind is list:
                _visit(found, node, element, where + ((array_id, index),) if track_arrays else where, track_arrays)
            elif leaf >= 0:
                bucket = values.get(leaf)
                if bucket is None:
                    bucket = values[leaf] = []
                if where:
                    if found.positions is None:
                        found.positions = {}
                    found.positions.setdefault(leaf, {})[len(bucket)] = where
                bucket.append(element)
    elif node.leaf >= 0:
        bucket = values.get(node.leaf)
        if bucket is None:
            bucket = values[node.leaf] = []
        if where:
            if found.positions is None:
                found.positions = {}
            found.positions.setdefault(node.leaf, {})[len(bucket)] = where
        bucket.append(value)


# Past these sizes a tree is walked by ``_from_object`` instead of written out: Python's parser
# refuses deeply indented code, and a huge function would cost more to build than it saves.
_MAX_WRITTEN_DEPTH = 24
_MAX_WRITTEN_LINES = 4000

Walker = Callable[[Extraction, dict[str, Any], bool], None]


def compile_walker(root: Node) -> Walker:
    """A function ``walk(found, event, track_arrays)`` doing what ``_from_object`` does for
    ``root``, written out for this tree: the keys are constants and each level is inlined, so an
    event costs about one ``dict.get`` per used key. Keys enter the code only as ``repr`` string
    literals; nodes are passed in a tuple, never written into the source."""
    nodes: list[Node] = []
    keys: list[frozenset[str]] = []
    lines = ["def walk(found, value0, track_arrays):", "    values = found.values"]

    def node_ref(node: Node) -> str:
        nodes.append(node)
        return f"NODES[{len(nodes) - 1}]"

    def write(node: Node, depth: int, pad: str) -> None:
        plain = [(key, child) for key, child in node.edges if "." not in key]
        dotted = [(key, child) for key, child in node.edges if "." in key]
        write_edges(plain, depth, pad)
        if len(dotted) > 1:
            # Keys with dots are rare in events: one C-level check of the object's keys
            # instead of a look-up per dotted spelling of the paths below.
            keys.append(frozenset(key for key, _ in dotted))
            lines.append(f"{pad}if not DOTTED[{len(keys) - 1}].isdisjoint(value{depth}):")
            write_edges(dotted, depth, pad + "    ")
        else:
            write_edges(dotted, depth, pad)

    def write_edges(edges: list[tuple[str, Node]], depth: int, pad: str) -> None:
        here, inner = f"value{depth}", f"value{depth + 1}"
        for key, child in edges:
            lines.append(f"{pad}{inner} = {here}.get({key!r}, MISSING)")
            lines.append(f"{pad}if {inner} is not MISSING:")
            lines.append(f"{pad}    kind = type({inner})")
            branch = "if"
            if child.edges:
                lines.append(f"{pad}    if kind is dict:")
                if child.edge_keys or depth + 1 >= _MAX_WRITTEN_DEPTH:
                    lines.append(f"{pad}        from_object(found, {node_ref(child)}, {inner}, track_arrays)")
                else:
                    write(child, depth + 1, pad + "        ")
                branch = "elif"
            if child.edges or child.leaf >= 0:
                lines.append(f"{pad}    {branch} kind is list:")
                lines.append(f"{pad}        visit(found, {node_ref(child)}, {inner}, (), track_arrays)")
            if child.leaf >= 0:
                lines.append(f"{pad}    elif kind is not dict:")
                lines.append(f"{pad}        bucket = values.get({child.leaf})")
                lines.append(f"{pad}        if bucket is None:")
                lines.append(f"{pad}            values[{child.leaf}] = [{inner}]")
                lines.append(f"{pad}        else:")
                lines.append(f"{pad}            bucket.append({inner})")
            if len(lines) > _MAX_WRITTEN_LINES:
                raise _TooLarge

    def generic(found: Extraction, value: dict[str, Any], track_arrays: bool) -> None:
        _from_object(found, root, value, track_arrays)

    if root.edge_keys:
        return generic
    try:
        write(root, 0, "    ")
    except _TooLarge:
        return generic
    namespace: dict[str, Any] = {
        "MISSING": _MISSING, "NODES": tuple(nodes), "DOTTED": tuple(keys), "visit": _visit,
        "from_object": _from_object,
    }
    try:
        exec("\n".join(lines), namespace)  # noqa: S102 - source built above from repr() literals only
    except (SyntaxError, RecursionError, MemoryError):  # a limit of the compiler: walk generically
        return generic
    return namespace["walk"]  # type: ignore[no-any-return]


class _TooLarge(Exception):
    """The written-out walk would pass _MAX_WRITTEN_LINES."""


def consistent(first: tuple[tuple[int, int], ...], second: tuple[tuple[int, int], ...]) -> bool:
    """Two array positions agree when every array they share is entered at the same element."""
    if not first or not second:
        return True
    shared = dict(first)
    for array_id, index in second:
        seen = shared.get(array_id)
        if seen is not None and seen != index:
            return False
    return True

