"""The public matcher: the filters of one mapping, compiled once, asked once per record.

Besides ``matches`` (a parsed event) and ``matches_json`` (raw JSON), a matcher knows which of
its filters use a source's *data key* (``body``, ``data``, ``value``...) and how: as a plain
string value (``{"body": ["hello"]}``) or as JSON (``{"body": {"state": ["ok"]}}``). Sources use
that to apply behaviour §5's format rules without compiling again: ``for_data`` returns a
compiled plan with the sub-rules that cannot apply removed (SQS, Kinesis: the record is dropped)
or with their data conditions removed (Kafka: metadata-only filtering). Plans are cached.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from esm.filtering.compiler import Plan
from esm.filtering.parser import ParsedPattern, SubRule, parse_pattern


class DataUsage(enum.Enum):
    """How a filter (or one of its sub-rules) refers to a source's data key."""

    NONE = "none"  # no condition on the data key: metadata only
    PLAIN = "plain"  # a value list on the key itself: the data is matched as a string
    JSON = "json"  # conditions on paths under the key: the data is matched as JSON
    MIXED = "mixed"  # both, in different sub-rules (or the same one)


class DataFormat(enum.Enum):
    """What one record's data turned out to be."""

    JSON = "json"  # parsed to a JSON object or array
    PLAIN = "plain"  # a string that is not a JSON object or array
    UNREADABLE = "unreadable"  # not decodable (bad base64, not UTF-8) or missing


class OnMismatch(enum.Enum):
    """What a data format mismatch does to a filter."""

    NO_MATCH = "no_match"  # SQS, Kinesis, DynamoDB: the filter cannot match this record
    IGNORE_DATA = "ignore_data"  # Kafka, MQ: the filter's data conditions are dropped


def _usage_of(rule: SubRule, key: str) -> DataUsage:
    nested = key + "."
    plain = any(path == key for path, _ in rule)
    json_like = any(path.startswith(nested) for path, _ in rule)
    if plain and json_like:
        return DataUsage.MIXED
    if plain:
        return DataUsage.PLAIN
    if json_like:
        return DataUsage.JSON
    return DataUsage.NONE


def _combine(usages: Sequence[DataUsage]) -> DataUsage:
    found = {usage for usage in usages if usage is not DataUsage.NONE}
    if not found:
        return DataUsage.NONE
    if found == {DataUsage.PLAIN}:
        return DataUsage.PLAIN
    if found == {DataUsage.JSON}:
        return DataUsage.JSON
    return DataUsage.MIXED


_COMPATIBLE = {
    DataFormat.JSON: DataUsage.JSON,
    DataFormat.PLAIN: DataUsage.PLAIN,
}


class Matcher:
    """All filters of one mapping. True when any filter matches; no filters match everything."""

    def __init__(self, patterns: Sequence[ParsedPattern]) -> None:
        self.patterns = tuple(pattern.text for pattern in patterns)
        self._parsed = tuple(patterns)
        self._tagged: tuple[SubRule, ...] = tuple(
            rule for pattern in patterns for rule in pattern.subrules
        )
        self._plan = Plan(self._tagged)
        #: True when every event matches (no filters, or a filter such as ``{}``); callers can
        #: then skip decoding records entirely.
        self.is_match_all: bool = not patterns or self._plan.match_all
        self._variants: dict[tuple[str, int, int], Plan] = {}
        self._usage: dict[str, tuple[DataUsage, ...]] = {}
        self._uses: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Matcher({list(self.patterns)!r})"

    # -- matching ---------------------------------------------------------------------------

    def matches(self, event: dict[str, Any]) -> bool:
        """True when any filter matches the (already parsed) event."""
        if self.is_match_all:
            return True
        return self._plan.matches(event)

    def matches_json(self, data: bytes | bytearray | memoryview | str) -> bool:
        """Parse JSON once and match it. Raises ValueError when it is not valid JSON. A matcher
        that matches everything answers True without parsing."""
        if self.is_match_all:
            return True
        return self._plan.matches_json(data)

    # -- data keys --------------------------------------------------------------------------

    def data_usage(self, key: str) -> tuple[DataUsage, ...]:
        """For each filter, in order, how it refers to the data key ``key``."""
        usage = self._usage.get(key)
        if usage is None:
            usage = tuple(
                _combine([_usage_of(rule, key) for rule in pattern.subrules])
                for pattern in self._parsed
            )
            self._usage[key] = usage
        return usage

    def uses_key(self, key: str) -> bool:
        """True when some filter has a condition on ``key`` or on a path under it."""
        uses = self._uses.get(key)
        if uses is None:
            uses = self._uses[key] = any(usage is not DataUsage.NONE for usage in self.data_usage(key))
        return uses

    def for_data(self, key: str, data_format: DataFormat, on_mismatch: OnMismatch) -> Plan:
        """The plan to use for a record whose data under ``key`` has ``data_format``.

        Sub-rules whose use of the key fits the format are kept as they are. The others are
        dropped (``NO_MATCH``) or kept without their conditions on the key (``IGNORE_DATA``).
        """
        # Enum members hash in Python code; they are singletons, so their ids key the cache.
        cache_key = (key, id(data_format), id(on_mismatch))
        plan = self._variants.get(cache_key)
        if plan is not None:
            return plan
        if self.is_match_all:
            plan = self._variants[cache_key] = Plan([()])
            return plan
        wanted = _COMPATIBLE.get(data_format)
        kept: list[SubRule] = []
        nested = key + "."
        for rule in self._tagged:
            usage = _usage_of(rule, key)
            if usage is DataUsage.NONE or usage is wanted:
                kept.append(rule)
            elif on_mismatch is OnMismatch.IGNORE_DATA:
                kept.append(
                    tuple(
                        (path, operands)
                        for path, operands in rule
                        if path != key and not path.startswith(nested)
                    )
                )
        plan = Plan(kept)
        self._variants[cache_key] = plan
        return plan


def compile_filters(patterns: Sequence[str]) -> Matcher:
    """Check and compile the filters of one mapping; raises InvalidPatternError on the first
    invalid one (its reason is the error's text)."""
    return Matcher([parse_pattern(pattern) for pattern in patterns])
