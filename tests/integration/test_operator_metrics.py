"""The two numbers on-call reads first, per mapping, against the real backends:
`esm_invoke_throttles_total` (invokes the function refused: also in esm_invoke_errors_total) and
`esm_oldest_record_age_seconds` (one name for every source: SQS from the received messages'
SentTimestamp, Kinesis as its IteratorAge, Kafka from the record timestamps) (behaviour §6).

The throttling function is a small HTTP server in the test (the function is ours, not AWS's).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from esm.config.loading import parse_config
from tests.support import kafka as kk
from tests.support.daemon import mapping_config, running, running_config
from tests.support.kafka import create_topic, kafka_admin, produce, smk_mapping
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.recorder import Recorder, install
from tests.support.sqs import create_queue, send, sqs_client, wait_until_empty
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

# How long the records wait in the source before esm starts: the age must be at least this.
AGED = 3.0


def samples(daemon, name: str) -> dict[str, float]:
    """mapping UUID -> value of the family `name`."""
    return {s.labels["mapping"]: s.value for family in daemon.metrics.registry.collect()
            for s in family.samples if s.name == name}


class ThrottlingFunction:
    """An HTTP function that answers 429 to its first `throttles` invokes, then succeeds."""

    def __init__(self, throttles: int):
        self.throttles = throttles
        self.calls = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls += 1
        if self.calls <= self.throttles:
            return web.Response(status=429, text=json.dumps({"Type": "User", "message": "Rate Exceeded."}),
                                headers={"Retry-After": "0"})
        return web.json_response({})

    async def __aenter__(self) -> "ThrottlingFunction":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_throttles_are_counted_apart_from_other_invoke_errors():
    """behaviour §6/§9.6: each throttled invoke (429) counts once in esm_invoke_throttles_total and once
    in esm_invoke_errors_total, under the mapping's labels; the message is processed once the function
    takes it, and a mapping that was never throttled shows 0."""
    async with sqs_client() as sqs, ThrottlingFunction(throttles=3) as function:
        url, arn = await create_queue(sqs)
        await send(sqs, url, ['{"n": 1}'])
        config = mapping_config(
            {"FunctionName": "throttled", "EventSourceArn": arn, "BatchSize": 1},
            functions={"throttled": {"url": function.url, "timeout": 5}})
        async with running(config) as daemon:
            await wait_until_empty(sqs, url)
            throttles = samples(daemon, "esm_invoke_throttles_total")
            errors = samples(daemon, "esm_invoke_errors_total")
    assert len(throttles) == 1
    (mapping, count), = throttles.items()
    assert count == 3 and errors[mapping] == 3
    assert function.calls == 4


async def test_sqs_oldest_record_age_is_the_received_message_age():
    """behaviour §6: for SQS the oldest record age comes from the received messages' SentTimestamp:
    a message that waited AGED seconds before esm started shows at least that age."""
    install(Recorder())
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, ['{"n": 1}'])
        await asyncio.sleep(AGED)
        async with running(mapping_config({"FunctionName": "recorder", "EventSourceArn": arn})) as daemon:
            await wait_until_empty(sqs, url)
            ages = samples(daemon, "esm_oldest_record_age_seconds")
    assert len(ages) == 1 and list(ages.values())[0] >= AGED


async def test_kinesis_oldest_record_age_is_its_iterator_age():
    """behaviour §6: for a stream the oldest record age is IteratorAge under the one name (seconds, not
    milliseconds): the largest over the mapping's shards."""
    recorder = install(Recorder())
    async with kinesis_client() as kinesis:
        stream, arn = await create_stream(kinesis)
        await put(kinesis, stream, [("k", b'{"n": 1}')])
        await asyncio.sleep(AGED)
        mapping = {"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON"}
        async with running(mapping_config(mapping)) as daemon:
            await wait_until(lambda: len(recorder.records) >= 1, what="the record invoked")
            ages = samples(daemon, "esm_oldest_record_age_seconds")
            iterator = samples(daemon, "esm_iterator_age_milliseconds")
    assert len(ages) == 1
    (mapping_id, age), = ages.items()
    assert age >= AGED and age == pytest.approx(iterator[mapping_id] / 1000)


async def test_kafka_oldest_record_age_from_record_timestamps():
    """behaviour §6: Kafka has no IteratorAge; its oldest record age is read the same way from the
    record timestamps, under the same name."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [kk.Message(value=b'{"n": 1}')])
        await asyncio.sleep(AGED)
        config = parse_config(mapping_config(smk_mapping(topic), functions=kk.FUNCTIONS))
        async with running_config(config) as daemon:
            await wait_until(lambda: len(recorder.records) >= 1, what="the record invoked")
            ages = samples(daemon, "esm_oldest_record_age_seconds")
    assert len(ages) == 1 and list(ages.values())[0] >= AGED
