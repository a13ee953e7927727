"""The RabbitMQ broker of scripts/backends for tests: where it is, queues, messages and counts.

`broker()` is the running broker (RABBITMQ_* exports; the script runs again when this environment
lacks them): a skip when it cannot start, a failure under CI / ESM_REQUIRE_BACKENDS=1. Queues are
made with aio-pika (quorum queues, optionally with a delivery limit and a dead-letter queue);
what a queue holds (ready, unacknowledged) is read from the management API, whose counts lag by
up to a quarter second (tests wait for them). `Captured` is an in-process function that keeps
each `aws:rmq` event it is invoked with; `mapping()` and `config()` write the mapping.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import aio_pika
import aiohttp
import boto3
import pytest
import yaml

from tests.backends import backends_required, ensure_backends

BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:esm-test:b-0000aaaa-1111-2222-3333-444455556666"


@dataclass(frozen=True)
class Broker:
    port: int
    url: str  # amqp://user:password@127.0.0.1:port/ (the test client's)
    management: str
    username: str
    password: str
    vhost: str  # the second vhost the user may use

    @property
    def uri(self) -> str:
        """esm.broker: the broker without credentials."""
        return f"amqp://127.0.0.1:{self.port}"

    def vhost_url(self, vhost: str) -> str:
        return f"{self.url.rstrip('/')}/{urllib.parse.quote(vhost, safe='')}"


def broker() -> Broker:
    ensure_backends()
    if not os.environ.get("RABBITMQ_URL"):
        ensure_backends(reuse_environment=False)
    if not os.environ.get("RABBITMQ_URL"):
        message = "scripts/backends start did not export RABBITMQ_URL (rabbitmq-server not installed?)"
        if backends_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    env = os.environ
    return Broker(port=int(env["RABBITMQ_PORT"]), url=env["RABBITMQ_URL"], management=env["RABBITMQ_MANAGEMENT_URL"],
                  username=env["RABBITMQ_USERNAME"], password=env["RABBITMQ_PASSWORD"], vhost=env["RABBITMQ_VHOST"])


def secret(b: Broker, *, password: str | None = None) -> str:
    """A fresh Secrets Manager secret (moto) holding the broker user's username and password; its ARN."""
    client = boto3.client("secretsmanager", endpoint_url=os.environ["ESM_AWS_ENDPOINT"])
    answer = client.create_secret(Name=f"rmq-{uuid.uuid4().hex[:10]}", SecretString=json.dumps(
        {"username": b.username, "password": b.password if password is None else password}))
    return str(answer["ARN"])


def queue_name(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def declare(channel: Any, name: str, *, delivery_limit: int | None = None,
                  dead_letter: str | None = None) -> None:
    """A durable quorum queue; with `delivery_limit`, a message delivered that many times more is
    dead-lettered (to the queue `dead_letter`, through the default exchange)."""
    arguments: dict[str, Any] = {"x-queue-type": "quorum"}
    if delivery_limit is not None:
        arguments["x-delivery-limit"] = delivery_limit
    if dead_letter is not None:
        await channel.declare_queue(dead_letter, durable=True, arguments={"x-queue-type": "quorum"})
        arguments["x-dead-letter-exchange"] = ""
        arguments["x-dead-letter-routing-key"] = dead_letter
    await channel.declare_queue(name, durable=True, arguments=arguments)


async def publish(channel: Any, queue: str, bodies: list[bytes | str], **properties: Any) -> None:
    for body in bodies:
        data = body.encode() if isinstance(body, str) else body
        await channel.default_exchange.publish(aio_pika.Message(data, **properties), routing_key=queue)


async def publish_bare(channel: Any, queue: str, body: bytes) -> None:
    """A message with no properties at all (aio-pika's Message would add a message id)."""
    raw = await channel.get_underlay_channel()
    await raw.basic_publish(body, routing_key=queue)


async def counts(b: Broker, queue: str, vhost: str = "/") -> tuple[int, int]:
    """(ready, unacknowledged) of `queue`, as the management API last sampled them."""
    url = f"{b.management}/api/queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(queue, safe='')}"
    token = base64.b64encode(f"{b.username}:{b.password}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as session:
        async with session.get(url) as answer:
            answer.raise_for_status()
            info = await answer.json()
    return int(info.get("messages_ready", 0)), int(info.get("messages_unacknowledged", 0))


def mapping(b: Broker, queue: str, secret_arn: str, *, vhost: str | None = None, function: str = "fn",
            **fields: Any) -> dict[str, Any]:
    access = [{"Type": "BASIC_AUTH", "URI": secret_arn}]
    if vhost is not None:
        access.append({"Type": "VIRTUAL_HOST", "URI": vhost})
    extension = {"broker": b.uri, **fields.pop("esm", {})}
    return {"EventSourceArn": BROKER_ARN, "FunctionName": function, "Queues": [queue],
            "SourceAccessConfigurations": access, **fields, "esm": extension}


def config(*mappings: dict[str, Any], handler: str = "tests.support.rabbitmq:handle", **top: Any) -> str:
    document = {"functions": {"fn": {"handler": handler}}, "event_source_mappings": list(mappings),
                "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30, **top}
    return yaml.safe_dump(document, sort_keys=False)


def messages(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of one `aws:rmq` event (of its one queue)."""
    [listed] = event["rmqMessagesByQueue"].values()
    return list(listed)


def data(message: dict[str, Any]) -> str:
    return base64.b64decode(message["data"]).decode()


@dataclass
class Captured:
    """The function: keeps each event; `answer(event)` may raise to fail the batch."""

    answer: Callable[[dict[str, Any]], Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def bodies(self) -> list[str]:
        return [data(m) for e in self.events for m in messages(e)]

    def batches(self) -> list[list[str]]:
        return [[data(m) for m in messages(e)] for e in self.events]


CURRENT = Captured()


def install(captured: Captured) -> Captured:
    global CURRENT
    CURRENT = captured
    return captured


async def handle(event: dict[str, Any], context: Any) -> Any:
    captured = CURRENT
    captured.events.append(event)
    captured.changed.set()
    if captured.answer is not None:
        result = captured.answer(event)
        if asyncio.iscoroutine(result):
            result = await result
        return result
    return None
