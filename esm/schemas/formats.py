"""Schemas as the registry returns them, made ready to decode payloads into JSON values.

`compile_schema(data_format, definition)` turns a registry's schema text into a `Codec` once (the
cache keeps it); `Codec.decode(payload)` returns plain JSON values (dict, list, str, int, float,
bool, None) — what filters match and what `EventRecordFormat: JSON` delivers — or raises
`DeserializationError`.

- **AVRO** (fastavro): the payload is Avro binary written with the schema. Bytes that remain after
  the datum mean the writer used another schema, so they fail too. Avro values become JSON as a
  reader would expect: records as objects, unions as their value, enums as their symbol,
  `bytes`/`fixed` as base64 text, decimals as numbers, timestamps/dates/times as ISO-8601 text,
  UUIDs as text.
- **JSON** (JSON Schema): the payload is UTF-8 JSON text, validated against the schema
  (the draft its `$schema` names, else the latest).
- **PROTOBUF** (`esm.schemas.protobuf`): the payload is the message-index prefix the registry's
  serializers write, then the message; `.proto` text or a serialized descriptor, with the files it
  imports (`references`), compiled per schema. `framing` says whose message-index format to read
  (Confluent's list or AWS Glue's single index).
"""

from __future__ import annotations

import base64
import decimal
import io
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import fastavro
import orjson

from esm.schemas.errors import DeserializationError, SchemaUnusable

__all__ = ["AVRO", "JSON", "PROTOBUF", "Codec", "DeserializationError", "SchemaUnusable", "compile_schema",
           "to_json_value"]

AVRO = "AVRO"
JSON = "JSON"
PROTOBUF = "PROTOBUF"


@dataclass(frozen=True)
class Codec:
    """One writer schema, compiled: `data_format` is what `*SchemaMetadata.dataFormat` says."""

    data_format: str
    decode: Callable[[bytes], Any]


def compile_schema(data_format: str, definition: str, *, references: Mapping[str, str] | None = None,
                   framing: str = "confluent") -> Codec:
    data_format = (data_format or AVRO).upper()
    if data_format == AVRO:
        return Codec(AVRO, _avro_decoder(definition))
    if data_format == JSON:
        return Codec(JSON, _json_schema_decoder(definition))
    if data_format == PROTOBUF:
        from esm.schemas.protobuf import compile_protobuf  # only Protobuf mappings load protobuf

        return Codec(PROTOBUF, compile_protobuf(definition, references, framing))
    raise SchemaUnusable(f"unknown schema data format {data_format!r}")


# ---------------------------------------------------------------- Avro


def _avro_decoder(definition: str) -> Callable[[bytes], Any]:
    try:
        parsed = fastavro.parse_schema(orjson.loads(definition))
    except (orjson.JSONDecodeError, fastavro.schema.SchemaParseException, TypeError, ValueError, KeyError) as error:
        raise SchemaUnusable(f"not a valid Avro schema: {error}") from None

    def decode(payload: bytes) -> Any:
        stream = io.BytesIO(payload)
        try:
            datum = fastavro.schemaless_reader(stream, parsed)
        except (EOFError, StopIteration, UnicodeDecodeError, ValueError, IndexError, KeyError, TypeError,
                OverflowError, decimal.InvalidOperation) as error:
            raise DeserializationError(f"not Avro data of its schema: {type(error).__name__}: {error}") from None
        if stream.tell() != len(payload):
            raise DeserializationError(
                f"{len(payload) - stream.tell()} byte(s) left after the Avro datum (written with another schema?)")
        return to_json_value(datum)

    return decode


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json_value(datum: Any) -> Any:
    """Avro's Python values as plain JSON values (orjson renders datetimes and UUIDs as ISO/text)."""
    if datum is None or isinstance(datum, (str, bool, int, float)):
        return datum
    return orjson.loads(orjson.dumps(datum, default=_json_default, option=orjson.OPT_NON_STR_KEYS))


# ---------------------------------------------------------------- JSON Schema


def _json_schema_decoder(definition: str) -> Callable[[bytes], Any]:
    import jsonschema  # only mappings whose registry serves JSON Schemas pay for the import
    from jsonschema.exceptions import SchemaError

    try:
        schema = orjson.loads(definition)
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
        validator = validator_class(schema)
    except (orjson.JSONDecodeError, SchemaError, TypeError) as error:
        raise SchemaUnusable(f"not a valid JSON Schema: {error}") from None

    def decode(payload: bytes) -> Any:
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as error:
            raise DeserializationError(f"not JSON: {error}") from None
        problem = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if problem is not None:
            where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
            raise DeserializationError(f"does not match its JSON Schema at {where}: {problem.message}")
        return value

    return decode
