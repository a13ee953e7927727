"""Long fault scenario (second CI stage): a shard iterator expires while esm is stalled.

Issue 5.2: an expired iterator resumes from where esm was, never from the starting position.
kinesis-mock expires iterators after exactly 300 s, so this test takes a little over five minutes.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import recorder as rec
from tests.support.daemon import running_config
from tests.support.kinesis import create_stream, kinesis_client, put

pytestmark = [pytest.mark.usefixtures("backends"), pytest.mark.slow]
ITERATOR_LIFETIME = 300


class StallingRecorder(rec.Recorder):
    """Holds the first batch past the iterator lifetime, so the reader's iterator goes stale."""

    async def handle(self, event):
        if not self.batches:
            await asyncio.sleep(ITERATOR_LIFETIME + 15)
        return await super().handle(event)


async def test_expired_iterator_resumes_after_the_last_record_read(tmp_path, caplog):
    """Issue 5.2: after ExpiredIteratorException the worker resumes after the last record read — no record
    skipped (LATEST is not applied again), none read twice, order kept."""
    import logging

    caplog.set_level(logging.INFO, logger="esm.kinesis")
    recorder = rec.install(StallingRecorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        config = parse_config(yaml.safe_dump({
            "functions": {"recorder": {"handler": "tests.support.recorder:handle", "timeout": 900}},
            "event_source_mappings": [{"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "LATEST",
                                       "BatchSize": 100}],
            "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")},
            "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 30,
        }))
        async with running_config(config):
            await asyncio.sleep(3)  # the LATEST iterator is taken before anything is put
            # More than the lane queue holds (2 x BatchSize): the reader blocks behind the stalled batch.
            await put(kinesis, name, [("k", f"a{i:03d}".encode()) for i in range(400)])
            await asyncio.sleep(ITERATOR_LIFETIME / 2)
            await put(kinesis, name, [("k", f"b{i:03d}".encode()) for i in range(50)])  # during the stall
            await recorder.wait_for(lambda r: len(r.records) >= 450, timeout=ITERATOR_LIFETIME + 120)
    seen = [base64.b64decode(r["kinesis"]["data"]).decode() for r in recorder.records]
    assert seen == [f"a{i:03d}" for i in range(400)] + [f"b{i:03d}" for i in range(50)]
    assert any("expired; resuming after" in m for m in caplog.messages), "the iterator must really have expired"
