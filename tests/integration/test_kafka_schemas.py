"""Kafka with a schema registry, end to end: the real broker, AWS Glue's schema registry and Secrets
Manager in moto, ElasticMQ as the on-failure destination, and tests/support/confluent_fake.py for
the Confluent registry API (a fake: no Confluent registry installs here). Avro, and Protobuf records
written by Confluent's own ProtobufSerializer (behaviour §9.13).

behaviour §1 (SchemaRegistryConfig), 2 (`EventRecordFormat` JSON / SOURCE, `*SchemaMetadata`), 4
(SCHEMA_NOT_FOUND / DESERIALIZATION_ERROR to the on-failure destination), 5 (the schema pipeline:
validate -> deserialize -> filter on decoded fields -> invoke), 6 (SchemaRegistryErrorCount),
9.6 (nothing lost: an unreachable registry holds records back).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid

import fastavro
import orjson
import pytest
import yaml

import esm.schemas.decoder as decoder_module
from esm.aws import AwsClients
from esm.config.loading import parse_config
from esm.config.settings import AwsSettings
from esm.core.backoff import Backoff
from esm.schemas.glue import GlueRegistry
from esm.schemas.registry import SchemaNotFound
from esm.schemas.wire import confluent_frame, glue_frame
from tests.support import kafka as kk
from tests.support.confluent_fake import fake_confluent_registry
from tests.support.daemon import running_config
from tests.support.kafka import Message, create_topic, kafka_admin, produce, unique
from tests.support.sqs import create_queue, receive_all, sqs_client
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)
from tests.support.waiting import wait_until


pytestmark = pytest.mark.usefixtures("backends")

ORDER = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
        {"name": "amount", "type": "double"},
    ],
}
ORDER_TEXT = json.dumps(ORDER)
KEY_SCHEMA = {"type": "record", "name": "OrderKey", "fields": [{"name": "customer", "type": "string"}]}
KEY_TEXT = json.dumps(KEY_SCHEMA)



def avro(schema: dict, datum: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
    return out.getvalue()


def order(n: int, status: str = "PAID") -> dict:
    return {"id": n, "status": status, "amount": n + 0.5}


def mapping_for(topic: str, registry: dict, **fields) -> dict:
    group = unique("g")
    return kk.smk_mapping(topic, group, SelfManagedKafkaEventSourceConfig={
        "ConsumerGroupId": group, "SchemaRegistryConfig": registry}, **fields)


def registry_config(uri: str, record_format: str = "JSON", attributes=("VALUE",), **extra) -> dict:
    return {"SchemaRegistryURI": uri, "EventRecordFormat": record_format,
            "SchemaValidationConfigs": [{"Attribute": a} for a in attributes], **extra}


def group_of(mapping: dict) -> str:
    return mapping["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]


def daemon(*mappings):
    doc = {"functions": kk.FUNCTIONS, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 20, "startup_timeout": 30}
    return running_config(parse_config(yaml.safe_dump(doc, sort_keys=False)))


def decoded_value(record: dict) -> object:
    return orjson.loads(base64.b64decode(record["value"]))


def aws() -> AwsClients:
    return AwsClients(AwsSettings())


# Registries this module created: deleted after each test, since Glue (moto too) allows only ten
# registries per account and the backends outlive a test run.
CREATED_REGISTRIES: list[str] = []


@pytest.fixture(autouse=True)
async def delete_glue_registries():
    yield
    if CREATED_REGISTRIES:
        async with aws().client("glue") as glue:
            while CREATED_REGISTRIES:
                await glue.delete_registry(RegistryId={"RegistryArn": CREATED_REGISTRIES.pop()})


async def glue_schema(definition: str, data_format: str = "AVRO") -> tuple[str, str]:
    """A new registry in moto's Glue with one schema: (registry ARN, schema version UUID)."""
    async with aws().client("glue") as glue:
        registry = await glue.create_registry(RegistryName=unique("reg"))
        CREATED_REGISTRIES.append(registry["RegistryArn"])
        schema = await glue.create_schema(RegistryId={"RegistryName": registry["RegistryName"]},
                                          SchemaName=unique("orders"), DataFormat=data_format,
                                          Compatibility="NONE", SchemaDefinition=definition)
    return registry["RegistryArn"], schema["SchemaVersionId"]


