"""docs/operations.md's commands that run without a cluster, run as printed against the local
backends, with what they print compared to the page: `esm validate` with its safety checks,
`esm status --url http://host:port` against a starting daemon, the page's PromQL join of
`esm_mapping_info` evaluated by promtool on a daemon's real series, every `$ esm replay` line
(SQS DLQ dry run and move, Kinesis and DynamoDB Streams on-failure documents), a renamed mapping's
positions reported by `esm validate --positions` and kept by `esm: {uuid: ...}`, and `AT_TIMESTAMP`
refused for a DynamoDB stream. The docker and kubectl steps need a daemon and a cluster and are not
run here (tests/unit/test_deploy.py and test_helm_chart.py check what they apply).

What the test changes in the page's text: the names the page gives resources get a fresh suffix
(queue, stream and table names on shared backends), ARNs, UUIDs, shard ids and sequence numbers
are compared by shape, and the metrics address is a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.dynamodb import create_table, dynamodb_client, item, put_items, streams_client
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.ports import free_port
from tests.support.processes import stop_group
from tests.support.sqs import create_queue, queue_counts, send, sqs_client
from tests.support.waiting import wait_until

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "operations.md"
ESM = str(Path(sys.executable).parent / "esm")
HANDLERS = '''
def ok(event, context):
    return {}


def show(event, context):
    for record in event["Records"]:
        print("got", record["eventName"], record["dynamodb"]["Keys"]["pk"]["S"], flush=True)
    return {}
'''


def section(title: str) -> str:
    return PAGE.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def blocks(title: str) -> list[str]:
    """The unlabelled fenced blocks (printed output) of a section."""
    return [text for language, text in re.findall(r"```(\w*)\n(.*?)```", section(title), re.S) if not language]


def shape(text: str) -> str:
    """Output with what differs per run replaced by its kind."""
    text = re.sub(r"arn:aws:sqs:[\w-]+:\d+:([a-z-]+?)-?[0-9a-f]{10}\b", r"<queue \1>", text)
    text = re.sub(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>", text)
    text = re.sub(r"shardId-[\w-]+", "<shard>", text)
    return re.sub(r"\b\d{20,}\b", "<sequence>", text)


async def esm(*args: str, cwd: Path) -> tuple[int, str, str]:
    done = await asyncio.to_thread(subprocess.run, [ESM, *args], cwd=cwd, capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout, done.stderr


def write(folder: Path, config: dict[str, Any], name: str = "esm.yaml") -> None:
    (folder / name).write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "app.py").write_text(HANDLERS)


@contextlib.contextmanager
def daemon(folder: Path, config: str = "esm.yaml"):
    log = folder / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen([ESM, "run", "--config", config], cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process, log
    finally:
        stop_group(process)


def scrape(url: str) -> str:
    """The body at url, also of an error status (/readyz answers 503 with what it waits for)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.read().decode()
    except (OSError, urllib.error.URLError):
        return ""


async def test_safety_checks_print_what_the_page_shows(backends: dict[str, str], tmp_path: Path) -> None:
    """Safety checks: a queue at ElasticMQ's defaults and a 10 s function give exactly the page's
    two warnings and its 'not checked' line, and validate still exits 0 (warnings only)."""
    (shown,) = blocks("Safety checks")
    command, expected = shown.split("\n", 1)
    assert command == "$ esm validate -c esm.yaml"
    async with sqs_client() as sqs:
        _, arn = await create_queue(sqs, "orders")
    write(tmp_path, {"functions": {"orders": {"url": "http://127.0.0.1:9/orders", "timeout": 10}},
                     "event_source_mappings": [{"FunctionName": "orders", "EventSourceArn": arn, "esm": {"name": "orders"}}]})
    code, out, err = await esm(*command.split()[2:], cwd=tmp_path)
    assert code == 0, out + err
    assert out == expected, out


