"""The `esm.transform` extension: a JMESPath expression applied to each record's decoded payload.

The expression sees the record as the filters do, with its data field decoded (an SQS `body`
that is JSON becomes the parsed object). Its result replaces the data field (re-encoded as JSON),
so identifiers such as `messageId` stay and partial batch responses keep working. A record whose
transform fails is sent unchanged and the failure is logged: a transform never loses a record.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

import jmespath
import jmespath.exceptions

log = logging.getLogger("esm.transform")


class Transform:
    def __init__(self, expression: str, data_key: str, decode: Callable[[Any], Any], encode: Callable[[Any], Any]):
        self.expression = expression
        self.compiled = jmespath.compile(expression)
        self.data_key = data_key
        self.decode = decode
        self.encode = encode

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        view = dict(event)
        view[self.data_key] = self.decode(event.get(self.data_key))
        try:
            result = self.compiled.search(view)
        except jmespath.exceptions.JMESPathError as error:
            log.warning("transform %r failed; record sent unchanged: %s", self.expression, error)
            return event
        out = dict(event)
        out[self.data_key] = self.encode(result)
        return out


def sqs_transform(expression: str) -> Transform:
    def decode(body: Any) -> Any:
        if not isinstance(body, str):
            return body
        try:
            return json.loads(body)
        except ValueError:
            return body

    def encode(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    return Transform(expression, "body", decode, encode)