# ---------------------------------------------------------------- Confluent


async def test_confluent_avro_delivered_as_json_with_value_schema_metadata():
    """behaviour §2: with EventRecordFormat JSON the function gets each Avro value decoded (base64 of its
    JSON) and valueSchemaMetadata {dataFormat: AVRO, schemaId}; offsets are committed."""
    recorder = kk.install(kk.KafkaRecorder())
    async with fake_confluent_registry() as fake, kafka_admin() as admin:
        schema_id = fake.register(ORDER_TEXT)
        topic = await create_topic(admin)
        await produce(topic, [Message(confluent_frame(schema_id, avro(ORDER, order(n))), key=f"k{n}".encode())
                              for n in range(5)])
        mapping = mapping_for(topic, registry_config(fake.url))
        async with daemon(mapping):
            await recorder.wait_for(lambda r: len(r.records) >= 5)
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 5)
    assert [decoded_value(r) for r in recorder.records] == [order(n) for n in range(5)]
    first = recorder.records[0]
    assert first["valueSchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": str(schema_id)}
    assert "keySchemaMetadata" not in first and base64.b64decode(first["key"]) == b"k0"
    assert fake.requests == {str(schema_id): 1}  # one lookup for the whole topic: cached


async def test_confluent_avro_delivered_as_source_without_the_framing():
    """behaviour §2: with EventRecordFormat SOURCE the function gets the Avro bytes as produced, minus the
    5-byte Confluent header, plus valueSchemaMetadata."""
    recorder = kk.install(kk.KafkaRecorder())
    payloads = [avro(ORDER, order(n)) for n in range(3)]
    async with fake_confluent_registry() as fake, kafka_admin() as admin:
        schema_id = fake.register(ORDER_TEXT)
        topic = await create_topic(admin)
        await produce(topic, [Message(confluent_frame(schema_id, p)) for p in payloads])
        async with daemon(mapping_for(topic, registry_config(fake.url, "SOURCE"))):
            await recorder.wait_for(lambda r: len(r.records) >= 3)
    assert [base64.b64decode(r["value"]) for r in recorder.records] == payloads
    assert recorder.records[2]["valueSchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": str(schema_id)}


async def test_avro_records_filtered_on_a_decoded_field():
    """behaviour §5: filters match the decoded Avro value: only records whose decoded `status` is PAID and
    whose `amount` passes the numeric condition are invoked; the rest are filtered out and committed."""
    recorder = kk.install(kk.KafkaRecorder())
    statuses = ["NEW", "PAID", "SHIPPED", "PAID", "PAID", "NEW"]
    async with fake_confluent_registry() as fake, kafka_admin() as admin:
        schema_id = fake.register(ORDER_TEXT)
        topic = await create_topic(admin)
        await produce(topic, [Message(confluent_frame(schema_id, avro(ORDER, order(n, s))))
                              for n, s in enumerate(statuses)])
        pattern = json.dumps({"value": {"status": ["PAID"], "amount": [{"numeric": [">", 2]}]}})
        # SOURCE: the function gets Avro bytes, yet the filter still sees the decoded fields.
        mapping = mapping_for(topic, registry_config(fake.url, "SOURCE"),
                              FilterCriteria={"Filters": [{"Pattern": pattern}]})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 6)
            await d.wait_total("esm_filtered_out_events_total", 4)
    assert [r["offset"] for r in recorder.records] == [3, 4]


