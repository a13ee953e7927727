"""What an operator sees: the startup summary, `esm run --log-format json`, and `esm status`.

The daemon runs as a process (the `esm` console script) against real ElasticMQ queues, with a
handler module written next to its config file (the config's folder is importable). `esm status`
runs as a process against that daemon's real /metrics and /readyz. The rendering of sources a
queue cannot show (Kinesis iterator age, Kafka offset lag, errors, failing readiness checks) is
checked on metrics from esm's own registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from esm.observability.metrics import Metrics
from esm.observability.status import HEADER, read_rows, render
from tests.support.ports import free_port
from tests.support.sqs import create_queue, send, sqs_client

ROOT = Path(__file__).resolve().parents[2]
ESM = Path(sys.executable).parent / "esm"
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}

# Reports the messages whose body says "fail" as batch item failures; everything else succeeds.
HANDLERS = textwrap.dedent('''
    import json

    def handle(event, context):
        failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["kind"] == "fail"]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
''')


def write_config(folder: Path, port: int, mappings: list[dict], functions: dict) -> Path:
    module = f"ops_handlers_{uuid.uuid4().hex[:8]}"  # unique, so no other test's module is reused
    (folder / f"{module}.py").write_text(HANDLERS)
    for target in functions.values():
        if target.get("handler") == "HANDLER":
            target["handler"] = f"{module}:handle"
    config = folder / "esm.yaml"
    config.write_text(yaml.safe_dump({"functions": functions, "event_source_mappings": mappings,
                                      "metrics": {"listen": f"127.0.0.1:{port}"}, "shutdown_timeout": 10,
                                      "startup_timeout": 30}, sort_keys=False))
    return config


def start(config: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(ESM), "run", "--config", str(config), *extra], cwd=config.parent,
                            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def scrape(port: int) -> dict[tuple[str, str], float]:
    """(series name, mapping name) -> value, straight from /metrics (independent of esm.observability.status)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    names, values = {}, {}
    families = list(text_string_to_metric_families(text))
    for family in families:
        for sample in family.samples:
            if family.name == "esm_mapping_info":
                names[sample.labels["mapping"]] = sample.labels["name"]
    for family in families:
        for sample in family.samples:
            if "mapping" in sample.labels and sample.labels["mapping"] in names:
                key = (sample.name, names[sample.labels["mapping"]])
                values[key] = values.get(key, 0.0) + sample.value
    return values


async def wait_for_metric(process: subprocess.Popen, port: int, series: str, name: str, value: float) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()
        try:
            if (await asyncio.to_thread(scrape, port)).get((series, name)) == value:
                return
        except OSError:
            pass  # the listener is not up yet
        assert time.monotonic() < deadline, f"{series} for {name} never reached {value}"
        await asyncio.sleep(0.2)


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stderr


