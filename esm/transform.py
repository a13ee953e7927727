"""The `esm.transform` extension: a JMESPath expression applied to each record's decoded payload.

The expression sees the record as the filters do, with its data field (the source descriptor's
`data`) decoded: an SQS `body` that is JSON becomes the parsed object; a Kinesis record's `kinesis`
object with `data` base64-decoded (and parsed when JSON); a Kafka record with `value` decoded the
same way; a DynamoDB record as it is (its `dynamodb` object is JSON already). The result replaces
the data field, encoded back the way the source carries it (JSON text for SQS, base64 of the JSON
for Kinesis and Kafka, the object itself for DynamoDB), so identifiers such as `messageId` or the sequence number stay and partial
batch responses keep working. A record whose transform fails, or whose data is not base64 UTF-8
text (binary data the expression cannot see), is sent unchanged and logged: a transform never
loses or corrupts a record.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any, Callable

import jmespath
import jmespath.exceptions

from esm.descriptor import BASE64, JSON, TEXT, DataField

log = logging.getLogger("esm.transform")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read: the text itself
        return text


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


# What a decoder returns for data that is not base64 or not UTF-8 (binary data): the expression
# cannot see it decoded, and re-encoding its result would replace the bytes, so the record is sent
# unchanged (and logged), as when the expression fails.
UNDECODABLE: Any = object()


def _from_base64(data: Any) -> Any:
    if not isinstance(data, str):
        return UNDECODABLE
    try:
        return _json_or_text(base64.b64decode(data, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError):  # not base64, or not UTF-8 (UnicodeDecodeError)
        return UNDECODABLE


def _reason(error: Exception) -> str:
    """Why a transform failed, without the record's data: JMESPath's type errors quote the value
    they got, and record contents stay out of logs (docs/design.md "Habits")."""
    if isinstance(error, jmespath.exceptions.JMESPathTypeError):
        return (f"in function {error.function_name}(), expected {' or '.join(error.expected_types)}, "
                f"got {error.actual_type}")
    if isinstance(error, RecursionError):
        return "the data is nested too deeply"
    if isinstance(error, jmespath.exceptions.JMESPathError):  # unknown function, arity: about the expression
        return str(error)[:200]
    return type(error).__name__


def _to_base64(value: Any) -> str:
    return base64.b64encode(_as_text(value).encode("utf-8")).decode("ascii")


class Transform:
    """`container` names the nested object holding the data field (Kinesis: `kinesis`), or None."""

    def __init__(self, expression: str, data_key: str, decode: Callable[[Any], Any], encode: Callable[[Any], Any],
                 container: str | None = None):
        self.expression = expression
        self.compiled = jmespath.compile(expression)
        self.data_key = data_key
        self.decode = decode
        self.encode = encode
        self.container = container

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        holder = event[self.container] if self.container else event
        if self.data_key not in holder:
            return event  # a Kafka tombstone (no value): nothing to transform, and none to invent
        view = dict(holder)
        view[self.data_key] = self.decode(holder.get(self.data_key))
        if view[self.data_key] is UNDECODABLE:
            log.warning("transform %r not applied; record sent unchanged: its %s is not base64 UTF-8 text",
                        self.expression, self.data_key)
            return event
        try:
            result = self.compiled.search(view)
            encoded = self.encode(result)
        except (jmespath.exceptions.JMESPathError, ValueError, TypeError, RecursionError) as error:
            # A runtime type error, or data or a result nested too deeply to walk or write.
            log.warning("transform %r failed; record sent unchanged: %s", self.expression, _reason(error))
            return event
        changed = dict(holder)
        changed[self.data_key] = encoded
        return dict(event, **{self.container: changed}) if self.container else changed


def _json_or_text_field(value: Any) -> Any:
    return _json_or_text(value) if isinstance(value, str) else value


def _same(value: Any) -> Any:
    return value


# A source's data encoding (esm.descriptor) -> how the expression sees it, and how its result is written back.
CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    TEXT: (_json_or_text_field, _as_text),
    BASE64: (_from_base64, _to_base64),
    JSON: (_same, _same),
}


def transform_for(expression: str, data: DataField) -> Transform:
    """The transform of `expression` on a source's data field (its descriptor's `data`)."""
    decode, encode = CODECS[data.encoding]
    return Transform(expression, data.key, decode, encode, container=data.container)
