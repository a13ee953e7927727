"""Protobuf through a schema registry (behaviour §2, §4, §5; behaviour §9.13): Confluent's and AWS
Glue's message-index prefixes, schemas as .proto text or serialized descriptors with their imports,
the JSON form, and every bad input's condition. Confluent's registry is the named fake
(tests/support/confluent_fake.py); record bytes come from confluent-kafka's ProtobufSerializer."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

import pytest
from google.protobuf import json_format

from esm.schemas import DESERIALIZATION_ERROR, SCHEMA_NOT_FOUND, DecodedRecord, DecodeFailure, RegistryDown
from esm.schemas.cache import SchemaCache
from esm.config.schema_registry import SchemaRegistrySettings
from esm.schemas.confluent import ConfluentRegistry
from esm.schemas.decoder import SchemaDecoder
from esm.schemas.formats import DeserializationError, SchemaUnusable, compile_schema
from esm.schemas.registry import SchemaNotFound
from esm.schemas.wire import confluent_frame
from tests.support.confluent_fake import fake_confluent_registry
from tests.support.protobuf import (COMMON_PROTO, ORDER_PROTO, confluent_serialized, message_classes, sample_order,
                                    shop_classes)

NESTED = """syntax = "proto3";
package n;
message A { int32 a = 1; message B { int32 b = 1; message C { int32 c = 1; } } map<string, int32> m = 2; }
message D { string d = 1; }
"""
REFERENCES = {"shop/common.proto": COMMON_PROTO}
CLASSES = shop_classes()


@dataclass
class Message:
    value: bytes | None
    key: bytes | None = None
    offset: int = 0


def expected(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# ---------------------------------------------------------------- message indexes


def test_confluent_message_indexes_pick_the_type_and_the_single_zero_is_the_first():
    """Confluent framing: a zigzag varint count, then the path; a lone 0 stands for [0]; nested
    types are reached through the path (behaviour §2)."""
    codec = compile_schema("PROTOBUF", NESTED)
    assert codec.data_format == "PROTOBUF"
    assert codec.decode(b"\x00\x08\x05") == {"a": 5}  # [0] as the one-byte shortcut
    assert codec.decode(b"\x02\x00\x08\x05") == {"a": 5}  # [0] spelled out: count 1, index 0
    assert codec.decode(b"\x02\x02\x0a\x01d") == {"d": "d"}  # [1]
    # [0, 0, 0]: A's nested types are B (0) then the map entry (1); B's first is C.
    assert codec.decode(b"\x06\x00\x00\x00\x08\x07") == {"c": 7}
    with pytest.raises(DeserializationError, match=r"message index \[2\] is out of range: the schema has 2 top-level"):
        codec.decode(b"\x02\x04\x08\x05")
    with pytest.raises(DeserializationError, match="cut short"):
        codec.decode(b"\x04\x00")


def test_glue_message_index_counts_every_type_sorted_by_full_name():
    """AWS Glue framing: one unsigned varint, the position among all message types (nested ones and
    map entries included) sorted by full name."""
    codec = compile_schema("PROTOBUF", NESTED, framing="glue")
    # n.A, n.A.B, n.A.B.C, n.A.MEntry, n.D
    assert codec.decode(b"\x00\x08\x05") == {"a": 5}
    assert codec.decode(b"\x02\x08\x07") == {"c": 7}
    assert codec.decode(b"\x04\x0a\x01d") == {"d": "d"}
    with pytest.raises(DeserializationError, match="message index 5 is out of range: the schema has 5"):
        codec.decode(b"\x05\x08\x05")


# ---------------------------------------------------------------- the JSON form


def test_json_form_is_protobufs_json_mapping_with_the_proto_field_names():
    """behaviour §9.13: 64-bit integers as strings, enums by name, fields at their default left out,
    field names as in the .proto, bytes as base64, Timestamp as RFC 3339, maps as objects."""
    codec = compile_schema("PROTOBUF", ORDER_PROTO, references=REFERENCES)
    order = sample_order(CLASSES, 1)
    assert codec.decode(b"\x00" + order.SerializeToString()) == {
        "id": str(2**53 + 1), "status": "PAID", "total": {"currency": "EUR", "units": "100"},
        "lines": [{"sku": "s1", "quantity": 1}], "tags": {"n": "1"}, "card": "card1",
        "blob": base64.b64encode(bytes([1, 255])).decode(), "placed_at": "2026-01-02T03:04:05Z",
        "big": str(2**64 - 1)}
    zero = CLASSES["shop.Order"]()
    assert codec.decode(b"\x00" + zero.SerializeToString()) == {}  # NEW, 0 and "" are defaults: left out
    key = CLASSES["shop.OrderKey"](customer_id="c1")
    assert codec.decode(b"\x02\x02" + key.SerializeToString()) == {"customer_id": "c1"}


def test_well_known_types_need_no_reference():
    """google/protobuf/*.proto imports resolve from the protobuf package, with no registry lookup."""
    text = """syntax = "proto3";
import "google/protobuf/struct.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/duration.proto";
message W { google.protobuf.Struct s = 1; google.protobuf.Int64Value i = 2; google.protobuf.Duration d = 3; }"""
    codec = compile_schema("PROTOBUF", text)
    classes = message_classes({"w.proto": text})
    w = classes["W"]()
    w.s.update({"k": ["v", True]})
    w.i.value = 7
    w.d.FromJsonString("1.5s")
    assert codec.decode(b"\x00" + w.SerializeToString()) == {"s": {"k": ["v", True]}, "i": "7", "d": "1.500s"}


def test_a_serialized_descriptor_decodes_like_its_text():
    """A schema served as a base64 FileDescriptorProto (with serialized references) gives the same values."""
    order = CLASSES["shop.Order"]
    main = base64.b64encode(order.DESCRIPTOR.file.serialized_pb).decode()
    common = base64.b64encode(CLASSES["shop.common.Money"].DESCRIPTOR.file.serialized_pb).decode()
    codec = compile_schema("PROTOBUF", main, references={"shop/common.proto": common})
    message = sample_order(CLASSES, 2)
    assert codec.decode(b"\x00" + message.SerializeToString()) == expected(message)
    with pytest.raises(SchemaUnusable, match="imports shop/common.proto, which is neither a reference"):
        compile_schema("PROTOBUF", main)


def test_unusable_schemas_say_why():
    """A schema protoc rejects, a missing import, or one without messages is SchemaUnusable with the reason."""
    with pytest.raises(SchemaUnusable, match=r"missing '\}'"):
        compile_schema("PROTOBUF", 'syntax = "proto3"; message M {')
    with pytest.raises(SchemaUnusable, match="shop/common.proto: File not found"):
        compile_schema("PROTOBUF", ORDER_PROTO)
    with pytest.raises(SchemaUnusable, match="no message type"):
        compile_schema("PROTOBUF", 'syntax = "proto3"; enum E { A = 0; }')


def test_bytes_that_do_not_parse_are_a_deserialization_error():
    codec = compile_schema("PROTOBUF", ORDER_PROTO, references=REFERENCES)
    good = sample_order(CLASSES, 3).SerializeToString()
    with pytest.raises(DeserializationError, match="not Protobuf data of shop.Order"):
        codec.decode(b"\x00" + good[:-4])
    proto2 = compile_schema("PROTOBUF", 'syntax = "proto2"; message M { required int32 a = 1; optional int32 b = 2; }')
    assert proto2.decode(b"\x00\x08\x00") == {"a": 0}  # set, so printed even at its default
    with pytest.raises(DeserializationError, match="M lacks required field.s. a"):
        proto2.decode(b"\x00\x10\x01")


# ---------------------------------------------------------------- references through the registry


async def test_references_are_fetched_through_the_registry_each_once():
    """A Confluent schema's imports come from GET /subjects/{subject}/versions/{version}, transitively,
    each subject version once."""
    async with fake_confluent_registry() as fake:
        common = fake.register(COMMON_PROTO, "PROTOBUF", "shop/common.proto")
        ref = {"name": "shop/common.proto", "subject": "shop/common.proto", "version": 1}
        middle = fake.register('syntax = "proto3"; package m; import "shop/common.proto"; '
                               "message Mid { shop.common.Money m = 1; }", "PROTOBUF", "mid.proto", [ref])
        top = fake.register('syntax = "proto3"; import "mid.proto"; import "shop/common.proto"; '
                            "message Top { m.Mid mid = 1; shop.common.Money money = 2; }", "PROTOBUF", "top-value",
                            [{"name": "mid.proto", "subject": "mid.proto", "version": 1}, ref])
        client = ConfluentRegistry(fake.url)
        try:
            schema = await client.fetch(str(top))
        finally:
            await client.close()
    assert dict(schema.references).keys() == {"mid.proto", "shop/common.proto"}
    assert fake.requests["shop/common.proto/1"] == 1 and common and middle
    codec = compile_schema(schema.data_format, schema.definition, references=dict(schema.references))
    assert codec.decode(b"\x00\x12\x03\x10\xe8\x07") == {"money": {"units": "1000"}}


async def test_reference_cycles_and_missing_references_are_clear_errors():
    """A reference chain leading back to itself is unusable (DESERIALIZATION_ERROR); a reference the
    registry lacks is not found (SCHEMA_NOT_FOUND), naming the import."""
    async with fake_confluent_registry() as fake:
        fake.register('syntax = "proto3"; import "b.proto"; message A {}', "PROTOBUF", "a.proto",
                      [{"name": "b.proto", "subject": "b.proto", "version": 1}])
        fake.register('syntax = "proto3"; import "a.proto"; message B {}', "PROTOBUF", "b.proto",
                      [{"name": "a.proto", "subject": "a.proto", "version": 1}])
        looped = fake.register('syntax = "proto3"; import "a.proto"; message T {}', "PROTOBUF", "t-value",
                               [{"name": "a.proto", "subject": "a.proto", "version": 1}])
        missing = fake.register('syntax = "proto3"; import "gone.proto"; message T {}', "PROTOBUF", "u-value",
                                [{"name": "gone.proto", "subject": "gone.proto", "version": 3}])
        client = ConfluentRegistry(fake.url)
        cache = SchemaCache(client.fetch)
        try:
            with pytest.raises(SchemaUnusable, match="cycle: a.proto v1 -> b.proto v1 -> a.proto v1"):
                await client.fetch(str(looped))
            with pytest.raises(SchemaNotFound, match="imports gone.proto .subject gone.proto version 3."):
                await client.fetch(str(missing))
            assert "cycle" in (await cache.get(str(looped))).unusable
            assert "gone.proto" in (await cache.get(str(missing))).missing
        finally:
            await client.close()


# ---------------------------------------------------------------- the decoder: formats and failures


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, n: int = 1) -> None:
        self.count += n


class Metrics:
    def __init__(self) -> None:
        self.schema_registry_errors = Counter()
        self.malformed_records = Counter()


def settings(uri: str, record_format: str = "JSON", attributes=("VALUE",)) -> SchemaRegistrySettings:
    return SchemaRegistrySettings(uri=uri, kind="confluent", record_format=record_format,
                                  attributes=frozenset(attributes))


async def test_serializer_bytes_decode_as_json_or_pass_as_source():
    """Records written by confluent-kafka's ProtobufSerializer: with JSON the function gets the JSON form
    and valueSchemaMetadata {dataFormat: PROTOBUF}; with SOURCE it gets the bytes after the 5-byte
    header, message indexes kept (behaviour §9.13); keys are validated the same way."""
    async with fake_confluent_registry() as fake:
        orders = [sample_order(CLASSES, n) for n in range(3)]
        values = await asyncio.to_thread(confluent_serialized, fake.url, orders)
        [key] = await asyncio.to_thread(confluent_serialized, fake.url, [CLASSES["shop.OrderKey"](customer_id="c")], True)
        assert {"shop/common.proto", "orders-value", "orders-key"} <= fake.subjects.keys()
        as_json = SchemaDecoder(settings(fake.url, "JSON", ("KEY", "VALUE")), ConfluentRegistry(fake.url))
        as_source = SchemaDecoder(settings(fake.url, "SOURCE"), ConfluentRegistry(fake.url))
        try:
            decoded = await as_json.decode_many([Message(v, key) for v in values])
            sourced = await as_source.decode_many([Message(v) for v in values])
        finally:
            await as_json.close()
            await as_source.close()
    assert all(isinstance(r, DecodedRecord) for r in decoded + sourced)
    assert [r.decoded["decoded_value"] for r in decoded] == [expected(o) for o in orders]
    assert decoded[0].decoded["decoded_key"] == {"customer_id": "c"}
    schema_id = str(int.from_bytes(values[0][1:5], "big"))
    assert decoded[0].metadata["valueSchemaMetadata"] == {"dataFormat": "PROTOBUF", "schemaId": schema_id}
    assert key[5:7] == b"\x02\x02"  # OrderKey is the second type: [1]
    assert [r.value for r in sourced] == [v[5:] for v in values]
    assert sourced[0].value[:1] == b"\x00"


async def test_each_bad_input_has_avros_condition_and_metric():
    """behaviour §4: bytes that do not parse and a message index out of range are DESERIALIZATION_ERROR
    (malformed records); an unknown schema id is SCHEMA_NOT_FOUND and an unreachable registry holds
    the record back (schema registry errors), as for Avro."""
    metrics = Metrics()
    async with fake_confluent_registry() as fake:
        [good] = await asyncio.to_thread(confluent_serialized, fake.url, [sample_order(CLASSES, 1)])
        schema_id = int.from_bytes(good[1:5], "big")
        decoder = SchemaDecoder(settings(fake.url), ConfluentRegistry(fake.url), metrics=metrics)
        try:
            results = await decoder.decode_many([
                Message(good[:-3]),
                Message(confluent_frame(schema_id, b"\x02\x08" + good[6:])),  # [4]: only 2 top-level types
                Message(confluent_frame(9999, good[5:])),
                Message(good)])
            fake.down = True
            down = await decoder.decode(Message(confluent_frame(schema_id + 50, good[5:])))
        finally:
            await decoder.close()
    unparsed, out_of_range, unknown, fine = results
    assert isinstance(unparsed, DecodeFailure) and unparsed.condition == DESERIALIZATION_ERROR
    assert "not Protobuf data of shop.Order" in unparsed.reason
    assert isinstance(out_of_range, DecodeFailure) and out_of_range.condition == DESERIALIZATION_ERROR
    assert "out of range" in out_of_range.reason
    assert isinstance(unknown, DecodeFailure) and unknown.condition == SCHEMA_NOT_FOUND
    assert isinstance(fine, DecodedRecord)
    assert isinstance(down, RegistryDown)
    assert metrics.malformed_records.count == 2 and metrics.schema_registry_errors.count == 2

