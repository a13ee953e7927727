"""The safety checks (esm.safety) on the control API's changes (behaviour §1, §7): a mapping created or
updated through the API is checked against its source's real attributes (ElasticMQ), its warnings
are exported as esm_config_warnings{mapping,check} on `esm run`'s metrics endpoint, and a delete
clears them. Driven by boto3's lambda client against `esm run` as a process."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import yaml

from tests.integration.test_api import EsmProcess
from tests.support.sqs import create_queue, sqs_client
from tests.support.waiting import wait_until


def warnings_of(daemon: EsmProcess, mapping: str) -> set[str]:
    """The checks esm_config_warnings has a series for, for the mapping with this UUID (each set to 1)."""
    port = yaml.safe_load(daemon.config.read_text())["metrics"]["listen"].rsplit(":", 1)[1]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    found = set()
    for line in text.splitlines():
        if line.startswith("esm_config_warnings{") and f'mapping="{mapping}"' in line:
            assert line.endswith(" 1.0"), line
            found.add(line.split('check="', 1)[1].split('"', 1)[0])
    return found


async def test_create_warns_update_rereads_and_delete_clears(backends: dict[str, str], tmp_path: Path):
    """Created on a queue without a redrive policy: the sqs-redrive-policy warning is exported for
    the new mapping. The queue gets a DLQ and the mapping is updated: the checks run again and the
    warning goes. A second mapping's warning is gone once it is deleted."""
    daemon = EsmProcess(tmp_path).start()
    try:
        await daemon.ready()
        lam = daemon.client()
        async with sqs_client() as sqs:
            url, arn = await create_queue(sqs, "api-safety", visibility=600)
            _, other = await create_queue(sqs, "api-safety-other", visibility=600)
            _, dlq = await create_queue(sqs, "api-safety-dlq", visibility=600)

            created = lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn)["UUID"]
            await wait_until(lambda: warnings_of(daemon, created) == {"sqs-redrive-policy"}, timeout=60,
                             what="the created mapping's warning exported")
            assert "[sqs-redrive-policy]" in daemon.log.read_text()

            await sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq, "maxReceiveCount": "5"})})
            lam.update_event_source_mapping(UUID=created, BatchSize=5)
            await wait_until(lambda: warnings_of(daemon, created) == set(), timeout=60,
                             what="the updated mapping's warning cleared")

        second = lam.create_event_source_mapping(FunctionName="billing", EventSourceArn=other)["UUID"]
        await wait_until(lambda: warnings_of(daemon, second) == {"sqs-redrive-policy"}, timeout=60,
                         what="the second mapping's warning exported")
        lam.delete_event_source_mapping(UUID=second)
        await wait_until(lambda: not any(m["UUID"] == second for m in lam.list_event_source_mappings()[
            "EventSourceMappings"]), timeout=60, what="the second mapping deleted")
        assert warnings_of(daemon, second) == set()
    finally:
        daemon.stop()
