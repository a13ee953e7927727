"""All filters of a mapping compiled into one matcher that reads each event once.

How a match is decided (behaviour §11.3, "How to make it fast"):

1. *Extraction* (walk.py). The paths used by any filter form a small tree. The event is walked
   along that tree only (dict look-ups by key, never a scan of the event's keys; the walk of a
   plan's tree is written out as straight-line code), and each leaf value found is appended to
   its path's list. Values found inside objects that are elements of an array remember which
   element they came from, because fields from different elements of one array must not be
   combined (array consistency).
2. *Tests per path.* Every distinct operand of every filter on a path gets a test id. Each path
   has one index answering "which test ids does this value satisfy": exact values in a dict
   (strings, numbers by value, true/false/null), prefixes and suffixes in dicts keyed by length,
   numeric ranges and CIDR blocks in sorted boundary tables, anything-but as "all minus the ones
   this value excludes", wildcard and case-folded operands as small matchers.
3. *Sub-rules.* A filter is one or more sub-rules (its ``$or`` combinations), each an AND of
   fields. A test id that completes a one-field sub-rule ends the work at once; a longer
   sub-rule is looked at only when the test of its most selective field fires, then checked
   against the other tests that fired, and for array consistency only when the event had
   objects inside arrays. Sub-rules with ``exists: false`` are decided last, by a direct check.

So the cost per event grows with the number of paths the filters use and the values found there,
not with the number of filters.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from esm.filtering.parser import (
    AB,
    AB_EIC,
    AB_PREFIX,
    AB_SUFFIX,
    AB_WILDCARD,
    ABSENT,
    CIDR,
    EIC,
    EXISTS,
    FALSE,
    LIT,
    NULL,
    NUM,
    PREFIX,
    PREFIX_EIC,
    RANGE,
    STR,
    SUFFIX,
    SUFFIX_EIC,
    TRUE,
    WILDCARD,
    Operand,
    SubRule,
)
from esm.filtering.values import (
    comparable_from_int,
    comparable_from_text,
    ignore_case_matcher,
    parse_ip,
    wildcard_matcher,
)
from esm.filtering.reader import UNDECIDED, compile_quick, compile_reader
from esm.filtering.walk import Extraction, build_tree, compile_walker, consistent

_EMPTY: tuple[int, ...] = ()


class _Token:
    """A key for true, false and null that cannot collide with a number (True == 1 in Python)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


KEY_TRUE, KEY_FALSE, KEY_NULL = _Token("true"), _Token("false"), _Token("null")


class LiteralNumber:
    """An event number that cannot be held as a finite double (only from the fallback parser)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"LiteralNumber({self.text!r})"


def value_key(value: Any) -> Any:
    """The exact-match key of an event leaf: the string itself, the double of a comparable
    number, a (``"#lit"``, text) pair for other numbers, a token for true/false/null; None for
    anything that matches no exact operand."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is bool:
        return KEY_TRUE if value else KEY_FALSE
    if kind is int:
        as_float = comparable_from_int(value)
        return as_float if as_float is not None else ("#lit", str(value))
    if value is None:
        return KEY_NULL
    if kind is LiteralNumber:
        as_float = comparable_from_text(value.text)
        return as_float if as_float is not None else ("#lit", value.text)
    return None


