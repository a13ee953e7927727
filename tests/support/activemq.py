"""The ActiveMQ test broker (scripts/backends: ACTIVEMQ_STOMP_URL and its user) for tests: a STOMP
client, sending persistent messages, draining a queue (the dead-letter queue), the BASIC_AUTH
secret in Secrets Manager (moto), a mapping naming all of it, and a recorder of `aws:mq` events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from typing import Any, AsyncIterator

import stompman
from aiobotocore.session import get_session

from tests.support import recorder as rec

DLQ = "ActiveMQ.DLQ"
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:esm-test:b-6c1f0e57-0000-4000-8000-000000000001"


def broker() -> tuple[str, int, str, str]:
    """(host, port, user, password) of the test broker."""
    url = os.environ["ACTIVEMQ_STOMP_URL"]
    host, _, port = url.removeprefix("stomp://").partition(":")
    return host, int(port), os.environ["ACTIVEMQ_USERNAME"], os.environ["ACTIVEMQ_PASSWORD"]


@contextlib.asynccontextmanager
async def stomp_client(password: str | None = None) -> AsyncIterator[stompman.Client]:
    host, port, user, real = broker()
    async with stompman.Client([stompman.ConnectionParameters(host, port, user, password or real)]) as client:
        yield client


def admin_url() -> str:
    """The test broker's admin endpoint (GET /queue?name=Q: what the queue holds)."""
    return os.environ["ACTIVEMQ_ADMIN_URL"]


def queue_name(prefix: str = "q") -> str:
    return f"esm-{prefix}-{uuid.uuid4().hex[:10]}"


async def send(client: stompman.Client, queue: str, bodies: list[str | bytes], *, text: bool = False,
               headers: dict[str, str] | None = None) -> None:
    """Persistent messages (the dead-letter queue takes only those); `text`: TextMessages (no
    content-length), else BytesMessages."""
    for body in bodies:
        data = body.encode() if isinstance(body, str) else body
        await client.send(data, queue, add_content_length=not text, receipt_timeout=10,
                          headers={"persistent": "true", **(headers or {})})


async def drain(queue: str, *, idle: float = 2.0, match: Any = None) -> list[Any]:
    """Acknowledge and return the frames waiting on `queue` (those `match(frame)` accepts; the
    others are left there), once none came for `idle` seconds."""
    frames: list[Any] = []
    arrived = asyncio.Event()

    async def take(frame: Any) -> None:
        # Frames of other tests are left unacknowledged: they go back when the subscription ends
        # (a NACK would hand them to the broker's redelivery policy).
        if match is None or match(frame):
            frames.append(frame)
            await frame.ack()
        arrived.set()

    async with stomp_client() as client:
        subscription = await client.subscribe_with_manual_ack(queue, take, ack="client-individual")
        while True:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), idle)
            except asyncio.TimeoutError:
                break
        await subscription.unsubscribe()
    return frames


async def make_secret(password: str | None = None) -> str:
    """A BASIC_AUTH secret for the test user (with another password, when given); its ARN."""
    _, _, user, real = broker()
    async with get_session().create_client("secretsmanager", region_name="us-east-1") as client:
        answer = await client.create_secret(Name=f"esm-mq-{uuid.uuid4().hex[:10]}",
                                            SecretString=json.dumps({"username": user, "password": password or real}))
    return str(answer["ARN"])


def mapping(queue: str, secret: str, function: str = "recorder", **fields: Any) -> dict[str, Any]:
    return {"FunctionName": function, "EventSourceArn": BROKER_ARN, "Queues": [queue],
            "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": secret}],
            "esm": {"broker": os.environ["ACTIVEMQ_STOMP_URL"]}, **fields}


class MqRecorder(rec.Recorder):
    """A Recorder (tests/support/recorder.py) of `aws:mq` events: each batch is the event's messages."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.events: list[dict[str, Any]] = []

    async def handle(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return await super().handle({"Records": event["messages"], **event})

    def bodies(self) -> list[str]:
        import base64
        return [base64.b64decode(m["data"]).decode() for m in self.records]


class Replica:
    """The function of one esm replica (two daemons in one test: `handle_a`, `handle_b`)."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.bodies: list[str] = []
        self.changed = asyncio.Event()

    async def handle(self, event: dict[str, Any]) -> None:
        import base64
        await asyncio.sleep(self.delay)
        self.bodies.extend(base64.b64decode(m["data"]).decode() for m in event["messages"])
        self.changed.set()

    async def wait_for(self, condition: Any, timeout: float = 60.0) -> None:
        async def reached() -> None:
            while not condition():
                self.changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.5)
        await asyncio.wait_for(reached(), timeout)


REPLICAS: dict[str, Replica] = {}


async def handle_a(event: dict[str, Any], context: Any) -> None:
    await REPLICAS["a"].handle(event)


async def handle_b(event: dict[str, Any], context: Any) -> None:
    await REPLICAS["b"].handle(event)
