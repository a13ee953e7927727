"""Enhanced fan-out: reading a shard through SubscribeToShard when EventSourceArn is a consumer ARN.

Real Kinesis opens every SubscribeToShard event stream with an `initial-response` event, and
botocore insists on it. kinesis-mock (our test backend) starts straight with the first
`SubscribeToShardEvent`. `tolerate_missing_initial_response` registers a `before-parse` hook that
puts an empty `initial-response` in front of such a stream, so one code path serves both; against
real Kinesis it changes nothing.
"""

from __future__ import annotations

import binascii
import struct
from typing import Any, AsyncIterator

_PRELUDE = 12  # total length, headers length, prelude CRC


def _encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers (the AWS binary framing, CRC32 checked by botocore)."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        for name, value in headers.items()
    )
    total = _PRELUDE + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


INITIAL_RESPONSE = _encode_message(
    {":message-type": "event", ":event-type": "initial-response", ":content-type": "application/json"}, b"{}")


def _first_event_type(data: bytes) -> str | None:
    """The :event-type header of the first complete message in `data`, or None if incomplete."""
    if len(data) < _PRELUDE:
        return None
    total, headers_length = struct.unpack(">II", data[:8])
    if len(data) < total:
        return None
    headers, position = data[_PRELUDE:_PRELUDE + headers_length], 0
    while position < len(headers):
        name_length = headers[position]
        name = headers[position + 1:position + 1 + name_length].decode()
        position += 1 + name_length
        kind = headers[position]
        position += 1
        if kind != 7:  # only string headers matter here; others end the scan
            return ""
        value_length = struct.unpack(">H", headers[position:position + 2])[0]
        value = headers[position + 2:position + 2 + value_length].decode()
        position += 2 + value_length
        if name == ":event-type":
            return value
    return ""


class _Content:
    def __init__(self, content: Any):
        self._content = content

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        buffered = b""
        checked = False
        async for chunk, end in self._content.iter_chunks():
            if checked:
                yield chunk, end
                continue
            buffered += chunk
            event_type = _first_event_type(buffered)
            if event_type is None:
                continue
            checked = True
            if event_type != "initial-response":
                yield INITIAL_RESPONSE, False
            yield buffered, end

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)


class _Body:
    def __init__(self, raw: Any):
        self._raw = raw
        self.content = _Content(raw.content)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _shim(response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict.get("status_code") == 200 and hasattr(response_dict.get("body"), "content"):
        response_dict["body"] = _Body(response_dict["body"])


def tolerate_missing_initial_response(client: Any) -> None:
    client.meta.events.register("before-parse.kinesis.SubscribeToShard", _shim)