def _number_of(value: Any) -> float | None:
    """The double of a comparable event number, else None (strings, booleans, ...)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return comparable_from_int(value)
    if kind is LiteralNumber:
        return comparable_from_text(value.text)
    return None


def _operand_key(operand: Operand) -> Any:
    kind = operand[0]
    if kind == STR:
        return operand[1]
    if kind == NUM:
        return operand[1]
    if kind == LIT:
        return ("#lit", operand[1])
    return {TRUE: KEY_TRUE, FALSE: KEY_FALSE, NULL: KEY_NULL}[kind]


# --------------------------------------------------------------------------------------------
# Per-path value indexes
# --------------------------------------------------------------------------------------------


class _IntervalIndex:
    """Which of many closed/open intervals contain a point, by one binary search.

    The interval ends cut the line into points and open gaps; the answer for each piece is
    computed once at build time.
    """

    def __init__(self, intervals: list[tuple[Any, bool, Any, bool, int]]) -> None:
        bounds = sorted({end for low, _, high, _, _ in intervals for end in (low, high)})
        self.bounds = bounds
        pieces: list[tuple[int, ...]] = []
        for index in range(len(bounds) + 1):
            # The open gap before bounds[index] (or after the last bound).
            left = bounds[index - 1] if index > 0 else None
            right = bounds[index] if index < len(bounds) else None
            pieces.append(tuple(t for low, lo_open, high, hi_open, t in intervals if _covers_gap(low, high, left, right)))
            if index < len(bounds):
                point = bounds[index]
                pieces.append(
                    tuple(
                        t
                        for low, lo_open, high, hi_open, t in intervals
                        if (low < point or (low == point and not lo_open))
                        and (point < high or (point == high and not hi_open))
                    )
                )
        self.pieces = pieces

    def lookup(self, point: Any) -> tuple[int, ...]:
        bounds = self.bounds
        index = bisect_left(bounds, point)
        if index < len(bounds) and bounds[index] == point:
            return self.pieces[2 * index + 1]
        return self.pieces[2 * index]


def _covers_gap(low: Any, high: Any, left: Any, right: Any) -> bool:
    # The gap (left, right) lies strictly between consecutive bounds, so an interval covers it
    # when it starts at or before left and ends at or after right (open ends do not matter).
    if left is None or right is None:
        return False
    return low <= left and right <= high


class _PathIndex:
    """Answers, for one path, which test ids a single value satisfies."""

    def __init__(self, tests: list[tuple[int, Operand]]) -> None:
        exact: dict[Any, list[int]] = {}
        prefixes: dict[int, dict[str, list[int]]] = {}
        suffixes: dict[int, dict[str, list[int]]] = {}
        fold_exact: dict[str, list[int]] = {}
        fold_prefix: dict[int, dict[str, list[int]]] = {}
        fold_suffix: dict[int, dict[str, list[int]]] = {}
        string_checks: list[tuple[Callable[[str], bool], int]] = []
        # Wildcards filed under their literal head (or tail), checked only when it is present.
        wild_heads: dict[int, dict[str, list[tuple[Callable[[str], bool], int]]]] = {}
        wild_tails: dict[int, dict[str, list[tuple[Callable[[str], bool], int]]]] = {}
        ranges: list[tuple[Any, bool, Any, bool, int]] = []
        ips: dict[int, list[tuple[Any, bool, Any, bool, int]]] = {4: [], 6: []}
        exists: list[int] = []
        any_string: list[int] = []
        excluded: dict[Any, list[int]] = {}
        all_but: list[int] = []
        but_checks: list[tuple[Callable[[Any], bool], int]] = []

        for tid, operand in tests:
            kind = operand[0]
            if kind in (STR, NUM, LIT, TRUE, FALSE, NULL):
                exact.setdefault(_operand_key(operand), []).append(tid)
            elif kind in (PREFIX, SUFFIX):
                text = operand[1]
                if not text:
                    any_string.append(tid)
                else:
                    table = prefixes if kind == PREFIX else suffixes
                    table.setdefault(len(text), {}).setdefault(text, []).append(tid)
            elif kind in (EIC, PREFIX_EIC, SUFFIX_EIC):
                text = operand[1]
                if kind != EIC and not text:
                    any_string.append(tid)
                elif text.isascii():
                    if kind == EIC:
                        fold_exact.setdefault(text.lower(), []).append(tid)
                    else:
                        table = fold_prefix if kind == PREFIX_EIC else fold_suffix
                        table.setdefault(len(text), {}).setdefault(text.lower(), []).append(tid)
                else:
                    mode = {EIC: "exact", PREFIX_EIC: "prefix", SUFFIX_EIC: "suffix"}[kind]
                    string_checks.append((ignore_case_matcher(text, mode), tid))
            elif kind == WILDCARD:
                segments = operand[1]
                if len(segments) == 1:
                    exact.setdefault(segments[0], []).append(tid)  # no star: an exact string
                elif segments[0]:
                    wild_heads.setdefault(len(segments[0]), {}).setdefault(segments[0], []).append(
                        (wildcard_matcher(segments), tid)
                    )
                elif segments[-1]:
                    wild_tails.setdefault(len(segments[-1]), {}).setdefault(segments[-1], []).append(
                        (wildcard_matcher(segments), tid)
                    )
                else:
                    string_checks.append((wildcard_matcher(segments), tid))
            elif kind == RANGE:
                ranges.append((operand[1], operand[2], operand[3], operand[4], tid))
            elif kind == CIDR:
                ips[operand[1]].append((operand[2], False, operand[3], False, tid))
            elif kind == EXISTS:
                exists.append(tid)
            elif kind == AB:
                all_but.append(tid)
                for text in operand[1]:
                    excluded.setdefault(text, []).append(tid)
                for number in operand[2]:
                    excluded.setdefault(number, []).append(tid)
            elif kind in (AB_PREFIX, AB_SUFFIX, AB_EIC, AB_WILDCARD):
                but_checks.append((_exclusion_check(operand), tid))
            else:  # pragma: no cover - the parser produces no other kinds
                raise AssertionError(operand)

        self.exact = {key: tuple(tids) for key, tids in exact.items()}
        self.prefixes = sorted((length, _freeze(table)) for length, table in prefixes.items())
        self.suffixes = sorted((length, _freeze(table)) for length, table in suffixes.items())
        self.fold_exact = _freeze(fold_exact)
        self.fold_prefix = sorted((length, _freeze(table)) for length, table in fold_prefix.items())
        self.fold_suffix = sorted((length, _freeze(table)) for length, table in fold_suffix.items())
        self.string_checks = tuple(string_checks)
        self.wild_heads = sorted((size, {k: tuple(v) for k, v in table.items()}) for size, table in wild_heads.items())
        self.wild_tails = sorted((size, {k: tuple(v) for k, v in table.items()}) for size, table in wild_tails.items())
        self.any_string = tuple(any_string)
        self.ranges = _IntervalIndex(ranges) if ranges else None
        self.ips = {version: _IntervalIndex(found) for version, found in ips.items() if found}
        self.exists = tuple(exists)
        self.all_but = tuple(all_but)
        # anything-but is "all minus the excluded": the survivors for each excluded value are
        # computed once here, unless that table would be large.
        self.excluded = {key: frozenset(tids) for key, tids in excluded.items()}
        self.survivors: dict[Any, tuple[int, ...]] | None = None
        if len(excluded) * len(all_but) <= 1_000_000:
            self.survivors = {
                key: tuple(t for t in all_but if t not in barred) for key, barred in self.excluded.items()
            }
        self.but_checks = tuple(but_checks)
        self.only_exact = not (
            self.prefixes or self.suffixes or self.fold_exact or self.fold_prefix
            or self.fold_suffix or self.string_checks or self.any_string or self.ranges
            or self.ips or self.exists or self.all_but or self.but_checks
            or self.wild_heads or self.wild_tails
        )
        only_ranges = self.ranges is not None and not self.exact and not (
            self.prefixes or self.suffixes or self.fold_exact or self.fold_prefix
            or self.fold_suffix or self.string_checks or self.any_string
            or self.ips or self.exists or self.all_but or self.but_checks
            or self.wild_heads or self.wild_tails
        )
        if only_ranges:
            # Numeric filters only: one binary search per number, nothing for other values.
            lookup = self.ranges.lookup  # type: ignore[union-attr]

            def numbers_only(value: Any) -> tuple[int, ...]:
                number = value if type(value) is float else _number_of(value)
                if number is None or number != number or number in (math.inf, -math.inf):
                    return _EMPTY
                return lookup(number)

            self.tests_for = numbers_only  # type: ignore[method-assign]
        only_affixes = (self.prefixes or self.suffixes) and not (
            self.fold_exact or self.fold_prefix or self.fold_suffix or self.string_checks
            or self.any_string or self.ranges or self.ips or self.exists or self.all_but
            or self.but_checks or self.wild_heads or self.wild_tails
        )
        self.only_affixes = bool(only_affixes)
        if only_affixes:
            self.tests_for = self._affix_tests()  # type: ignore[method-assign]
        if self.exists and not self.exact and _only_exact_or_exists(self):
            # exists:true alone: every value satisfies the same tests.
            satisfied = self.exists
            self.tests_for = lambda value: satisfied  # type: ignore[method-assign]

    def _affix_tests(self) -> Callable[[Any], list[int] | tuple[int, ...]]:
        """``tests_for`` when a path has only exact values, prefixes and suffixes (the most
        common filters): the tables are bound once instead of read per value."""
        exact, prefixes, suffixes = self.exact, tuple(self.prefixes), tuple(self.suffixes)

        def affix_tests(value: Any) -> list[int] | tuple[int, ...]:
            if type(value) is not str:
                key = value_key(value)
                return exact.get(key, _EMPTY) if key is not None else _EMPTY
            out: list[int] | tuple[int, ...] = exact.get(value, _EMPTY)
            length = len(value)
            for size, table in prefixes:
                if size > length:
                    break
                hit = table.get(value[:size])
                if hit:
                    out = hit if not out else [*out, *hit]
            for size, table in suffixes:
                if size > length:
                    break
                hit = table.get(value[length - size :])
                if hit:
                    out = hit if not out else [*out, *hit]
            return out

        return affix_tests

    def string_passes(self) -> Callable[[str], Any]:
        """A function telling whether a string passes any test of this path (a true answer),
        for the one-field plans decided without test ids (reader.py's quick decision): dict
        membership for exact values, prefixes and suffixes; ``tests_for`` otherwise."""
        if self.only_exact:
            return self.exact.__contains__
        if not self.only_affixes:
            return self.tests_for
        exact, prefixes, suffixes = self.exact, tuple(self.prefixes), tuple(self.suffixes)
        if not exact and not suffixes and len(prefixes) == 1:
            size, heads = prefixes[0]
            return lambda value: value[:size] in heads  # keys are all `size` long: a shorter value misses

        def affix_passes(value: str) -> bool:
            if value in exact:
                return True
            for size, table in prefixes:
                if value[:size] in table:
                    return True
            for size, table in suffixes:
                if value[-size:] in table:
                    return True
            return False

        return affix_passes

    def tests_for(self, value: Any) -> list[int] | tuple[int, ...]:
        """Test ids satisfied by one leaf value."""
        exact = self.exact
        if type(value) is str:
            found = exact.get(value, _EMPTY)
            if self.only_exact:
                return found
            out = list(found)
            self._string_tests(value, out)
            if self.ips:
                address = parse_ip(value)
                if address is not None:
                    table = self.ips.get(address[0])
                    if table is not None:
                        out.extend(table.lookup(address[1]))
        else:
            key = value_key(value)
            found = exact.get(key, _EMPTY) if key is not None else _EMPTY
            if self.only_exact:
                return found
            out = list(found)
            if self.ranges is not None:
                number = _number_of(value)
                if number is not None:
                    out.extend(self.ranges.lookup(number))
        if self.exists:
            out.extend(self.exists)
        if self.all_but:
            key = value if type(value) is str else value_key(value)
            if key is None:
                out.extend(self.all_but)
            elif self.survivors is not None:
                out.extend(self.survivors.get(key, self.all_but))
            else:
                barred = self.excluded.get(key)
                out.extend(t for t in self.all_but if not barred or t not in barred)
        for check, tid in self.but_checks:
            if not check(value):
                out.append(tid)
        return out

    def _string_tests(self, value: str, out: list[int]) -> None:
        length = len(value)
        if self.any_string:
            out.extend(self.any_string)
        for size, table in self.prefixes:
            if size > length:
                break
            hit = table.get(value[:size])
            if hit:
                out.extend(hit)
        for size, table in self.suffixes:
            if size > length:
                break
            hit = table.get(value[length - size :])
            if hit:
                out.extend(hit)
        if self.fold_exact and value.isascii():
            hit = self.fold_exact.get(value.lower())
            if hit:
                out.extend(hit)
        for size, table in self.fold_prefix:
            if size > length:
                break
            head = value[:size]
            if head.isascii():
                hit = table.get(head.lower())
                if hit:
                    out.extend(hit)
        for size, table in self.fold_suffix:
            if size > length:
                break
            tail = value[length - size :]
            if tail.isascii():
                hit = table.get(tail.lower())
                if hit:
                    out.extend(hit)
        for size, table in self.wild_heads:
            if size > length:
                break
            candidates = table.get(value[:size])
            if candidates:
                out.extend(tid for check, tid in candidates if check(value))
        for size, table in self.wild_tails:
            if size > length:
                break
            candidates = table.get(value[length - size :])
            if candidates:
                out.extend(tid for check, tid in candidates if check(value))
        for check, tid in self.string_checks:
            if check(value):
                out.append(tid)


def _only_exact_or_exists(index: _PathIndex) -> bool:
    """True when a path index has no tests besides exact values and exists:true."""
    return not (
        index.prefixes or index.suffixes or index.fold_exact or index.fold_prefix
        or index.fold_suffix or index.string_checks or index.any_string or index.ranges
        or index.ips or index.all_but or index.but_checks or index.wild_heads or index.wild_tails
    )


def _freeze(table: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(tids) for key, tids in table.items()}


def _exclusion_check(operand: Operand) -> Callable[[Any], bool]:
    """For anything-but with prefix/suffix/equals-ignore-case/wildcard: a function telling whether
    a value is excluded. Only strings can be excluded; numbers, booleans and null always pass."""
    kind = operand[0]
    if kind == AB_PREFIX:
        prefixes = tuple(operand[1])
        return lambda value: type(value) is str and value.startswith(prefixes)
    if kind == AB_SUFFIX:
        suffixes = tuple(operand[1])
        return lambda value: type(value) is str and value.endswith(suffixes)
    if kind == AB_EIC:
        simple = frozenset(text.lower() for text in operand[1] if text.isascii())
        others = tuple(ignore_case_matcher(text, "exact") for text in operand[1] if not text.isascii())

        def excluded_by_case(value: Any) -> bool:
            if type(value) is not str:
                return False
            if simple and value.isascii() and value.lower() in simple:
                return True
            return any(check(value) for check in others)

        return excluded_by_case
    matchers = tuple(wildcard_matcher(segments) for segments in operand[1])
    return lambda value: type(value) is str and any(match(value) for match in matchers)


# --------------------------------------------------------------------------------------------
# Plans: one compiled set of sub-rules
# --------------------------------------------------------------------------------------------


class _Field:
    __slots__ = ("path_id", "tests", "absent_ok")

    def __init__(self, path_id: int, tests: frozenset[int], absent_ok: bool) -> None:
        self.path_id = path_id
        self.tests = tests
        self.absent_ok = absent_ok


class Plan:
    """A compiled set of sub-rules; ``matches`` is true when any of them matches the event."""

    def __init__(self, subrules: Iterable[SubRule]) -> None:
        unique = list(dict.fromkeys(subrules))
        self.match_all = any(len(rule) == 0 for rule in unique)
        paths: dict[str, int] = {}
        test_ids: dict[tuple[int, Operand], int] = {}
        per_path: dict[int, list[tuple[int, Operand]]] = {}
        compiled: list[tuple[_Field, ...]] = []
        for rule in unique:
            fields = []
            for path, operands in rule:
                path_id = paths.setdefault(path, len(paths))
                tests = set()
                absent_ok = False
                for operand in operands:
                    if operand[0] == ABSENT:
                        absent_ok = True
                        continue
                    key = (path_id, operand)
                    tid = test_ids.get(key)
                    if tid is None:
                        tid = test_ids[key] = len(test_ids)
                        per_path.setdefault(path_id, []).append((tid, operand))
                    tests.add(tid)
                fields.append(_Field(path_id, frozenset(tests), absent_ok))
            compiled.append(tuple(fields))

        self.paths = tuple(paths)
        self.indexes = [
            _PathIndex(per_path.get(path_id, [])) for path_id in range(len(paths))
        ]
        self.tree = build_tree(self.paths)
        self._walk = compile_walker(self.tree)

        # Sub-rules whose fields all need a present value. A one-field sub-rule is complete as
        # soon as one of its tests fires. A longer one is filed under one *anchor* field, the
        # one whose tests are shared with the fewest other sub-rules, and is looked at only when
        # its anchor fires: a test common to many filters (say `"ODD_EVEN": ["E"]`) costs nothing.
        self.single = [False] * len(test_ids)
        self.counted: list[tuple[_Field, ...]] = []
        sharing = [0] * len(test_ids)
        for fields in compiled:
            for field in fields:
                for tid in field.tests:
                    sharing[tid] += 1
        self.anchored: list[tuple[int, ...]] = [()] * len(test_ids)
        anchored: dict[int, list[int]] = {}
        # Sub-rules with an exists:false field, decided directly; a lone `exists: false` field
        # only needs its path to be missing.
        self.direct: list[tuple[_Field, ...]] = []
        self.absent_alone: list[int] = []
        for fields in compiled:
            if not fields:
                continue
            if len(fields) == 1 and fields[0].absent_ok and not fields[0].tests:
                self.absent_alone.append(fields[0].path_id)
                continue
            if any(field.absent_ok for field in fields):
                self.direct.append(fields)
                continue
            if len(fields) == 1:
                for tid in fields[0].tests:
                    self.single[tid] = True
                continue
            number = len(self.counted)
            self.counted.append(fields)
            anchor = min(fields, key=lambda field: sum(sharing[tid] for tid in field.tests))
            for tid in anchor.tests:
                anchored.setdefault(tid, []).append(number)
        for tid, numbers in anchored.items():
            self.anchored[tid] = tuple(numbers)
        self.has_counted = bool(self.counted)
        # Every sub-rule is one field (a lone exists:false, or tests any of which is a match):
        # the event matches when a path of the first kind is missing or any test fires.
        self.any_test_matches = not (self.counted or self.direct)
        self.track_arrays = bool(self.counted or self.direct)

    def matches(self, event: Any, exact_numbers: Callable[[], Any] | None = None) -> bool:
        """Whether any sub-rule matches the parsed event.

        ``exact_numbers`` is for an event read by orjson without ``parse_event``'s digit scan:
        orjson's one silent difference (a number with a run of 19 or more digits read as a
        rounded double) can only show in a float the patterns reach, so only when the walk
        finds one is ``exact_numbers()`` asked for the event as ``parse_event`` reads it (None
        when that reading is the same) and matched instead.
        """
        if self.match_all:
            return True
        if type(event) is not dict:
            return False
        found = Extraction()
        self._walk(found, event, self.track_arrays)
        if exact_numbers is not None and _reaches_float(found):
            exact = exact_numbers()
            if exact is not None:
                return self.matches(exact)
        return self._decide(found)

    def matches_json(self, data: bytes | bytearray | memoryview | str) -> bool:
        """Parse JSON text and match it. Raises ValueError when it is not valid JSON.

        The first call builds the plan's reader of the used paths (reader.py) and puts the
        function using it in this method's place on the instance."""
        if self.match_all:
            return True
        self.matches_json = self._compile_json()  # type: ignore[method-assign]
        return self.matches_json(data)

    def _parse_fully(self, data: bytes | bytearray | memoryview | str) -> bool:
        """The whole event read by orjson (or by ``parse_event`` for what orjson refuses)."""
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self.matches(parse_event(data))  # the standard library's reading, or ValueError
        return self.matches(event, lambda: exact_reading(data))

    def _compile_json(self) -> Callable[[bytes | bytearray | memoryview | str], bool]:
        reader = compile_reader(self.tree)
        if reader is None:
            return self._parse_fully
        quick = None
        if self.any_test_matches and not self.absent_alone:
            quick = compile_quick(
                self.tree,
                reader.types,
                [index.tests_for for index in self.indexes],
                [index.string_passes() for index in self.indexes],
            )
        read, as_dict, matches, parse_fully = reader.read, reader.as_dict, self.matches, self._parse_fully

        def matches_json(data: bytes | bytearray | memoryview | str) -> bool:
            struct = read(data)
            if struct is None:  # something only the full reading can vouch for
                return parse_fully(data)
            if quick is not None:
                answer = quick(struct)
                if answer is not UNDECIDED:
                    return answer  # type: ignore[no-any-return]
            return matches(as_dict(struct), lambda: exact_reading(data))

        return matches_json

    def _decide(self, found: Extraction) -> bool:
        """Whether the values pulled out of one event satisfy any sub-rule."""
        if self.any_test_matches:
            present = found.values
            for path_id in self.absent_alone:
                if path_id not in present:
                    return True
            indexes = self.indexes
            for path_id, values in present.items():
                tests_for = indexes[path_id].tests_for
                for value in values:
                    if tests_for(value):
                        return True
            return False
        single = self.single
        indexes = self.indexes
        counting = self.has_counted
        fired: set[int] = set()
        for path_id, values in found.values.items():
            tests_for = indexes[path_id].tests_for
            for value in values:
                for tid in tests_for(value):
                    if single[tid]:
                        return True
                    if counting:
                        fired.add(tid)
        if fired:
            anchored, counted = self.anchored, self.counted
            for tid in fired:
                for number in anchored[tid]:
                    fields = counted[number]
                    if all(not field.tests.isdisjoint(fired) for field in fields):
                        if found.positions is None or self._holds(fields, found):
                            return True
        present = found.values
        for path_id in self.absent_alone:
            if path_id not in present:
                return True
        if found.positions is None:
            for fields in self.direct:
                if self._holds_flat(fields, present):
                    return True
        else:
            for fields in self.direct:
                if self._holds(fields, found):
                    return True
        return False

    def _holds_flat(self, fields: tuple[_Field, ...], present: dict[int, list[Any]]) -> bool:
        """A sub-rule with exists:false, for an event without objects inside arrays: every
        field is met on its own (a matching value, or no value and absence allowed)."""
        indexes = self.indexes
        for field in fields:
            values = present.get(field.path_id)
            if not values:
                if not field.absent_ok:
                    return False
                continue
            if not field.tests:
                return False
            tests_for = indexes[field.path_id].tests_for
            if not any(not field.tests.isdisjoint(tests_for(value)) for value in values):
                return False
        return True

    def _holds(self, fields: tuple[_Field, ...], found: Extraction) -> bool:
        """Whether one sub-rule matches, honouring array consistency and exists:false.

        Fields are taken in path order, as event-ruler does. A field is met by a value that
        satisfies one of its tests and agrees, array-wise, with the values already chosen; an
        exists:false field is met when no value of its path agrees with them.
        """
        indexes = self.indexes
        values = found.values
        positions = found.positions or {}

        def search(depth: int, chosen: list[tuple[tuple[int, int], ...]]) -> bool:
            if depth == len(fields):
                return True
            field = fields[depth]
            here = values.get(field.path_id, ())
            where_of = positions.get(field.path_id, {})
            any_agreeing = False
            for number, value in enumerate(here):
                where = where_of.get(number, ())
                if not all(consistent(where, other) for other in chosen):
                    continue
                any_agreeing = True
                if field.tests and not field.tests.isdisjoint(indexes[field.path_id].tests_for(value)):
                    if search(depth + 1, chosen + [where]):
                        return True
            if field.absent_ok and not any_agreeing:
                return search(depth + 1, chosen)
            return False

        return search(0, [])


