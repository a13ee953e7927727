"""The schema registry step (esm.schemas): wire framing, Avro and JSON Schema decoding, the schema
cache, the decoder's JSON / SOURCE output and failure conditions, and SchemaRegistryConfig rules.

behaviour §1 (SchemaRegistryConfig), 2 (`EventRecordFormat` JSON/SOURCE, `*SchemaMetadata`), 4
(SCHEMA_NOT_FOUND / DESERIALIZATION_ERROR), 5 (filters see decoded fields). The decoder tests talk
HTTP to tests/support/confluent_fake.py (a fake: no Confluent registry installs here) through the
real Confluent client.
"""

from __future__ import annotations

import asyncio
import base64
import io
import textwrap
import uuid
import zlib
from dataclasses import dataclass

import fastavro
import orjson
import pytest

from esm.config.loading import parse_config
from esm.core.backoff import Backoff
from esm.errors import ConfigError
from esm.filtering import compile_filters
from esm.filtering.decode import filter_kafka
from esm.core.records import Record
from esm.schemas import (
    DESERIALIZATION_ERROR,
    SCHEMA_NOT_FOUND,
    DecodedRecord,
    DecodeFailure,
    RegistryDown,
    SchemaDecoder,
    failure_of,
    filter_arguments,
    schema_record,
)
from esm.schemas.cache import SchemaCache
from esm.config.schema_registry import SchemaRegistrySettings
from esm.schemas.confluent import ConfluentRegistry
from esm.schemas.formats import DeserializationError, compile_schema
from esm.schemas.registry import RegistrySchema, RegistryUnavailable, SchemaNotFound
from esm.schemas.wire import (
    WireFormatError,
    confluent_frame,
    glue_frame,
    parse_confluent,
    parse_glue,
)
from esm.sources.kafka.records import kafka_record
from tests.support.confluent_fake import fake_confluent_registry

ORDER = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "blob", "type": "bytes"},
    ],
}
ORDER_TEXT = orjson.dumps(ORDER).decode()
KEY_SCHEMA = {"type": "record", "name": "Key", "fields": [{"name": "customer", "type": "string"}]}


