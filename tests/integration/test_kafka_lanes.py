"""Kafka per-key lanes against a real broker (issue 12 point 3, `esm: {parallelization_factor: N}`).

A partition's records are spread over N lanes by record key (records with a null key stay on the
first lane, in partition order); order per key is kept (behaviour §9.4 in order per key), and the group's
committed offset only passes records that are finished, so a crash replays from the commit and
loses nothing (behaviour §9.6). The lane of a key is crc32(key) % N (esm.engine.units): the tests pick
keys by it to know which keys share the slow key's lane.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import kafka as kk
from tests.support.daemon import running_config
from tests.support.kafka import Message, create_topic, kafka_admin, produce, smk_mapping, value_of
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

ROOT = Path(__file__).resolve().parents[2]
LANES = 4


def config_for(*mappings, functions=None) -> str:
    doc = {"functions": functions or kk.FUNCTIONS, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 20, "startup_timeout": 30}
    return yaml.safe_dump(doc, sort_keys=False)


def daemon(*mappings):
    return running_config(parse_config(config_for(*mappings)))


def group_of(mapping: dict) -> str:
    return mapping["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]


def lane_of(key: str) -> int:
    return zlib.crc32(key.encode()) % LANES


def keys_by_lane(per_lane: int) -> dict[int, list[str]]:
    """`per_lane` keys for each of the LANES lanes."""
    lanes: dict[int, list[str]] = {lane: [] for lane in range(LANES)}
    n = 0
    while any(len(keys) < per_lane for keys in lanes.values()):
        key = f"key{n}"
        if len(lanes[lane_of(key)]) < per_lane:
            lanes[lane_of(key)].append(key)
        n += 1
    return lanes


def keyed(record: dict) -> tuple[str | None, str]:
    key = record.get("key")
    return (None if key is None else base64.b64decode(key).decode(), value_of(record))


def order_per_key(records: list[dict]) -> dict[str | None, list[int]]:
    seen: dict[str | None, list[int]] = {}
    for record in records:
        key, value = keyed(record)
        seen.setdefault(key, []).append(int(value.rsplit("-", 1)[1]))
    return seen


async def test_order_per_key_is_kept_over_four_lanes_and_a_slow_key_blocks_only_its_lane():
    """Issue 12 point 3: with parallelization_factor 4 and many keys, each key's records are invoked in
    partition order, exactly once; a partition has batches of different lanes in flight at once; while
    one key's batch is held, the keys of the other lanes are all processed."""
    lanes = keys_by_lane(3)
    slow = lanes[0][0]
    release = asyncio.Event()

    async def behaviour(event):
        if any(keyed(r)[0] == slow for group in event["records"].values() for r in group):
            await release.wait()

    recorder = kk.install(kk.KafkaRecorder(behaviour))
    keys = [k for lane in lanes.values() for k in lane]
    per_key = 12
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(f"{k}-{i}".encode(), key=k.encode()) for i in range(per_key) for k in keys])
        mapping = smk_mapping(topic, BatchSize=4, MaximumBatchingWindowInSeconds=0,
                              esm={"parallelization_factor": LANES})
        async with daemon(mapping):
            others = {k for lane in range(1, LANES) for k in lanes[lane]}
            await recorder.wait_for(lambda r: sum(keyed(x)[0] in others for x in r.records) == per_key * len(others))
            # All of that while the slow key's batch is still held (only this test releases it).
            release.set()
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == per_key * len(keys))
    seen = order_per_key(recorder.records)
    assert seen == {k: list(range(per_key)) for k in keys}
    assert recorder.max_per_group > 1  # batches of several lanes of the one partition in flight at once


async def test_nothing_is_committed_past_an_unfinished_record():
    """behaviour §9.4/§9.6 with lanes: while one key's batch is held, later records of other keys finish, but the
    group's committed offset stays at that key's first record; once it finishes, everything commits."""
    lanes = keys_by_lane(1)
    held, free = lanes[0][0], [lanes[lane][0] for lane in range(1, LANES)]
    release = asyncio.Event()

    async def behaviour(event):
        if any(keyed(r)[0] == held for group in event["records"].values() for r in group):
            await release.wait()

    recorder = kk.install(kk.KafkaRecorder(behaviour))
    messages = [Message(f"{free[0]}-0".encode(), key=free[0].encode()),
                Message(f"{free[1]}-0".encode(), key=free[1].encode()),
                Message(f"{held}-0".encode(), key=held.encode())]  # offset 2
    messages += [Message(f"{k}-{i}".encode(), key=k.encode()) for i in range(1, 11) for k in free]
    total = len(messages)
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, messages)
        mapping = smk_mapping(topic, BatchSize=2, MaximumBatchingWindowInSeconds=0,
                              esm={"parallelization_factor": LANES})
        uuid = parse_config(config_for(mapping)).mappings[0].uuid
        async with daemon(mapping) as d:
            await recorder.wait_for(lambda r: len(r.records) == total and r.in_flight == 1)
            # The lag loop retries commits first, then reads the lag: it has seen everything else finished.
            lag = {"mapping": uuid, "source": "kafka", "topic": topic, "partition": "0"}
            await wait_until(lambda: d.value("esm_offset_lag", **lag) == total - 2, what="OffsetLag from offset 2")
            await asyncio.sleep(2.5)  # more lag-loop rounds (1 s each): still nothing past the held record
            assert (await kk.group_offsets(admin, group_of(mapping))).get(0) == 2
            assert d.value("esm_offset_lag", **lag) == total - 2
            release.set()
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == total)
    assert sorted(value_of(r) for r in recorder.records) == sorted(m.value.decode() for m in messages)


