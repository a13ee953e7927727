"""Amazon MQ for RabbitMQ against a real broker (scripts/backends: Debian's rabbitmq-server).

Each test names the rule it checks (behaviour §1-3, §9.11) and runs esm through its config and
daemon, with an in-process function (tests/support/rabbitmq.py) and the broker's own counts.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from typing import Any, AsyncIterator

import aio_pika
import pytest
import pytest_asyncio

from esm.aws import AwsClients
from esm.config.loading import parse_config
from esm.config.pipeline import PipelineSettings
from esm.core.contract import MappingStopped
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from esm.sources.rabbitmq.source import RabbitSource
from tests.support import rabbitmq as rmq
from tests.support.daemon import running
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

WAIT = 45.0


@pytest.fixture
def broker(backends: dict[str, str]) -> rmq.Broker:
    return rmq.broker()


@pytest_asyncio.fixture(loop_scope="function")
async def channel(broker: rmq.Broker) -> AsyncIterator[Any]:
    connection = await aio_pika.connect(broker.url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def refusal(config_text: str) -> MappingStopped:
    """The error the mapping's source stops it with when it connects (the daemon then stops that
    mapping alone: tests/integration/test_amazonmq_stopping.py)."""
    config = parse_config(config_text, base_dir=".")
    [settings] = config.mappings
    source = RabbitSource(settings, PipelineSettings.read(settings, default_batch_size=100),
                          Runtime(clients=AwsClients(config.aws)), Metrics().for_mapping(settings.uuid, settings.source))
    try:
        with pytest.raises(MappingStopped) as caught:
            await source.connect()
    finally:
        await source.close()
    return caught.value


async def drained(broker: rmq.Broker, queue: str, vhost: str = "/") -> None:
    async def empty() -> bool:
        return await rmq.counts(broker, queue, vhost) == (0, 0)

    await wait_until(empty, timeout=WAIT, what=f"{queue} emptied (nothing ready or unacknowledged)", interval=0.25)


# ---------------------------------------------------------------- the document


async def test_the_event_is_lambdas_rmq_document_key_by_key(broker: rmq.Broker, channel: Any) -> None:
    """behaviour §2, §9.11: one `aws:rmq` event names the broker ARN and lists the messages under
    `<queue>::<vhost>`; each message's basicProperties come field for field in Lambda's order, a
    long-string header as {"bytes": [...]}, other header values as they are, the timestamp as
    Lambda writes it, expiration in milliseconds; `data` is the body in base64."""
    queue, secret = rmq.queue_name(), rmq.secret(broker)
    await rmq.declare(channel, queue)
    await rmq.publish(channel, queue, ['{"timeout":0,"data":"x"}'], content_type="text/plain",
                      headers={"header1": "value1", "numberInHeader": 10}, priority=4,
                      delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT, expiration=60, correlation_id="c-1",
                      reply_to="replies", message_id="m-1", timestamp=dt.datetime(1970, 1, 1, 0, 33, 41,
                                                                                   tzinfo=dt.timezone.utc),
                      type="t", app_id="app", user_id=broker.username)
    captured = rmq.install(rmq.Captured())
    async with running(rmq.config(rmq.mapping(broker, queue, secret))):
        await wait_until(lambda: captured.events, timeout=WAIT, what="the function invoked")
        await drained(broker, queue)
    [event] = captured.events
    assert list(event) == ["eventSource", "eventSourceArn", "rmqMessagesByQueue"]
    assert event["eventSource"] == "aws:rmq" and event["eventSourceArn"] == rmq.BROKER_ARN
    assert list(event["rmqMessagesByQueue"]) == [f"{queue}::/"]
    [message] = rmq.messages(event)
    assert list(message) == ["basicProperties", "redelivered", "data"]
    assert message["basicProperties"] == {
        "contentType": "text/plain",
        "contentEncoding": None,
        "headers": {"header1": {"bytes": [118, 97, 108, 117, 101, 49]}, "numberInHeader": 10},
        "deliveryMode": 1,
        "priority": 4,
        "correlationId": "c-1",
        "replyTo": "replies",
        "expiration": "60000",
        "messageId": "m-1",
        "timestamp": "Jan 1, 1970, 12:33:41 AM",
        "type": "t",
        "userId": broker.username,
        "appId": "app",
        "clusterId": None,
        "bodySize": 24,
    }
    assert list(message["basicProperties"]) == ["contentType", "contentEncoding", "headers", "deliveryMode", "priority",
                                                "correlationId", "replyTo", "expiration", "messageId", "timestamp",
                                                "type", "userId", "appId", "clusterId", "bodySize"]
    assert message["redelivered"] is False
    assert base64.b64decode(message["data"]) == b'{"timeout":0,"data":"x"}'


async def test_a_message_without_properties_has_nulls(broker: rmq.Broker, channel: Any) -> None:
    """behaviour §9.11: properties a message does not carry are null (headers too), never left out;
    a binary body is base64 as it is."""
    queue, secret = rmq.queue_name(), rmq.secret(broker)
    await rmq.declare(channel, queue)
    await rmq.publish_bare(channel, queue, b"\x00\xffbinary")
    captured = rmq.install(rmq.Captured())
    async with running(rmq.config(rmq.mapping(broker, queue, secret))):
        await wait_until(lambda: captured.events, timeout=WAIT, what="the function invoked")
    [message] = rmq.messages(captured.events[0])
    properties = message["basicProperties"]
    assert [properties[k] for k in ("contentType", "headers", "correlationId", "timestamp", "type",
                                    "userId", "appId", "clusterId")] == [None] * 8
    assert properties["deliveryMode"] == 1  # absent is non-persistent, as AMQP reads it
    assert properties["bodySize"] == 8
    assert base64.b64decode(message["data"]) == b"\x00\xffbinary"


# ---------------------------------------------------------------- filters, batch size, window


async def test_filters_see_the_decoded_data_and_filtered_messages_are_acknowledged(
        broker: rmq.Broker, channel: Any) -> None:
    """behaviour §5, §9.11: FilterCriteria matches `data` decoded from base64 (JSON fields, or the
    text itself); messages no filter keeps never reach the function and leave the queue."""
    queue, secret = rmq.queue_name(), rmq.secret(broker)
    await rmq.declare(channel, queue)
    await rmq.publish(channel, queue, ['{"kind":"keep","n":1}', '{"kind":"skip","n":2}', "plain-keep",
                                       "plain-skip", '{"kind":"keep","n":5}'])
    filters = {"Filters": [{"Pattern": json.dumps({"data": {"kind": ["keep"]}})},
                           {"Pattern": json.dumps({"data": ["plain-keep"]})}]}
    captured = rmq.install(rmq.Captured())
    async with running(rmq.config(rmq.mapping(broker, queue, secret, FilterCriteria=filters))) as daemon:
        await wait_until(lambda: len(captured.bodies) >= 3, timeout=WAIT, what="the kept messages invoked")
        await daemon.wait_total("esm_filtered_out_events_total", 2)
        await drained(broker, queue)
    assert sorted(captured.bodies) == sorted(['{"kind":"keep","n":1}', "plain-keep", '{"kind":"keep","n":5}'])


async def test_batches_hold_at_most_batch_size_and_a_window_gathers_them(broker: rmq.Broker, channel: Any) -> None:
    """behaviour §1: with BatchSize 4 and a window, 10 waiting messages arrive in batches of at most
    4, the first full; every message is invoked once."""
    queue, secret = rmq.queue_name(), rmq.secret(broker)
    await rmq.declare(channel, queue)
    bodies = [f"m{i}" for i in range(10)]
    await rmq.publish(channel, queue, bodies)
    captured = rmq.install(rmq.Captured())
    text = rmq.config(rmq.mapping(broker, queue, secret, BatchSize=4, MaximumBatchingWindowInSeconds=2))
    async with running(text):
        await wait_until(lambda: len(captured.bodies) >= 10, timeout=WAIT, what="every message invoked")
        await drained(broker, queue)
    batches = captured.batches()
    assert all(len(b) <= 4 for b in batches) and len(batches[0]) == 4, batches
    assert sorted(captured.bodies) == sorted(bodies)


# ---------------------------------------------------------------- failures


async def test_a_failed_batch_comes_back_whole_redelivered_then_dead_letters_at_the_delivery_limit(
        broker: rmq.Broker, channel: Any) -> None:
    """behaviour §3, §9.11: a function error fails the whole batch, which goes back to the broker
    (basic.nack with requeue) and is delivered again with redelivered=true; the quorum queue's
    x-delivery-limit then dead-letters it through its dead-letter exchange. Messages the function
    processes are never sent again."""
    queue, dead, secret = rmq.queue_name(), rmq.queue_name("dlq"), rmq.secret(broker)
    await rmq.declare(channel, queue, delivery_limit=2, dead_letter=dead)
    await rmq.publish(channel, queue, ["poison"])

    def answer(event: dict[str, Any]) -> None:
        if "poison" in [rmq.data(m) for m in rmq.messages(event)]:
            raise RuntimeError("poison")

    captured = rmq.install(rmq.Captured(answer))
    async with running(rmq.config(rmq.mapping(broker, queue, secret, BatchSize=10))):
        async def dead_lettered() -> bool:
            return (await rmq.counts(broker, dead))[0] == 1

        await wait_until(dead_lettered, timeout=WAIT, what="the poison message dead-lettered", interval=0.25)
        await rmq.publish(channel, queue, ["fine"])
        await wait_until(lambda: "fine" in captured.bodies, timeout=WAIT, what="a later message processed")
        await drained(broker, queue)
    flags = [m["redelivered"] for e in captured.events for m in rmq.messages(e) if rmq.data(m) == "poison"]
    assert flags == [False, True, True], flags  # the first delivery, then the two the limit allows
    assert captured.bodies.count("fine") == 1


async def test_wrong_credentials_stop_the_mapping_with_event_source_authn_error(broker: rmq.Broker,
                                                                                channel: Any) -> None:
    """behaviour §9.11: a broker that refuses the secret's credentials stops the mapping (no retry
    can mend it) with Lambda's EVENT_SOURCE_AUTHN_ERROR, and the error names the user, never the password."""
    queue, secret = rmq.queue_name(), rmq.secret(broker, password="not-the-password")
    await rmq.declare(channel, queue)
    caught = await refusal(rmq.config(rmq.mapping(broker, queue, secret)))
    text = str(caught)
    assert text.startswith("EVENT_SOURCE_AUTHN_ERROR") and broker.username in text, text
    assert "not-the-password" not in text


