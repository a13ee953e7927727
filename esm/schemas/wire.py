"""How schema-registry serializers frame a Kafka key or value: the header in front of the payload.

Pure functions, no I/O.

- **Confluent** (Confluent Schema Registry, Confluent Cloud): magic byte `0`, the schema id as a
  4-byte big-endian integer, then the payload.
- **AWS Glue**: header version byte `3`, a compression byte (`0` none, `5` zlib), the 16-byte
  schema version UUID, then the payload (zlib-compressed when the compression byte says so).

Anything else is a `WireFormatError`: the record cannot be read with the configured registry,
which Lambda reports as DESERIALIZATION_ERROR.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass

CONFLUENT_MAGIC = 0
CONFLUENT_HEADER = 5
GLUE_HEADER_VERSION = 3
GLUE_COMPRESSION_NONE = 0
GLUE_COMPRESSION_ZLIB = 5
GLUE_HEADER = 18


class WireFormatError(ValueError):
    """The bytes are not framed as the configured registry's serializers frame them."""


@dataclass(frozen=True, slots=True)
class Framed:
    """A key or value split into the id of its writer schema and the payload the schema describes."""

    schema_id: str  # Confluent: the integer id as text; Glue: the schema version UUID
    payload: bytes


def parse_confluent(data: bytes) -> Framed:
    if len(data) < CONFLUENT_HEADER:
        raise WireFormatError(f"{len(data)} byte(s) is shorter than the 5-byte Confluent header")
    if data[0] != CONFLUENT_MAGIC:
        raise WireFormatError(f"unknown magic byte {data[0]} (Confluent framing starts with 0)")
    return Framed(str(int.from_bytes(data[1:5], "big")), bytes(data[5:]))


def parse_glue(data: bytes) -> Framed:
    if len(data) < GLUE_HEADER:
        raise WireFormatError(f"{len(data)} byte(s) is shorter than the 18-byte AWS Glue header")
    if data[0] != GLUE_HEADER_VERSION:
        raise WireFormatError(f"unknown header version byte {data[0]} (AWS Glue framing starts with 3)")
    compression = data[1]
    schema_id = str(uuid.UUID(bytes=bytes(data[2:18])))
    payload = bytes(data[18:])
    if compression == GLUE_COMPRESSION_ZLIB:
        try:
            payload = zlib.decompress(payload)
        except zlib.error as error:
            raise WireFormatError(f"zlib-compressed payload does not decompress: {error}") from None
    elif compression != GLUE_COMPRESSION_NONE:
        raise WireFormatError(f"unknown compression byte {compression} (0: none, 5: zlib)")
    return Framed(schema_id, payload)


def confluent_frame(schema_id: int, payload: bytes) -> bytes:
    """The inverse of `parse_confluent` (for tests and tools)."""
    return bytes([CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big") + payload


def glue_frame(schema_version_id: str, payload: bytes, *, compress: bool = False) -> bytes:
    """The inverse of `parse_glue` (for tests and tools)."""
    body = zlib.compress(payload) if compress else payload
    compression = GLUE_COMPRESSION_ZLIB if compress else GLUE_COMPRESSION_NONE
    return bytes([GLUE_HEADER_VERSION, compression]) + uuid.UUID(schema_version_id).bytes + body