def avro(schema: dict, datum: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
    return out.getvalue()


def order(n: int, status: str = "PAID") -> dict:
    return {"id": n, "status": status, "note": None if n % 2 else f"n{n}", "blob": bytes([n, 255])}


@dataclass
class Message:
    """An aiokafka ConsumerRecord's fields (what the Kafka source reads), for building inputs."""

    value: bytes | None
    key: bytes | None = None
    offset: int = 0
    topic: str = "orders"
    partition: int = 0
    timestamp: int = 1_700_000_000_000
    timestamp_type: int = 0
    headers: tuple = ()

    @property
    def serialized_key_size(self) -> int:
        return -1 if self.key is None else len(self.key)

    @property
    def serialized_value_size(self) -> int:
        return -1 if self.value is None else len(self.value)


def settings(uri: str, record_format: str = "JSON", attributes=("VALUE",)) -> SchemaRegistrySettings:
    return SchemaRegistrySettings(uri=uri, kind="confluent", record_format=record_format,
                                  attributes=frozenset(attributes))


# ---------------------------------------------------------------- wire formats


def test_confluent_framing_is_magic_zero_and_a_big_endian_id():
    """behaviour §2 / wire format: Confluent = byte 0, 4-byte big-endian schema id, payload."""
    framed = parse_confluent(b"\x00\x00\x01\x00\x02payload")
    assert framed.schema_id == str(65538) and framed.payload == b"payload"
    assert parse_confluent(confluent_frame(7, b"")).payload == b""
    with pytest.raises(WireFormatError, match="magic byte 1"):
        parse_confluent(b"\x01\x00\x00\x00\x07x")
    with pytest.raises(WireFormatError, match="shorter"):
        parse_confluent(b"\x00\x00\x01")


def test_glue_framing_is_version_3_compression_and_a_uuid_and_zlib_is_undone():
    """Wire format: AWS Glue = byte 3, compression byte (0 none, 5 zlib), 16-byte version UUID, payload."""
    version = str(uuid.uuid4())
    plain = parse_glue(bytes([3, 0]) + uuid.UUID(version).bytes + b"avro")
    assert plain.schema_id == version and plain.payload == b"avro"
    packed = parse_glue(bytes([3, 5]) + uuid.UUID(version).bytes + zlib.compress(b"avro" * 10))
    assert packed.payload == b"avro" * 10
    assert parse_glue(glue_frame(version, b"x", compress=True)).payload == b"x"
    for bad, reason in [(bytes([2, 0]) + bytes(16), "version byte 2"), (bytes([3, 9]) + bytes(16), "compression byte 9"),
                        (bytes([3, 5]) + bytes(16) + b"not zlib", "decompress"), (bytes([3, 0, 1]), "shorter")]:
        with pytest.raises(WireFormatError, match=reason):
            parse_glue(bad)


# ---------------------------------------------------------------- formats


def test_avro_decodes_to_plain_json_values_and_rejects_short_or_long_payloads():
    """behaviour §2 (JSON format): Avro becomes JSON — enums as symbols, unions as their value, bytes as base64."""
    codec = compile_schema("AVRO", ORDER_TEXT)
    assert codec.data_format == "AVRO"
    payload = avro(ORDER, order(2))
    assert codec.decode(payload) == {"id": 2, "status": "PAID", "note": "n2", "blob": "Av8="}
    with pytest.raises(DeserializationError):
        codec.decode(payload[:-1])
    with pytest.raises(DeserializationError, match="left after"):
        codec.decode(payload + b"\x00")


def test_json_schema_validates_and_unknown_formats_are_refused_clearly():
    """JSON Schema payloads are JSON validated against the schema; a format esm does not know is refused
    with a clear reason (Protobuf has its own tests: tests/unit/test_protobuf.py)."""
    codec = compile_schema("JSON", '{"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}')
    assert codec.decode(b'{"n": 3}') == {"n": 3}
    with pytest.raises(DeserializationError, match="at n"):
        codec.decode(b'{"n": "x"}')
    with pytest.raises(DeserializationError, match="not JSON"):
        codec.decode(b"{")
    from esm.schemas.formats import SchemaUnusable
    with pytest.raises(SchemaUnusable, match="XML"):
        compile_schema("XML", "<schema/>")
    with pytest.raises(SchemaUnusable):
        compile_schema("AVRO", '{"type": "record"}')


# ---------------------------------------------------------------- the cache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lookups(table: dict[str, RegistrySchema | Exception], calls: list[str], gate: asyncio.Event | None = None):
    """A lookup function over a dict (the cache's `fetch` parameter), recording each call."""
    async def fetch(schema_id: str) -> RegistrySchema:
        calls.append(schema_id)
        if gate is not None:
            await gate.wait()
        answer = table.get(schema_id, SchemaNotFound(f"no {schema_id}"))
        if isinstance(answer, Exception):
            raise answer
        return answer
    return fetch


async def test_cache_fetches_each_id_once_and_remembers_missing_ids_only_briefly():
    """Schema cache: a found schema is fetched once; a missing one is re-asked only after the negative TTL."""
    calls: list[str] = []
    table: dict = {"1": RegistrySchema("1", "AVRO", ORDER_TEXT)}
    clock = Clock()
    cache = SchemaCache(lookups(table, calls), negative_ttl=5.0, clock=clock)
    first = await cache.resolve(["1", "1", "2", "2", "1"])
    assert first["1"].codec is not None and first["2"].missing
    assert calls == ["1", "2"]
    await cache.resolve(["1", "2"])
    assert calls == ["1", "2"]  # both answered from the cache
    table["2"] = RegistrySchema("2", "AVRO", ORDER_TEXT)  # registered meanwhile
    clock.now += 5.1
    again = await cache.resolve(["1", "2"])
    assert again["2"].codec is not None and calls == ["1", "2", "2"]


async def test_cache_never_keeps_outages_and_is_bounded():
    """Schema cache: an unreachable registry is asked again next time; entries are bounded (LRU)."""
    calls: list[str] = []
    table: dict = {"9": RegistryUnavailable("connection refused")}
    table.update({str(i): RegistrySchema(str(i), "AVRO", '"long"') for i in range(5)})
    cache = SchemaCache(lookups(table, calls), max_entries=3)
    assert (await cache.get("9")).unavailable and (await cache.get("9")).unavailable
    assert calls.count("9") == 2
    for i in range(5):
        await cache.get(str(i))
    assert len(cache) == 3 and cache.cached("0") is None and cache.cached("4") is not None


async def test_concurrent_lookups_of_one_id_share_a_single_fetch():
    """Schema cache: records decoded concurrently that name the same unknown id cost one lookup."""
    calls: list[str] = []
    gate = asyncio.Event()
    cache = SchemaCache(lookups({"1": RegistrySchema("1", "AVRO", ORDER_TEXT)}, calls, gate))
    waiting = [asyncio.create_task(cache.get("1")) for _ in range(10)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*waiting)
    assert calls == ["1"] and all(r.codec is not None for r in results)


async def test_an_unusable_schema_is_cached_as_such():
    """A schema that cannot be compiled is remembered (ids are immutable) and explains itself."""
    calls: list[str] = []
    cache = SchemaCache(lookups({"3": RegistrySchema("3", "XML", "<schema/>")}, calls))
    assert "XML" in (await cache.get("3")).unusable
    await cache.get("3")
    assert calls == ["3"]


# ---------------------------------------------------------------- the decoder, against the fake registry


async def test_json_format_delivers_the_decoded_value_with_schema_metadata():
    """behaviour §2: EventRecordFormat JSON -> value is base64 of the decoded record's JSON, plus
    valueSchemaMetadata {dataFormat, schemaId}; an unvalidated key stays as produced."""
    async with fake_confluent_registry() as fake:
        schema_id = fake.register(ORDER_TEXT)
        decoder = SchemaDecoder(settings(fake.url), ConfluentRegistry(fake.url))
        try:
            fetched = {"tp": [Message(confluent_frame(schema_id, avro(ORDER, order(1))), key=b"k1")]}
            [message] = (await decoder.decode_fetched(fetched))["tp"]
        finally:
            await decoder.close()
    record = schema_record(kafka_record(message), message)
    event = record.event
    assert orjson.loads(base64.b64decode(event["value"])) == {"id": 1, "status": "PAID", "note": None, "blob": "Af8="}
    assert base64.b64decode(event["key"]) == b"k1"
    assert event["valueSchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": str(schema_id)}
    assert "keySchemaMetadata" not in event
    assert list(event)[-1] == "valueSchemaMetadata" and record.size == len(orjson.dumps(event))
    assert failure_of(record) is None


async def test_source_format_delivers_the_payload_without_framing_and_filters_see_decoded_fields():
    """behaviour §2/§5: EventRecordFormat SOURCE -> the original Avro bytes without the Confluent header;
    filters still match the decoded value (and the decoded key when KEY is validated)."""
    async with fake_confluent_registry() as fake:
        value_id, key_id = fake.register(ORDER_TEXT), fake.register(orjson.dumps(KEY_SCHEMA).decode(), subject="k")
        decoder = SchemaDecoder(settings(fake.url, "SOURCE", ("KEY", "VALUE")), ConfluentRegistry(fake.url))
        try:
            payloads = [avro(ORDER, order(n, "PAID" if n % 2 else "NEW")) for n in range(4)]
            keys = [confluent_frame(key_id, avro(KEY_SCHEMA, {"customer": f"c{n}"})) for n in range(4)]
            fetched = {"tp": [Message(confluent_frame(value_id, p), key=keys[n], offset=n)
                              for n, p in enumerate(payloads)]}
            messages = (await decoder.decode_fetched(fetched))["tp"]
        finally:
            await decoder.close()
    records = [schema_record(kafka_record(m), m) for m in messages]
    assert [base64.b64decode(r.event["value"]) for r in records] == payloads
    assert base64.b64decode(records[0].event["key"]) == avro(KEY_SCHEMA, {"customer": "c0"})
    assert records[0].event["keySchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": str(key_id)}
    matcher = compile_filters(['{"value": {"status": ["PAID"]}, "key": {"customer": ["c1", "c2", "c3"]}}'])
    kept = [r.event["offset"] for r in records if filter_kafka(matcher, r.event, **filter_arguments(r))]
    assert kept == [1, 3]


async def test_failures_name_their_condition_and_lookups_are_batched():
    """behaviour §4/§5: an unknown schema id -> SCHEMA_NOT_FOUND; a payload that does not decode, or bytes
    without the framing -> DESERIALIZATION_ERROR; a batch naming one unknown id many times asks once."""
    async with fake_confluent_registry() as fake:
        good = fake.register(ORDER_TEXT)
        decoder = SchemaDecoder(settings(fake.url), ConfluentRegistry(fake.url))
        try:
            messages = [Message(confluent_frame(good, avro(ORDER, order(0))), offset=0)]
            messages += [Message(confluent_frame(999, b"x"), offset=i) for i in range(1, 30)]
            messages += [Message(confluent_frame(good, b"\x02"), offset=30), Message(b"plain text", offset=31),
                         Message(None, offset=32)]
            results = await decoder.decode_many(messages)
            assert fake.requests == {str(good): 1, "999": 1}
            await decoder.decode_many(messages)  # all cached now (999 negatively, briefly)
            assert fake.requests == {str(good): 1, "999": 1}
        finally:
            await decoder.close()
    assert isinstance(results[0], DecodedRecord)
    assert all(isinstance(r, DecodeFailure) and r.condition == SCHEMA_NOT_FOUND for r in results[1:30])
    assert results[30].condition == DESERIALIZATION_ERROR and results[31].condition == DESERIALIZATION_ERROR
    assert "magic byte" in results[31].reason
    assert isinstance(results[32], DecodedRecord) and results[32].value is None  # a tombstone passes as is


async def test_key_validation_only_checks_the_key():
    """SchemaValidationConfigs [KEY]: the key is validated and decoded; the value is left as produced."""
    async with fake_confluent_registry() as fake:
        key_id = fake.register(orjson.dumps(KEY_SCHEMA).decode())
        decoder = SchemaDecoder(settings(fake.url, "JSON", ("KEY",)), ConfluentRegistry(fake.url))
        try:
            ok, bad = await decoder.decode_many([
                Message(b"not avro at all", key=confluent_frame(key_id, avro(KEY_SCHEMA, {"customer": "c9"}))),
                Message(confluent_frame(key_id, avro(KEY_SCHEMA, {"customer": "c9"})), key=b"plain key"),
            ])
        finally:
            await decoder.close()
    assert isinstance(ok, DecodedRecord) and ok.value == b"not avro at all"
    assert orjson.loads(ok.key) == {"customer": "c9"} and list(ok.metadata) == ["keySchemaMetadata"]
    assert isinstance(bad, DecodeFailure) and bad.condition == DESERIALIZATION_ERROR and bad.attribute == "KEY"


async def test_failed_records_carry_their_original_bytes_and_are_marked():
    """behaviour §4: a failed record is never invoked; the Kafka source reads `failure_of` and dead-letters
    it with the record as produced."""
    async with fake_confluent_registry() as fake:
        decoder = SchemaDecoder(settings(fake.url), ConfluentRegistry(fake.url))
        try:
            raw = confluent_frame(41, b"\x00")
            [message] = (await decoder.decode_fetched({"tp": [Message(raw)]}))["tp"]
        finally:
            await decoder.close()
    record = schema_record(kafka_record(message), message)
    assert isinstance(record, Record)
    assert failure_of(record).condition == SCHEMA_NOT_FOUND and "41" in failure_of(record).reason
    assert base64.b64decode(record.event["value"]) == raw and "valueSchemaMetadata" not in record.event


async def test_an_unreachable_registry_holds_records_back_instead_of_failing_them(monkeypatch):
    """esm decision: when the registry cannot be asked, records are neither invoked nor dead-lettered;
    the partition keeps only what came before and is read again after a back-off."""
    import esm.schemas.decoder as decoder_module
    monkeypatch.setattr(decoder_module, "RECONNECT_BACKOFF", Backoff(0.01, 10.0))
    async with fake_confluent_registry() as fake:
        schema_id = fake.register(ORDER_TEXT)
        decoder = SchemaDecoder(settings(fake.url), ConfluentRegistry(fake.url))
        try:
            known = Message(confluent_frame(schema_id, avro(ORDER, order(1))), offset=0)
            await decoder.decode_many([known])  # schema 1 is cached now
            fake.down = True
            fetched = {"a": [known, Message(confluent_frame(77, b"x"), offset=1), known], "b": [known]}
            out = await decoder.decode_fetched(fetched)
            assert isinstance(await decoder.decode(Message(confluent_frame(78, b"x"))), RegistryDown)
        finally:
            await decoder.close()
    assert [m.offset for m in out["a"]] == [0] and [m.offset for m in out["b"]] == [0]


async def test_basic_auth_credentials_reach_the_registry():
    """AccessConfigs BASIC_AUTH: the registry is asked with the secret's username and password."""
    from esm.schemas.access import Access, basic_authorization
    async with fake_confluent_registry(users={"u": "p"}) as fake:
        schema_id = fake.register(ORDER_TEXT)

        async def good() -> Access:
            return Access(authorization=basic_authorization("u", "p"))

        async def wrong() -> Access:
            return Access(authorization=basic_authorization("u", "nope"))

        for access, expected in ((good, RegistrySchema), (wrong, RegistryUnavailable)):
            client = ConfluentRegistry(fake.url, access=access)
            try:
                if expected is RegistrySchema:
                    assert (await client.fetch(str(schema_id))).definition == ORDER_TEXT
                else:
                    with pytest.raises(RegistryUnavailable, match="401"):
                        await client.fetch(str(schema_id))
            finally:
                await client.close()


# ---------------------------------------------------------------- SchemaRegistryConfig rules

BASE = """
functions: {fn: {url: "http://127.0.0.1:1/f"}}
event_source_mappings:
  - FunctionName: fn
    Topics: [orders]
    StartingPosition: TRIM_HORIZON
    SelfManagedEventSource: {Endpoints: {KAFKA_BOOTSTRAP_SERVERS: ["127.0.0.1:9092"]}}
    SourceAccessConfigurations:
      - {Type: VPC_SUBNET, URI: "subnet:subnet-1"}
      - {Type: VPC_SECURITY_GROUP, URI: "security_group:sg-1"}
    SelfManagedKafkaEventSourceConfig:
      SchemaRegistryConfig: %s
"""
PATH = "event_source_mappings[0].SelfManagedKafkaEventSourceConfig.SchemaRegistryConfig"


def problems_of(registry: str) -> dict[str, str]:
    try:
        parse_config(textwrap.dedent(BASE % registry), base_dir=".")
    except ConfigError as error:
        return {p.path.removeprefix(PATH + "."): p.message for p in error.problems}
    return {}


def test_valid_registry_configs_pass():
    """behaviour §1: a Glue registry ARN or a Confluent URL, JSON or SOURCE, KEY and/or VALUE."""
    assert problems_of('{SchemaRegistryURI: "arn:aws:glue:us-east-1:123456789012:registry/orders", '
                       'EventRecordFormat: JSON, SchemaValidationConfigs: [{Attribute: VALUE}]}') == {}
    assert problems_of('{SchemaRegistryURI: "https://sr.example.com:8081", EventRecordFormat: SOURCE, '
                       'SchemaValidationConfigs: [{Attribute: KEY}, {Attribute: VALUE}], AccessConfigs: '
                       '[{Type: BASIC_AUTH, URI: "arn:aws:secretsmanager:us-east-1:123456789012:secret:sr"}, '
                       '{Type: SERVER_ROOT_CA_CERTIFICATE, URI: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ca"}]}') == {}


def test_registry_config_problems_name_their_path():
    """behaviour §1: a bad URI, a missing EventRecordFormat or SchemaValidationConfigs, a repeated attribute,
    an enum outside the API's, and access configs that cannot apply are errors naming the field."""
    found = problems_of('{SchemaRegistryURI: "ftp://sr", SchemaValidationConfigs: []}')
    assert "must be an AWS Glue registry ARN" in found["SchemaRegistryURI"]
    assert found["EventRecordFormat"].startswith("is required")
    assert found["SchemaValidationConfigs"].startswith("is required")
    found = problems_of('{SchemaRegistryURI: "http://sr:8081", EventRecordFormat: JSON, '
                        'SchemaValidationConfigs: [{Attribute: VALUE}, {Attribute: VALUE}], AccessConfigs: '
                        '[{Type: CLIENT_CERTIFICATE_TLS_AUTH, URI: "arn:aws:secretsmanager:us-east-1:123456789012:secret:c"}]}')
    assert found == {"SchemaValidationConfigs[1].Attribute": "VALUE is listed twice",
                     "AccessConfigs[0].Type": "CLIENT_CERTIFICATE_TLS_AUTH needs an https:// SchemaRegistryURI"}
    found = problems_of('{SchemaRegistryURI: "arn:aws:glue:us-east-1:123456789012:registry/r", EventRecordFormat: JSON, '
                        'SchemaValidationConfigs: [{Attribute: VALUE}], AccessConfigs: '
                        '[{Type: BASIC_AUTH, URI: "arn:aws:secretsmanager:us-east-1:123456789012:secret:c"}]}')
    assert "takes no AccessConfigs" in found["AccessConfigs[0]"]
    assert "Member must satisfy enum value set: [JSON, SOURCE]" in problems_of(
        '{SchemaRegistryURI: "http://sr", EventRecordFormat: AVRO, SchemaValidationConfigs: [{Attribute: VALUE}]}')[
        "EventRecordFormat"]
    assert "not supported by esm" in problems_of(
        '{SchemaRegistryURI: "https://sr", EventRecordFormat: JSON, SchemaValidationConfigs: [{Attribute: VALUE}], '
        'AccessConfigs: [{Type: OAUTHBEARER_AUTH, URI: "arn:aws:secretsmanager:us-east-1:123456789012:secret:c"}]}')[
        "AccessConfigs[0].Type"]