async def test_a_missing_queue_stops_the_mapping(broker: rmq.Broker) -> None:
    """behaviour §9.11: a queue that does not exist stops the mapping with ESM_CONFIG_NOT_VALID."""
    secret = rmq.secret(broker)
    caught = await refusal(rmq.config(rmq.mapping(broker, rmq.queue_name("missing"), secret)))
    assert str(caught).startswith("ESM_CONFIG_NOT_VALID"), caught


async def test_a_virtual_host_is_read_and_named_in_the_document(broker: rmq.Broker) -> None:
    """behaviour §9.11: VIRTUAL_HOST picks the vhost the queue lives in, and the document keys the
    messages `<queue>::<vhost>`; a vhost the user may not use stops the mapping (EVENT_SOURCE_AUTHZ_ERROR)."""
    queue, secret = rmq.queue_name(), rmq.secret(broker)
    connection = await aio_pika.connect(broker.vhost_url(broker.vhost))
    try:
        channel = await connection.channel()
        await rmq.declare(channel, queue)
        await rmq.publish(channel, queue, ["in-vhost"])
        captured = rmq.install(rmq.Captured())
        async with running(rmq.config(rmq.mapping(broker, queue, secret, vhost=broker.vhost))):
            await wait_until(lambda: captured.events, timeout=WAIT, what="the function invoked")
            await drained(broker, queue, broker.vhost)
    finally:
        await connection.close()
    assert list(captured.events[0]["rmqMessagesByQueue"]) == [f"{queue}::{broker.vhost}"]
    assert captured.bodies == ["in-vhost"]
    caught = await refusal(rmq.config(rmq.mapping(broker, queue, secret, vhost="no-such-vhost")))
    assert str(caught).startswith("EVENT_SOURCE_AUTHZ_ERROR"), caught


