"""Kafka connection security against the real broker's SASL and TLS listeners (scripts/backends).

behaviour §1 "Auth" (self-managed: BASIC_AUTH = SASL/PLAIN, SCRAM-256/512, mTLS with
CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE; MSK: SCRAM-512, mTLS, IAM) and behaviour §9.10
(secrets outside AWS, an on-failure kafka:// topic in another cluster). Records are produced over
the PLAINTEXT listener and consumed end to end through a running daemon over the listener under
test. Secrets come from moto's Secrets Manager, except where `esm.secrets` points them at the
environment or files. The broker's users have credentials for one mechanism each (PLAIN only,
SCRAM-SHA-256 only, SCRAM-SHA-512 only), so a test passes only if esm used the mechanism its Type
names. Amazon MSK cluster ARNs resolve through tests/support/msk_fake.py (GetBootstrapBrokers, which
moto does not serve) for clusters created in moto. No IAM-enabled broker runs here: IAM is tested
up to the signed token (tests/unit/test_kafka_auth.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from aiobotocore.session import get_session
from cryptography.hazmat.primitives import serialization

from esm.aws import AwsClients
from esm.config.loading import parse_config
from esm.daemon import StartupTimeout
from esm.errors import SourceUnavailable
from esm.invokers import make_invoker
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from esm.engine.stream_mapping import StreamMapping
from esm.sources.kafka.source import KafkaSource
from tests.support import kafka as kk
from tests.support.daemon import running_config
from tests.support.kafka import Message, create_secret, create_topic, kafka_admin, produce, read_pem, smk_mapping
from tests.support.msk_fake import FakeMskApi
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)
from tests.support.ports import free_port


pytestmark = pytest.mark.usefixtures("backends")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sec(backends) -> dict[str, str]:
    return kk.security()


def config_for(*mappings, functions=None, **extra) -> str:
    doc = {"functions": functions or kk.FUNCTIONS, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 20, "startup_timeout": 30, **extra}
    return yaml.safe_dump(doc, sort_keys=False)


def daemon(*mappings, **extra):
    return running_config(parse_config(config_for(*mappings, **extra)))


def secured(topic: str, servers: str, *access: dict, **fields) -> dict:
    mapping = smk_mapping(topic, **fields)
    mapping["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] = servers.split(",")
    if access:
        mapping["SourceAccessConfigurations"] = list(access)
    return mapping


def group_of(mapping: dict) -> str:
    key = "SelfManagedKafkaEventSourceConfig" if "SelfManagedEventSource" in mapping else \
        "AmazonManagedKafkaEventSourceConfig"
    return mapping[key]["ConsumerGroupId"]


async def root_ca_secret(sec: dict[str, str]) -> dict:
    return {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": await create_secret({"certificate": read_pem(sec["KAFKA_CA_PEM"])})}


async def consumed_through(admin, topic: str, *mappings: dict, count: int = 3, **extra) -> kk.KafkaRecorder:
    """Produce `count` records to `topic` over PLAINTEXT, run the daemon with `mappings` until every
    mapping's group committed them all; the recorder of what the function saw."""
    recorder = kk.install(kk.KafkaRecorder())
    await produce(topic, [Message(f"r{i}".encode()) for i in range(count)])
    async with daemon(*mappings, **extra):
        await recorder.wait_for(lambda r: len(r.records) >= count * len(mappings))
        for mapping in mappings:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == count)
    return recorder


async def connect_error(mapping: dict, **extra) -> str:
    """What connect() says for `mapping` (it must raise SourceUnavailable)."""
    config = parse_config(config_for(mapping, **extra))
    settings = config.mappings[0]
    invoker = make_invoker(settings.function, config.aws, default_concurrency=1)
    source = StreamMapping(settings, KafkaSource, Runtime(clients=AwsClients(config.aws)), invoker,
                           Metrics().for_mapping(settings.uuid, "kafka"))
    try:
        with pytest.raises(SourceUnavailable) as caught:
            await source.connect()
    finally:
        await source.close()
        await invoker.close()
    return str(caught.value)


