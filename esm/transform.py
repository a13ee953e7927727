"""The `esm.transform` extension: a JMESPath expression applied to each record's decoded payload.

The expression sees the record as the filters do, with its data field decoded: an SQS `body` that
is JSON becomes the parsed object; a Kinesis record's `kinesis` object with `data` base64-decoded
(and parsed when JSON); a Kafka record with `value` decoded the same way. The result replaces the
data field, encoded back the way the source carries it (JSON text for SQS, base64 of the JSON for
Kinesis and Kafka), so identifiers such as `messageId` or the sequence number stay and partial
batch responses keep working. A record whose transform fails is sent unchanged and the failure is
logged: a transform never loses a record.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any, Callable

import jmespath
import jmespath.exceptions

log = logging.getLogger("esm.transform")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _from_base64(data: Any) -> Any:
    if not isinstance(data, str):
        return data
    try:
        return _json_or_text(base64.b64decode(data, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError):
        return data  # not base64 text: the expression sees it as it is


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
        view = dict(holder)
        view[self.data_key] = self.decode(holder.get(self.data_key))
        try:
            result = self.compiled.search(view)
        except jmespath.exceptions.JMESPathError as error:
            log.warning("transform %r failed; record sent unchanged: %s", self.expression, error)
            return event
        changed = dict(holder)
        changed[self.data_key] = self.encode(result)
        return dict(event, **{self.container: changed}) if self.container else changed


def sqs_transform(expression: str) -> Transform:
    return Transform(expression, "body", lambda body: _json_or_text(body) if isinstance(body, str) else body, _as_text)


def kinesis_transform(expression: str) -> Transform:
    return Transform(expression, "data", _from_base64, _to_base64, container="kinesis")


def kafka_transform(expression: str) -> Transform:
    return Transform(expression, "value", _from_base64, _to_base64)