# ---------------------------------------------------------------- restarts and replicas


async def test_a_restart_resumes_with_nothing_lost(broker: rmq.Broker, channel: Any) -> None:
    """behaviour §9.6, §9.11: esm stopped while messages wait (and while a batch is in flight)
    acknowledges only what it processed; the next run takes up the rest, so every message is
    processed and the queue ends empty."""
    queue, secret = rmq.queue_name(), rmq.secret(broker)
    await rmq.declare(channel, queue)
    bodies = [f"r{i}" for i in range(30)]
    await rmq.publish(channel, queue, bodies)

    async def slow(event: dict[str, Any]) -> None:
        await asyncio.sleep(0.2)

    captured = rmq.install(rmq.Captured(slow))
    text = rmq.config(rmq.mapping(broker, queue, secret, BatchSize=5))
    async with running(text):
        await wait_until(lambda: len(captured.bodies) >= 5, timeout=WAIT, what="a first batch")
    first = len(captured.bodies)
    assert first < len(bodies)
    async with running(text):
        await wait_until(lambda: set(captured.bodies) >= set(bodies), timeout=WAIT, what="the rest after the restart")
        await drained(broker, queue)
    assert set(captured.bodies) == set(bodies)


async def test_two_replicas_compete_on_one_queue_and_each_message_is_processed_once(
        broker: rmq.Broker, channel: Any) -> None:
    """behaviour §9.11: two esm replicas consuming one queue share it (the broker gives each message
    to one consumer): every message is processed, none twice, and both replicas take part."""
    queue, secret = rmq.queue_name(), rmq.secret(broker)
    await rmq.declare(channel, queue)
    bodies = [f"c{i}" for i in range(60)]

    async def slow(event: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)

    captured = rmq.install(rmq.Captured(slow))
    text = rmq.config(rmq.mapping(broker, queue, secret, BatchSize=5))
    async with running(text) as one, running(text) as two:
        await rmq.publish(channel, queue, bodies)
        await wait_until(lambda: len(captured.bodies) >= len(bodies), timeout=WAIT, what="every message processed")
        # Acknowledged by the two together (the broker's own counts are sampled, so they may lag).
        await wait_until(lambda: one.total("esm_deleted_events_total") + two.total("esm_deleted_events_total")
                         >= len(bodies), timeout=WAIT, what="every message acknowledged")
        await drained(broker, queue)
        shares = [one.total("esm_deleted_events_total"), two.total("esm_deleted_events_total")]
    assert sorted(captured.bodies) == sorted(bodies)
    assert all(share > 0 for share in shares) and sum(shares) == len(bodies), shares