# --------------------------------------------------------------------------------------------
# Event parsing
# --------------------------------------------------------------------------------------------


def _fallback_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) and comparable_from_text(text) is not None else LiteralNumber(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Invalid JSON token {name}")


# 19 digits in a row may be an integer orjson cannot keep: it reads one past 64 bits as a float,
# silently, so `[123456789012345678901234567890]` would stop matching its own number. Found with
# bytes.translate and `in` (both C loops, well under a microsecond a record; a regex is ten times slower).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


def _has_long_digit_run(data: bytes | bytearray | memoryview | str) -> bool:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    return _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_ZERO)


def _reaches_float(found: Extraction) -> bool:
    for values in found.values.values():
        for value in values:
            if type(value) is float:
                return True
    return False


def exact_reading(data: bytes | bytearray | memoryview | str) -> Any:
    """``parse_event(data)`` for JSON that orjson read without error, when the two readings can
    differ (a run of 19 or more digits); None when orjson's reading is already the exact one."""
    return parse_event(data) if _has_long_digit_run(data) else None


def parse_event(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse event JSON with orjson; fall back to the standard library for the rare documents
    orjson refuses or would round but JSON allows (numbers beyond a double or past 64 bits,
    lone surrogate escapes)."""
    error: Exception | None = None
    if not _has_long_digit_run(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as failure:
            error = failure
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        return json.loads(text, parse_float=_fallback_float, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as failure:  # RecursionError: nested too deeply
        raise ValueError(f"Event is not valid JSON: {error or failure}") from None