async def test_status_of_a_starting_daemon_and_the_pages_metrics_join(backends: dict[str, str],
                                                                      tmp_path: Path) -> None:
    """`esm status --url http://host:port` (the port-forward form) prints the page's table for a
    daemon whose one mapping waits for a missing queue; the page's join of esm_mapping_info, run by
    promtool on the daemon's own series, gives each series its mapping's name."""
    (shown,) = blocks("`esm status`")
    port = free_port()
    async with sqs_client() as sqs:
        _, arn = await create_queue(sqs, "orders")
    missing = "arn:aws:sqs:us-east-1:000000000000:try-missing"
    assert missing in shown
    write(tmp_path, {"functions": {"fn": {"handler": "app.ok"}, "web": {"handler": "app.ok"}},
                     "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": arn, "esm": {"name": "orders"}},
                                               {"FunctionName": "web", "EventSourceArn": missing,
                                                "esm": {"name": "missing-queue"}}],
                     "metrics": {"listen": f"127.0.0.1:{port}"}, "startup_timeout": 300})
    with daemon(tmp_path) as (process, log):
        await wait_until(lambda: "QueueDoesNotExist" in scrape(f"http://127.0.0.1:{port}/readyz")
                         or process.poll() is not None, timeout=120, what="the daemon waiting for the missing queue")
        assert process.poll() is None, log.read_text()
        code, out, err = await esm("status", "--url", f"http://127.0.0.1:{port}", cwd=tmp_path)
        metrics = scrape(f"http://127.0.0.1:{port}/metrics")
    assert code == 0, out + err
    first, *rest = out.splitlines()
    page_first, *page_rest = shown.splitlines()
    assert first == page_first.replace("127.0.0.1:9090", f"127.0.0.1:{port}")
    assert rest[:3] == page_rest[:3], out  # header and rows, column for column
    waiting = [line.split(" ... ")[0] for line in page_rest[3:]]
    assert len(rest[3:]) == len(waiting) and all(line.startswith(w) for line, w in zip(rest[3:], waiting)), out

    if shutil.which("promtool") is None:
        assert not os.environ.get("CI"), "promtool is not installed"
        return
    join = re.search(r"\(`(\* on \(mapping\) group_left \(name\) [^`]+)`\)", section("Metrics"))
    assert join, "the page's join expression"
    series = [line for line in metrics.splitlines() if line.startswith(("esm_polled_events_total{", "esm_mapping_info{"))]
    assert len(series) == 4, metrics
    tests = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": line.rsplit(" ", 1)[0], "values": "0x2"} for line in series],
        "promql_expr_test": [{"expr": f"esm_polled_events_total {join.group(1)}", "eval_time": "1m",
                              "exp_samples": [{"labels": _with_name(line, series), "value": 0}
                                              for line in series if line.startswith("esm_polled")]}]}]}
    (tmp_path / "join-test.yaml").write_text(yaml.safe_dump(tests))
    done = subprocess.run(["promtool", "test", "rules", "join-test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _with_name(line: str, series: list[str]) -> str:
    """The polled series' labels plus its mapping's name, read from esm_mapping_info."""
    labels = line.rsplit(" ", 1)[0]
    mapping = re.search(r'mapping="([^"]+)"', labels).group(1)
    info = next(s for s in series if s.startswith("esm_mapping_info{") and f'mapping="{mapping}"' in s)
    name = re.search(r'name="([^"]+)"', info).group(1)
    return labels[len("esm_polled_events_total"):-1] + f',name="{name}"}}'


def replays() -> list[tuple[str, str]]:
    """(command, what it printed) for every `$ esm replay` line of the section."""
    found = []
    for block in blocks("Replaying what failed"):
        for part in re.split(r"\n(?=\$ )", block.strip()):
            command, _, output = part.partition("\n")
            if command.startswith("$ esm replay"):
                found.append((command[2:], output.strip() + "\n"))
    return found


def aws_document(info_key: str, stream_arn: str, shard: str, first: str, last: str, count: int) -> str:
    """An on-failure document as AWS writes one for a stream mapping."""
    return json.dumps({"requestContext": {"requestId": str(uuid.uuid4()), "functionArn":
                                          "arn:aws:lambda:us-east-1:000000000000:function:payments",
                                          "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
                       "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                       "version": "1.0", "timestamp": "2026-11-23T15:46:02.114Z",
                       info_key: {"shardId": shard, "startSequenceNumber": first, "endSequenceNumber": last,
                                  "approximateArrivalOfFirstRecord": "2026-11-23T15:45:50.866Z",
                                  "approximateArrivalOfLastRecord": "2026-11-23T15:45:51.866Z",
                                  "batchSize": count, "streamArn": stream_arn}})


async def test_every_replay_command_prints_what_the_page_shows(backends: dict[str, str], tmp_path: Path) -> None:
    """Replaying what failed: the SQS dry run moves nothing and counts the DLQ; --execute moves the
    three messages back with SQS's move task; a Kinesis and a DynamoDB Streams document name three
    records each, which are read again and invoked (the DynamoDB handler prints them), and the
    documents are removed. Each command as the page prints it, each summary as the page shows it."""
    commands = replays()
    assert [command.split()[5] for command, _ in commands] == ["orders", "orders", "payments", "orders-table"]
    async with sqs_client() as sqs, kinesis_client() as kinesis:
        dlq_url, dlq_arn = await create_queue(sqs, "orders-dlq")
        _, orders = await create_queue(sqs, "orders", dlq_arn=dlq_arn, max_receive=5)
        await send(sqs, dlq_url, ["m1", "m2", "m3"])
        stream, stream_arn = await create_stream(kinesis)
        sequences = await put(kinesis, stream, [("k", b"p1"), ("k", b"p2"), ("k", b"p3")])
        payments_url, payments_failures = await create_queue(sqs, "payments-failures")
        await send(sqs, payments_url, [aws_document("KinesisBatchInfo", stream_arn, "shardId-000000000000",
                                                    sequences[0], sequences[-1], 3)])
        async with dynamodb_client() as ddb:
            table, table_stream = await create_table(ddb, "NEW_IMAGE")
            await put_items(ddb, table, [item(f"order-{i}") for i in range(3)])
        async with streams_client() as streams:
            shard = (await streams.describe_stream(StreamArn=table_stream))["StreamDescription"]["Shards"][0]["ShardId"]
            iterator = (await streams.get_shard_iterator(StreamArn=table_stream, ShardId=shard,
                                                         ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
            records = (await streams.get_records(ShardIterator=iterator))["Records"]
        numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        assert len(numbers) == 3
        table_url, table_failures = await create_queue(sqs, "orders-failures")
        await send(sqs, table_url, [aws_document("DDBStreamBatchInfo", table_stream, shard, numbers[0], numbers[-1], 3)])
    write(tmp_path, {"functions": {"orders": {"handler": "app.ok"}, "payments": {"handler": "app.ok"},
                                   "show": {"handler": "app.show"}},
                     "event_source_mappings": [
                         {"FunctionName": "orders", "EventSourceArn": orders, "esm": {"name": "orders"}},
                         {"FunctionName": "payments", "EventSourceArn": stream_arn, "StartingPosition": "LATEST",
                          "esm": {"name": "payments"}},
                         {"FunctionName": "show", "EventSourceArn": table_stream, "StartingPosition": "LATEST",
                          "esm": {"name": "orders-table"}}]})
    arns = {"payments": payments_failures, "orders-table": table_failures}
    for command, expected in commands:
        mapping = command.split()[5]
        args = command.split()[1:]
        if "--from" in args:
            args[args.index("--from") + 1] = arns[mapping]
        code, out, err = await esm(*args, cwd=tmp_path)
        assert code == 0, f"{command}\n{out}{err}"
        printed = shape(out + err)
        for line in shape(expected).splitlines():
            if line.startswith("[") and "message move task" in line:
                continue  # progress of SQS's move task: how many steps it takes is SQS's
            assert line in printed, f"{command}: {line!r} not in\n{printed}"
    async with sqs_client() as sqs:
        assert await queue_counts(sqs, dlq_url) == (0, 0)
        assert await queue_counts(sqs, payments_url) == (0, 0)  # the replayed document removed
        assert await queue_counts(sqs, table_url) == (0, 0)


async def test_a_renamed_mapping_keeps_its_positions_only_with_its_uuid(backends: dict[str, str],
                                                                         tmp_path: Path) -> None:
    """State: a renamed stream mapping's checkpoint is reported by `esm validate --positions`
    (exit 1, 'did you rename?') and found again with `esm: {uuid: <old uuid>}` (exit 0)."""
    assert "esm validate --positions" in section("State: what must survive a rescheduled pod")
    async with kinesis_client() as kinesis:
        stream, arn = await create_stream(kinesis)
        await put(kinesis, stream, [("k", b"c1")])
    port = free_port()
    mapping = {"FunctionName": "fn", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON", "esm": {"name": "clicks"}}
    config = {"functions": {"fn": {"handler": "app.ok"}}, "event_source_mappings": [mapping],
              "metrics": {"listen": f"127.0.0.1:{port}"}}
    write(tmp_path, config)
    code, out, err = await esm("validate", "--config", "esm.yaml", cwd=tmp_path)
    old = re.search(r"^\s+([0-9a-f-]{36})\s+kinesis", out, re.M).group(1)
    with daemon(tmp_path) as (process, log):
        await wait_until(lambda: _counted(scrape(f"http://127.0.0.1:{port}/metrics"), "esm_invoked_events_total") >= 1
                         or process.poll() is not None, timeout=120, what="the record invoked")
    assert process.returncode == 0, log.read_text()  # SIGTERM: drained, checkpointed
    write(tmp_path, {**config, "event_source_mappings": [{**mapping, "esm": {"name": "clicks-v2"}}]})
    code, out, err = await esm("validate", "--config", "esm.yaml", "--positions", cwd=tmp_path)
    assert code == 1, out + err
    assert "orphaned positions for" in out + err and f"did you rename? set esm: {{uuid: {old}}}" in out + err
    write(tmp_path, {**config, "event_source_mappings": [{**mapping, "esm": {"name": "clicks-v2", "uuid": old}}]})
    code, out, err = await esm("validate", "--config", "esm.yaml", "--positions", cwd=tmp_path)
    assert code == 0, out + err


def _counted(metrics: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name + "{"))


async def test_at_timestamp_is_refused_for_a_dynamodb_stream(backends: dict[str, str], tmp_path: Path) -> None:
    """DynamoDB Streams in operation: AT_TIMESTAMP is refused (exit 2), as the page says."""
    assert "`AT_TIMESTAMP` is refused for DynamoDB streams" in section("DynamoDB Streams in operation")
    stream = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-01-01T00:00:00.000"
    write(tmp_path, {"functions": {"fn": {"handler": "app.ok"}}, "event_source_mappings": [
        {"FunctionName": "fn", "EventSourceArn": stream, "StartingPosition": "AT_TIMESTAMP",
         "StartingPositionTimestamp": 1700000000}]})
    code, out, err = await esm("validate", "--config", "esm.yaml", cwd=tmp_path)
    assert code == 2 and "StartingPosition: Unsupported starting position" in out + err, out + err
