"""EventBridge event patterns, as Lambda event source mappings use them in ``FilterCriteria``.

The language and its edge cases are in behaviour §11; how each source applies filters is docs/behaviour.md §5. Public API:

- :class:`InvalidPatternError` (a ``ValueError``) whose ``str()`` is AWS's reason text;
- :func:`validate_pattern` checks one pattern;
- :func:`compile_filters` compiles the filters of a mapping into one :class:`Matcher`
  (``matches(event)``, ``matches_json(data)``, ``is_match_all``, ``data_usage(key)``);
- :func:`test_pattern` answers one pattern against one event, for ``esm test-pattern``;
- :mod:`esm.filtering.decode` builds each source's filter view of a record and decides it.
"""

from __future__ import annotations

from typing import Any

from esm.filtering.compiler import parse_event
from esm.filtering.errors import InvalidPatternError
from esm.filtering.matcher import DataFormat, DataUsage, Matcher, OnMismatch, compile_filters
from esm.filtering.parser import MAX_PATTERN_LENGTH, parse_pattern

__all__ = [
    "DataFormat",
    "DataUsage",
    "InvalidPatternError",
    "MAX_PATTERN_LENGTH",
    "Matcher",
    "OnMismatch",
    "compile_filters",
    "test_pattern",
    "validate_pattern",
]


def validate_pattern(pattern: str) -> None:
    """Raise InvalidPatternError (its text is the reason) when ``pattern`` is not valid."""
    parse_pattern(pattern)


def test_pattern(pattern: str, event: str) -> bool:
    """Whether ``event`` (JSON text) matches ``pattern`` (JSON text).

    Raises InvalidPatternError for a bad pattern, and ValueError for an event that is not JSON or
    not a JSON object.
    """
    matcher = compile_filters([pattern])
    parsed: Any = parse_event(event)
    if not isinstance(parsed, dict):
        raise ValueError("Event must be a JSON object")
    try:
        return matcher.matches(parsed)
    except RecursionError:
        raise ValueError("Event is nested too deeply to match") from None


# pytest collects module-level names starting with "test" from modules it imports into tests.
test_pattern.__test__ = False  # type: ignore[attr-defined]