@pytest.mark.usefixtures("backends")
async def test_run_log_format_json_writes_one_json_object_per_line_with_context(tmp_path):
    """Issue 7.6: `esm run --log-format json` writes nothing but JSON objects to stderr, each with
    time, level, logger and message; the startup summary has one line per mapping naming its source
    and target, with mapping/source/function fields; a mapping's own lines carry its name in
    `mapping`; no message body is logged."""
    port = free_port()
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "jsonlogs", visibility=300)
        _, idle_arn = await create_queue(sqs, "jsonlogs-idle", visibility=300)
        marker = uuid.uuid4().hex
        bodies = [json.dumps({"kind": "fail" if i < 2 else "order", "secret": f"{marker}-{i}"}) for i in range(6)]
        mappings = [
            {"FunctionName": "inproc", "EventSourceArn": arn, "BatchSize": 10, "MaximumBatchingWindowInSeconds": 1,
             "FunctionResponseTypes": ["ReportBatchItemFailures"], "esm": {"name": "json-orders"}},
            {"FunctionName": "web", "EventSourceArn": idle_arn, "esm": {"name": "json-idle"}},
        ]
        functions = {"inproc": {"handler": "HANDLER"}, "web": {"url": os.environ["ESM_FUNCTION_URL"]}}
        config = write_config(tmp_path, port, mappings, functions)
        process = start(config, "--log-format", "json")
        try:
            await wait_for_metric(process, port, "esm_polled_events_total", "json-idle", 0)
            await send(sqs, url, bodies)
            await wait_for_metric(process, port, "esm_deleted_events_total", "json-orders", 4)
        finally:
            code, stderr = await asyncio.to_thread(stop, process)
    assert code == 0, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    entries = []
    for line in lines:
        entry = json.loads(line)  # every line, not just most: a stray print would break log pipelines
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry), line
        assert entry["level"] in LEVELS, line
        entries.append(entry)
    for name, source_arn, function, kind in (("json-orders", arn, "inproc", "handler"),
                                             ("json-idle", idle_arn, "web", "url")):
        (summary,) = [e for e in entries if e["message"].startswith(f"mapping {name} ")]
        assert source_arn in summary["message"] and f"{kind} {function}" in summary["message"], summary
        assert (summary.get("mapping"), summary.get("source"), summary.get("function")) == (name, "sqs", function), summary
    partial = [e for e in entries if "partial batch failure" in e["message"]]
    assert partial and all(e.get("mapping") == "json-orders" for e in partial), entries
    assert marker not in stderr, "a message body reached the log"


@pytest.mark.usefixtures("backends")
async def test_status_reads_a_running_daemons_metrics_into_a_table(tmp_path):
    """Issue 7.6: `esm status --url <base URL>` against a running daemon prints one row per mapping
    with its name, source, state, readiness, function and the counts /metrics holds (polled,
    filtered, invoked, failed, deleted), `-` where a metric does not exist for SQS, and exits 0."""
    port = free_port()
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "status", visibility=300)
        # 2 filtered out (deleted too), 2 reported failed (stay on the queue), 6 succeed.
        kinds = ["skip"] * 2 + ["fail"] * 2 + ["order"] * 6
        bodies = [json.dumps({"kind": k, "n": i}) for i, k in enumerate(kinds)]
        mappings = [{"FunctionName": "inproc", "EventSourceArn": arn, "BatchSize": 10,
                     "MaximumBatchingWindowInSeconds": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"],
                     "FilterCriteria": {"Filters": [{"Pattern": json.dumps({"body": {"kind": ["order", "fail"]}})}]},
                     "esm": {"name": "status-orders"}}]
        config = write_config(tmp_path, port, mappings, {"inproc": {"handler": "HANDLER"}})
        process = start(config)
        try:
            await send(sqs, url, bodies)
            await wait_for_metric(process, port, "esm_deleted_events_total", "status-orders", 8)
            await wait_for_metric(process, port, "esm_failed_invoke_events_total", "status-orders", 2)
            direct = await asyncio.to_thread(scrape, port)
            status = await asyncio.to_thread(subprocess.run, [str(ESM), "status", "--url", f"http://127.0.0.1:{port}"],
                                             capture_output=True, text=True, timeout=60, check=False)
        finally:
            code, stderr = await asyncio.to_thread(stop, process)
    assert code == 0, stderr
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"esm at http://127.0.0.1:{port}/metrics: 1 mapping(s), ready", status.stdout
    assert lines[1].split() == list(HEADER), status.stdout
    row = dict(zip(HEADER, next(line for line in lines if line.startswith("status-orders ")).split()))
    assert row == {"MAPPING": "status-orders", "SOURCE": "sqs", "STATE": "Enabled", "READY": "yes",
                   "FUNCTION": "inproc", "POLLED": "10", "FILTERED": "2", "INVOKED": "8", "FAILED": "2",
                   "ACKED": "8", "ON-FAILURE": "-", "DROPPED": "-", "ERRORS": "0", "LAG": "-"}, status.stdout
    # The same numbers as /metrics itself.
    for column, series in (("POLLED", "esm_polled_events_total"), ("FILTERED", "esm_filtered_out_events_total"),
                           ("INVOKED", "esm_invoked_events_total"), ("FAILED", "esm_failed_invoke_events_total"),
                           ("ACKED", "esm_deleted_events_total")):
        assert int(row[column]) == direct[(series, "status-orders")], column


