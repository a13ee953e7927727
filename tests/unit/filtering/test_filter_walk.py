"""The walk that pulls the used paths' values out of an event (esm/filtering/walk.py).

Issue 13 point 5 writes the walk of a plan's path tree out as straight-line code. It must find
exactly what the general walk finds (behaviour §11: nested objects and dotted keys join with ``.``,
arrays are entered element by element, values inside array elements keep their positions for
array consistency), for any tree and any event, and fall back to the general walk where the
written-out form cannot be used (deep trees, huge trees, keys that look like code).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm.filtering import compile_filters
from esm.filtering.walk import Extraction, _from_object, build_tree, compile_walker

ATOMS = ["a", "b", "c"]
KEYS = ["a", "b", "c", "a.b", "b.c", "a.b.c", "b.a", "'", "x\ny"]
SETTINGS = settings(max_examples=400, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

paths = st.lists(st.lists(st.sampled_from(ATOMS + ["'", "x\ny"]), min_size=1, max_size=4).map(".".join),
                 min_size=1, max_size=6, unique=True)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["x", "y", ""]))
events = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=25,
).map(lambda value: value if isinstance(value, dict) else {"a": value})


def _found(walk: Any, tree: Any, event: dict[str, Any], track_arrays: bool) -> list[tuple[int, str, Any]]:
    """What a walk found, as a sorted list of (path id, value, positions): the written-out walk
    may visit sibling keys in another order, which changes no match."""
    found = Extraction()
    walk(found, event, track_arrays)
    positions = found.positions or {}
    return sorted(
        (path_id, repr(value), positions.get(path_id, {}).get(number, ()))
        for path_id, values in found.values.items()
        for number, value in enumerate(values)
    )


def _general(tree: Any) -> Any:
    return lambda found, event, track_arrays: _from_object(found, tree, event, track_arrays)


@SETTINGS
@given(used=paths, event=events, track_arrays=st.booleans())
def test_the_written_out_walk_finds_what_the_general_walk_finds(used: list[str], event: dict[str, Any], track_arrays: bool) -> None:
    """Issue 13 point 5: same values, same array positions, for any tree and event (dotted keys,
    arrays of objects, nested arrays, objects at leaves, keys with quotes and newlines)."""
    tree = build_tree(used)
    assert _found(compile_walker(tree), tree, event, track_arrays) == _found(_general(tree), tree, event, track_arrays)


@st.composite
def spelled_events(draw: st.DrawFn, used: list[str]) -> dict[str, Any]:
    """An event holding the used paths, each spelled with a random mix of nesting and dotted
    keys (``a.b.c`` as ``{"a": {"b.c": ..}}``, ``{"a.b": {"c": ..}}``...), some inside arrays."""
    event: dict[str, Any] = {}
    for path in used:
        atoms = path.split(".")
        cuts = sorted(draw(st.sets(st.integers(1, len(atoms) - 1), max_size=len(atoms) - 1))) if len(atoms) > 1 else []
        keys = [".".join(atoms[start:end]) for start, end in zip([0, *cuts], [*cuts, len(atoms)])]
        here = event
        for key in keys[:-1]:
            nested = here.get(key)
            if not isinstance(nested, dict):
                nested = here[key] = {}
            here = nested
        value = draw(scalars)
        here[keys[-1]] = [value, draw(scalars)] if draw(st.booleans()) else value
    return event


@SETTINGS
@given(data=st.data(), used=paths, track_arrays=st.booleans())
def test_the_written_out_walk_finds_every_spelling_of_a_path(data: st.DataObject, used: list[str], track_arrays: bool) -> None:
    """Issue 13 point 5, behaviour §11.1 dotted keys: events that spell the used paths with dotted
    keys at any level give the same findings through both walks."""
    event = data.draw(spelled_events(used))
    tree = build_tree(used)
    assert _found(compile_walker(tree), tree, event, track_arrays) == _found(_general(tree), tree, event, track_arrays)


def test_dotted_event_keys_are_found_behind_the_one_check() -> None:
    """behaviour §11: `{"a":{"b.c":..}}`, `{"a.b":{"c":..}}` and `{"a.b.c":..}` all reach a.b.c;
    the written-out walk looks dotted keys up only when the object has one, and then finds each."""
    tree = build_tree(["a.b.c", "a.b.d"])
    walk = compile_walker(tree)
    event = {"a": {"b": {"c": 1}, "b.c": 2, "b.d": 3}, "a.b": {"c": 4}, "a.b.c": 5, "a.b.d": 6}
    assert _found(walk, tree, event, True) == _found(_general(tree), tree, event, True)
    assert sorted(value for _, value, _ in _found(walk, tree, event, True)) == ["1", "2", "3", "4", "5", "6"]


def test_keys_that_look_like_code_are_only_data() -> None:
    """A pattern key enters the written-out walk as a string literal: quotes, backslashes and
    newlines in it are matched literally and run nothing."""
    for key in ['"); raise SystemExit(1) #', "'); raise SystemExit(1) #", "\\", "a\n raise SystemExit(1)", "\u2028"]:
        pattern = json.dumps({"outer": {key: ["hit"]}})
        matcher = compile_filters([pattern])
        assert matcher.matches({"outer": {key: "hit"}}) is True
        assert matcher.matches_json(json.dumps({"outer": {key: "hit"}})) is True
        assert matcher.matches({"outer": {"other": "hit"}}) is False


def test_deep_paths_fall_back_to_the_general_walk_and_still_match() -> None:
    """Past the depth Python's parser accepts in one function, the walk continues generically."""
    depth = 60
    pattern: Any = ["deep"]
    event: Any = "deep"
    for _ in range(depth):
        pattern, event = {"k": pattern}, {"k": event}
    matcher = compile_filters([json.dumps(pattern)])
    assert matcher.matches(event) is True
    assert matcher.matches_json(json.dumps(event)) is True
    miss: Any = "other"
    for _ in range(depth):
        miss = {"k": miss}
    assert matcher.matches(miss) is False


def test_a_tree_too_large_to_write_out_still_matches() -> None:
    """Many long paths (more lines than the written-out walk allows) are walked generically,
    with the same findings and the same matches."""
    used = [f"f{i}.g.h.i" for i in range(400)]
    tree = build_tree(used)
    walk = compile_walker(tree)
    assert walk.__name__ == "generic"
    event = {f"f{i}": {"g": {"h": {"i": f"v{i}"}}} for i in range(0, 400, 3)}
    assert _found(walk, tree, event, False) == _found(_general(tree), tree, event, False)
    patterns = [json.dumps({f"f{i}": {"g": {"h": {"i": [f"v{i}"]}}} for i in range(start, start + 60)})
                for start in range(0, 300, 60)]
    matcher = compile_filters(patterns)
    event = {f"f{i}": {"g": {"h": {"i": f"v{i}"}}} for i in range(60, 120)}
    assert matcher.matches(event) is True
    event["f77"]["g"]["h"]["i"] = "nope"
    assert matcher.matches(event) is False
