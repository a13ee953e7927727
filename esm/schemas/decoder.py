"""The schema registry step of a Kafka mapping: validate and decode each record's KEY and/or VALUE
against its writer schema, before filtering and batching (behaviour §5: poll -> validate -> deserialize
-> filter -> invoke).

Per record, for each attribute `SchemaValidationConfigs` lists (a null key or value is left alone):
1. the wire framing gives the schema id (`esm.schemas.wire`; bad framing: DESERIALIZATION_ERROR);
2. the schema comes from the cache or the registry (`esm.schemas.cache`; the registry has none:
   SCHEMA_NOT_FOUND; the registry cannot be asked: the record is read again later);
3. the payload is decoded (`esm.schemas.formats`; it does not decode: DESERIALIZATION_ERROR).

What the function then receives (behaviour §2): with `EventRecordFormat: JSON`, the decoded attribute as
base64 of its compact JSON text; with `SOURCE`, the original payload without the framing (Glue's
zlib compression undone), base64 as usual. Either way the record gains `keySchemaMetadata` /
`valueSchemaMetadata`: `{"dataFormat": "AVRO"|"JSON"|"PROTOBUF", "schemaId": "<id>"}`. Filters match the
decoded values whatever the format.

Registry lookups are batched: `decode_many` resolves every schema id of a fetched batch first,
each unknown id once, then decodes. A record that fails never reaches the function: the Kafka
source dead-letters it (`requestContext.condition` SCHEMA_NOT_FOUND or DESERIALIZATION_ERROR), in
order with its partition's other records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import orjson
from aiokafka.errors import IllegalStateError

from esm.aio import sleep_unless
from esm.aws import AwsClients
from esm.core.backoff import RECONNECT_BACKOFF
from esm.core.conditions import DESERIALIZATION_ERROR, SCHEMA_NOT_FOUND
from esm.core.records import Record
from esm.schemas.access import load_access
from esm.schemas.cache import Resolved, SchemaCache
from esm.config.schema_registry import GLUE, SchemaRegistrySettings
from esm.schemas.confluent import ConfluentRegistry
from esm.schemas.formats import DeserializationError
from esm.schemas.glue import GlueRegistry
from esm.schemas.registry import RegistryClient
from esm.schemas.wire import Framed, WireFormatError, parse_confluent, parse_glue

log = logging.getLogger("esm.schemas")

KEY = "KEY"
VALUE = "VALUE"
JSON_FORMAT = "JSON"
_METADATA_FIELD = {KEY: "keySchemaMetadata", VALUE: "valueSchemaMetadata"}
_FILTER_ARG = {KEY: "decoded_key", VALUE: "decoded_value"}


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A record that passed: key/value as the function receives them (bytes, or None when null)."""

    key: bytes | None
    value: bytes | None
    metadata: dict[str, dict[str, str]]  # keySchemaMetadata / valueSchemaMetadata, when validated
    decoded: dict[str, Any]  # filter_kafka's decoded_key / decoded_value, for the attributes decoded


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """A record that cannot be validated: it goes to the on-failure destination with `condition`."""

    condition: str  # SCHEMA_NOT_FOUND | DESERIALIZATION_ERROR
    attribute: str  # KEY | VALUE
    reason: str


@dataclass(frozen=True, slots=True)
class RegistryDown:
    """The registry could not be asked about this record's schema: nothing is known yet."""

    reason: str


