"""A plain reference interpreter of event patterns, kept with the tests.

It is deliberately naive and shares no code with ``esm.filtering``: it parses the pattern with
the standard ``json`` module, expands ``$or`` by brute force, flattens the *whole* event on every
call, and checks every sub-rule field by field with a backtracking search over array positions.
The property-based tests compare the compiled matcher with it, and ``bench/filters`` uses it as
the "naive engine" baseline. It assumes valid patterns (validation is tested separately).

Semantics implemented (behaviour §11):
- fields AND, values OR; nested objects and dotted keys join with ``.``;
- strings exact (IP literals compare as addresses), numbers by value when finite and exact as a
  double, otherwise by literal text; true/false/null literally;
- prefix/suffix/equals-ignore-case/wildcard/cidr only on strings, numeric only on numbers;
- anything-but matches any present value outside its set;
- exists:true needs a leaf value; exists:false needs none that agrees with the fields before it;
- array consistency: values from objects in different elements of one array never combine.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from decimal import Decimal
from typing import Any


class Num:
    """A pattern number with its literal text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Num({self.text})"


def _load_pattern(text: str) -> Any:
    return json.loads(text, parse_int=Num, parse_float=Num, object_pairs_hook=list)


# ---------------------------------------------------------------- pattern expansion


def _expand(pairs: list[tuple[str, Any]], prefix: str) -> list[dict[str, list[Any]]]:
    rules: list[dict[str, list[Any]]] = [{}]
    for key, value in pairs:
        if key == "$or":
            branches = [rule for branch in value for rule in _expand(branch, prefix)]
            rules = [{**rule, **branch} for branch in branches for rule in rules]
            continue
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, list) and all(isinstance(item, tuple) for item in value) and value:
            # An object (object_pairs_hook gives a list of pairs).
            nested = _expand(value, path)
            rules = [{**rule, **branch} for branch in nested for rule in rules]
        elif isinstance(value, list) and value == []:
            # `"a": {}` also loads as []; a value list is never empty in a valid pattern.
            continue
        else:
            rules = [{**rule, path: value} for rule in rules]
    return rules


def subrules(pattern: str) -> list[dict[str, list[Any]]]:
    return _expand(_load_pattern(pattern), "")


# ---------------------------------------------------------------- event flattening


def flatten(event: Any) -> list[tuple[str, Any, tuple[tuple[int, int], ...]]]:
    """Every leaf of the event as (path, value, array positions)."""
    leaves: list[tuple[str, Any, tuple[tuple[int, int], ...]]] = []
    counter = [0]

    def walk(value: Any, path: str, where: tuple[tuple[int, int], ...]) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else key, where)
        elif isinstance(value, list):
            array = counter[0]
            counter[0] += 1
            for index, element in enumerate(value):
                if isinstance(element, (dict, list)):
                    walk(element, path, where + ((array, index),))
                else:
                    walk(element, path, where)
        else:
            leaves.append((path, value, where))

    walk(event, "", ())
    return leaves


def _agree(first: tuple[tuple[int, int], ...], second: tuple[tuple[int, int], ...]) -> bool:
    return all(index == dict(second).get(array, index) for array, index in first)


# ---------------------------------------------------------------- value semantics


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_form(value: Any) -> tuple[str, Any] | None:
    """('num', float) for values comparable by value, ('lit', text) for other numbers."""
    if isinstance(value, Num):
        text = value.text
        as_float = float(text)
        if math.isfinite(as_float) and Decimal(repr(as_float)) == Decimal(text):
            return ("num", as_float)
        return ("lit", text)
    if isinstance(value, bool) or not _is_number(value):
        return None
    if isinstance(value, int):
        try:
            as_float = float(value)
        except OverflowError:
            return ("lit", str(value))
        return ("num", as_float) if int(as_float) == value else ("lit", str(value))
    return ("num", value) if math.isfinite(value) else None


