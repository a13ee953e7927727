"""The control API's mapping store and manager against the stores the daemon really opens: the
SQLite checkpoint file and moto's DynamoDB (the `backends` fixture). Mappings here are created
disabled, so no source is read: what is checked is what the store keeps and what the manager
does with it (issue 15 review points 1, 3 and 4)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from prometheus_client import generate_latest

import esm.api.replica_sync as replica_sync
from esm.api.manager import MappingManager
from esm.api.protocol import ApiError
from esm.aws import AwsClients
from esm.checkpoints.dynamodb import DynamoDbCheckpointStore
from esm.checkpoints.mappings import RevisionConflict, mapping_store_for
from esm.checkpoints.sqlite import SqliteCheckpointStore
from esm.config.loading import parse_config
from esm.config.settings import AwsSettings
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from tests.support.sqs import sqs_client
from tests.support.waiting import wait_until

CONFIG = """
functions:
  orders: {handler: "mod:fn"}
event_source_mappings: []
"""
QUEUE = "arn:aws:sqs:us-east-1:000000000000:api-store-orders"


@pytest.fixture
async def source_queue(backends: dict[str, str]) -> str:
    """The queue the mappings name: create refuses a queue that does not exist (behaviour §10)."""
    async with sqs_client() as sqs:
        for name in (QUEUE.rsplit(":", 1)[1], QUEUE.rsplit(":", 1)[1] + "-2"):
            await sqs.create_queue(QueueName=name)
    return QUEUE


def make_manager(checkpoints: Any, metrics: Metrics | None = None) -> MappingManager:
    config = parse_config(CONFIG)
    return MappingManager(dict(config.functions), Runtime(clients=AwsClients(config.aws)), {}, metrics or Metrics(),
                          mapping_store_for(checkpoints), shutdown_timeout=5)


@contextlib.asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteCheckpointStore]:
    store = SqliteCheckpointStore(str(tmp_path / "state.db"))
    await store.open()
    try:
        await mapping_store_for(store).open()
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def dynamodb_store(table: str) -> AsyncIterator[DynamoDbCheckpointStore]:
    store = DynamoDbCheckpointStore(table, AwsClients(AwsSettings()))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def document(mapping: str, revision: int, batch: int = 10) -> dict[str, Any]:
    return {"UUID": mapping, "Revision": revision, "Request": {"FunctionName": "orders", "EventSourceArn": QUEUE,
                                                               "BatchSize": batch, "Enabled": False}}


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
async def test_a_write_based_on_an_old_revision_is_refused(backends: dict[str, str], tmp_path: Path, kind: str):
    """Review point 1: `put` stores a change only while the stored revision is the one it was
    based on; a second change based on the same revision is a RevisionConflict and leaves the
    first change stored (SQLite and DynamoDB alike)."""
    stores = sqlite_store(tmp_path) if kind == "sqlite" else dynamodb_store(f"esm-api-{uuid.uuid4().hex[:8]}")
    async with stores as checkpoints:
        store = mapping_store_for(checkpoints)
        mapping = str(uuid.uuid4())
        await store.put(mapping, document(mapping, 1), expected=None)
        with pytest.raises(RevisionConflict):
            await store.put(mapping, document(mapping, 1), expected=None)  # already exists
        await store.put(mapping, document(mapping, 2, batch=5), expected=1)
        with pytest.raises(RevisionConflict):
            await store.put(mapping, document(mapping, 2, batch=7), expected=1)
        assert (await store.get(mapping))["Request"]["BatchSize"] == 5
        assert (await store.load())[mapping]["Revision"] == 2
        await store.delete(mapping)
        assert await store.get(mapping) is None
        with pytest.raises(RevisionConflict):
            await store.put(mapping, document(mapping, 3), expected=2)


async def test_two_replicas_updating_one_mapping_at_once_agree(source_queue: str, backends: dict[str, str]):
    """Review point 1: replicas A and B, both at revision 1, update the same mapping at the same
    time: exactly one update is stored, the other is answered ResourceConflictException (a
    concurrent change), and once both sync they report the same BatchSize and revision. Before
    the fix both read revision 1, both stored revision 2, and neither applied the other's (sync
    applies only a higher revision): each ran its own version for good."""
    async with dynamodb_store(f"esm-api-{uuid.uuid4().hex[:8]}") as checkpoints:
        a, b = make_manager(checkpoints), make_manager(checkpoints)
        created = await a.create({"FunctionName": "orders", "EventSourceArn": QUEUE, "Enabled": False})
        await b.sync()
        assert b.get(created.uuid).revision == 1
        results = await asyncio.gather(a.update(created.uuid, {"BatchSize": 5}),
                                       b.update(created.uuid, {"BatchSize": 7}), return_exceptions=True)
        conflicts = [r for r in results if isinstance(r, ApiError)]
        assert len(conflicts) == 1 and conflicts[0].code == "ResourceConflictException", results
        won = 5 if conflicts[0] is results[1] else 7
        for manager in (a, b):
            await manager.sync()
        for manager in (a, b):
            await manager.close()
        assert [m.get(created.uuid).settings.request["BatchSize"] for m in (a, b)] == [won, won]
        assert a.get(created.uuid).revision == b.get(created.uuid).revision == 2


async def test_tags_are_shared_through_the_store_without_a_restart(source_queue: str, backends: dict[str, str]):
    """behaviour §10: a mapping's Tags (given on create, changed by TagResource on replica A) are
    read by ListTags on replica B once it syncs; the mapping keeps its settings otherwise."""
    async with dynamodb_store(f"esm-api-{uuid.uuid4().hex[:8]}") as checkpoints:
        a, b = make_manager(checkpoints), make_manager(checkpoints)
        created = await a.create({"FunctionName": "orders", "EventSourceArn": QUEUE, "Enabled": False,
                                  "Tags": {"team": "orders"}})
        arn = f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{created.uuid}"
        await a.tag(arn, tags={"env": "test"})
        await a.tag(arn, remove=["team"])
        await b.sync()
        assert dict(b.tagged(arn).settings.request["Tags"]) == {"env": "test"}
        assert b.get(created.uuid).transition is None and b.get(created.uuid).revision == 3
        for manager in (a, b):
            await manager.close()


async def test_an_unreadable_stored_document_is_reported_once_and_skipped(source_queue: str, tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture):
    """Review point 3: a stored document that is not JSON does not stop the manager loading or
    syncing the others; it is logged once (naming the mapping), not at every sync, and a mapping
    already running is not taken for deleted."""
    async with sqlite_store(tmp_path) as checkpoints:
        good = make_manager(checkpoints)
        kept = await good.create({"FunctionName": "orders", "EventSourceArn": QUEUE, "Enabled": False})
        broken = str(uuid.uuid4())
        await checkpoints.execute(lambda db: db.execute(
            "INSERT INTO api_mappings (uuid, document, updated_at) VALUES (?, ?, 0)", (broken, "{not json")))
        manager = make_manager(checkpoints)
        with caplog.at_level(logging.ERROR, logger="esm.api"):
            await manager.load()
            for _ in range(3):
                await manager.sync()
        assert [e.uuid for e in manager.list(None, None)] == [kept.uuid]
        reports = [r for r in caplog.records if broken in r.getMessage()]
        assert len(reports) == 1 and "cannot be read" in reports[0].getMessage()
        # It breaks while this replica runs it: kept, not deleted.
        await checkpoints.execute(lambda db: db.execute("UPDATE api_mappings SET document = '[]' WHERE uuid = ?",
                                                        (kept.uuid,)))
        await manager.sync()
        assert manager.get(kept.uuid).transition is None
        await manager.close()
        await good.close()


async def test_sync_retries_an_unreachable_store_saying_so_once(backends: dict[str, str],
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture):
    """Review point 3: while the store cannot be reached (here: its table is gone), sync_forever
    keeps trying and warns once, not at every poll."""
    monkeypatch.setattr(replica_sync, "SYNC_INTERVAL", 0.01)
    table = f"esm-api-{uuid.uuid4().hex[:8]}"
    async with dynamodb_store(table) as checkpoints:
        manager = make_manager(checkpoints)
        await checkpoints.call("delete_table")
        attempts = 0
        sync = manager.sync

        async def counted() -> None:
            nonlocal attempts
            attempts += 1
            await sync()

        manager.sync = counted  # type: ignore[method-assign]
        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="esm.api"):
            loop = asyncio.create_task(manager.sync_forever(stop))
            await wait_until(lambda: attempts >= 5, timeout=30, what="five sync attempts")
            stop.set()
            await loop
        warnings = [r for r in caplog.records if "cannot read the mapping store" in r.getMessage()]
        assert len(warnings) == 1


class BrokenStore:
    """A fake mapping store whose load fails with an error that is not the store being unreachable."""

    shared = True

    async def load(self) -> dict[str, Any]:
        raise ValueError("a bug, not an outage")


async def test_sync_stops_on_an_error_retrying_cannot_fix(monkeypatch: pytest.MonkeyPatch):
    """Review point 3: only StoreUnavailable is retried; any other error ends sync_forever with
    that error (the service logs it), instead of a warning every 2 s forever."""
    monkeypatch.setattr(replica_sync, "SYNC_INTERVAL", 0.01)
    config = parse_config(CONFIG)
    manager = MappingManager(dict(config.functions), Runtime(clients=AwsClients(config.aws)), {}, Metrics(),
                             BrokenStore(), shutdown_timeout=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a bug"):
        await asyncio.wait_for(manager.sync_forever(asyncio.Event()), 60)


async def test_deleting_a_mapping_removes_its_metric_series(source_queue: str, tmp_path: Path):
    """Review point 4: once an API mapping is deleted, /metrics has no series labelled with its
    UUID (counters, state, info, pollers: every family), while another mapping's stay."""
    metrics = Metrics()
    async with sqlite_store(tmp_path) as checkpoints:
        manager = make_manager(checkpoints, metrics)
        gone = await manager.create({"FunctionName": "orders", "EventSourceArn": QUEUE, "Enabled": False})
        other = await manager.create({"FunctionName": "orders", "EventSourceArn": QUEUE + "-2", "Enabled": False})
        metrics.provisioned_pollers.labels(gone.uuid, "sqs").set(1)  # as an SQS poller of it would
        metrics.for_mapping(gone.uuid, "sqs").offset_lag("topic", 0, 3)
        assert gone.uuid in generate_latest(metrics.registry).decode()
        await manager.delete(gone.uuid)
        await manager.close()  # the delete finishes in the background
        scrape = generate_latest(metrics.registry).decode()
        assert gone.uuid not in scrape, [line for line in scrape.splitlines() if gone.uuid in line]
        assert other.uuid in scrape