@dataclass(slots=True)
class DecodedMessage:
    """A fetched message after the schema step, shaped like aiokafka's ConsumerRecord so the Kafka
    source builds its event as for any record: key/value are what the function receives (for a
    failure, the original bytes, which the on-failure destination carries)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    serialized_key_size: int
    serialized_value_size: int
    result: DecodedRecord | DecodeFailure


class SchemaRecord(Record):
    """The pipeline's Record of a message that went through the schema step: a Record with the
    decoded key/value for the filters (`decoded`, filter_kafka keyword arguments) and, for a message
    that failed the step, its `failure` (never invoked, dead-lettered with failure.condition)."""

    decoded: dict[str, Any]
    failure: DecodeFailure | None

    def __new__(cls, event: dict[str, Any], item_id: Any, size: int, arrived_at: float, token: Any, *,
                decoded: dict[str, Any] | None = None, failure: DecodeFailure | None = None) -> "SchemaRecord":
        self = super().__new__(cls, event, item_id, size, arrived_at, token)
        self.decoded = {} if decoded is None else decoded
        self.failure = failure
        return self


def schema_record(record: Record, message: DecodedMessage) -> SchemaRecord:
    """`record` (built by the Kafka source from `message`) with its schema metadata and decoded view."""
    result = message.result
    if isinstance(result, DecodeFailure):
        return SchemaRecord(*record, failure=result)
    if not result.metadata:
        return SchemaRecord(*record, decoded=result.decoded)
    event = dict(record.event)
    event.update(result.metadata)
    return SchemaRecord(*record._replace(event=event, size=len(orjson.dumps(event))), decoded=result.decoded)


def failure_of(record: Record) -> DecodeFailure | None:
    return record.failure if isinstance(record, SchemaRecord) else None


def filter_arguments(record: Record) -> dict[str, Any]:
    """filter_kafka's keyword arguments for `record`: the decoded key/value it is to match."""
    return record.decoded if isinstance(record, SchemaRecord) else {}