async def test_key_validation_decodes_the_key_and_rejects_an_unframed_key():
    """SchemaValidationConfigs [KEY]: keys are validated and delivered decoded with keySchemaMetadata;
    values stay as produced; a key without the registry framing is a DESERIALIZATION_ERROR."""
    recorder = kk.install(kk.KafkaRecorder())
    async with fake_confluent_registry() as fake, kafka_admin() as admin, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "sdlq")
        key_id = fake.register(KEY_TEXT)
        topic = await create_topic(admin)
        await produce(topic, [
            Message(b"raw value 0", key=confluent_frame(key_id, avro(KEY_SCHEMA, {"customer": "c0"}))),
            Message(b"raw value 1", key=b"not framed"),
            Message(b"raw value 2", key=confluent_frame(key_id, avro(KEY_SCHEMA, {"customer": "c2"}))),
        ])
        mapping = mapping_for(topic, registry_config(fake.url, "JSON", ("KEY",)),
                              DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
            assert d.total("esm_malformed_records_total") == 1
        [message] = await receive_all(sqs, dlq_url)
    assert [orjson.loads(base64.b64decode(r["key"])) for r in recorder.records] == [{"customer": "c0"},
                                                                                    {"customer": "c2"}]
    assert [base64.b64decode(r["value"]) for r in recorder.records] == [b"raw value 0", b"raw value 2"]
    assert recorder.records[0]["keySchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": str(key_id)}
    document = json.loads(message["Body"])
    assert document["requestContext"]["condition"] == "DESERIALIZATION_ERROR"
    assert document["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "1"


async def test_unknown_schema_goes_to_the_destination_and_the_partition_goes_on():
    """behaviour §4/§5: a record naming a schema the registry does not have is never invoked: it goes to the SQS
    on-failure destination with condition SCHEMA_NOT_FOUND (invoke count 0, responseContext null), the
    partition's later records are processed, and everything is committed after delivery (behaviour §9.6)."""
    recorder = kk.install(kk.KafkaRecorder())
    async with fake_confluent_registry() as fake, kafka_admin() as admin, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "sdlq")
        schema_id = fake.register(ORDER_TEXT)
        topic = await create_topic(admin)
        await produce(topic, [
            Message(confluent_frame(schema_id, avro(ORDER, order(0)))),
            Message(confluent_frame(4242, avro(ORDER, order(1)))),
            Message(confluent_frame(4242, avro(ORDER, order(2)))),
            Message(confluent_frame(schema_id, avro(ORDER, order(3)))),
        ])
        mapping = mapping_for(topic, registry_config(fake.url),
                              DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 4)
            assert d.total("esm_on_failure_destination_delivered_events_total") == 2
            assert d.total("esm_schema_registry_errors_total") >= 2
            assert d.total("esm_dropped_events_total") == 0
        messages = await receive_all(sqs, dlq_url)
    assert [decoded_value(r)["id"] for r in recorder.records] == [0, 3]
    [message] = messages  # the two consecutive records in one document
    document = json.loads(message["Body"])
    assert document["requestContext"]["condition"] == "SCHEMA_NOT_FOUND"
    assert document["requestContext"]["approximateInvokeCount"] == 0
    assert document["responseContext"] is None
    span = document["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]
    assert (span["firstRecordOffset"], span["lastRecordOffset"]) == ("1", "2")
    assert document["KafkaBatchInfo"]["batchSize"] == 2
    assert fake.requests["4242"] == 1  # both records named it: one lookup


async def test_corrupt_payload_is_a_deserialization_error_dropped_without_a_destination():
    """behaviour §4: an Avro payload that does not decode with its schema is DESERIALIZATION_ERROR; with no
    on-failure destination it is dropped, counted and logged, and its offset committed."""
    recorder = kk.install(kk.KafkaRecorder())
    async with fake_confluent_registry() as fake, kafka_admin() as admin:
        schema_id = fake.register(ORDER_TEXT)
        topic = await create_topic(admin)
        good = avro(ORDER, order(7))
        await produce(topic, [Message(confluent_frame(schema_id, good[:-3])),
                              Message(confluent_frame(schema_id, good))])
        mapping = mapping_for(topic, registry_config(fake.url))
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 2)
            assert d.total("esm_dropped_events_total") == 1
            assert d.total("esm_malformed_records_total") == 1
    assert [decoded_value(r)["id"] for r in recorder.records] == [7]


async def test_an_unreachable_registry_holds_records_back_until_it_answers(monkeypatch):
    """esm decision (behaviour §9.6, nothing lost): while the registry cannot be asked, records are neither
    invoked, dead-lettered nor committed; SchemaRegistryErrorCount counts it; once it answers, they flow."""
    monkeypatch.setattr(decoder_module, "RECONNECT_BACKOFF", Backoff(0.5, 0.5))
    recorder = kk.install(kk.KafkaRecorder())
    async with fake_confluent_registry() as fake, kafka_admin() as admin:
        schema_id = fake.register(ORDER_TEXT)
        fake.down = True
        topic = await create_topic(admin)
        await produce(topic, [Message(confluent_frame(schema_id, avro(ORDER, order(n)))) for n in range(3)])
        mapping = mapping_for(topic, registry_config(fake.url))
        async with daemon(mapping) as d:
            await wait_until(lambda: d.total("esm_schema_registry_errors_total") >= 6, what="registry errors")
            assert recorder.records == [] and d.total("esm_dropped_events_total") == 0
            assert (await kk.group_offsets(admin, group_of(mapping))).get(0, 0) == 0
            fake.down = False
            await recorder.wait_for(lambda r: len(r.records) >= 3)
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
    assert [decoded_value(r)["id"] for r in recorder.records] == [0, 1, 2]


async def test_basic_auth_from_a_secrets_manager_secret():
    """behaviour §1 AccessConfigs BASIC_AUTH: esm reads {username, password} from the Secrets Manager secret
    and authenticates to the Confluent registry with it."""
    recorder = kk.install(kk.KafkaRecorder())
    async with aws().client("secretsmanager") as secrets:
        secret = await secrets.create_secret(Name=unique("sr"),
                                             SecretString=json.dumps({"username": "esm", "password": "s3cret"}))
    async with fake_confluent_registry(users={"esm": "s3cret"}) as fake, kafka_admin() as admin:
        schema_id = fake.register(ORDER_TEXT)
        topic = await create_topic(admin)
        await produce(topic, [Message(confluent_frame(schema_id, avro(ORDER, order(1))))])
        registry = registry_config(fake.url, AccessConfigs=[{"Type": "BASIC_AUTH", "URI": secret["ARN"]}])
        async with daemon(mapping_for(topic, registry)):
            await recorder.wait_for(lambda r: len(r.records) >= 1)
    assert decoded_value(recorder.records[0]) == order(1)


# ---------------------------------------------------------------- AWS Glue


async def test_glue_avro_records_decoded_with_the_schema_version_id():
    """behaviour §2 with an AWS Glue registry: Glue-framed Avro records (plain and zlib-compressed) are
    delivered decoded, with valueSchemaMetadata naming the schema version UUID."""
    recorder = kk.install(kk.KafkaRecorder())
    registry_arn, version = await glue_schema(ORDER_TEXT)
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(glue_frame(version, avro(ORDER, order(n)), compress=n == 1)) for n in range(3)])
        mapping = mapping_for(topic, registry_config(registry_arn))
        async with daemon(mapping):
            await recorder.wait_for(lambda r: len(r.records) >= 3)
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
    assert [decoded_value(r) for r in recorder.records] == [order(n) for n in range(3)]
    assert recorder.records[1]["valueSchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": version}