# ---------------------------------------------------------------- where the broker is


async def test_without_esm_broker_the_broker_is_found_with_describe_broker(broker: rmq.Broker,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """behaviour §9.11: a mapping without esm.broker is claimed as RabbitMQ's by DescribeBroker's
    engine and reaches the broker DescribeBroker lists (here moto's made-up AMQPS endpoint, which
    resolves nowhere: the mapping waits for it, saying where it looks)."""
    import os
    import uuid

    from aiobotocore.session import get_session

    monkeypatch.setenv("AWS_ENDPOINT_URL_MQ", os.environ["ESM_AWS_ENDPOINT"])
    async with get_session().create_client("mq", region_name="us-east-1",
                                           endpoint_url=os.environ["ESM_AWS_ENDPOINT"]) as mq:
        made = await mq.create_broker(BrokerName=f"r{uuid.uuid4().hex[:8]}", EngineType="RABBITMQ",
                                      EngineVersion="3.13", HostInstanceType="mq.t3.micro",
                                      DeploymentMode="SINGLE_INSTANCE", PubliclyAccessible=False,
                                      AutoMinorVersionUpgrade=False,
                                      Users=[{"Username": "esm", "Password": "esm-password-1"}])
        endpoints = [uri for i in (await mq.describe_broker(BrokerId=made["BrokerId"]))["BrokerInstances"]
                     for uri in i.get("Endpoints") or []]
    arn = f"arn:aws:mq:us-east-1:123456789012:broker:rabbit:{made['BrokerId']}"
    mapping = rmq.mapping(broker, "q", rmq.secret(broker))
    mapping["EventSourceArn"] = arn
    del mapping["esm"]
    text = rmq.config(mapping, startup_timeout=3)
    [parsed] = parse_config(text, base_dir=".").mappings
    assert parsed.source == "rabbitmq"
    host = next(uri for uri in endpoints if uri.startswith("amqps://")).split("//", 1)[1].split(":")[0]
    with pytest.raises(Exception) as caught:
        async with running(text):
            pass
    assert host in str(caught.value), caught.value
