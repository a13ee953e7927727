"""The Amazon MQ for ActiveMQ source against a real ActiveMQ Classic broker (scripts/backends),
one test per rule of docs/behaviour.md §9.11 (and the shared rules of §1-§7 it keeps).

The daemon runs in the test's event loop with an in-process recording handler
(tests/support/activemq.py: MqRecorder); the broker's BASIC_AUTH secret lives in moto.
"""

from __future__ import annotations

import base64
import json

import pytest

from esm.aws import AwsClients
from esm.config.loading import parse_config
from esm.config.pipeline import PipelineSettings
from esm.core.contract import MappingStopped
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from esm.sources.activemq.source import ActiveMqSource
from tests.support.activemq import (BROKER_ARN, DLQ, MqRecorder, drain, make_secret, mapping, queue_name, send,
                                    stomp_client)
from tests.support import recorder as rec
from tests.support.daemon import mapping_config, running
from tests.support.mq_brokers import moto_broker

pytestmark = pytest.mark.usefixtures("backends")

KEYS = ["messageID", "messageType", "timestamp", "deliveryMode", "correlationID", "replyTo", "destination",
        "redelivered", "type", "expiration", "priority", "data", "brokerInTime", "brokerOutTime", "properties"]


async def test_the_event_is_lambdas_aws_mq_document_key_by_key():
    """behaviour §9.11: `{"eventSource": "aws:mq", "eventSourceArn", "messages": [...]}`, each message
    with Lambda's keys in Lambda's order; a frame with content-length is a bytes message, one
    without a text message; JMS headers fill their keys, other headers are `properties`."""
    recorder = rec.install(MqRecorder())
    queue, secret = queue_name("doc"), await make_secret()
    async with stomp_client() as client:
        await send(client, queue, [b"\x00\x01binary"], headers={
            "correlation-id": "corr-1", "reply-to": "/queue/replies", "type": "order", "priority": "7",
            "color": "blue"})
        await send(client, queue, ['{"n": 1}'], text=True)
    async with running(mapping_config(mapping(queue, secret, BatchSize=10))):
        await recorder.wait_for(lambda r: len(r.records) >= 2)
    event = recorder.events[0]
    assert list(event) == ["eventSource", "eventSourceArn", "messages"]
    assert (event["eventSource"], event["eventSourceArn"]) == ("aws:mq", BROKER_ARN)
    first, second = sorted(recorder.records, key=lambda m: m["messageType"])
    assert list(first) == KEYS and list(second) == KEYS
    assert first["messageType"] == "jms/bytes-message" and base64.b64decode(first["data"]) == b"\x00\x01binary"
    assert (first["correlationID"], first["replyTo"], first["type"], first["priority"]) == (
        "corr-1", "/queue/replies", "order", 7)
    assert first["destination"] == {"physicalName": queue}
    assert first["deliveryMode"] == 2 and first["redelivered"] is False and first["expiration"] == 0
    assert first["properties"] == {"color": "blue"}
    assert first["messageID"].startswith("ID:")
    assert first["brokerInTime"] == first["timestamp"] and first["brokerOutTime"] >= first["timestamp"] > 0
    assert second["messageType"] == "jms/text-message" and base64.b64decode(second["data"]) == b'{"n": 1}'
    # Absent JMS values as Lambda's recorded events write them.
    assert (second["correlationID"], second["replyTo"], second["type"], second["properties"]) == ("", "null", "", {})


async def test_filters_match_the_decoded_data_and_settle_the_rest():
    """behaviour §5, §9.11: FilterCriteria on `data` see it decoded (JSON when it parses); messages
    that match no filter are acknowledged without an invoke and never come back."""
    recorder = rec.install(MqRecorder())
    queue, secret = queue_name("filter"), await make_secret()
    async with stomp_client() as client:
        await send(client, queue, [json.dumps({"status": "paid", "n": i}) for i in range(3)] +
                   [json.dumps({"status": "open", "n": i}) for i in range(4)] + ["not json"])
    pattern = json.dumps({"data": {"status": ["paid"]}})
    config = mapping_config(mapping(queue, secret, FilterCriteria={"Filters": [{"Pattern": pattern}]}))
    async with running(config) as daemon:
        await daemon.wait_total("esm_filtered_out_events_total", 5)
        await recorder.wait_for(lambda r: len(r.records) >= 3)
        await daemon.wait_total("esm_deleted_events_total", 8)
    assert sorted(json.loads(b)["n"] for b in recorder.bodies()) == [0, 1, 2]
    assert await drain(queue, idle=3) == [], "filtered-out messages were acknowledged"