async def test_glue_client_finds_versions_of_its_registry_only():
    """The Glue client: GetSchemaVersion by version id; an unknown id, or a version of another registry
    than the mapping's (one registry per mapping), is not found."""
    registry_arn, version = await glue_schema(ORDER_TEXT)
    _, other_version = await glue_schema(ORDER_TEXT)
    name = registry_arn.rsplit("/", 1)[1]
    client = GlueRegistry(aws(), region="us-east-1", registry_name=name)
    try:
        found = await client.fetch(version)
        assert found.data_format == "AVRO" and json.loads(found.definition) == ORDER
        with pytest.raises(SchemaNotFound):
            await client.fetch(str(uuid.uuid4()))
        with pytest.raises(SchemaNotFound, match="belongs to registry"):
            await client.fetch(other_version)
    finally:
        await client.close()


# ---------------------------------------------------------------- TLS to a Confluent registry


def make_pki(tmp_path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM text (and files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def pem_key(key) -> str:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    def issue(name, key, issuer_name, issuer_key, *, ca=False, usage=None, ip=None):
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                            critical=True)
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                            critical=False)
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if ip:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                            critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "esm test CA")])
    ca = issue("esm test CA", ca_key, ca_name, ca_key, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = issue("127.0.0.1", server_key, ca_name, ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH, ip="127.0.0.1")
    client = issue("esm", client_key, ca_name, ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = {
        "ca": ca.public_bytes(serialization.Encoding.PEM).decode(),
        "server": server.public_bytes(serialization.Encoding.PEM).decode(), "server_key": pem_key(server_key),
        "client": client.public_bytes(serialization.Encoding.PEM).decode(), "client_key": pem_key(client_key),
    }
    (tmp_path / "server.pem").write_text(pem["server"])
    (tmp_path / "server.key").write_text(pem["server_key"])
    return pem


async def test_mutual_tls_with_a_private_ca_from_secrets(tmp_path):
    """behaviour §1 AccessConfigs SERVER_ROOT_CA_CERTIFICATE + CLIENT_CERTIFICATE_TLS_AUTH: esm trusts the
    secret's CA and presents the secret's client certificate; without either the registry is unavailable."""
    import ssl

    from esm.schemas.access import load_access
    from esm.schemas.confluent import ConfluentRegistry
    from esm.schemas.registry import RegistryUnavailable

    pem = make_pki(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    server.load_verify_locations(cadata=pem["ca"])
    server.verify_mode = ssl.CERT_REQUIRED
    async with aws().client("secretsmanager") as secrets:
        ca_arn = (await secrets.create_secret(Name=unique("ca"), SecretString=json.dumps(
            {"certificate": pem["ca"]})))["ARN"]
        client_arn = (await secrets.create_secret(Name=unique("cert"), SecretString=json.dumps(
            {"certificate": pem["client"], "privateKey": pem["client_key"]})))["ARN"]
    async with fake_confluent_registry(tls=server) as fake:
        schema_id = str(fake.register(ORDER_TEXT))
        cases = [((("SERVER_ROOT_CA_CERTIFICATE", ca_arn), ("CLIENT_CERTIFICATE_TLS_AUTH", client_arn)), True),
                 ((("SERVER_ROOT_CA_CERTIFICATE", ca_arn),), False),  # no client certificate: refused
                 ((("CLIENT_CERTIFICATE_TLS_AUTH", client_arn),), False)]  # the system CAs do not know ours
        for access, works in cases:
            client = ConfluentRegistry(fake.url, access=lambda access=access: load_access(aws(), access))
            try:
                if works:
                    assert json.loads((await client.fetch(schema_id)).definition) == ORDER
                else:
                    with pytest.raises(RegistryUnavailable):
                        await client.fetch(schema_id)
            finally:
                await client.close()


# ---------------------------------------------------------------- Protobuf


async def test_confluent_protobuf_from_the_official_serializer_delivered_as_json():
    """behaviour §2, §5 with Protobuf: records written by Confluent's ProtobufSerializer (nested, repeated
    and map fields, a oneof, an enum, int64/uint64, bytes, a Timestamp, an import registered as a
    reference) reach the function as JSON (behaviour §9.13) with key/valueSchemaMetadata PROTOBUF;
    filters match the decoded fields."""
    from tests.support.protobuf import confluent_serialized, sample_order, shop_classes

    classes = shop_classes()
    recorder = kk.install(kk.KafkaRecorder())
    orders = [sample_order(classes, n) for n in range(6)]
    async with fake_confluent_registry() as fake, kafka_admin() as admin:
        values = await asyncio.to_thread(confluent_serialized, fake.url, orders)
        keys = await asyncio.to_thread(confluent_serialized, fake.url,
                                       [classes["shop.OrderKey"](customer_id=f"c{n}") for n in range(6)], True)
        topic = await create_topic(admin)
        await produce(topic, [Message(v, key=k) for v, k in zip(values, keys)])
        pattern = json.dumps({"value": {"status": ["PAID", "SHIPPED"]}})  # statuses cycle NEW, PAID, SHIPPED
        mapping = mapping_for(topic, registry_config(fake.url, "JSON", ("KEY", "VALUE")),
                              FilterCriteria={"Filters": [{"Pattern": pattern}]})
        async with daemon(mapping):
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 6)
    assert [r["offset"] for r in recorder.records] == [1, 2, 4, 5]
    first = recorder.records[0]
    assert decoded_value(first) == {
        "id": str(2**53 + 1), "status": "PAID", "total": {"currency": "EUR", "units": "100"},
        "lines": [{"sku": "s1", "quantity": 1}], "tags": {"n": "1"}, "card": "card1",
        "blob": base64.b64encode(bytes([1, 255])).decode(), "placed_at": "2026-01-02T03:04:05Z",
        "big": str(2**64 - 1)}
    assert orjson.loads(base64.b64decode(first["key"])) == {"customer_id": "c1"}
    value_id, key_id = (str(int.from_bytes(b[1:5], "big")) for b in (values[0], keys[0]))
    assert first["valueSchemaMetadata"] == {"dataFormat": "PROTOBUF", "schemaId": value_id}
    assert first["keySchemaMetadata"] == {"dataFormat": "PROTOBUF", "schemaId": key_id}
    assert "shop/common.proto" in fake.subjects  # the import went through the registry as a reference


async def test_confluent_protobuf_as_source_keeps_the_message_indexes():
    """EventRecordFormat SOURCE with Protobuf: the function gets the bytes after the 5-byte header (magic
    byte and schema id), the message-index list kept, as AWS's Powertools expects (behaviour §9.13)."""
    from tests.support.protobuf import confluent_serialized, sample_order, shop_classes

    classes = shop_classes()
    recorder = kk.install(kk.KafkaRecorder())
    async with fake_confluent_registry() as fake, kafka_admin() as admin:
        values = await asyncio.to_thread(confluent_serialized, fake.url, [
            sample_order(classes, 0), sample_order(classes, 1), classes["shop.OrderKey"](customer_id="x")])
        topic = await create_topic(admin)
        await produce(topic, [Message(v) for v in values])
        async with daemon(mapping_for(topic, registry_config(fake.url, "SOURCE"))):
            await recorder.wait_for(lambda r: len(r.records) >= 3)
    delivered = [base64.b64decode(r["value"]) for r in recorder.records]
    assert delivered == [v[5:] for v in values]
    assert delivered[0][:1] == b"\x00" and delivered[2][:2] == b"\x02\x02"  # [0] shortcut; [1]
    assert recorder.records[2]["valueSchemaMetadata"]["dataFormat"] == "PROTOBUF"


GLUE_ORDER_PROTO = """syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
enum Status { NEW = 0; PAID = 1; SHIPPED = 2; }
message Order {
  int64 id = 1;
  Status status = 2;
  repeated Line lines = 3;
  map<string, int64> counts = 4;
  google.protobuf.Timestamp placed_at = 5;
  message Line { string sku = 1; }
}
"""


async def test_glue_protobuf_records_decoded_with_glues_message_index():
    """AWS Glue (moto) with Protobuf: the 18-byte header names the schema version, one varint the message
    type among the file's types sorted by full name (here a nested one too); zlib-compressed records
    decode the same."""
    from tests.support.protobuf import glue_protobuf, message_classes

    classes = message_classes({"order.proto": GLUE_ORDER_PROTO})
    recorder = kk.install(kk.KafkaRecorder())
    registry_arn, version = await glue_schema(GLUE_ORDER_PROTO, "PROTOBUF")
    order = classes["shop.Order"](id=-7, status=2, counts={"a": 2**40})
    order.lines.add(sku="s")
    order.placed_at.FromJsonString("2026-05-06T07:08:09.250Z")
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(glue_protobuf(version, order)),
                              Message(glue_protobuf(version, classes["shop.Order.Line"](sku="n"), compress=True))])
        mapping = mapping_for(topic, registry_config(registry_arn))
        async with daemon(mapping):
            await recorder.wait_for(lambda r: len(r.records) >= 2)
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 2)
    assert [decoded_value(r) for r in recorder.records] == [
        {"id": "-7", "status": "SHIPPED", "lines": [{"sku": "s"}], "counts": {"a": str(2**40)},
         "placed_at": "2026-05-06T07:08:09.250Z"},
        {"sku": "n"}]
    assert recorder.records[0]["valueSchemaMetadata"] == {"dataFormat": "PROTOBUF", "schemaId": version}


