"""Amazon MQ mappings through the control API (behaviour §9.11, §10), against the real RabbitMQ
broker of scripts/backends: a mapping made the way a user asks Lambda for one (a broker ARN,
Queues, a BASIC_AUTH secret; no esm: keys) delivers, and Get/List/Update/Delete answer Lambda's
fields for Amazon MQ; one whose broker refuses the password answers State Disabled and the code
as StateTransitionReason.

The API carries no `esm.broker`, so esm finds the broker with mq:DescribeBroker, as Lambda does;
moto's brokers list endpoints on hosts that do not exist, so DescribeBroker goes through the FAKE
of tests/support/mq_fake.py: moto's own answer with the endpoints rewritten to the test broker.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import aio_pika
import pytest
import yaml
from aiobotocore.session import get_session

from esm.config.loading import parse_config
from tests.support import rabbitmq as rmq
from tests.support.daemon import running_config
from tests.support.mq_brokers import moto_broker
from tests.support.mq_fake import FakeMqApi
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

WAIT = 45.0


@contextlib.asynccontextmanager
async def api_daemon(tmp_path: Path) -> AsyncIterator[tuple[Any, FakeMqApi]]:
    """A daemon with the control API (no mapping of its own) whose Amazon MQ lookups go through the
    FAKE DescribeBroker (tests/support/mq_fake.py: moto's answer, the endpoints the test's broker),
    and a Lambda client pointed at the API."""
    fake = await FakeMqApi().start()
    api_port = free_port()
    document = {"functions": {"fn": {"handler": "tests.support.rabbitmq:handle"},
                              "slow": {"handler": "tests.support.rabbitmq:handle", "timeout": 900}},
                "event_source_mappings": [], "metrics": {"listen": "127.0.0.1:0"},
                "aws": {"endpoints": {"mq": fake.url}},
                "checkpoints": {"sqlite": str(tmp_path / "state.db")},
                "api": {"listen": f"127.0.0.1:{api_port}"}, "shutdown_timeout": 10, "startup_timeout": 30}
    config = parse_config(yaml.safe_dump(document, sort_keys=False), base_dir=str(tmp_path))
    try:
        async with running_config(config):
            async with get_session().create_client("lambda", region_name="us-east-1",
                                                   endpoint_url=f"http://127.0.0.1:{api_port}") as client:
                yield client, fake
    finally:
        await fake.stop()


async def mq_request(fake: FakeMqApi, broker: rmq.Broker, queue: str, secret: str,
                     **fields: Any) -> dict[str, Any]:
    """A CreateEventSourceMapping request for `queue` on a moto broker whose DescribeBroker lists
    the test broker: what a user gives Lambda, with no esm: keys."""
    arn = await moto_broker("RABBITMQ")
    fake.endpoints[arn.rsplit(":", 1)[-1]] = [broker.uri]
    return {"EventSourceArn": arn, "FunctionName": "fn", "Queues": [queue],
            "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": secret}], **fields}


async def declared(broker: rmq.Broker, queue: str) -> None:
    connection = await aio_pika.connect(broker.url)
    try:
        await rmq.declare(await connection.channel(), queue)
    finally:
        await connection.close()


async def test_the_control_api_answers_a_stopped_mq_mapping_with_its_reason(tmp_path: Path) -> None:
    """behaviour §9.11, §10: an Amazon MQ mapping created through the control API whose broker
    refuses the secret's password is answered State Disabled, StateTransitionReason
    EVENT_SOURCE_AUTHN_ERROR, and LastProcessingResult says what the broker refused (no password);
    an update giving the right secret starts it again, and it delivers."""
    broker = rmq.broker()
    queue = rmq.queue_name("api-refused")
    await declared(broker, queue)
    async with api_daemon(tmp_path) as (client, fake):
        request = await mq_request(fake, broker, queue, rmq.secret(broker, password="not-the-password"))
        uuid = (await client.create_event_source_mapping(**request))["UUID"]

        async def stopped() -> bool:
            answer = await client.get_event_source_mapping(UUID=uuid)
            return answer["StateTransitionReason"] != "USER_INITIATED"

        await wait_until(stopped, timeout=WAIT, what="the mapping stopped")
        answer = await client.get_event_source_mapping(UUID=uuid)
        # The fix: a secret with the right password, given by an update, starts the mapping again.
        captured = rmq.install(rmq.Captured())
        await client.update_event_source_mapping(UUID=uuid, SourceAccessConfigurations=[
            {"Type": "BASIC_AUTH", "URI": rmq.secret(broker)}])
        connection = await aio_pika.connect(broker.url)
        try:
            await rmq.publish(await connection.channel(), queue, ["after-the-fix"])
        finally:
            await connection.close()
        await wait_until(lambda: captured.bodies == ["after-the-fix"], timeout=WAIT, what="delivered after the fix")
        fixed = await client.get_event_source_mapping(UUID=uuid)
    assert (fixed["State"], fixed["StateTransitionReason"], fixed["LastProcessingResult"]) == (
        "Enabled", "USER_INITIATED", "OK")
    assert answer["State"] == "Disabled"
    assert answer["StateTransitionReason"] == "EVENT_SOURCE_AUTHN_ERROR"
    assert answer["LastProcessingResult"].startswith("PROBLEM: EVENT_SOURCE_AUTHN_ERROR: ")
    assert broker.username in answer["LastProcessingResult"]
    assert "not-the-password" not in answer["LastProcessingResult"]


# What Lambda's answers for an Amazon MQ mapping never hold: stream, Kafka and retry settings.
NOT_FOR_MQ = {"StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor", "MaximumRetryAttempts",
              "BisectBatchOnFunctionError", "MaximumRecordAgeInSeconds", "TumblingWindowInSeconds", "Topics",
              "DestinationConfig", "SelfManagedEventSource", "AmazonManagedKafkaEventSourceConfig",
              "SelfManagedKafkaEventSourceConfig", "ProvisionedPollerConfig", "DocumentDBEventSourceConfig"}


async def test_an_mq_mapping_made_through_the_api_delivers_and_answers_lambdas_fields(tmp_path: Path) -> None:
    """behaviour §1, §9.11, §10: CreateEventSourceMapping with an `mq` broker ARN, Queues and a
    BASIC_AUTH secret (no VIRTUAL_HOST: DescribeBroker tells RabbitMQ) makes a mapping that
    delivers the queue's messages; Create, Get, List, Update and Delete answer the request's
    Queues and SourceAccessConfigurations, BatchSize (100 unless given), the mapping's states, and
    none of the stream, Kafka or retry members."""
    broker = rmq.broker()
    queue = rmq.queue_name("api")
    await declared(broker, queue)
    captured = rmq.install(rmq.Captured())
    async with api_daemon(tmp_path) as (client, fake):
        request = await mq_request(fake, broker, queue, rmq.secret(broker))
        created = await client.create_event_source_mapping(**request)
        connection = await aio_pika.connect(broker.url)
        try:
            await rmq.publish(await connection.channel(), queue, ["one", "two"])
        finally:
            await connection.close()
        await wait_until(lambda: len(captured.bodies) == 2, timeout=WAIT, what="both messages delivered")
        got = await client.get_event_source_mapping(UUID=created["UUID"])
        listed = await client.list_event_source_mappings(EventSourceArn=request["EventSourceArn"])
        updated = await client.update_event_source_mapping(UUID=created["UUID"], BatchSize=10)

        async def enabled() -> bool:
            return (await client.get_event_source_mapping(UUID=created["UUID"]))["State"] == "Enabled"

        await wait_until(enabled, timeout=WAIT, what="the update applied")
        deleted = await client.delete_event_source_mapping(UUID=created["UUID"])
    assert sorted(captured.bodies) == ["one", "two"]
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [created["UUID"]]
    answers = [created, got, listed["EventSourceMappings"][0], updated, deleted]
    for answer in answers:
        assert answer["UUID"] == created["UUID"] and answer["EventSourceArn"] == request["EventSourceArn"]
        assert answer["Queues"] == [queue]
        assert answer["SourceAccessConfigurations"] == request["SourceAccessConfigurations"]
        assert answer["FunctionArn"].endswith(":function:fn")
        assert answer["EventSourceMappingArn"].endswith(f":event-source-mapping:{created['UUID']}")
        assert answer["StateTransitionReason"] == "USER_INITIATED"
        assert not NOT_FOR_MQ & set(answer), NOT_FOR_MQ & set(answer)
    assert [a["BatchSize"] for a in answers] == [100, 100, 100, 10, 10]
    assert [a["State"] for a in answers] == ["Creating", "Enabled", "Enabled", "Updating", "Deleting"]
    assert got["LastProcessingResult"] == "OK"
    assert fake.asked, "the broker was found with DescribeBroker"


async def test_the_api_refuses_an_mq_mapping_whose_function_may_run_over_14_minutes(tmp_path: Path) -> None:
    """behaviour §9.11: Lambda lets an Amazon MQ mapping's function run at most 14 minutes; a
    CreateEventSourceMapping naming a function whose timeout is longer is refused."""
    broker = rmq.broker()
    async with api_daemon(tmp_path) as (client, fake):
        request = await mq_request(fake, broker, rmq.queue_name("slow"), rmq.secret(broker), FunctionName="slow")
        with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
            await client.create_event_source_mapping(**request)
        assert (await client.list_event_source_mappings())["EventSourceMappings"] == []
    assert "the timeout of function 'slow' (900s) is over 840s" in str(refused.value), refused.value
