"""Amazon MQ mappings that meet an error no retry mends stop alone, with Lambda's
StateTransitionReason code (behaviour §9.11), against the real brokers of scripts/backends.

One daemon runs several mappings from its config: those whose broker refuses the secret's
password or whose queue does not exist stop
(state Disabled, `esm status` names the code and what the source saw), while a good mapping in
the same daemon keeps delivering. The same through the control API: GetEventSourceMapping answers
State Disabled and the code as StateTransitionReason.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aio_pika
import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import activemq as amq
from tests.support import rabbitmq as rmq
from tests.support.daemon import RunningDaemon, running_config
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


async def test_config_mode_stops_only_the_broken_mappings_and_esm_status_says_why() -> None:
    """behaviour §9.11: in one daemon, a RabbitMQ mapping whose password the broker refuses stops with
    EVENT_SOURCE_AUTHN_ERROR, one whose queue does not exist with ESM_CONFIG_NOT_VALID, an ActiveMQ
    mapping with a refused password with EVENT_SOURCE_AUTHN_ERROR; each is Disabled, counted in esm_mapping_stopped and
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
                          "recorder": {"handler": "tests.support.recorder:handle"}},
            "event_source_mappings": [
                rmq.mapping(broker, good_queue, rmq.secret(broker), esm={"name": "rmq-good"}),
                rmq.mapping(broker, bad_queue, wrong, esm={"name": "rmq-refused"}),
                rmq.mapping(broker, rmq.queue_name("missing"), rmq.secret(broker), esm={"name": "rmq-missing"}),
                activemq,
            ],
            "metrics": {"listen": f"127.0.0.1:{port}"}, "shutdown_timeout": 10, "startup_timeout": 30}
        config = parse_config(yaml.safe_dump(document, sort_keys=False), base_dir=".")
        uuids = {m.name: m.uuid for m in config.mappings}
        expected = {"rmq-refused": "EVENT_SOURCE_AUTHN_ERROR", "rmq-missing": "ESM_CONFIG_NOT_VALID",
                    "amq-refused": "EVENT_SOURCE_AUTHN_ERROR"}
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