def _ip(text: Any) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", text, re.ASCII):
        octets = [int(part) for part in text.split(".")]
        if max(octets) > 255:
            return None
        return 4, int.from_bytes(bytes(octets), "big")
    if re.fullmatch(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*", text):
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            return None
        if address.ipv4_mapped is not None:
            return 4, int(address.ipv4_mapped)
        return 6, int(address)
    return None


def _fold_regex(text: str) -> str:
    out = []
    for char in text:
        options = {char} if ord(char) > 0xFFFF else {char.lower(), char.upper()}
        out.append("(?:" + "|".join(re.escape(option) for option in sorted(options)) + ")")
    return "".join(out)


def _wildcard_regex(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            out.append(re.escape(text[index + 1]))
            index += 2
            continue
        out.append(".*" if char == "*" else re.escape(char))
        index += 1
    return "".join(out)


def _numeric(spec: list[Any], value: Any) -> bool:
    form = _number_form(value)
    if form is None or form[0] != "num":
        return False
    number = form[1]
    for position in range(0, len(spec), 2):
        operator, bound = spec[position], float(spec[position + 1].text)
        ok = {
            "=": number == bound, "<": number < bound, "<=": number <= bound,
            ">": number > bound, ">=": number >= bound,
        }[operator]
        if not ok:
            return False
    return True


def _cidr(block: str, value: Any) -> bool:
    address = _ip(value)
    if address is None:
        return False
    base, bits = block.rsplit("/", 1)
    version, low = _ip(base)  # type: ignore[misc]
    width = 32 if version == 4 else 128
    host = (1 << (width - int(bits))) - 1
    return address[0] == version and (address[1] | host) == (low | host)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def operand_matches(operand: Any, value: Any) -> bool:
    """Whether one present leaf value satisfies one operand of a value list."""
    if isinstance(operand, str):
        if _ip(operand) is not None:
            return _ip(value) == _ip(operand)
        return isinstance(value, str) and value == operand
    if isinstance(operand, Num):
        return _number_form(value) == _number_form(operand)
    if operand is True or operand is False or operand is None:
        return value is operand
    name, argument = operand[0]  # a match expression, loaded as [(name, argument)]
    if name == "exists":
        return argument is True
    if name == "exactly":
        return isinstance(value, str) and value == argument
    if name == "numeric":
        return _numeric(argument, value)
    if name == "cidr":
        return _cidr(argument, value)
    if not isinstance(value, str) and name != "anything-but":
        return False
    if name == "prefix":
        if isinstance(argument, list):  # {"prefix": {"equals-ignore-case": ...}}
            return re.match(_fold_regex(argument[0][1]), value, re.DOTALL) is not None
        return value.startswith(argument)
    if name == "suffix":
        if isinstance(argument, list):
            return re.search("(?:" + _fold_regex(argument[0][1]) + r")\Z", value, re.DOTALL) is not None
        return value.endswith(argument)
    if name == "equals-ignore-case":
        return re.fullmatch(_fold_regex(argument), value, re.DOTALL) is not None
    if name == "wildcard":
        return re.fullmatch(_wildcard_regex(argument), value, re.DOTALL) is not None
    if name == "anything-but":
        if isinstance(argument, list) and argument and isinstance(argument[0], tuple):
            inner, items = argument[0]
            items = _as_list(items)
            probe = {
                "prefix": lambda item: {"prefix": item},
                "suffix": lambda item: {"suffix": item},
                "equals-ignore-case": lambda item: {"equals-ignore-case": item},
                "wildcard": lambda item: {"wildcard": item},
            }[inner]
            return not any(operand_matches(list(probe(item).items()), value) for item in items)
        # Plain anything-but compares strings as strings (no IP reading) and numbers by value.
        return not any(
            (isinstance(value, str) and value == item) if isinstance(item, str) else operand_matches(item, value)
            for item in _as_list(argument)
        )
    raise AssertionError(f"unknown operand {operand!r}")


# ---------------------------------------------------------------- matching


def _subrule_matches(rule: dict[str, list[Any]], leaves: list[tuple[str, Any, Any]]) -> bool:
    fields = sorted(rule.items())

    def search(depth: int, chosen: list[Any]) -> bool:
        if depth == len(fields):
            return True
        path, operands = fields[depth]
        absent_allowed = any(
            isinstance(op, list) and op[0][0] == "exists" and op[0][1] is False for op in operands
        )
        agreeing = [
            (value, where)
            for leaf_path, value, where in leaves
            if leaf_path == path and all(_agree(where, other) for other in chosen)
        ]
        for value, where in agreeing:
            if any(operand_matches(op, value) for op in operands):
                if search(depth + 1, chosen + [where]):
                    return True
        return absent_allowed and not agreeing and search(depth + 1, chosen)

    return search(0, [])


def reference_matches(patterns: list[str], event: Any) -> bool:
    """True when any pattern matches the event (an empty list matches everything)."""
    if not patterns:
        return True
    leaves = flatten(event)
    return any(_subrule_matches(rule, leaves) for pattern in patterns for rule in subrules(pattern))


def _event_float(text: str) -> Any:
    value = float(text)
    if math.isfinite(value) and Decimal(repr(value)) == Decimal(text):
        return value
    return Num(text)  # keep the literal of numbers a double cannot hold exactly


def load_event(data: str | bytes) -> Any:
    """Parse event JSON, keeping the literal text of numbers a double cannot hold."""
    return json.loads(data, parse_float=_event_float)


def reference_matches_json(patterns: list[str], data: str | bytes) -> bool:
    """The naive engine: parse and flatten the event again for every pattern."""
    if not patterns:
        return True
    return any(reference_matches([pattern], load_event(data)) for pattern in patterns)
