"""Two esm replicas sharing a DynamoDB store (moto): a mapping made, changed or deleted through
one replica's control API is seen and applied by the other within a few seconds (issue 15.4)."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.integration.test_api import EsmProcess, wait_state
from tests.support.sqs import create_queue, send, sqs_client
from tests.support.waiting import wait_until


async def test_two_replicas_on_a_dynamodb_store_see_each_others_changes(backends: dict[str, str], tmp_path: Path):
    """Issue 15.4: create through replica A -> B lists and runs it; update through B -> A reports
    the new BatchSize; both replicas share the queue's messages as competing consumers (every
    message delivered); delete through A -> gone from B."""
    store = {"dynamodb": {"table": f"esm-api-{uuid.uuid4().hex[:8]}"}}
    a = EsmProcess(tmp_path / "a", checkpoints=store).start()
    b = EsmProcess(tmp_path / "b", checkpoints=store).start()
    try:
        await a.ready()
        await b.ready()
        la, lb = a.client(), b.client()
        async with sqs_client() as sqs:
            url, arn = await create_queue(sqs, "api-replicas")
            mapping = la.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn, BatchSize=2)["UUID"]
            await wait_until(lambda: [m["UUID"] for m in lb.list_event_source_mappings()["EventSourceMappings"]]
                             == [mapping], timeout=30, what="replica B sees the mapping A created")
            await wait_state(lb, mapping, "Enabled")
            await wait_state(la, mapping, "Enabled")

            assert lb.update_event_source_mapping(UUID=mapping, BatchSize=4)["BatchSize"] == 4
            await wait_until(lambda: la.get_event_source_mapping(UUID=mapping)["BatchSize"] == 4, timeout=30,
                             what="replica A applies B's update")
            await wait_state(la, mapping, "Enabled")
            await wait_state(lb, mapping, "Enabled")

            bodies = [f"r{i}" for i in range(20)]
            await send(sqs, url, bodies)
            await wait_until(lambda: sorted(r["body"] for r in a.delivered(arn) + b.delivered(arn)) == sorted(bodies),
                             what="every message delivered by one replica or the other")

            la.delete_event_source_mapping(UUID=mapping)
            await wait_until(lambda: lb.list_event_source_mappings()["EventSourceMappings"] == [], timeout=30,
                             what="replica B drops the mapping A deleted")
            await wait_until(lambda: la.list_event_source_mappings()["EventSourceMappings"] == [], timeout=30,
                             what="replica A finishes the delete")
    finally:
        a.stop()
        b.stop()
