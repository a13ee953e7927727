"""No silent loss of position (esm.positions): a renamed mapping's checkpoints or Kafka group are
reported as orphaned, by `esm validate --positions` and at the daemon's start; a mapping about to
start from StartingPosition beside them says so; `esm.uuid` keeps them. Real stores: the SQLite
file, moto's DynamoDB, the Kafka broker's groups."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from esm import positions
from esm.aws import AwsClients
from esm.checkpoints import make_checkpoint_store
from esm.cli import main
from esm.config.loading import load_config, parse_config
from tests.support import kafka as kk
from tests.support.daemon import running_config
from tests.support.kafka import Message, bootstrap, create_topic, kafka_admin, produce, smk_mapping, value_of
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)

pytestmark = pytest.mark.backends

STREAM = "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
SHARD = "shardId-000000000000"


def write_config(tmp_path: Path, name: str, store: str, *, pinned: str | None = None,
                 kafka_topic: str | None = None) -> Path:
    extension = f"{{name: {name}" + (f", uuid: {pinned}" if pinned else "") + "}"
    if kafka_topic:
        source = (f"    Topics: [{kafka_topic}]\n"
                  f"    SelfManagedEventSource: {{Endpoints: {{KAFKA_BOOTSTRAP_SERVERS: [{bootstrap()}]}}}}\n"
                  "    SourceAccessConfigurations: [{Type: VPC_SUBNET, URI: 'subnet:subnet-1'},"
                  " {Type: VPC_SECURITY_GROUP, URI: 'security_group:sg-1'}]\n")
    else:
        source = f"    EventSourceArn: {STREAM}\n"
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        "functions:\n  fn: {url: 'http://127.0.0.1:9/'}\n"
        "event_source_mappings:\n  - FunctionName: fn\n" + source +
        f"    StartingPosition: TRIM_HORIZON\n    esm: {extension}\n"
        f"checkpoints: {store}\n")
    return path


async def checkpoint_old_mapping(config_path: Path) -> str:
    """Run what the daemon does at start for the old config, then checkpoint one shard."""
    config = load_config(str(config_path))
    clients = AwsClients(config.aws)
    store = make_checkpoint_store(config.checkpoints, clients)
    await store.open()
    try:
        assert await positions.report_at_start(config.mappings, store, clients) == []
        await store.put(config.mappings[0].uuid, SHARD, "49590338271490256608559692538361571095921575989136588898")
    finally:
        await store.close()
    return config.mappings[0].uuid


async def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The command as a user runs it (its own event loop, so off the test's)."""
    code = await asyncio.to_thread(main, ["validate", "--config", str(path), "--positions"])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
async def test_a_renamed_mapping_is_reported_and_esm_uuid_keeps_its_positions(
        store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], backends: dict[str, str]) -> None:
    """Renaming gives a new UUID: the old checkpoints are orphaned (named with their old name and
    source), the renamed mapping would start from StartingPosition and says so; `esm.uuid` set to
    the old UUID owns them again and nothing is reported."""
    where = (f"{{sqlite: '{tmp_path / 'checkpoints.db'}'}}" if store == "sqlite"
             else f"{{dynamodb: {{table: esm-positions-{uuid.uuid4().hex[:8]}}}}}")
    old = await checkpoint_old_mapping(write_config(tmp_path, "orders-v1", where))

    code, out = await validate(write_config(tmp_path, "orders-v2", where), capsys)
    assert code == 1, out
    assert (f"orphaned positions for mapping {old} ('orders-v1', {STREAM}: 1 position(s)): no configured "
            f"mapping has this identity; did you rename? set esm: {{uuid: {old}}}") in out
    assert "mapping 'orders-v2'" in out and "will start from StartingPosition TRIM_HORIZON" in out
    assert "orphaned positions for the same source exist" in out

    code, out = await validate(write_config(tmp_path, "orders-v3", where, pinned=old), capsys)
    assert code == 0, out
    assert f"{old}  kinesis" in out and "positions: 0 finding(s)" in out


async def test_the_daemon_start_logs_orphans_as_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At start (the daemon's call): each finding is one warning line."""
    where = f"{{sqlite: '{tmp_path / 'checkpoints.db'}'}}"
    old = await checkpoint_old_mapping(write_config(tmp_path, "orders-v1", where))
    config = load_config(str(write_config(tmp_path, "renamed", where)))
    clients = AwsClients(config.aws)
    store = make_checkpoint_store(config.checkpoints, clients)
    await store.open()
    try:
        with caplog.at_level(logging.WARNING, logger="esm.positions"):
            found = await positions.report_at_start(config.mappings, store, clients)
    finally:
        await store.close()
    assert len(found) == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"orphaned positions for mapping {old}" in m for m in warned), warned
    assert any("mapping 'renamed'" in m and "will start from StartingPosition" in m for m in warned), warned


async def test_an_orphaned_kafka_group_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   backends: dict[str, str]) -> None:
    """A Kafka mapping's default group is its UUID: after a rename the old group's offsets are
    orphaned and the renamed mapping would start a new group at StartingPosition; esm.uuid (the old
    group) keeps them."""
    async with kafka_admin() as admin:
        topic = await create_topic(admin, prefix="positions")
    where = f"{{sqlite: '{tmp_path / 'checkpoints.db'}'}}"
    old = load_config(str(write_config(tmp_path, "events-v1", where, kafka_topic=topic))).mappings[0].uuid
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=old, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, "")})
    finally:
        await consumer.stop()

    code, out = await validate(write_config(tmp_path, "events-v2", where, kafka_topic=topic), capsys)
    assert code == 1, out
    assert f"orphaned positions for Kafka group {old} (topic {topic} on" in out
    assert "mapping 'events-v2'" in out and "starts a new consumer group" in out

    code, out = await validate(write_config(tmp_path, "events-v3", where, kafka_topic=topic, pinned=old), capsys)
    assert code == 0, out


def test_esm_uuid_must_be_a_uuid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """esm.uuid is checked offline like every other field: a path and a reason, exit 2."""
    path = write_config(tmp_path, "x", "{sqlite: ./c.db}", pinned="not-a-uuid")
    assert main(["validate", "--config", str(path)]) == 2
    assert "event_source_mappings[0].esm.uuid: must be a UUID" in capsys.readouterr().err


async def test_moving_a_kafka_mapping_from_lambda_reuses_its_group(backends: dict[str, str]) -> None:
    """docs/aws.md's Kafka recipe, step by step: the Lambda mapping (here: a consumer in its group)
    committed offset 3 and was disabled; an esm mapping given the same ConsumerGroupId resumes at 3,
    whatever its StartingPosition says (behaviour §1: StartingPosition is for a group without offsets)."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin, prefix="migrate")
        await produce(topic, [Message(f"r{i}".encode()) for i in range(5)])
        lambda_group = str(uuid.uuid4())  # Lambda's default group is its mapping's UUID
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=lambda_group, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "")})
        finally:
            await consumer.stop()
        mapping = smk_mapping(topic, group=lambda_group, StartingPosition="TRIM_HORIZON")
        config = yaml.safe_dump({"functions": kk.FUNCTIONS, "event_source_mappings": [mapping],
                                 "metrics": {"listen": "127.0.0.1:0"}, "startup_timeout": 30})
        async with running_config(parse_config(config)):
            await kk.wait_for_offsets(admin, lambda_group, lambda o: o.get(0) == 5)
            await recorder.wait_for(lambda r: len(r.records) >= 2)
    assert [value_of(r) for r in recorder.records] == ["r3", "r4"]
