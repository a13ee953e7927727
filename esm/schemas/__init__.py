"""Kafka schema registries (behaviour §1 SchemaRegistryConfig, §2, §4, §5): Confluent and AWS Glue
wire formats, Avro (fastavro), JSON Schema and Protobuf decoding, a schema cache, and the
per-record decoder the Kafka source runs before filtering.

Modules: `wire` (framing, pure), `formats` (schema text -> decoder), `protobuf` (Protobuf schemas
and message indexes), `errors` (why a schema or payload cannot be decoded), `registry` (what a
client answers), `confluent` / `glue` (the clients), `access` (Confluent credentials from Secrets
Manager), `cache` (fetch once, negative entries briefly), `config` (SchemaRegistryConfig rules
and settings), `decoder` (the step itself).
"""

from esm.core.conditions import DESERIALIZATION_ERROR, SCHEMA_NOT_FOUND
from esm.config.schema_registry import SchemaRegistrySettings, settings_for
from esm.schemas.decoder import (
    DecodedMessage,
    DecodedRecord,
    DecodeFailure,
    RegistryDown,
    SchemaDecoder,
    SchemaRecord,
    failure_of,
    filter_arguments,
    schema_record,
)

__all__ = [
    "DESERIALIZATION_ERROR",
    "SCHEMA_NOT_FOUND",
    "DecodeFailure",
    "DecodedMessage",
    "DecodedRecord",
    "RegistryDown",
    "SchemaDecoder",
    "SchemaRecord",
    "SchemaRegistrySettings",
    "failure_of",
    "filter_arguments",
    "schema_record",
    "settings_for",
]