# ---------------------------------------------------------------- self-managed Kafka, one rule each


async def test_basic_auth_is_sasl_plain_over_tls_with_the_root_ca_from_secrets_manager(sec):
    """behaviour §1 Auth: self-managed BASIC_AUTH is SASL/PLAIN, over TLS as Lambda runs it (SASL_SSL), verifying the
    broker against SERVER_ROOT_CA_CERTIFICATE; both secrets come from Secrets Manager."""
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        user = await create_secret({"username": sec["KAFKA_SASL_USERNAME"], "password": sec["KAFKA_SASL_PASSWORD"]})
        mapping = secured(topic, sec["KAFKA_SASL_SSL_BOOTSTRAP"], {"Type": "BASIC_AUTH", "URI": user},
                          await root_ca_secret(sec))
        recorder = await consumed_through(admin, topic, mapping)
    assert recorder.values() == ["r0", "r1", "r2"]
    assert recorder.events[0]["bootstrapServers"] == sec["KAFKA_SASL_SSL_BOOTSTRAP"]


@pytest.mark.parametrize("kind, bits", [("SASL_SCRAM_256_AUTH", "256"), ("SASL_SCRAM_512_AUTH", "512")])
async def test_scram_types_use_their_own_hash(sec, kind, bits):
    """behaviour §1 Auth: SASL_SCRAM_256_AUTH is SCRAM-SHA-256 and SASL_SCRAM_512_AUTH is SCRAM-SHA-512 (the broker's user
    for each has credentials for that hash only, so the other mechanism would be refused)."""
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        user = await create_secret({"username": sec[f"KAFKA_SCRAM{bits}_USERNAME"],
                                    "password": sec[f"KAFKA_SCRAM{bits}_PASSWORD"]})
        mapping = secured(topic, sec["KAFKA_SASL_SSL_BOOTSTRAP"], {"Type": kind, "URI": user}, await root_ca_secret(sec))
        recorder = await consumed_through(admin, topic, mapping)
    assert recorder.values() == ["r0", "r1", "r2"]


