"""The in-flight bytes cap enforced against real backends (issue 8: memory is capped by
configuration, `esm: {max_in_flight_bytes}` per mapping). behaviour §9.6 still holds under the cap:
every record is processed, in order where the source keeps order.

Each test runs a slow function over a backlog several times the cap. Without the cap, the Kafka
source would queue up to 500 records per partition (30 MB here) and the SQS pollers would scale
past ten batches of 2 MB; with it, `esm_in_flight_bytes_peak` stays within the cap plus one
read's worth, and `esm_in_flight_waits_total` shows the cap held the pollers back.
"""

from __future__ import annotations

import asyncio

import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import kafka as kk
from tests.support import recorder as rec
from tests.support.daemon import mapping_config, running, running_config
from tests.support.kafka import create_topic, kafka_admin, produce_bulk, smk_mapping, value_of
from tests.support.sqs import create_queue, sqs_client, wait_until_empty

pytestmark = pytest.mark.usefixtures("backends")

MIB = 1024 * 1024
CAP = 8 * MIB
RECORD_BYTES = 150 * 1024


def peak(daemon) -> float:
    return daemon.total("esm_in_flight_bytes_peak")


async def test_kafka_source_holds_no_more_than_the_cap_plus_one_fetch():
    """Kafka: partitions are paused while the mapping holds its cap; 200 records of 150 KB (30 MB) on two
    partitions all arrive, in offset order per partition, while the peak stays under cap + 2 fetches."""
    recorder = kk.install(kk.KafkaRecorder(delay=0.2))
    per_partition = 100
    async with kafka_admin() as admin:
        topic = await create_topic(admin, partitions=2)
        for partition in (0, 1):
            await produce_bulk(topic, [f"{partition}:{i}:".encode().ljust(RECORD_BYTES, b"x")
                                       for i in range(per_partition)], partition=partition)
        mapping = smk_mapping(topic, BatchSize=10, esm={"max_in_flight_bytes": "8MiB"})
        doc = {"functions": kk.FUNCTIONS, "event_source_mappings": [mapping], "metrics": {"listen": "127.0.0.1:0"},
               "shutdown_timeout": 20, "startup_timeout": 30}
        async with running_config(parse_config(yaml.safe_dump(doc))) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= 2 * per_partition, timeout=120)
            seen_peak, waits = peak(daemon), daemon.total("esm_in_flight_waits_total")
    for partition in (0, 1):
        order = [int(v.split(":")[1]) for v in recorder.values() if v.startswith(f"{partition}:")]
        assert order == list(range(per_partition)), f"partition {partition} out of order or incomplete"
    # One fetch returns at most max_partition_fetch_bytes (1 MiB) per partition.
    assert 0 < seen_peak <= CAP + 2 * MIB + 2 * RECORD_BYTES, f"peak {seen_peak / MIB:.1f} MiB"
    assert waits >= 1, "the cap never held a partition back"


async def test_sqs_pollers_wait_for_room_under_the_cap():
    """SQS: a poller with nothing gathered waits for room before it receives; 200 messages of 150 KB
    (30 MB) through a slow function all get processed and deleted, the peak under cap + one receive
    (what a receive may bring is counted while it is under way: 10 x the queue's 256 KB maximum)."""
    recorder = rec.install(rec.Recorder(delay=1.0))
    async with sqs_client() as client:
        url, arn = await create_queue(client, visibility=60)
        bodies = [f"{i}:".ljust(RECORD_BYTES, "x") for i in range(200)]
        await asyncio.gather(*(client.send_message(QueueUrl=url, MessageBody=b) for b in bodies))
        config = mapping_config({"FunctionName": "recorder", "EventSourceArn": arn, "BatchSize": 10,
                                 "esm": {"max_in_flight_bytes": CAP}})
        async with running(config) as daemon:
            await recorder.wait_for(lambda r: len({b for b in r.bodies()}) >= len(bodies), timeout=120)
            await wait_until_empty(client, url)
            seen_peak, waits = peak(daemon), daemon.total("esm_in_flight_waits_total")
    assert 0 < seen_peak <= CAP + 10 * (256 * 1024 + 2048), f"peak {seen_peak / MIB:.1f} MiB"
    assert waits >= 1, "no poller ever waited for room"
