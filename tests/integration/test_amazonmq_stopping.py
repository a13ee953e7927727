"""Amazon MQ mappings that meet an error no retry mends stop alone, with Lambda's
StateTransitionReason code (behaviour §9.11), against the real brokers of scripts/backends.

One daemon runs several mappings from its config: those whose broker refuses the secret's
password, whose queue does not exist or whose function may run longer than 14 minutes stop
(state Disabled, `esm status` names the code and what the source saw), while a good mapping in
the same daemon keeps delivering. The same through the control API: GetEventSourceMapping answers
State Disabled and the code as StateTransitionReason.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import aio_pika
import pytest
import yaml
from aiobotocore.session import get_session

from esm.config.loading import parse_config
from tests.support import activemq as amq
from tests.support import rabbitmq as rmq
from tests.support.daemon import RunningDaemon, running_config
from tests.support.mq_fake import FakeMqApi, moto_broker
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

WAIT = 45.0
ESM = [sys.executable, "-m", "esm"]


def stopped_reason(daemon: RunningDaemon, uuid: str) -> str | None:
    """The reason label of the mapping's esm_mapping_stopped series that is 1, if any."""
    for family in daemon.metrics.registry.collect():
        if family.name == "esm_mapping_stopped":
            for sample in family.samples:
                if sample.labels.get("mapping") == uuid and sample.value == 1:
                    return sample.labels["reason"]
    return None


def esm_status(port: int) -> str:
    result = subprocess.run([*ESM, "status", "--url", f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows(status: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in status.splitlines()[2:] if line and not line.startswith(" ")}


async def test_config_mode_stops_only_the_broken_mappings_and_esm_status_says_why(
        tmp_path: Path) -> None:
    """behaviour §9.11: in one daemon, a RabbitMQ mapping whose password the broker refuses stops with
    EVENT_SOURCE_AUTHN_ERROR, one whose queue does not exist with ESM_CONFIG_NOT_VALID, an ActiveMQ
    mapping with a refused password with EVENT_SOURCE_AUTHN_ERROR, and one whose function may run 15
    minutes with FUNCTION_CONFIG_NOT_VALID; each is Disabled, counted in esm_mapping_stopped and
    named by `esm status` (code, user; never the password), while the good mapping keeps delivering
    and the daemon stays up and ready."""
    broker = rmq.broker()
    good_queue, bad_queue = rmq.queue_name("good"), rmq.queue_name("refused")
    connection = await aio_pika.connect(broker.url)
    try:
        channel = await connection.channel()
        await rmq.declare(channel, good_queue)
        await rmq.declare(channel, bad_queue)
        captured = rmq.install(rmq.Captured())
        wrong = rmq.secret(broker, password="not-the-password")
        amq_wrong = await amq.make_secret(password="not-the-amq-password")
        activemq = amq.mapping(amq.queue_name("refused"), amq_wrong, function="recorder")
        activemq["esm"]["name"] = "amq-refused"
        port = free_port()
        document = {
            "functions": {"fn": {"handler": "tests.support.rabbitmq:handle"},
                          "slow": {"handler": "tests.support.rabbitmq:handle", "timeout": 900},
                          "recorder": {"handler": "tests.support.recorder:handle"}},
            "event_source_mappings": [
                rmq.mapping(broker, good_queue, rmq.secret(broker), esm={"name": "rmq-good"}),
                rmq.mapping(broker, bad_queue, wrong, esm={"name": "rmq-refused"}),
                rmq.mapping(broker, rmq.queue_name("missing"), rmq.secret(broker), esm={"name": "rmq-missing"}),
                rmq.mapping(broker, good_queue, rmq.secret(broker), function="slow", esm={"name": "rmq-slow"}),
                activemq,
            ],
            "metrics": {"listen": f"127.0.0.1:{port}"}, "shutdown_timeout": 10, "startup_timeout": 30}
        config = parse_config(yaml.safe_dump(document, sort_keys=False), base_dir=".")
        uuids = {m.name: m.uuid for m in config.mappings}
        expected = {"rmq-refused": "EVENT_SOURCE_AUTHN_ERROR", "rmq-missing": "ESM_CONFIG_NOT_VALID",
                    "rmq-slow": "FUNCTION_CONFIG_NOT_VALID", "amq-refused": "EVENT_SOURCE_AUTHN_ERROR"}
        async with running_config(config) as daemon:
            await wait_until(lambda: all(stopped_reason(daemon, uuids[n]) for n in expected), timeout=WAIT,
                             what="the broken mappings stopped")
            await rmq.publish(channel, good_queue, ["after-the-stop"])
            await wait_until(lambda: "after-the-stop" in captured.bodies, timeout=WAIT,
                             what="the good mapping delivering")
            status = await asyncio.to_thread(esm_status, port)
            reasons = {name: stopped_reason(daemon, uuids[name]) for name in uuids}
            assert not daemon.task.done(), "the daemon kept running"
    finally:
        await connection.close()
    assert reasons == {**expected, "rmq-good": None}
    table = rows(status)
    assert status.splitlines()[0].endswith(", ready"), status
    assert table["rmq-good"][2] == "Enabled", status
    for name, code in expected.items():
        assert table[name][2] == "Disabled", status
        [line] = [line for line in status.splitlines() if line.startswith(f"stopped  {name}: ")]
        assert line.startswith(f"stopped  {name}: {code}: "), line
    refused_line = next(line for line in status.splitlines() if line.startswith("stopped  rmq-refused: "))
    assert broker.username in refused_line and "not-the-password" not in refused_line
    assert "not-the-amq-password" not in status
    assert "900s" in next(line for line in status.splitlines() if line.startswith("stopped  rmq-slow: "))


# ---------------------------------------------------------------- through the control API


@contextlib.asynccontextmanager
async def api_daemon(tmp_path: Path) -> AsyncIterator[tuple[Any, FakeMqApi]]:
    """A daemon with the control API (no mapping of its own) whose Amazon MQ lookups go through the
    FAKE DescribeBroker (tests/support/mq_fake.py: moto's answer, the endpoints the test's broker),
    and a Lambda client pointed at the API."""
    fake = await FakeMqApi().start()
    api_port = free_port()
    document = {"functions": {"fn": {"handler": "tests.support.rabbitmq:handle"}},
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
    EVENT_SOURCE_AUTHN_ERROR, and LastProcessingResult says what the broker refused (no password)."""
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
    assert answer["State"] == "Disabled"
    assert answer["StateTransitionReason"] == "EVENT_SOURCE_AUTHN_ERROR"
    assert answer["LastProcessingResult"].startswith("PROBLEM: EVENT_SOURCE_AUTHN_ERROR: ")
    assert broker.username in answer["LastProcessingResult"]
    assert "not-the-password" not in answer["LastProcessingResult"]