async def test_server_root_ca_alone_is_tls_without_authentication(sec, caplog):
    """behaviour §1 Auth: SERVER_ROOT_CA_CERTIFICATE without an authentication type connects over TLS (SSL) and trusts
    the broker's private CA; VPC_SUBNET / VPC_SECURITY_GROUP are accepted and ignored, with a log line."""
    caplog.set_level(logging.INFO, logger="esm")
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        mapping = secured(topic, sec["KAFKA_SSL_BOOTSTRAP"], await root_ca_secret(sec),
                          {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0123"},
                          {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123"})
        recorder = await consumed_through(admin, topic, mapping)
    assert recorder.values() == ["r0", "r1", "r2"]
    assert "over SSL" in caplog.text
    assert "ignoring VPC_SUBNET=subnet:subnet-0123, VPC_SECURITY_GROUP=security_group:sg-0123" in caplog.text


async def test_client_certificate_tls_auth_is_mutual_tls_with_an_encrypted_key(sec):
    """behaviour §1 Auth: CLIENT_CERTIFICATE_TLS_AUTH presents the secret's certificate chain and PKCS#8 private key
    (here encrypted, opened with privateKeyPassword) to a listener that requires client certificates."""
    key = serialization.load_pem_private_key(read_pem(sec["KAFKA_CLIENT_KEY_PEM"]).encode(), password=None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"key-password")).decode()
    chain = read_pem(sec["KAFKA_CLIENT_CERT_PEM"]) + read_pem(sec["KAFKA_CA_PEM"])
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        client = await create_secret({"certificate": chain, "privateKey": encrypted,
                                      "privateKeyPassword": "key-password"})
        mapping = secured(topic, sec["KAFKA_MTLS_BOOTSTRAP"], {"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": client},
                          await root_ca_secret(sec))
        recorder = await consumed_through(admin, topic, mapping)
    assert recorder.values() == ["r0", "r1", "r2"]


async def test_secrets_from_environment_and_files_and_sasl_without_tls(sec, tmp_path, monkeypatch):
    """behaviour §9.10: outside AWS, esm.secrets points the same secret fields at environment variables and files (the
    URIs here are names Secrets Manager does not have, so nothing is read from it); esm.kafka_tls: false runs SASL
    on a plaintext listener."""
    password_file = tmp_path / "password"
    password_file.write_text(sec["KAFKA_SCRAM512_PASSWORD"])
    monkeypatch.setenv("ESM_TEST_SCRAM_USER", sec["KAFKA_SCRAM512_USERNAME"])
    monkeypatch.setenv("ESM_TEST_PLAIN_SECRET", json.dumps({"username": sec["KAFKA_SASL_USERNAME"],
                                                           "password": sec["KAFKA_SASL_PASSWORD"]}))
    secrets = {
        "kafka-scram": {"username": {"env": "ESM_TEST_SCRAM_USER"}, "password": {"file": str(password_file)}},
        "kafka-ca": {"certificate": {"file": sec["KAFKA_CA_PEM"]}},
        "kafka-plain": {"env": "ESM_TEST_PLAIN_SECRET"},
    }
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        over_tls = secured(topic, sec["KAFKA_SASL_SSL_BOOTSTRAP"], {"Type": "SASL_SCRAM_512_AUTH", "URI": "kafka-scram"},
                           {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": "kafka-ca"},
                           esm={"name": "scram-from-files", "secrets": {k: secrets[k] for k in ("kafka-scram", "kafka-ca")}})
        plaintext = secured(topic, sec["KAFKA_SASL_BOOTSTRAP"], {"Type": "BASIC_AUTH", "URI": "kafka-plain"},
                            esm={"name": "plain-from-env", "kafka_tls": False,
                                 "secrets": {"kafka-plain": secrets["kafka-plain"]}})
        recorder = await consumed_through(admin, topic, over_tls, plaintext)
    servers = sorted(event["bootstrapServers"] for event in recorder.events)
    assert set(servers) == {sec["KAFKA_SASL_SSL_BOOTSTRAP"], sec["KAFKA_SASL_BOOTSTRAP"]}
    assert sorted(recorder.values()) == ["r0", "r0", "r1", "r1", "r2", "r2"]


# ---------------------------------------------------------------- failures are clear, and keep secrets


async def test_a_wrong_password_is_source_unavailable_and_no_secret_is_logged(sec, caplog):
    """Source contract: refused credentials are SourceUnavailable naming the cause (SASL authentication failed),
    the daemon gives up after startup_timeout, and neither the wrong nor the right password is logged, even at
    DEBUG with the Kafka client's own logs."""
    wrong = f"wrong-{uuid.uuid4().hex}"
    user = await create_secret({"username": sec["KAFKA_SCRAM512_USERNAME"], "password": wrong})
    mapping = secured("orders", sec["KAFKA_SASL_SSL_BOOTSTRAP"], {"Type": "SASL_SCRAM_512_AUTH", "URI": user},
                      await root_ca_secret(sec))
    caplog.clear()
    caplog.set_level(logging.DEBUG)  # only now: the test's own CreateSecret call is logged with its body
    message = await connect_error(mapping)
    assert "SASL_SSL (SCRAM-SHA-512)" in message and "SaslAuthenticationFailed" in message, message
    with pytest.raises(StartupTimeout, match="SaslAuthenticationFailed"):
        async with running_config(parse_config(config_for(mapping, startup_timeout=8))):
            pass
    for secret in (wrong, sec["KAFKA_SCRAM512_PASSWORD"]):
        assert secret not in caplog.text and secret not in message


async def test_a_missing_secret_is_named(sec):
    """A secret that Secrets Manager does not have is SourceUnavailable naming the secret and its Type."""
    uri = "arn:aws:secretsmanager:us-east-1:123456789012:secret:esm-no-such-secret-AbCdEf"
    message = await connect_error(secured("orders", sec["KAFKA_SASL_SSL_BOOTSTRAP"],
                                          {"Type": "SASL_SCRAM_256_AUTH", "URI": uri}))
    assert message.startswith(f"secret {uri} (SASL_SCRAM_256_AUTH) cannot be read from Secrets Manager: "
                              "ResourceNotFoundException"), message


async def test_tls_verification_is_on_by_default(sec):
    """docs/design.md, behaviour §1 Auth: TLS verifies the broker's certificate; one signed by a CA that is neither a system CA
    nor the SERVER_ROOT_CA_CERTIFICATE is refused (TLS alone with esm.kafka_tls, and SASL over TLS)."""
    tls_only = secured("orders", sec["KAFKA_SSL_BOOTSTRAP"], esm={"kafka_tls": True})
    message = await connect_error(tls_only)
    assert "the broker's TLS certificate is not trusted" in message and "SERVER_ROOT_CA_CERTIFICATE" in message
    user = await create_secret({"username": sec["KAFKA_SASL_USERNAME"], "password": sec["KAFKA_SASL_PASSWORD"]})
    sasl = secured("orders", sec["KAFKA_SASL_SSL_BOOTSTRAP"], {"Type": "BASIC_AUTH", "URI": user})
    assert "the broker's TLS certificate is not trusted" in await connect_error(sasl)


# ---------------------------------------------------------------- Amazon MSK


async def test_msk_cluster_arn_resolves_to_the_brokers_lambda_would_choose(sec, monkeypatch):
    """behaviour §1 (MSK: EventSourceArn is the cluster ARN; auth SCRAM-512, mTLS, IAM) and Lambda's broker choice: a
    SCRAM secret takes the SASL/SCRAM broker string, no secret the strongest the cluster offers (here TLS, as it has
    no IAM brokers). The cluster is made in moto; GetBootstrapBrokers comes from FakeMskApi, SigV4-signed for
    the kafka service. The event is an aws:kafka one with the cluster ARN. MSK brokers use public certificates, so
    the test CA is made a system CA (SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", sec["KAFKA_CA_PEM"])
    async with get_session().create_client("kafka", endpoint_url=os.environ["ESM_AWS_ENDPOINT"]) as kafka:
        created = await kafka.create_cluster(
            ClusterName=kk.unique("msk"), KafkaVersion="3.9.x", NumberOfBrokerNodes=1,
            BrokerNodeGroupInfo={"InstanceType": "kafka.m5.large", "ClientSubnets": ["subnet-1"]})
    cluster_arn = created["ClusterArn"]
    fake = await FakeMskApi().start()
    fake.brokers[cluster_arn] = {"BootstrapBrokerString": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                                 "BootstrapBrokerStringTls": sec["KAFKA_SSL_BOOTSTRAP"],
                                 "BootstrapBrokerStringSaslScram": sec["KAFKA_SASL_SSL_BOOTSTRAP"]}
    aws = {"endpoints": {"kafka": fake.url}}
    try:
        async with kafka_admin() as admin:
            topic = await create_topic(admin)
            user = await create_secret({"username": sec["KAFKA_SCRAM512_USERNAME"],
                                        "password": sec["KAFKA_SCRAM512_PASSWORD"]})

            def msk(name: str, *access: dict) -> dict:
                mapping = {"FunctionName": "recorder", "EventSourceArn": cluster_arn, "Topics": [topic],
                           "StartingPosition": "TRIM_HORIZON", "esm": {"name": name},
                           "AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": kk.unique("g")}}
                if access:
                    mapping["SourceAccessConfigurations"] = list(access)
                return mapping

            recorder = await consumed_through(admin, topic, msk("msk-scram", {"Type": "SASL_SCRAM_512_AUTH", "URI": user}),
                                              msk("msk-no-secret"), aws=aws)
            unknown = cluster_arn[:-4] + "0000"
            missing = await connect_error(msk("msk-unknown") | {"EventSourceArn": unknown}, aws=aws)
    finally:
        await fake.close()
    assert {e["bootstrapServers"] for e in recorder.events} == {sec["KAFKA_SASL_SSL_BOOTSTRAP"], sec["KAFKA_SSL_BOOTSTRAP"]}
    assert {(e["eventSource"], e["eventSourceArn"]) for e in recorder.events} == {("aws:kafka", cluster_arn)}
    assert sorted(recorder.values()) == ["r0", "r0", "r1", "r1", "r2", "r2"]
    assert "GetBootstrapBrokers failed: NotFoundException" in missing
    assert all("/us-east-1/kafka/aws4_request" in r["authorization"] for r in fake.requests)


# ---------------------------------------------------------------- kafka:// in another cluster


async def test_kafka_destination_in_another_cluster_uses_its_own_connection_settings(sec):
    """behaviour §9.10: esm.on_failure_kafka puts the kafka:// on-failure topic in another cluster with its own access
    settings. The source reads over PLAINTEXT; the destination is reached only through the SASL listener with
    SCRAM-SHA-512 credentials from Secrets Manager, so a message lands only if the destination's own settings
    were used."""
    kk.install(kk.KafkaRecorder(lambda event: (_ for _ in ()).throw(RuntimeError("down"))))
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        dead = await create_topic(admin, prefix="dlt")
        user = await create_secret({"username": sec["KAFKA_SCRAM512_USERNAME"], "password": sec["KAFKA_SCRAM512_PASSWORD"]})
        await produce(topic, [Message(b"v0", key=b"k0")])
        mapping = smk_mapping(topic, MaximumRetryAttempts=0,
                              DestinationConfig={"OnFailure": {"Destination": f"kafka://{dead}"}},
                              esm={"on_failure_kafka": {"bootstrap_servers": [sec["KAFKA_SASL_BOOTSTRAP"]], "tls": False,
                                                        "SourceAccessConfigurations": [
                                                            {"Type": "SASL_SCRAM_512_AUTH", "URI": user}]}})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 1)
            assert d.total("esm_on_failure_destination_delivered_events_total") == 1
        [message] = await kk.read_topic(dead, 1)
    document = json.loads(message.value)
    assert message.key == b"k0"
    assert document["requestContext"]["condition"] == "RetriesExhausted"
    assert document["payload"]["bootstrapServers"] == os.environ["KAFKA_BOOTSTRAP_SERVERS"]


# ---------------------------------------------------------------- secrets stay secret (a daemon process)


async def test_secrets_never_appear_in_logs_or_metrics(sec, tmp_path):
    """docs/design.md "Habits" (never log secrets): a daemon process reading a SCRAM password from Secrets Manager with a
    distinctive AWS secret key, at DEBUG, consumes records; neither secret appears in its log output nor in its
    /metrics page, while the log shows the secured connection was made."""
    aws_secret_key = f"esm-test-aws-secret-{uuid.uuid4().hex}"
    record_file, log_path = tmp_path / "calls.jsonl", tmp_path / "esm.log"
    port = free_port()
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(b"one"), Message(b"two")])
        user = await create_secret({"username": sec["KAFKA_SCRAM512_USERNAME"], "password": sec["KAFKA_SCRAM512_PASSWORD"]})
        mapping = secured(topic, sec["KAFKA_SASL_SSL_BOOTSTRAP"], {"Type": "SASL_SCRAM_512_AUTH", "URI": user},
                          await root_ca_secret(sec))
        path = tmp_path / "esm.yaml"
        text = config_for(mapping, functions={"recorder": {"handler": "tests.support.kafka:file_handler"}})
        path.write_text(text.replace("127.0.0.1:0", f"127.0.0.1:{port}"))
        env = dict(os.environ, ESM_TEST_RECORD_FILE=str(record_file), AWS_SECRET_ACCESS_KEY=aws_secret_key)
        with open(log_path, "w") as log_file:
            process = subprocess.Popen([sys.executable, "-m", "esm", "run", "--config", str(path), "--log-level",
                                        "DEBUG", "--log-format", "json"], cwd=ROOT, env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT)
        try:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 2, timeout=90)
            metrics = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode())
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    logs = log_path.read_text()
    assert "esm_committed_events_total" in metrics
    assert "over SASL_SSL (SCRAM-SHA-512)" in logs, logs[-3000:]
    for secret in (sec["KAFKA_SCRAM512_PASSWORD"], aws_secret_key):
        assert secret not in logs
        assert secret not in metrics
