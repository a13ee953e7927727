"""Each source's *filter view* of a record, and the keep/drop decision (docs/behaviour.md §5).

A filter pattern's top level is the record: metadata fields plus one *data key* whose content is
decoded before matching. Per record a source calls one function here and gets True (keep the
record) or False (filter it out):

=========  ==================  ==========================================  ======================
source     function            data key and decoding                       format mismatch
=========  ==================  ==========================================  ======================
SQS        ``filter_sqs``      ``body``: JSON when it is a JSON object or  no match (the message
                               array, otherwise the string itself          is deleted)
Kinesis    ``filter_kinesis``  ``data``: base64, then JSON; the view is    no match (skipped)
                               the ``kinesis`` object's fields
DynamoDB   ``filter_dynamodb`` ``dynamodb``: already JSON                  (cannot happen)
Kafka      ``filter_kafka``    ``value``: base64, UTF-8, then JSON or the  data conditions are
                               string                                      ignored: metadata only
=========  ==================  ==========================================  ======================

A *mismatch* is a filter whose condition on the data key has the other format: a JSON pattern
(``{"body": {"state": ["ok"]}}``) against plain data, or a plain pattern (``{"body": ["ok"]}``)
against JSON data. Data that cannot be decoded (bad base64, not UTF-8, missing) mismatches every
data pattern. Filters with no data condition never look at the data, and a matcher that matches
everything (no filters) answers True without decoding anything.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import orjson

from esm.filtering.compiler import exact_reading, parse_event
from esm.filtering.errors import InvalidPatternError
from esm.filtering.matcher import DataFormat, DataUsage, Matcher, OnMismatch

__all__ = [
    "check_json_data_patterns",
    "decode_json_or_text",
    "decode_kafka_value",
    "decode_kinesis_data",
    "filter_dynamodb",
    "filter_kafka",
    "filter_kinesis",
    "filter_sqs",
]

_UNSET: Any = object()
_JSON_OPENERS = frozenset("{[")


def decode_json_or_text(text: str) -> tuple[DataFormat, Any]:
    """JSON when the text is a JSON object or array, otherwise the text itself (plain)."""
    stripped = text.lstrip(" \t\r\n")
    if stripped[:1] in _JSON_OPENERS:
        try:
            parsed = parse_event(text)  # orjson, or exact numbers where orjson would round them
        except ValueError:
            return DataFormat.PLAIN, text
        return DataFormat.JSON, parsed
    return DataFormat.PLAIN, text


def _decode_bytes(raw: bytes) -> tuple[DataFormat, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return DataFormat.UNREADABLE, None
    return decode_json_or_text(text)


# What filtering reads: the data's format, its value, and for JSON that orjson read without
# parse_event's digit scan, the function giving parse_event's reading when it differs (see
# Plan.matches), so that the scan runs only for records whose matched values include a float.
_Read = tuple[DataFormat, Any, Callable[[], Any] | None]


def _read_json_or_text(text: str) -> _Read:
    """decode_json_or_text, with the digit scan left until a float is reached."""
    stripped = text.lstrip(" \t\r\n")
    if stripped[:1] in _JSON_OPENERS:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            data_format, decoded = decode_json_or_text(text)
            return data_format, decoded, None
        return DataFormat.JSON, parsed, lambda: exact_reading(text)
    return DataFormat.PLAIN, text, None


def _read_bytes(raw: bytes | None) -> _Read:
    if raw is None:
        return DataFormat.UNREADABLE, None, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return DataFormat.UNREADABLE, None, None
    return _read_json_or_text(text)


def _b64(data: Any) -> bytes | None:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_kinesis_data(data: Any) -> tuple[DataFormat, Any]:
    """A Kinesis record's ``data`` (base64 text, or raw bytes) as JSON, text or unreadable."""
    raw = _b64(data)
    if raw is None:
        return DataFormat.UNREADABLE, None
    return _decode_bytes(raw)


def decode_kafka_value(value: Any) -> tuple[DataFormat, Any]:
    """A Kafka record's ``value`` (base64 text, or raw bytes): JSON, a UTF-8 string, or
    unreadable (missing, not base64, not UTF-8)."""
    if value is None:
        return DataFormat.UNREADABLE, None
    raw = _b64(value)
    if raw is None:
        return DataFormat.UNREADABLE, None
    return _decode_bytes(raw)


def _with_exact(view: dict[str, Any], key: str, exact_decoded: Callable[[], Any]) -> Callable[[], Any]:
    """The view with the data read as parse_event reads it, or None when that reading is the same."""

    def exact_view() -> Any:
        try:
            exact = exact_decoded()
        except ValueError:
            # Nested deeper than the standard library reads (orjson reads 1024 levels): keep
            # orjson's reading rather than failing the poll.
            return None
        return None if exact is None else {**view, key: exact}

    return exact_view


