"""The SQS source against a scripted SQS client: what it receives and how it settles (behaviour §1-3, §6).

No backend: a fake client records every call and answers from a script, so each rule is checked
on the exact requests the source makes (ReceiveMessage size and long poll, the in-flight
reservation while a receive is under way, deletes and visibility changes in chunks of 10, which
failed entries are retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator

import orjson
import pytest
import yaml
from botocore.exceptions import ClientError

from esm.aio import Stopped
from esm.config.loading import parse_config
from esm.config.pipeline import PipelineSettings
from esm.core.inflight import InFlightBytes
from esm.core.records import Disposition
from esm.errors import SourceUnavailable
from esm.observability.metrics import Metrics
from esm.sources.sqs.records import Receipt, message_group
from esm.sources.sqs.source import LONG_POLL_SECONDS, SqsSource

STANDARD = "arn:aws:sqs:us-east-1:000000000000:orders"
FIFO = "arn:aws:sqs:us-east-1:000000000000:orders.fifo"
URL = "http://sqs.local/000000000000/orders"


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Call")


class FakeSqs:
    """Records calls; `script[operation]` is a list of answers (an exception is raised) used in turn."""

    def __init__(self, attributes: dict[str, str] | None = None):
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.script: dict[str, list[Any]] = {}
        self.attributes = attributes if attributes is not None else {"VisibilityTimeout": "45"}
        self.held_during_receive: list[int] = []
        self.in_flight: InFlightBytes | None = None

    def _answer(self, operation: str, kwargs: dict[str, Any], default: Any) -> Any:
        self.calls.append((operation, kwargs))
        answers = self.script.get(operation)
        answer = answers.pop(0) if answers else default
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def get_queue_url(self, **kwargs: Any) -> Any:
        return self._answer("get_queue_url", kwargs, {"QueueUrl": URL})

    async def get_queue_attributes(self, **kwargs: Any) -> Any:
        return self._answer("get_queue_attributes", kwargs, {"Attributes": self.attributes})

    async def receive_message(self, **kwargs: Any) -> Any:
        if self.in_flight is not None:
            self.held_during_receive.append(self.in_flight.held)
        return self._answer("receive_message", kwargs, {})

    async def delete_message_batch(self, **kwargs: Any) -> Any:
        return self._answer("delete_message_batch", kwargs, _all_successful(kwargs))

    async def change_message_visibility_batch(self, **kwargs: Any) -> Any:
        return self._answer("change_message_visibility_batch", kwargs, _all_successful(kwargs))


def _all_successful(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]]}


class FakeClients:
    def __init__(self, sqs: FakeSqs):
        self.sqs = sqs

    def region_for(self, arn_region: str | None = None) -> str | None:
        return arn_region

    @contextlib.asynccontextmanager
    async def client(self, service: str, region: str | None = None, **config: Any) -> AsyncIterator[Any]:
        assert service == "sqs"
        yield self.sqs


class FakeRuntime:
    def __init__(self, sqs: FakeSqs):
        self.clients = FakeClients(sqs)


def _message(n: int, **attributes: str) -> dict[str, Any]:
    return {"MessageId": f"m{n}", "ReceiptHandle": f"rh{n}", "Body": f"body {n}", "MD5OfBody": "x",
            "Attributes": {"SentTimestamp": "1700000000000", **attributes}}


def _source(sqs: FakeSqs, arn: str = STANDARD, **fields: Any) -> tuple[SqsSource, Metrics]:
    functions = {"fn": {"handler": "tests.support.recorder:handle", "timeout": 30}}
    doc = {"functions": functions, "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": arn, **fields}]}
    mapping = parse_config(yaml.safe_dump(doc, sort_keys=False), environ={}).mappings[0]
    metrics = Metrics()
    settings = PipelineSettings.read(mapping, default_batch_size=SqsSource.default_batch_size)
    return SqsSource(mapping, settings, FakeRuntime(sqs), metrics.for_mapping("uuid-1", "sqs")), metrics


def _count(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(f"{name}_total", {"mapping": "uuid-1", "source": "sqs"}) or 0.0


def _receipts(*numbers: int) -> list[Receipt]:
    return [Receipt(f"rh{n}", f"m{n}") for n in numbers]


async def test_batch_size_defaults_to_ten():
    """behaviour §1: BatchSize defaults to 10 for SQS."""
    source, _ = _source(FakeSqs())
    assert PipelineSettings.read(source.mapping, default_batch_size=SqsSource.default_batch_size).batch_size == 10


async def test_connect_reads_the_queue_and_fifo_groups_follow_its_attributes():
    """behaviour §3 (FIFO order per MessageGroupId): a FIFO queue's records are grouped by MessageGroupId; a
    standard queue has no groups (group_of None, so the engine never holds back later messages)."""
    sqs = FakeSqs({"VisibilityTimeout": "45", "FifoQueue": "true"})
    source, _ = _source(sqs, FIFO)
    await source.connect()
    assert source.visibility_timeout == 45.0 and source.format.group_of is message_group
    standard, _ = _source(FakeSqs())
    await standard.connect()
    assert standard.format.group_of is None


async def test_an_unreachable_queue_is_source_unavailable():
    """behaviour §9.6 (startup): a queue that cannot be reached is reported, not raised as a crash."""
    sqs = FakeSqs()
    sqs.script["get_queue_url"] = [_error("AWS.SimpleQueueService.NonExistentQueue")]
    source, _ = _source(sqs)
    with pytest.raises(SourceUnavailable, match=f"queue {STANDARD} is not reachable"):
        await source.connect()


async def test_receive_asks_for_at_most_ten_with_a_bounded_long_poll_and_reserves_room():
    """behaviour §1 (ReceiveMessage takes at most 10), the 5 s long poll that bounds shutdown, and the
    in-flight cap: while a receive is under way its largest possible answer is held, then released."""
    sqs = FakeSqs({"VisibilityTimeout": "45", "MaximumMessageSize": "1000"})
    source, _ = _source(sqs)
    await source.connect()
    in_flight = InFlightBytes(10**9)
    sqs.in_flight = in_flight
    sqs.script["receive_message"] = [{"Messages": [_message(1), _message(2)]}, {}, {}]
    records = await source.receive(50, None, in_flight)
    await source.receive(3, 0.2, in_flight)
    await source.receive(3, 30, in_flight)
    receives = [kwargs for op, kwargs in sqs.calls if op == "receive_message"]
    assert [(r["MaxNumberOfMessages"], r["WaitTimeSeconds"]) for r in receives] == [
        (10, LONG_POLL_SECONDS), (3, 1), (3, LONG_POLL_SECONDS)]
    assert sqs.held_during_receive[0] == 10 * (1000 + 2048) and in_flight.held == 0
    assert [r.item_id for r in records] == ["m1", "m2"]
    assert [r.token for r in records] == _receipts(1, 2)


async def test_a_failed_receive_is_counted_and_retried():
    """behaviour §6 PollingErrorCount: each failed ReceiveMessage counts once; the receive retries until answered."""
    sqs = FakeSqs()
    source, metrics = _source(sqs)
    await source.connect()
    sqs.script["receive_message"] = [_error("ServiceUnavailable"), OSError("reset"), {"Messages": [_message(1)]}]
    records = await source.receive(10, None, InFlightBytes(10**9))
    assert [r.item_id for r in records] == ["m1"] and _count(metrics, "esm_polling_errors") == 2


async def test_shutdown_ends_the_wait_between_failed_receives():
    """Shutdown (behaviour §9.6) is not held up by an unreachable queue: once stopping is set, the backoff
    wait after a failed ReceiveMessage ends with Stopped instead of trying again."""
    sqs = FakeSqs()
    source, _ = _source(sqs)
    await source.connect()
    sqs.script["receive_message"] = [_error("ServiceUnavailable")] * 100
    stopping = asyncio.Event()
    stopping.set()
    with pytest.raises(Stopped):
        await source.receive(10, None, InFlightBytes(10**9), stopping)
    assert len([op for op, _ in sqs.calls if op == "receive_message"]) == 1


async def test_settle_deletes_processed_and_filtered_in_chunks_and_leaves_failures():
    """behaviour §3 + 5: processed and filtered-out messages are deleted (10 per call, DeletedEventCount);
    a failed message is left alone, to return after its visibility timeout."""
    sqs = FakeSqs()
    source, metrics = _source(sqs)
    await source.connect()
    tokens = [(r, Disposition.SUCCEEDED) for r in _receipts(*range(20))]
    tokens += [(r, Disposition.FILTERED) for r in _receipts(20, 21)] + [(r, Disposition.FAILED) for r in _receipts(22)]
    await source.settle(tokens)
    deletes = [kwargs["Entries"] for op, kwargs in sqs.calls if op == "delete_message_batch"]
    assert [len(entries) for entries in deletes] == [10, 10, 2]
    handles = [e["ReceiptHandle"] for entries in deletes for e in entries]
    assert handles == [f"rh{n}" for n in range(22)]
    assert not [op for op, _ in sqs.calls if op == "change_message_visibility_batch"]
    assert _count(metrics, "esm_deleted_events") == 22


async def test_released_messages_are_made_visible_at_once(caplog):
    """Issue 4.6: messages gathered but never invoked get VisibilityTimeout 0, and the release is logged."""
    sqs = FakeSqs()
    source, metrics = _source(sqs)
    await source.connect()
    with caplog.at_level(logging.INFO, logger="esm.sqs"):
        await source.settle([(r, Disposition.RELEASED) for r in _receipts(1, 2, 3)])
    (call,) = [kwargs for op, kwargs in sqs.calls if op == "change_message_visibility_batch"]
    assert [(e["ReceiptHandle"], e["VisibilityTimeout"]) for e in call["Entries"]] == [
        ("rh1", 0), ("rh2", 0), ("rh3", 0)]
    assert "released 3 gathered message(s)" in caplog.text and _count(metrics, "esm_deleted_events") == 0


async def test_failed_entries_are_retried_unless_the_sender_is_at_fault():
    """behaviour §6 CommitErrorCount: an entry that failed on SQS's side is retried; one that failed by the
    sender's fault (an expired receipt) is not, and what stays unsettled is counted once per message."""
    sqs = FakeSqs()
    source, metrics = _source(sqs)
    await source.connect()
    sqs.script["delete_message_batch"] = [
        {"Successful": [{"Id": "0"}], "Failed": [{"Id": "1", "SenderFault": False}, {"Id": "2", "SenderFault": True}]},
        {"Successful": [{"Id": "1"}], "Failed": [{"Id": "2", "SenderFault": True}]},
    ]
    await source.settle([(r, Disposition.SUCCEEDED) for r in _receipts(0, 1, 2)])
    deletes = [[e["ReceiptHandle"] for e in kwargs["Entries"]] for op, kwargs in sqs.calls
               if op == "delete_message_batch"]
    assert deletes == [["rh0", "rh1", "rh2"], ["rh1", "rh2"]]
    assert _count(metrics, "esm_deleted_events") == 2 and _count(metrics, "esm_commit_errors") == 1


async def test_payload_is_lambdas_envelope_with_the_transform_applied():
    """behaviour §2: the invoke payload is {"Records": [...]}; esm.transform rewrites each record's body;
    a partial batch response names messages by messageId (strings only)."""
    sqs = FakeSqs()
    source, _ = _source(sqs, esm={"transform": "body.order"})
    await source.connect()
    sqs.script["receive_message"] = [{"Messages": [{**_message(1), "Body": '{"order": {"id": 7}, "x": 1}'}]}]
    (record,) = await source.receive(10, None, InFlightBytes(10**9))
    payload = orjson.loads(source.format.payload([record]))
    assert list(payload) == ["Records"] and payload["Records"][0]["messageId"] == "m1"
    assert orjson.loads(payload["Records"][0]["body"]) == {"id": 7} and "x" in record.event["body"]
    assert source.format.read_identifier("m1") == "m1" and source.format.read_identifier(1) is None
    assert source.format.arrival(record) == 1700000000.0