async def test_bad_protobuf_records_go_to_the_destination_as_avros_do():
    """behaviour §4 with Protobuf: bytes that do not parse and a message index out of range are
    DESERIALIZATION_ERROR, an unknown schema id SCHEMA_NOT_FOUND; each goes to the on-failure
    destination (invoke count 0) in partition order, the good records around them are invoked, the
    metrics count them, nothing is dropped."""
    from tests.support.protobuf import confluent_serialized, sample_order, shop_classes

    classes = shop_classes()
    recorder = kk.install(kk.KafkaRecorder())
    async with fake_confluent_registry() as fake, kafka_admin() as admin, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "pdlq")
        good = await asyncio.to_thread(confluent_serialized, fake.url, [sample_order(classes, n) for n in range(4)])
        schema_id = int.from_bytes(good[0][1:5], "big")
        topic = await create_topic(admin)
        await produce(topic, [
            Message(good[0]),
            Message(good[1][:-3]),  # cut short: does not parse
            Message(good[2]),
            Message(confluent_frame(schema_id, b"\x02\x08" + good[1][6:])),  # index [4]: two types only
            Message(good[3]),
            Message(confluent_frame(7777, good[1][5:])),  # no such schema
        ])
        mapping = mapping_for(topic, registry_config(fake.url), DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 6)
            assert d.total("esm_malformed_records_total") == 2
            assert d.total("esm_schema_registry_errors_total") >= 1
            assert d.total("esm_on_failure_destination_delivered_events_total") == 3
            assert d.total("esm_dropped_events_total") == 0
        messages = await receive_all(sqs, dlq_url)
    assert [r["offset"] for r in recorder.records] == [0, 2, 4]
    documents = sorted((json.loads(m["Body"]) for m in messages),
                       key=lambda doc: int(doc["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"]))
    assert [(doc["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"],
             doc["requestContext"]["condition"], doc["requestContext"]["approximateInvokeCount"])
            for doc in documents] == [("1", "DESERIALIZATION_ERROR", 0), ("3", "DESERIALIZATION_ERROR", 0),
                                      ("5", "SCHEMA_NOT_FOUND", 0)]