async def test_batches_hold_at_most_batch_size_messages():
    """behaviour §1 (BatchSize, MaximumBatchingWindowInSeconds): 25 messages with BatchSize 10 and a
    1 s window arrive in batches of at most 10, every message once."""
    recorder = rec.install(MqRecorder())
    queue, secret = queue_name("batch"), await make_secret()
    async with stomp_client() as client:
        await send(client, queue, [f"m{i}" for i in range(25)])
    config = mapping_config(mapping(queue, secret, BatchSize=10, MaximumBatchingWindowInSeconds=1))
    async with running(config) as daemon:
        await recorder.wait_for(lambda r: len(r.records) >= 25)
        await daemon.wait_total("esm_deleted_events_total", 25)
    assert sorted(recorder.bodies()) == sorted(f"m{i}" for i in range(25))
    assert all(len(batch) <= 10 for batch in recorder.batches)


async def test_a_failed_batch_comes_back_whole_with_redelivered_true():
    """behaviour §3, §9.11: a function error fails the whole batch (no partial batch response); the
    broker hands every message back with redelivered=true, and once processed nothing is left."""
    failed: set[str] = set()

    def behaviour(event):
        ids = {m["messageID"] for m in event["Records"]}
        if not ids <= failed:
            failed.update(ids)
            raise RuntimeError("function error")

    recorder = rec.install(MqRecorder(behaviour))
    queue, secret = queue_name("retry"), await make_secret()
    async with stomp_client() as client:
        await send(client, queue, [f"r{i}" for i in range(4)])
    async with running(mapping_config(mapping(queue, secret, BatchSize=10))) as daemon:
        await daemon.wait_total("esm_deleted_events_total", 4, timeout=60)
    first = [m for m in recorder.records if not m["redelivered"]]
    again = [m for m in recorder.records if m["redelivered"]]
    assert sorted(base64.b64decode(m["data"]).decode() for m in first) == [f"r{i}" for i in range(4)]
    assert {m["messageID"] for m in again} == {m["messageID"] for m in first}, "the whole batch came back"
    assert await drain(queue, idle=3) == []


async def test_after_the_brokers_redelivery_limit_messages_go_to_its_dead_letter_queue():
    """behaviour §9.11: Lambda uses ActiveMQ's default redelivery policy (6 redeliveries): a message
    whose batch always fails is invoked 7 times, then the broker moves it to ActiveMQ.DLQ."""
    recorder = rec.install(MqRecorder(lambda event: (_ for _ in ()).throw(RuntimeError("always fails"))))
    queue, secret = queue_name("dlq"), await make_secret()
    async with stomp_client() as client:
        await send(client, queue, ["poison"])
    async with running(mapping_config(mapping(queue, secret, BatchSize=10))):
        await recorder.wait_for(lambda r: len(r.records) >= 7, timeout=90)
        dead = await drain(DLQ, idle=5, match=lambda f: f.headers.get("original-destination") == f"/queue/{queue}")
    assert len(recorder.records) == 7
    assert [m["redelivered"] for m in recorder.records] == [False] + [True] * 6
    assert [f.body for f in dead] == [b"poison"]


async def test_a_refused_user_is_an_authentication_error():
    """behaviour §9.11: credentials the broker refuses stop the source with Lambda's
    EVENT_SOURCE_AUTHN_ERROR, and the message names the broker and the user, never the password."""
    secret = await make_secret(password="wrong-password")
    config = parse_config(mapping_config(mapping(queue_name("auth"), secret)), base_dir=".")
    [settings] = config.mappings
    metrics = Metrics().for_mapping(settings.uuid, settings.source)
    runtime = Runtime(clients=AwsClients(config.aws))
    source = ActiveMqSource(settings, PipelineSettings.read(settings, default_batch_size=100), runtime, metrics)
    with pytest.raises(MappingStopped) as refused:
        await source.connect()
    assert str(refused.value).startswith("EVENT_SOURCE_AUTHN_ERROR: ActiveMQ broker stomp://127.0.0.1:")
    assert "wrong-password" not in str(refused.value)
    await source.close()


async def test_a_restarted_mapping_resumes_with_nothing_lost():
    """behaviour §9.6: a message leaves the broker only once processed: stopped mid-way (a batch in
    flight, others prefetched), the mapping started again processes every message left."""
    recorder = rec.install(MqRecorder(delay=0.5))
    queue, secret = queue_name("restart"), await make_secret()
    bodies = [f"s{i}" for i in range(30)]
    async with stomp_client() as client:
        await send(client, queue, bodies)
    config = mapping_config(mapping(queue, secret, BatchSize=5))
    async with running(config):
        await recorder.wait_for(lambda r: len(r.records) >= 5)
    assert len(set(recorder.bodies())) < 30, "stopped before the queue was drained"
    async with running(config) as daemon:
        await recorder.wait_for(lambda r: set(r.bodies()) >= set(bodies))
    assert await drain(queue, idle=3) == [], "every message acknowledged"