async def test_the_mapping_table_keeps_json(tmp_path: Path):
    """Review point 5b: the mapping store writes into the checkpoint file it shares (one
    connection): what it stored reads back from that file as the JSON document."""
    async with sqlite_store(tmp_path) as checkpoints:
        store = mapping_store_for(checkpoints)
        mapping = str(uuid.uuid4())
        await store.put(mapping, document(mapping, 1), expected=None)
        rows = await checkpoints.execute(lambda db: db.execute("SELECT document FROM api_mappings").fetchall())
        assert [json.loads(text)["UUID"] for (text,) in rows] == [mapping]


class CountingInvokers(dict):  # type: ignore[type-arg]
    """The manager's invokers, counting the look-ups made once `closing` is set: the manager looks
    a mapping's invoker up exactly when it builds a supervisor for it."""

    closing = False
    lookups_while_closing = 0

    def __getitem__(self, key: str) -> Any:
        if self.closing:
            self.lookups_while_closing += 1
        return super().__getitem__(key)


async def test_a_change_under_way_at_shutdown_starts_no_supervisor(backends: dict[str, str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    """Review point 2: an update is draining the old supervisor (its batch is in the handler)
    when shutdown begins; the batch then finishes, and the update does not go on to start a
    supervisor with the new settings (before the fix it did, after stop, and close then drained
    that one too)."""
    from esm.invokers import make_invoker
    from tests.support.sqs import create_queue, send, sqs_client

    module = f"stuck_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import asyncio, pathlib\n"
        "async def handle(event, context):\n"
        f"    pathlib.Path({str(tmp_path / 'entered')!r}).touch()\n"
        f"    while not pathlib.Path({str(tmp_path / 'release')!r}).exists():\n"
        "        await asyncio.sleep(0.05)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = parse_config(f'functions:\n  orders: {{handler: "{module}:handle"}}\nevent_source_mappings: []\n')
    invokers = CountingInvokers({name: make_invoker(target, config.aws, default_concurrency=10)
                                 for name, target in config.functions.items()})
    async with sqlite_store(tmp_path) as checkpoints, sqs_client() as sqs:
        url, arn = await create_queue(sqs, "api-close")
        manager = MappingManager(dict(config.functions), Runtime(clients=AwsClients(config.aws)), invokers,
                                 Metrics(), mapping_store_for(checkpoints), shutdown_timeout=30)
        try:
            entry = await manager.create({"FunctionName": "orders", "EventSourceArn": arn, "BatchSize": 1})
            await wait_until(lambda: entry.state == "Enabled", timeout=60, what="the mapping runs")
            await send(sqs, url, ["stuck"])
            await wait_until(lambda: (tmp_path / "entered").exists(), timeout=60, what="the batch is in the handler")
            await manager.update(entry.uuid, {"BatchSize": 2})
            assert entry.state == "Updating"
            invokers.closing = True
            closing = asyncio.create_task(manager.close())
            await asyncio.sleep(0)  # close() has begun: the batch may finish now, and the update with it
            (tmp_path / "release").touch()
            await closing
            assert invokers.lookups_while_closing == 0
            assert entry.supervisor is None and entry.task is None
        finally:
            for invoker in invokers.values():
                await invoker.close()
