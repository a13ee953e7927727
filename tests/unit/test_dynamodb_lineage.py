"""Shard lineage and shard ends for DynamoDB Streams, on the shared esm.sources.shards logic.

moto never splits or closes a stream's shard, so these tests script what DynamoDB does when it
rolls shards over (about every four hours on AWS): DescribeStream pages list a closed parent and
its child, and GetRecords on the closed parent ends without a NextShardIterator. FakeStreams is a
named fake of the DynamoDB Streams client (only the calls the source makes); the checkpoint
store is the real SQLite one.
"""

from __future__ import annotations

import logging
from typing import Any

from esm.aws import AwsClients
from esm.checkpoints.sqlite import SqliteCheckpointStore
from esm.config.loading import parse_config
from esm.config.pipeline import PipelineSettings
from esm.config.settings import AwsSettings
from esm.observability.events import Events
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from esm.core.contract import StopReason
from esm.core.records import Disposition
from esm.sources.dynamodb.reader import GET_RECORDS_LIMIT, IDLE_POLL_INTERVAL
from esm.sources.shard_reader import GetRecordsReader
from esm.sources.dynamodb.source import DynamoDbSource
from esm.sources.shards import ShardLeases

ARN = "arn:aws:dynamodb:eu-west-1:111122223333:table/orders/stream/2024-01-01T00:00:00.000"


class RecordingUnits:
    """The engine's side of discovery: which units were assigned."""

    def __init__(self) -> None:
        self.assigned_units: list[str] = []

    def assigned(self, unit: Any, key: str) -> None:
        self.assigned_units.append(unit)

    def stop_unit(self, unit: Any, reason: StopReason) -> None:
        pass

    async def revoked(self, units: Any, reason: StopReason, drain: float | None) -> None:
        pass

    def running(self, unit: Any) -> bool:
        return unit in self.assigned_units


def stream_record(sequence: int, key: str = "a") -> dict[str, Any]:
    return {"eventID": f"{sequence:032x}", "eventName": "INSERT", "eventVersion": "1.0", "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": {"ApproximateCreationDateTime": 1_700_000_000, "Keys": {"pk": {"S": key}},
                         "SequenceNumber": str(sequence), "SizeBytes": 10, "StreamViewType": "KEYS_ONLY"}}


class FakeStreams:
    """A scripted DynamoDB Streams client: shards with parents, paged; records per shard; closed
    shards end (no NextShardIterator) once read."""

    def __init__(self, shards: list[dict[str, Any]], records: dict[str, list[dict[str, Any]]], closed: set[str],
                 page: int = 1):
        self.shards, self.records, self.closed, self.page = shards, records, closed, page
        self.iterator_requests: list[tuple[str, dict[str, Any]]] = []

    async def describe_stream(self, StreamArn: str, Limit: int = 100, ExclusiveStartShardId: str | None = None):
        ids = [s["ShardId"] for s in self.shards]
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = self.shards[start:start + min(Limit, self.page)]
        description: dict[str, Any] = {"StreamArn": StreamArn, "Shards": page}
        if start + len(page) < len(self.shards):
            description["LastEvaluatedShardId"] = page[-1]["ShardId"]
        return {"StreamDescription": description}

    async def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str, **args: Any):
        self.iterator_requests.append((ShardId, {"ShardIteratorType": ShardIteratorType, **args}))
        after = int(args.get("SequenceNumber", -1)) if ShardIteratorType == "AFTER_SEQUENCE_NUMBER" else -1
        return {"ShardIterator": f"{ShardId}|{after}"}

    async def get_records(self, ShardIterator: str, Limit: int):
        shard, after = ShardIterator.split("|")
        left = [r for r in self.records.get(shard, []) if int(r["dynamodb"]["SequenceNumber"]) > int(after)]
        response: dict[str, Any] = {"Records": left}
        if left or shard not in self.closed:
            last = left[-1]["dynamodb"]["SequenceNumber"] if left else after
            response["NextShardIterator"] = f"{shard}|{last}"
        return response


def shard(shard_id: str, parent: str | None = None) -> dict[str, Any]:
    listed: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
    if parent:
        listed["ParentShardId"] = parent
    return listed


async def source_with(tmp_path, fake: FakeStreams, starting_position: str = "LATEST") -> DynamoDbSource:
    config = parse_config(f"""
functions: {{f: {{handler: "tests.support.recorder:handle"}}}}
event_source_mappings:
  - {{FunctionName: f, EventSourceArn: "{ARN}", StartingPosition: {starting_position}}}
""")
    mapping = config.mappings[0]
    store = SqliteCheckpointStore(str(tmp_path / "checkpoints.db"))
    await store.open()
    runtime = Runtime(clients=AwsClients(AwsSettings()), checkpoints=store, owner="me")
    source = DynamoDbSource(mapping, PipelineSettings.read(mapping), runtime,
                            Metrics().for_mapping(mapping.uuid, mapping.source), None)
    source._client = fake  # connect() would build a real client
    source._reader = GetRecordsReader(fake, {"StreamArn": ARN}, source.start, source.events, source.log,
                                      limit=GET_RECORDS_LIMIT, idle_interval=IDLE_POLL_INTERVAL)
    return source