async def test_status_fails_clearly_when_nothing_listens():
    """Issue 7.6: `esm status --url U` with nothing at U says it cannot read U and exits 1."""
    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = await asyncio.to_thread(subprocess.run, [str(ESM), "status", "--url", url],
                                     capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert f"cannot read {url}" in result.stderr and not result.stdout


def test_status_table_shows_lag_errors_and_waiting_checks_per_source():
    """Issue 7.6: rows from esm's registry: Kinesis shows its worst iterator age, Kafka its max
    offset lag and commits, SQS its deletes; cells that do not exist for a source are `-`; errors
    are summed in the row and itemised below it; a failing readiness check is listed with its
    reason and marks its mapping not ready; a disabled mapping's readiness is `-`."""
    metrics = Metrics()
    rows = {
        "q": ("sqs", "orders", "fn-a", "Enabled"),
        "k": ("kinesis", "payments", "fn-b", "Enabled"),
        "f": ("kafka", "audit", "fn-c", "Creating"),
        "d": ("sqs", "paused", "fn-a", "Disabled"),
    }
    children = {}
    for uuid_, (source, name, function, state) in rows.items():
        m = metrics.for_mapping(uuid_, source)
        metrics.info.labels(uuid_, source, name, function, "id").set(1)
        m.set_state(state)
        children[uuid_] = m
    children["q"].polled.inc(1200)
    children["q"].deleted.inc(1150)
    children["q"].commit_errors.inc(3)
    children["k"].polled.inc(50)
    children["k"].iterator_age("shard-1", 2500)
    children["k"].iterator_age("shard-2", 40)
    children["k"].dropped.inc(4)
    children["k"].invoke_errors.inc(2)
    children["f"].committed.inc(7)
    metrics.max_offset_lag.labels("f", "kafka").set(1234)
    readiness = {"ready": False, "checks": {
        "orders/source": {"ready": True, "detail": "ok"}, "orders/target": {"ready": True, "detail": "ok"},
        "payments/source": {"ready": True, "detail": "ok"}, "payments/target": {"ready": True, "detail": "ok"},
        "audit/source": {"ready": False, "detail": "brokers unreachable"},
        "audit/target": {"ready": True, "detail": "ok"},
        "startup": {"ready": False, "detail": "starting"}}}
    text = render(read_rows(generate_latest(metrics.registry).decode()), readiness)
    lines = text.splitlines()
    assert lines[0].split() == list(HEADER)
    table = {line.split()[0]: dict(zip(HEADER, line.split())) for line in lines[1:5]}
    assert list(table) == ["audit", "orders", "paused", "payments"]  # sorted by name
    expected = {"SOURCE": "sqs", "READY": "yes", "POLLED": "1,200", "ACKED": "1,150", "ON-FAILURE": "-",
                "DROPPED": "-", "ERRORS": "3", "LAG": "-"}
    assert {column: table["orders"][column] for column in expected} == expected
    assert (table["payments"]["ACKED"], table["payments"]["DROPPED"], table["payments"]["ERRORS"],
            table["payments"]["LAG"]) == ("-", "4", "2", "2.5s")
    assert (table["audit"]["STATE"], table["audit"]["READY"], table["audit"]["ACKED"],
            table["audit"]["LAG"]) == ("Creating", "no", "7", "1,234")
    assert (table["paused"]["STATE"], table["paused"]["READY"]) == ("Disabled", "-")
    assert "errors   orders: 3 commit/delete" in lines
    assert "errors   payments: 2 invoke" in lines
    assert "waiting  audit: source: brokers unreachable" in lines
    assert "waiting  startup: starting" in lines