async def test_two_replicas_share_one_queue_and_lose_nothing():
    """behaviour §9.11: two esm processes mapping the same queue compete for its messages as two
    consumers of the broker: each message is processed, neither replica is left idle."""
    import tests.support.activemq as support
    first, second = support.Replica(delay=0.05), support.Replica(delay=0.05)
    support.REPLICAS.update(a=first, b=second)
    queue, secret = queue_name("replicas"), await make_secret()
    bodies = [f"p{i}" for i in range(200)]
    async with stomp_client() as client:
        await send(client, queue, bodies)
    functions = {"a": {"handler": "tests.support.activemq:handle_a"}, "b": {"handler": "tests.support.activemq:handle_b"}}
    async with running(mapping_config(mapping(queue, secret, "a", BatchSize=5), functions=functions)):
        async with running(mapping_config(mapping(queue, secret, "b", BatchSize=5), functions=functions)):
            await first.wait_for(lambda: set(first.bodies) | set(second.bodies) >= set(bodies))
    assert set(first.bodies) | set(second.bodies) == set(bodies)
    assert first.bodies and second.bodies, "both replicas consumed"
    assert await drain(queue, idle=3) == []


async def test_without_esm_broker_describe_broker_names_the_engine_and_the_endpoint(monkeypatch):
    """behaviour §9.11: a mapping without esm.broker is ActiveMQ's when mq:DescribeBroker (moto) says
    the broker's engine is ACTIVEMQ, and the source connects to the stomp+ssl:// endpoint it lists."""
    import os

    from esm.sources.activemq.rules import BrokerAddress

    monkeypatch.setenv("AWS_ENDPOINT_URL_MQ", os.environ["ESM_AWS_ENDPOINT"])
    arn = await moto_broker("ACTIVEMQ")
    request = mapping(queue_name("described"), await make_secret(), EventSourceArn=arn)
    del request["esm"]
    config = parse_config(mapping_config(request), base_dir=".")
    [settings] = config.mappings
    assert settings.source == "activemq"
    source = ActiveMqSource(settings, PipelineSettings.read(settings, default_batch_size=100),
                            Runtime(clients=AwsClients(config.aws)), Metrics().for_mapping(settings.uuid, "activemq"))
    found = await source._described()
    assert isinstance(found, BrokerAddress) and found.tls and found.port == 61614


async def test_a_sam_mq_event_becomes_an_activemq_mapping(tmp_path, monkeypatch):
    """behaviour §9.12, §9.11: `esm validate --template` turns a SAM `MQ` event of an ActiveMQ broker
    (DescribeBroker on moto names the engine) into an activemq mapping with the event's settings."""
    import os
    import subprocess
    import sys

    monkeypatch.setenv("AWS_ENDPOINT_URL_MQ", os.environ["ESM_AWS_ENDPOINT"])
    arn = await moto_broker("ACTIVEMQ")
    template = tmp_path / "template.yaml"
    template.write_text(f"""
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      CodeUri: .
      Events:
        Mq:
          Type: MQ
          Properties:
            Broker: {arn}
            Queues: [orders]
            SourceAccessConfigurations:
              - {{Type: BASIC_AUTH, URI: "arn:aws:secretsmanager:us-east-1:123456789012:secret:mq"}}
            BatchSize: 50
""")
    done = subprocess.run([sys.executable, "-m", "esm", "validate", "--template", str(template),
                           "--functions-url", "http://127.0.0.1:9/{name}"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid (1 mapping(s)" in done.stdout
    assert "activemq" in done.stdout and "batch 50, window 0.5s" in done.stdout


async def test_a_message_over_six_megabytes_is_dropped_with_a_metric():
    """behaviour §9.11 (Lambda drops records over its 6 MB payload limit): the message is
    acknowledged without an invoke and counted as dropped; the messages around it are processed."""
    recorder = rec.install(MqRecorder())
    queue, secret = queue_name("big"), await make_secret()
    async with stomp_client() as client:
        await send(client, queue, ["before", b"x" * (5 * 1024 * 1024), "after"])
    async with running(mapping_config(mapping(queue, secret, BatchSize=10))) as daemon:
        await daemon.wait_total("esm_dropped_events_total", 1)
        await recorder.wait_for(lambda r: len(r.records) >= 2)
        await daemon.wait_total("esm_deleted_events_total", 2)  # the dropped one is counted as dropped only
    assert sorted(recorder.bodies()) == ["after", "before"]
    assert await drain(queue, idle=3) == []


def test_the_test_broker_listens_on_loopback_only():
    """scripts/backends: the ActiveMQ broker's STOMP and admin listeners bind 127.0.0.1 only."""
    import ipaddress
    import os
    from urllib.parse import urlsplit

    ports = {int(os.environ["ACTIVEMQ_STOMP_URL"].rsplit(":", 1)[1]), urlsplit(os.environ["ACTIVEMQ_ADMIN_URL"]).port}
    found: dict[int, list[str]] = {}
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with open(table, encoding="ascii") as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, port = local.split(":")
                if state != "0A" or int(port, 16) not in ports:  # 0A: LISTEN
                    continue
                raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
                ip = ipaddress.ip_address(raw[:width])
                mapped = getattr(ip, "ipv4_mapped", None)
                found.setdefault(int(port, 16), []).append(str(mapped or ip))
    assert set(found) == ports, found
    assert all(ipaddress.ip_address(a).is_loopback for addresses in found.values() for a in addresses), found