async def test_describe_stream_is_read_page_by_page():
    """Issue 14.1: DescribeStream is paged (ExclusiveStartShardId = LastEvaluatedShardId) until the last page."""
    fake = FakeStreams([shard("s1"), shard("s2", "s1"), shard("s3", "s2")], {}, set(), page=1)
    leases = ShardLeases(mapping_uuid="m", store=None, owner="me", list_shards=None,  # type: ignore[arg-type]
                         events=Events(Metrics().for_mapping("m", "dynamodb"), logging.LoggerAdapter(logging.getLogger())),
                         log=logging.LoggerAdapter(logging.getLogger()))
    source = DynamoDbSource.__new__(DynamoDbSource)
    source.stream_arn, source._client, source.leases = ARN, fake, leases
    assert [s["ShardId"] for s in await source._list_shards()] == ["s1", "s2", "s3"]


async def test_a_child_starts_only_after_its_closed_parent_was_drained_and_ended(tmp_path):
    """Issue 14.1 / behaviour §7: the closed parent is read to its end, its records settled, checkpointed as
    SHARD_END; only then is the child leased, and it is read from TRIM_HORIZON (not LATEST)."""
    fake = FakeStreams([shard("parent"), shard("child", "parent")],
                       {"parent": [stream_record(1), stream_record(2)], "child": [stream_record(3)]}, {"parent"})
    source = await source_with(tmp_path, fake, "LATEST")
    units = RecordingUnits()
    await source.leases._round(units)
    assert units.assigned_units == ["parent"]  # the child waits for its parent

    assert await source.open("parent")
    fetched = await source.fetch("parent")
    assert [r.item_id for r in fetched.records] == ["1", "2"]
    if not fetched.ended:
        fetched = await source.fetch("parent")
    assert fetched.ended and not fetched.records
    await source.settle("parent", [1, 2], Disposition.SUCCEEDED)
    await source.close_unit("parent", StopReason.UNIT_END)
    checkpoint = await source.runtime.checkpoints.get(source.mapping.uuid, "parent")
    assert checkpoint.shard_end and checkpoint.position == "2"

    await source.leases._round(units)
    assert units.assigned_units == ["parent", "child"]
    assert await source.open("child")
    fetched = await source.fetch("child")
    assert [r.item_id for r in fetched.records] == ["3"]
    assert fake.iterator_requests[-1] == ("child", {"ShardIteratorType": "TRIM_HORIZON"})
    await source.runtime.checkpoints.close()


async def test_an_unsettled_closed_shard_is_not_ended(tmp_path):
    """behaviour §9.6: a closed shard whose records were not all settled keeps its checkpoint where it is,
    without SHARD_END, so its child does not start and nothing is skipped."""
    fake = FakeStreams([shard("parent"), shard("child", "parent")], {"parent": [stream_record(1), stream_record(2)]},
                       {"parent"})
    source = await source_with(tmp_path, fake, "TRIM_HORIZON")
    units = RecordingUnits()
    await source.leases._round(units)
    assert await source.open("parent")
    await source.fetch("parent")
    await source.settle("parent", [1], Disposition.SUCCEEDED)
    await source.close_unit("parent", StopReason.UNIT_END)
    checkpoint = await source.runtime.checkpoints.get(source.mapping.uuid, "parent")
    assert checkpoint.position == "1" and not checkpoint.shard_end
    await source.leases._round(units)
    assert "child" not in units.assigned_units
    await source.runtime.checkpoints.close()


async def test_a_restarted_shard_resumes_after_its_checkpoint(tmp_path):
    """Issue 14.1: a shard opened again reads AFTER_SEQUENCE_NUMBER its checkpoint, not StartingPosition."""
    fake = FakeStreams([shard("only")], {"only": [stream_record(5), stream_record(6), stream_record(7)]}, set())
    source = await source_with(tmp_path, fake, "TRIM_HORIZON")
    units = RecordingUnits()
    await source.leases._round(units)
    assert await source.open("only")
    await source.fetch("only")
    await source.settle("only", [5, 6], Disposition.SUCCEEDED)
    await source.close_unit("only", StopReason.SHUTDOWN)
    await source.leases._round(units)
    assert await source.open("only")
    fetched = await source.fetch("only")
    assert [r.item_id for r in fetched.records] == ["7"]
    assert fake.iterator_requests[-1] == ("only", {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": "6"})
    await source.runtime.checkpoints.close()

