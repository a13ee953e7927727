"""The queue contract (esm.core.contract.QueueSource, QueueRecordFormat; behaviour §3, §7).

The queue runner (esm.engine.queue_mapping) asks a queue source only what the contract declares:
it runs here a FAKE queue source (scripted in memory) that has the contract's members and nothing
else, with a FAKE function; the runner, its pollers, gather, invoke path and decisions are the real
engine. And SQS gives every member of the queue contract, and stubs none of the stream-only ones.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, Hashable, Sequence

import yaml

from esm.aio import unless_stopped
from esm.config.loading import parse_config
from esm.config.pipeline import PipelineSettings
from esm.core.contract import FixedScaling, QueueRecordFormat, QueueSource, RecordFormat, StreamRecordFormat
from esm.core.decide import Mode
from esm.core.inflight import InFlightBytes
from esm.core.records import Disposition, Record
from esm.engine.queue_mapping import QueueMapping
from esm.invokers.base import FunctionError, Succeeded
from esm.observability.metrics import Metrics
from esm.sources.sqs.source import SqsSource


def members(protocol: type) -> set[str]:
    """The names a protocol declares: its attributes and its methods, its bases' included."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass in (object,) or klass.__name__ in ("Protocol", "Generic"):
            continue
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {n for n in vars(klass) if not n.startswith("_")}
    return names


def rec(i: int, *, keep: bool = True) -> Record:
    return Record(event={"n": i, "keep": keep}, item_id=f"m{i}", size=10, arrived_at=0.0, token=f"t{i}")


class FakeQueueFormat:
    """FAKE QueueRecordFormat: only the contract's members."""

    source_arn = "fake:queue"
    group_of = None

    def payload(self, records: Sequence[Record]) -> bytes:
        return ",".join(r.item_id for r in records).encode()

    def events(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        return [r.event for r in records]

    def read_identifier(self, value: Any) -> Hashable | None:
        return value if isinstance(value, str) and value else None

    def arrival(self, record: Record) -> float:
        return 0.0

    def keep(self, matcher: Any, record: Record) -> bool:
        return record.event["keep"]

    def where(self, unit: str, records: Sequence[Record]) -> str:
        return ",".join(r.item_id for r in records)


class FakeQueue:
    """FAKE QueueSource: receives come from a script, settles are recorded; only the contract's members."""

    mode = Mode.QUEUE
    default_batch_size = 10
    account = None
    script: list[list[Record]] = []
    settled: list[tuple[Any, Disposition]] = []

    @staticmethod
    def concurrency_ceiling(request: Any) -> int:
        return 1

    def __init__(self, mapping: Any, settings: Any, runtime: Any, metrics: Any, identity: Any):
        self.format = FakeQueueFormat()

    @property
    def hold_seconds(self) -> float:
        return 30.0

    def scaling(self, invoker_cap: int) -> FixedScaling:
        return FixedScaling(1)

    async def connect(self) -> None: ...

    async def receive(self, count: int, wait: float | None, in_flight: InFlightBytes,
                      stopping: asyncio.Event) -> list[Record]:
        if self.script:
            return self.script.pop(0)[:count]
        await unless_stopped(asyncio.sleep(wait if wait is not None else 3600), stopping)
        return []

    async def settle(self, tokens: Sequence[tuple[Any, Disposition]]) -> None:
        self.settled.extend(tokens)

    async def close(self) -> None: ...


class FakeFunction:
    """FAKE function: answers each invoke from a script (a result per call), recording the payloads."""

    name = "fake"
    max_concurrency = 10

    def __init__(self, *answers: Any):
        self.answers = list(answers)
        self.payloads: list[str] = []

    async def invoke(self, payload: bytes, timeout: float | None = None) -> Any:
        self.payloads.append(payload.decode())
        return self.answers.pop(0) if self.answers else Succeeded(None)


def mapping(**fields: Any) -> Any:
    functions = {"fn": {"handler": "tests.support.recorder:handle", "timeout": 30}}
    doc = {"functions": functions, "event_source_mappings": [
        {"FunctionName": "fn", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q", **fields}]}
    return parse_config(yaml.safe_dump(doc, sort_keys=False), environ={}).mappings[0]


async def run_until_settled(function: FakeFunction, script: list[list[Record]], settles: int,
                            **fields: Any) -> list[tuple[Any, Disposition]]:
    FakeQueue.script, FakeQueue.settled = list(script), []
    runner = QueueMapping(mapping(**fields), FakeQueue, None, function,  # type: ignore[arg-type]
                          Metrics().for_mapping("uuid-1", "sqs"))
    await runner.connect()
    task = asyncio.create_task(runner.run())
    try:
        for _ in range(2000):
            if len(FakeQueue.settled) >= settles:
                break
            await asyncio.sleep(0.005)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)
        await runner.close()
    return FakeQueue.settled


async def test_the_queue_runner_asks_a_queue_source_only_what_the_contract_declares():
    """behaviour §3 and §5, through the contract alone: a filtered record is settled FILTERED
    unseen, a processed batch SUCCEEDED, a function error's batch FAILED (back after the hold)."""
    function = FakeFunction(Succeeded(None), FunctionError("Error", "boom"))
    settled = await run_until_settled(function, [[rec(1), rec(2, keep=False)], [rec(3)]], 3,
                                      FilterCriteria={"Filters": [{"Pattern": '{"body": {"x": [1]}}'}]})
    assert sorted(settled) == [("t1", Disposition.SUCCEEDED), ("t2", Disposition.FILTERED),
                               ("t3", Disposition.FAILED)]
    assert function.payloads == ["m1", "m3"]


async def test_a_partial_batch_response_settles_all_but_the_failed_through_the_contract():
    """behaviour §3: with ReportBatchItemFailures the records not listed are settled, the listed one stays."""
    function = FakeFunction(Succeeded({"batchItemFailures": [{"itemIdentifier": "m2"}]}))
    settled = await run_until_settled(function, [[rec(1), rec(2), rec(3)]], 3,
                                      FunctionResponseTypes=["ReportBatchItemFailures"])
    assert sorted(settled) == [("t1", Disposition.SUCCEEDED), ("t2", Disposition.FAILED),
                               ("t3", Disposition.SUCCEEDED)]


def public(thing: Any) -> set[str]:
    return {n for n in dir(thing) if not n.startswith("_")}


def test_the_fakes_have_the_contract_and_nothing_more():
    """The runner tests above prove something only if the fakes carry no member beyond the contract."""
    source = FakeQueue(None, None, None, None, None)
    assert public(source) - {"script", "settled"} == members(QueueSource)
    assert public(source.format) == members(QueueRecordFormat)


def test_sqs_gives_the_whole_queue_contract_and_stubs_no_stream_member():
    """SqsSource and SqsFormat have every member of the queue contract; SqsFormat has none of what
    only streams give (no stub, nothing that raises NotImplementedError)."""
    m = mapping()
    settings = PipelineSettings.read(m, default_batch_size=SqsSource.default_batch_size)
    source = SqsSource(m, settings, SimpleNamespace(clients=None), Metrics().for_mapping("uuid-1", "sqs"))
    assert members(QueueSource) <= public(source)
    assert members(QueueRecordFormat) <= public(source.format)
    stream_only = members(StreamRecordFormat) - members(RecordFormat)
    assert stream_only and not stream_only & public(source.format)
    assert source.mode is Mode.QUEUE
