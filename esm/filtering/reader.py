"""Reading event JSON for one plan so that only the paths its patterns name become Python objects.

``Plan.matches_json`` used to build the whole event with ``orjson.loads`` and then look up a few
keys in it: building the objects was more than half of the time per event. Here the tree of used
paths (walk.py) becomes a tree of msgspec Struct types, one field per key the patterns name at
that point, and msgspec decodes the JSON into it: every byte is still checked as JSON, but keys
no pattern names are skipped without building anything. The result, turned back into plain
dicts holding only the named keys, walks and matches exactly as the full event would; plans
of one-field filters decide on the structs directly (``compile_quick``).

msgspec's reading agrees with orjson's on every document both accept, with two differences that
are handled, not trusted: msgspec does not check the UTF-8 of strings it skips (so non-ASCII
bytes are checked here first), and it keeps integers past 64 bits exact where orjson rounds them
to doubles (``parse_event``'s exact reading, which behaviour §11 asks for, keeps them exact too).
Any document msgspec refuses (not an object at the top, too deep, a number beyond a double, a
lone surrogate...) gets ``None``, and the caller reads it the old way, so errors and edge cases
keep their old answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from esm.filtering.walk import Node

# A value found at a point where the patterns name keys further down: an object is read as that
# point's Struct; anything else (arrays fully, since the walk visits their elements) as it is.
_NOT_OBJECT: Any = list | str | int | float | bool | None


def _struct_for(node: Node, made: dict[int, Any]) -> Any:
    """The Struct type reading, at ``node``, the keys that lead to used paths. Nodes are shared
    (a key spanning several dotted steps leads to the node those steps lead to), so each gets
    its type once, from ``made``."""
    known = made.get(id(node))
    if known is not None:
        return known
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for number, (key, child) in enumerate(node.edges):
        attribute = f"f{number}"
        rename[attribute] = key
        if child.leaf >= 0:
            kind: Any = Any  # a used value: read whole (the walk looks inside objects and arrays)
        else:
            kind = _struct_for(child, made) | _NOT_OBJECT
        fields.append((attribute, kind, msgspec.UNSET))
    made[id(node)] = struct = msgspec.defstruct(f"Used{len(made)}", fields, rename=rename, gc=False)
    return struct


class StructReader:
    """Reads JSON text into the Struct tree of one plan's used paths.

    ``read(data)`` gives the Struct (or None: parse fully instead), ``as_dict(struct)`` the plain
    dicts the walk takes, and ``quick`` (when the plan allows it, see ``compile_quick``) decides
    a Struct directly, without building the dicts."""

    __slots__ = ("read", "as_dict", "quick", "types")

    def __init__(self, read: Callable[[Any], Any], types: dict[int, Any]) -> None:
        self.read = read
        self.as_dict: Callable[[Any], dict[str, Any]] = msgspec.to_builtins
        self.quick: Callable[[Any], Any] | None = None
        self.types = types  # id(node) -> its Struct type


def compile_reader(root: Node) -> StructReader | None:
    """The reader of the JSON text (bytes or str) of events for the paths under ``root``; None
    when a named key cannot be a Struct field (msgspec refuses names with a quote, a backslash
    or a control character): such plans always parse fully."""
    types: dict[int, Any] = {}
    try:
        decode = msgspec.json.Decoder(_struct_for(root, types)).decode
    except (ValueError, TypeError, RecursionError):
        return None
    failures = (msgspec.DecodeError, RecursionError, UnicodeError)

    def read(data: Any) -> Any:
        kind = type(data)
        if kind is not str:
            if kind is not bytes:
                data = bytes(data)
            if not data.isascii():
                try:
                    data.decode("utf-8")  # orjson refuses bad UTF-8 anywhere; msgspec only where it reads
                except UnicodeDecodeError:
                    return None
        try:
            return decode(data)
        except failures:
            return None

    return StructReader(read, types)


#: What ``quick`` returns when it cannot decide alone (an array, an object or a float at a used
#: path): the caller then walks the plain dicts as usual.
UNDECIDED: Any = object()

_MAX_QUICK_DEPTH = 24
_MAX_QUICK_LINES = 4000


def compile_quick(
    root: Node,
    types: dict[int, Any],
    tests: Sequence[Callable[[Any], Any]],
    string_tests: Sequence[Callable[[str], Any]],
) -> Callable[[Any], Any] | None:
    """For a plan whose every sub-rule is one field without ``exists: false`` (the event matches
    when any value at any used path passes any test: ``Plan.any_test_matches``), a function
    deciding a Struct from ``read`` directly: True at the first value that passes its path's
    test (``tests[path id]``, or ``string_tests[path id]`` for a string: a true answer means it
    passes), False when none does, or
    UNDECIDED when a used path holds an array, an object or a float (floats may need the exact
    reading of long numbers, behaviour §11; arrays and objects the general walk). Written out
    as straight-line attribute reads like walk.py's written-out walk; None past its size limits."""
    lines = ["def quick(value0):"]

    def write(node: Node, depth: int, pad: str) -> None:
        here, inner = f"value{depth}", f"value{depth + 1}"
        for number, (_key, child) in enumerate(node.edges):
            lines.append(f"{pad}{inner} = {here}.f{number}")
            lines.append(f"{pad}kind = type({inner})")
            if child.leaf >= 0:
                lines.append(f"{pad}if kind is str:")
                lines.append(f"{pad}    if STRING_TESTS[{child.leaf}]({inner}):")
                lines.append(f"{pad}        return True")
                lines.append(f"{pad}elif kind is float or kind is dict or kind is list:")
                lines.append(f"{pad}    return UNDECIDED")
                lines.append(f"{pad}elif {inner} is not UNSET and TESTS[{child.leaf}]({inner}):")
                lines.append(f"{pad}    return True")
            else:
                if depth + 1 >= _MAX_QUICK_DEPTH:
                    raise _TooLarge
                lines.append(f"{pad}if kind is TYPES[{id(child)}]:")
                lines.append(f"{pad}    pass")
                write(child, depth + 1, pad + "    ")
                lines.append(f"{pad}elif kind is list:")
                lines.append(f"{pad}    return UNDECIDED")
            if len(lines) > _MAX_QUICK_LINES:
                raise _TooLarge

    try:
        write(root, 0, "    ")
    except _TooLarge:
        return None
    lines.append("    return False")
    namespace: dict[str, Any] = {"TESTS": tuple(tests), "STRING_TESTS": tuple(string_tests), "TYPES": types, "UNSET": msgspec.UNSET, "UNDECIDED": UNDECIDED}
    try:
        exec("\n".join(lines), namespace)  # noqa: S102 - source built from numbers only, no event keys
    except (SyntaxError, RecursionError, MemoryError):
        return None
    return namespace["quick"]  # type: ignore[no-any-return]


class _TooLarge(Exception):
    """The written-out decision would pass its size limits."""