class SchemaDecoder:
    """Decodes one mapping's records against its schema registry (one registry per mapping)."""

    def __init__(self, settings: SchemaRegistrySettings, registry: RegistryClient, *, metrics: Any = None,
                 logger: logging.LoggerAdapter | logging.Logger | None = None, cache: SchemaCache | None = None):
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.log = logger or log
        self.cache = cache or SchemaCache(registry.fetch, framing=registry.kind)
        self._frame = parse_glue if registry.kind == GLUE else parse_confluent
        # Decode KEY before VALUE, so a record with both broken reports the same attribute every time.
        self._attributes = tuple(a for a in (KEY, VALUE) if a in settings.attributes)
        self._json = settings.record_format == JSON_FORMAT
        self._outages = 0  # consecutive fetched batches the registry could not be asked about: the backoff step

    @classmethod
    def for_mapping(cls, settings: SchemaRegistrySettings, clients: AwsClients,
                    secrets: Mapping[str, Any] | None = None, **kwargs: Any) -> "SchemaDecoder":
        """`secrets`: the mapping's `esm.secrets`, for registry credentials kept outside AWS."""
        registry: RegistryClient
        if settings.kind == GLUE:
            registry = GlueRegistry(clients, region=settings.region, registry_name=settings.registry_name)
        else:
            registry = ConfluentRegistry(settings.uri, access=lambda: load_access(clients, settings.access, secrets))
        return cls(settings, registry, **kwargs)

    async def close(self) -> None:
        await self.registry.close()

    # -- one record, many records ------------------------------------------------------------------
    async def decode(self, message: Any) -> DecodedRecord | DecodeFailure | RegistryDown:
        return (await self.decode_many([message]))[0]

    async def decode_many(self, messages: Sequence[Any]) -> list[DecodedRecord | DecodeFailure | RegistryDown]:
        """Each message's result, in order; every schema id the batch names is looked up at most once."""
        framed: list[dict[str, Framed] | DecodeFailure] = [self._unframe(m) for m in messages]
        wanted = (f.schema_id for parts in framed if isinstance(parts, dict) for f in parts.values())
        schemas = await self.cache.resolve(wanted)
        down = [r.unavailable for r in schemas.values() if r.unavailable]
        if down:
            self.log.warning("schema registry %s unavailable: %s", self.settings.uri, down[0])
        out: list[DecodedRecord | DecodeFailure | RegistryDown] = []
        for message, parts in zip(messages, framed):
            result = parts if isinstance(parts, DecodeFailure) else self._decode(message, parts, schemas)
            if self.metrics is not None:
                if isinstance(result, RegistryDown) or (
                        isinstance(result, DecodeFailure) and result.condition == SCHEMA_NOT_FOUND):
                    self.metrics.schema_registry_errors.inc()
                elif isinstance(result, DecodeFailure):
                    self.metrics.malformed_records.inc()
            out.append(result)
        return out

    def _unframe(self, message: Any) -> dict[str, Framed] | DecodeFailure:
        parts: dict[str, Framed] = {}
        for attribute in self._attributes:
            data = message.key if attribute == KEY else message.value
            if data is None:
                continue  # a null key, or a tombstone: nothing to validate
            try:
                parts[attribute] = self._frame(data)
            except WireFormatError as error:
                return DecodeFailure(DESERIALIZATION_ERROR, attribute, f"{attribute.lower()}: {error}")
        return parts

    def _decode(self, message: Any, parts: dict[str, Framed],
                schemas: dict[str, Resolved]) -> DecodedRecord | DecodeFailure | RegistryDown:
        # Every schema first: a missing schema is SCHEMA_NOT_FOUND even when the other part is corrupt.
        for attribute, framed in parts.items():
            resolved = schemas[framed.schema_id]
            if resolved.unavailable:
                return RegistryDown(resolved.unavailable)
            if resolved.missing:
                return DecodeFailure(SCHEMA_NOT_FOUND, attribute, f"{attribute.lower()}: {resolved.missing}")
        key, value = message.key, message.value
        metadata: dict[str, dict[str, str]] = {}
        decoded: dict[str, Any] = {}
        for attribute, framed in parts.items():
            resolved = schemas[framed.schema_id]
            if resolved.codec is None:
                return DecodeFailure(DESERIALIZATION_ERROR, attribute, f"{attribute.lower()}: {resolved.unusable}")
            try:
                data = resolved.codec.decode(framed.payload)
            except DeserializationError as error:
                return DecodeFailure(DESERIALIZATION_ERROR, attribute,
                                     f"{attribute.lower()} (schema {framed.schema_id}): {error}")
            delivered = orjson.dumps(data) if self._json else framed.payload
            if attribute == KEY:
                key = delivered
            else:
                value = delivered
            metadata[_METADATA_FIELD[attribute]] = {"dataFormat": resolved.codec.data_format,
                                                    "schemaId": framed.schema_id}
            decoded[_FILTER_ARG[attribute]] = data
        return DecodedRecord(key, value, metadata, decoded)

    # -- a fetched batch, for the Kafka source ------------------------------------------------------
    async def decode_fetched(self, fetched: dict[Any, list[Any]], *, consumer: Any = None,
                             stopping: asyncio.Event | None = None) -> dict[Any, list[DecodedMessage]]:
        """`fetched` (topic-partition -> aiokafka records) with every record decoded or failed.

        A partition whose records name a schema the registry could not be asked about keeps only
        the records before the first of them; the consumer is moved back to it (`seek`), so it is
        fetched again, after a back-off (`RECONNECT_BACKOFF`, growing while the registry stays away).
        Nothing is lost or dead-lettered for an outage."""
        order = [(tp, message) for tp, messages in fetched.items() for message in messages]
        results = await self.decode_many([message for _, message in order])
        out: dict[Any, list[DecodedMessage]] = {}
        cut: set[Any] = set()
        for (tp, message), result in zip(order, results):
            if tp in cut:
                continue
            if isinstance(result, RegistryDown):
                cut.add(tp)
                if consumer is not None:
                    with contextlib.suppress(IllegalStateError):  # revoked meanwhile: the next owner reads it
                        consumer.seek(tp, message.offset)
                continue
            out.setdefault(tp, []).append(_message(message, result))
        if not cut:
            self._outages = 0
            return out
        self._outages += 1
        delay = RECONNECT_BACKOFF.delay(self._outages)
        self.log.warning("schema registry unavailable: %d partition(s) read again from their first "
                         "undecoded record after %.1fs", len(cut), delay)
        if stopping is not None:
            await sleep_unless(stopping, delay)
        else:
            await asyncio.sleep(delay)
        return out


def _message(message: Any, result: DecodedRecord | DecodeFailure) -> DecodedMessage:
    key, value = message.key, message.value
    if isinstance(result, DecodedRecord):
        key, value = result.key, result.value
    return DecodedMessage(message.topic, message.partition, message.offset, message.timestamp,
                          message.timestamp_type, key, value, message.headers or (),
                          message.serialized_key_size, message.serialized_value_size, result)

