"""esm.engine.units: a unit worker's states and stop reasons, and keyed lanes (docs/design.md "UNITS", KCL shutdown reasons).

The source and the function are named FAKES (scripted in memory: no server is involved in what a
worker decides); the worker, lanes, batches and decisions are the real engine.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from esm.config.pipeline import PipelineSettings
from esm.core.records import Disposition, Record
from esm.engine.mapping_context import MappingContext
from esm.engine.units import UnitState, UnitWorker
from esm.errors import LeaseLost
from esm.invokers.base import FunctionError, Succeeded
from esm.observability.metrics import Metrics
from esm.core.contract import NOTHING, Fetched, StopReason

LOG = logging.LoggerAdapter(logging.getLogger("test"), {"mapping": "m"})


def rec(i: int, key: str | None = "k", keep: bool = True) -> Record:
    return Record(event={"key": key, "keep": keep}, item_id=str(i), size=10, arrived_at=0.0, token=i)


class FakeFormat:
    """FAKE RecordFormat: records are dicts with a key and a keep flag."""

    reports_iterator_age = False
    may_pre_fail = False
    source_arn = None

    def payload(self, records: Any) -> bytes:
        return ",".join(r.item_id for r in records).encode()

    def events(self, records: Any) -> list[Any]:
        return [r.event for r in records]

    read_identifier = staticmethod(lambda v: v)

    def arrival(self, record: Record) -> float:
        import time
        return time.time()

    def payload_cap(self, unit: str) -> int:
        return 6 * 1024 * 1024

    def lane_key(self, record: Record) -> bytes | None:
        return None if record.event["key"] is None else record.event["key"].encode()

    def keep(self, matcher: Any, record: Record) -> bool:
        return record.event["keep"]

    def pre_failure(self, record: Record) -> None:
        return None

    def where(self, unit: str, records: Any) -> str:
        return unit


class FakeSource:
    """FAKE Source: fetches come from a script; settles and the close reason are recorded."""

    def __init__(self, *fetches: Fetched, settle_error: Exception | None = None):
        self.fetches = list(fetches)
        self.settled: list[tuple[Any, Disposition]] = []
        self.closed: list[StopReason] = []
        self.settle_error = settle_error
        self.idle = asyncio.Event()

    async def open(self, unit: Any) -> bool:
        return True

    async def fetch(self, unit: Any) -> Fetched:
        if self.fetches:
            return self.fetches.pop(0)
        self.idle.set()
        await asyncio.sleep(3600)
        return NOTHING

    async def settle(self, unit: Any, tokens: Any, disposition: Disposition) -> None:
        if self.settle_error is not None:
            raise self.settle_error
        self.settled.extend((token, disposition) for token in tokens)

    async def close_unit(self, unit: Any, reason: StopReason) -> None:
        self.closed.append(reason)


class FakeInvoker:
    """FAKE function: records each payload; waits on `gate` when one is given."""

    name = "fake"
    max_concurrency = 10

    def __init__(self, gate: asyncio.Event | None = None):
        self.payloads: list[str] = []
        self.gate = gate
        self.called = asyncio.Event()

    async def invoke(self, payload: Any, timeout: float | None = None) -> Any:
        self.payloads.append(payload.decode())
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        return Succeeded(None)


def settings(**changes: Any) -> PipelineSettings:
    base = dict(batch_size=10, window=0.0, max_retries=-1, max_age=-1, bisect=False, report_item_failures=False,
                filters=(), destination=None, lanes=1, tumbling_seconds=0, max_in_flight_bytes=1 << 20,
                max_pollers=None, transform=None)
    return PipelineSettings(**{**base, **changes})


def worker(source: FakeSource, invoker: FakeInvoker, **changes: Any) -> UnitWorker:
    context = MappingContext(settings=settings(**changes), format=FakeFormat(), invoker=invoker, destination=None,
                             metrics=Metrics().for_mapping("m", "kinesis"), function_name="fake", log=LOG)
    # FakeFormat.keep ignores the matcher; a match-all matcher would skip it.
    context.matcher = type("M", (), {"is_match_all": False})()
    return UnitWorker("u", "u", source, context)


def test_a_unit_that_ends_settles_everything_then_closes_as_ended():
    """KCL shard end: every record settled, then the unit closes with UNIT_END (its checkpoint marks it ended)."""
    source = FakeSource(Fetched([rec(1), rec(2)]), Fetched([rec(3)], ended=True))
    invoker = FakeInvoker()
    w = worker(source, invoker)
    asyncio.run(w.run())
    assert [t for t, _ in source.settled] == [1, 2, 3]
    assert source.closed == [StopReason.UNIT_END] and w.state is UnitState.STOPPED


def test_filtered_records_settle_without_an_invoke():
    """behaviour §5: records the filters reject settle FILTERED at once and are never invoked."""
    source = FakeSource(Fetched([rec(1, keep=False), rec(2)], ended=True))
    invoker = FakeInvoker()
    asyncio.run(worker(source, invoker).run())
    assert (1, Disposition.FILTERED) in source.settled and (2, Disposition.SUCCEEDED) in source.settled
    assert invoker.payloads == ["2"]


def test_shutdown_lets_the_batch_in_flight_finish_and_closes_with_shutdown():
    """behaviour §9.6 / docs/design.md (shutdown): a batch being invoked finishes and settles; nothing more is read; the
    unit closes with SHUTDOWN (the contiguous checkpoint)."""
    async def scenario() -> tuple[FakeSource, UnitWorker]:
        gate = asyncio.Event()
        source = FakeSource(Fetched([rec(1)]))
        invoker = FakeInvoker(gate)
        w = worker(source, invoker)
        task = asyncio.create_task(w.run())
        await invoker.called.wait()
        w.stop(StopReason.SHUTDOWN)
        gate.set()
        await task
        return source, w

    source, w = asyncio.run(scenario())
    assert source.settled == [(1, Disposition.SUCCEEDED)]
    assert source.closed == [StopReason.SHUTDOWN] and w.state is UnitState.STOPPED


def test_a_lost_lease_stops_the_worker_with_lease_lost():
    """KCL lease lost: a checkpoint refused for a lost lease stops the worker; its close writes nothing."""
    source = FakeSource(Fetched([rec(1)], ended=True), settle_error=LeaseLost("taken"))
    asyncio.run(worker(source, FakeInvoker()).run())
    assert source.closed == [StopReason.LEASE_LOST]


def test_keyed_lanes_keep_order_per_key_and_null_keys_on_one_lane():
    """Issue 12.3 / behaviour §1 ParallelizationFactor: records of a key stay in order across lanes; records
    without a key stay in unit order on the first lane."""
    records = [rec(i, key=("a" if i % 3 == 0 else "b" if i % 3 == 1 else None)) for i in range(30)]
    source = FakeSource(Fetched(records[:15]), Fetched(records[15:], ended=True))
    invoker = FakeInvoker()
    asyncio.run(worker(source, invoker, lanes=4, batch_size=2).run())
    seen = [int(i) for payload in invoker.payloads for i in payload.split(",")]
    assert sorted(seen) == list(range(30))
    for key in ("a", "b", None):
        mine = [i for i in seen if records[i].event["key"] == key]
        assert mine == sorted(mine), key
    assert source.closed == [StopReason.UNIT_END]


class WindowFunction:
    """FAKE function for tumbling windows: answers with a state; fails the first final invoke, and
    records how many records had settled when each final invoke arrived."""

    name = "fake"
    max_concurrency = 10

    def __init__(self, source: FakeSource):
        self.source = source
        self.finals: list[int] = []  # records settled at each final invoke

    async def invoke(self, payload: Any, timeout: float | None = None) -> Any:
        event = json.loads(payload)
        if not event["isFinalInvokeForWindow"]:
            return Succeeded({"state": {}})
        self.finals.append(len(self.source.settled))
        if len(self.finals) == 1:
            return FunctionError("Boom", "the first final invoke fails")
        return Succeeded({"state": event["state"]})


def test_a_failed_final_invoke_of_a_window_is_retried_before_its_records_settle():
    """Behaviour §2 (tumbling window): a final invoke that fails halts the unit and is retried until it
    succeeds; the window's records settle only after that, and the failure counts as an invoke error."""
    source = FakeSource(Fetched([rec(1), rec(2)], ended=True))
    function = WindowFunction(source)
    w = worker(source, function, tumbling_seconds=900)  # type: ignore[arg-type]
    asyncio.run(w.run())
    assert function.finals == [0, 0]
    assert source.settled == [(1, Disposition.SUCCEEDED), (2, Disposition.SUCCEEDED)]
    assert source.closed == [StopReason.UNIT_END]
    registry = w.context.metrics.metrics.registry
    assert registry.get_sample_value("esm_invoke_errors_total", {"mapping": "m", "source": "kinesis"}) == 1