def _decide(
    matcher: Matcher,
    base: dict[str, Any],
    key: str,
    data_format: DataFormat,
    decoded: Any,
    on_mismatch: OnMismatch,
    exact_decoded: Callable[[], Any] | None = None,
) -> bool:
    plan = matcher.for_data(key, data_format, on_mismatch)
    if plan.match_all:
        return True
    view = dict(base)
    if data_format is DataFormat.UNREADABLE:
        view.pop(key, None)
    else:
        view[key] = decoded
    exact_view = None if exact_decoded is None else _with_exact(view, key, exact_decoded)
    try:
        return plan.matches(view, exact_view)
    except RecursionError:
        if data_format is DataFormat.UNREADABLE:
            raise
        # JSON nested deeper than the matcher can walk (orjson reads 1024 levels): the data is
        # judged as unreadable, like data that is not JSON, instead of failing the whole poll.
        return _decide(matcher, base, key, DataFormat.UNREADABLE, None, on_mismatch)


def filter_sqs(matcher: Matcher, record: dict[str, Any]) -> bool:
    """Keep (True) or filter out (False) one SQS record, shaped as in the Lambda payload."""
    if matcher.is_match_all:
        return True
    if not matcher.uses_key("body"):
        return matcher.matches(record)
    body = record.get("body")
    if isinstance(body, str):
        data_format, decoded, exact = _read_json_or_text(body)
    else:
        data_format, decoded, exact = DataFormat.UNREADABLE, None, None
    return _decide(matcher, record, "body", data_format, decoded, OnMismatch.NO_MATCH, exact)


def filter_kinesis(matcher: Matcher, record: dict[str, Any]) -> bool:
    """Keep or filter out one Kinesis record, shaped as in the Lambda payload (``{"kinesis":
    {...}, "eventSource": ...}``). Filters see the ``kinesis`` object's fields at top level,
    with ``data`` decoded."""
    if matcher.is_match_all:
        return True
    fields = record.get("kinesis", {})
    if not matcher.uses_key("data"):
        return matcher.matches(fields)
    data_format, decoded, exact = _read_bytes(_b64(fields.get("data")))
    return _decide(matcher, fields, "data", data_format, decoded, OnMismatch.NO_MATCH, exact)


def filter_dynamodb(matcher: Matcher, record: dict[str, Any]) -> bool:
    """Keep or filter out one DynamoDB stream record (its ``dynamodb`` field is already JSON)."""
    if matcher.is_match_all:
        return True
    return matcher.matches(record)


def filter_kafka(
    matcher: Matcher,
    record: dict[str, Any],
    *,
    decoded_key: Any = _UNSET,
    decoded_value: Any = _UNSET,
) -> bool:
    """Keep or filter out one Kafka record, shaped as in the Lambda payload (``topic``,
    ``partition``, ``offset``, ``timestamp``, ``key``, ``value`` base64, ``headers``...).

    With a schema registry, pass the deserialized ``decoded_value`` (and ``decoded_key``): they
    are matched as JSON as they are. Otherwise ``value`` is decoded here. When the data does not
    fit a filter's data pattern (or is not UTF-8), that filter is applied to metadata only.
    """
    if matcher.is_match_all:
        return True
    base = record
    if decoded_key is not _UNSET:
        base = dict(record)
        base["key"] = decoded_key
    exact: Callable[[], Any] | None = None
    if decoded_value is not _UNSET:
        if isinstance(decoded_value, (dict, list)):
            data_format, decoded = DataFormat.JSON, decoded_value
        elif isinstance(decoded_value, str):
            data_format, decoded = DataFormat.PLAIN, decoded_value
        else:
            data_format, decoded = DataFormat.UNREADABLE, None
    elif not matcher.uses_key("value"):
        return matcher.matches(base)
    else:
        value = record.get("value")
        data_format, decoded, exact = _read_bytes(None if value is None else _b64(value))
    return _decide(matcher, base, "value", data_format, decoded, OnMismatch.IGNORE_DATA, exact)


def check_json_data_patterns(matcher: Matcher, key: str, source: str) -> None:
    """Reject a plain value pattern on the data `key` of a source whose data must be filtered
    with a JSON object pattern (Kinesis and DynamoDB: a create/update error, behaviour §5)."""
    for usage in matcher.data_usage(key):
        if usage in (DataUsage.PLAIN, DataUsage.MIXED):
            raise InvalidPatternError(
                f'"{key}" must be filtered with a JSON object pattern for {source} records'
            )