async def test_null_key_records_stay_in_partition_order_on_one_lane():
    """Issue 12 point 3: records without a key are never spread: they are invoked in partition order,
    one batch at a time, while keyed records use the other lanes."""
    messages = []
    for i in range(40):
        messages.append(Message(f"null-{i}".encode(), key=None))
        messages.append(Message(f"key{i % 5}-{i // 5}".encode(), key=f"key{i % 5}".encode()))
    recorder = kk.install(kk.KafkaRecorder(delay=0.02))
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, messages)
        mapping = smk_mapping(topic, BatchSize=3, MaximumBatchingWindowInSeconds=0,
                              esm={"parallelization_factor": LANES})
        async with daemon(mapping):
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == len(messages))
    seen = order_per_key(recorder.records)
    assert seen[None] == list(range(40))
    assert all(seen[f"key{k}"] == list(range(8)) for k in range(5))
    offsets = [r["offset"] for r in recorder.records if r.get("key") is None]
    assert offsets == sorted(offsets)


async def test_a_crash_replays_from_the_commit_and_loses_nothing(tmp_path):
    """behaviour §9.6 with lanes: a daemon killed (SIGKILL) with batches of several lanes in flight loses
    nothing: the restarted one reads from the group's committed offset, every offset from there on is
    read again, and each key is still in order."""
    record_file = tmp_path / "calls.jsonl"
    keys = [k for lane in keys_by_lane(2).values() for k in lane]
    per_key = 10
    total = per_key * len(keys)
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(f"{k}-{i}".encode(), key=k.encode()) for i in range(per_key) for k in keys])
        mapping = smk_mapping(topic, BatchSize=3, MaximumBatchingWindowInSeconds=0,
                              esm={"parallelization_factor": LANES})
        path = tmp_path / "esm.yaml"
        path.write_text(config_for(mapping, functions={"recorder": {"handler": "tests.support.kafka:file_handler"}}))
        # The killed member keeps its partition until its session times out: 6 s, the broker's minimum.
        launcher = ("import sys, esm.sources.kafka.tuning as k; k.SESSION_TIMEOUT_MS = 6000; "
                    "from esm.cli import main; sys.exit(main(['run', '--config', sys.argv[1]]))")

        def start(sleep: float, log_name: str) -> subprocess.Popen:
            env = dict(os.environ, ESM_TEST_RECORD_FILE=str(record_file), ESM_TEST_SLEEP=str(sleep))
            with open(tmp_path / log_name, "w") as log_file:
                return subprocess.Popen([sys.executable, "-c", launcher, str(path)], cwd=ROOT, env=env,
                                        stdout=log_file, stderr=subprocess.STDOUT)

        def events():
            if not record_file.exists():
                return []
            return [json.loads(line) for line in record_file.read_text().splitlines() if line.strip()]

        def open_batches():
            started = [e for e in events() if e["phase"] == "start"]
            ended = [e for e in events() if e["phase"] == "end"]
            return len(started) - len(ended)

        first = start(0.5, "first.log")
        try:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0, 0) >= 10, timeout=60)
            await wait_until(lambda: open_batches() >= 2, what="batches of several lanes in flight")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        before = len(events())
        committed = (await kk.group_offsets(admin, group_of(mapping)))[0]
        second = start(0, "second.log")
        try:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == total, timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
    assert 10 <= committed < total
    everything = [item for e in events() if e["phase"] == "start" for item in e["items"]]
    assert {offset for _, offset, _ in everything} == set(range(total))
    replayed = [item for e in events()[before:] if e["phase"] == "start" for item in e["items"]]
    assert min(offset for _, offset, _ in replayed) == committed  # read again from the commit, not before
    assert {offset for _, offset, _ in replayed} == set(range(committed, total))
    per_key: dict[str, list[int]] = {}
    for _, _, value in replayed:
        key, n = value.rsplit("-", 1)
        per_key.setdefault(key, []).append(int(n))
    assert all(ns == sorted(ns) and len(set(ns)) == len(ns) for ns in per_key.values())
