"""The control API (issue 15) against `esm run` as a process, driven by boto3's lambda client and
the AWS CLI, with ElasticMQ queues as sources and a handler module that appends every record it
gets to a file (so the test sees what was delivered, batch by batch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
import yaml
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.support.kafka import NO_AUTH, Message, create_topic, kafka_admin, produce, smk_mapping
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.ports import free_port
from tests.support.sqs import create_queue, queue_counts, send, sqs_client
from tests.support.waiting import wait_until

ESM = Path(sys.executable).parent / "esm"
AWS = Path(sys.executable).parent / "aws"
ACCESS_KEY = "AKIAESMTESTKEY000001"

# Appends one JSON line per record: source ARN (or Kafka topic), body (an SQS body, decoded
# Kinesis data or Kafka value), and
# the size of the batch it came in. A body of "block" waits until the file `<folder>/release`
# exists (to hold a batch in flight).
HANDLER = textwrap.dedent('''
    import base64, json, os, time
    HERE = os.path.dirname(os.path.abspath(__file__))

    def body(record):
        if "body" in record:
            return record["body"]
        data = record["kinesis"]["data"] if "kinesis" in record else record["value"]
        return base64.b64decode(data).decode()

    def handle(event, context):
        # SQS and Kinesis: Records; Kafka: records by topic-partition.
        records = event.get("Records") or [r for batch in event["records"].values() for r in batch]
        for record in records:
            if body(record) == "block":
                while not os.path.exists(os.path.join(HERE, "release")):
                    time.sleep(0.05)
        with open(os.path.join(HERE, "delivered.jsonl"), "a") as out:
            for record in records:
                source = record.get("eventSourceARN") or record["topic"]
                out.write(json.dumps({"queue": source, "body": body(record),
                                      "batch": len(records)}) + "\\n")
        return {}
''')


class EsmProcess:
    """`esm run` in `folder` with a control API on a free port."""

    def __init__(self, folder: Path, *, mappings: list[dict[str, Any]] | None = None,
                 credentials: tuple[str, str] | None = None, checkpoints: dict[str, Any] | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.module = f"api_handler_{uuid.uuid4().hex[:8]}"
        (folder / f"{self.module}.py").write_text(HANDLER)
        self.port = free_port()
        self.credentials = credentials
        api: dict[str, Any] = {"listen": f"127.0.0.1:{self.port}"}
        self.env = dict(os.environ)
        if credentials is not None:
            self.env["ESM_API_KEY_ID"], self.env["ESM_API_SECRET"] = credentials
            (folder / "api-secret").write_text(credentials[1] + "\n")
            api["credentials"] = {"access_key_id": {"env": "ESM_API_KEY_ID"}, "secret_access_key": {"file": "api-secret"}}
        handler = {"handler": f"{self.module}:handle", "max_concurrency": 10}
        self.config = folder / "esm.yaml"
        self.config.write_text(yaml.safe_dump({
            # `single` runs one batch at a time: one poller, so a batch holds all that is waiting.
            "functions": {"orders": dict(handler), "billing": dict(handler),
                          "single": dict(handler, max_concurrency=1)},
            "event_source_mappings": mappings or [],
            "metrics": {"listen": f"127.0.0.1:{free_port()}"},
            "checkpoints": checkpoints or {"sqlite": str(folder / "state.db")},
            "api": api, "shutdown_timeout": 10, "startup_timeout": 30}, sort_keys=False))
        self.process: subprocess.Popen[str] | None = None
        self.log = folder / "esm.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "EsmProcess":
        self.process = subprocess.Popen([str(ESM), "run", "--config", str(self.config)], cwd=self.folder, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=self.log.open("a"), text=True)
        return self

    async def ready(self) -> None:
        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            try:
                urllib.request.urlopen(self.endpoint + "/2015-03-31/event-source-mappings", timeout=2)
            except urllib.error.HTTPError:
                return True  # it answers (403 without a signature)
            except OSError:
                return False
            return True
        await wait_until(answers, timeout=60, what="the control API answers")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def client(self, secret: str | None = None, key: str | None = None) -> Any:
        key_id, real = self.credentials or ("test", "test")
        return boto3.client("lambda", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key or key_id, aws_secret_access_key=secret or real,
                            config=BotoConfig(retries={"max_attempts": 1}))

    def delivered(self, queue: str) -> list[dict[str, Any]]:
        path = self.folder / "delivered.jsonl"
        if not path.exists():
            return []
        return [line for line in map(json.loads, path.read_text().splitlines()) if line["queue"] == queue]


@pytest.fixture(scope="module")
def esm_api(backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[EsmProcess]:
    """One daemon for the module, with one mapping from its config file (billing <- a queue)."""
    folder = tmp_path_factory.mktemp("api")
    config_queue = f"api-config-{uuid.uuid4().hex[:8]}"
    boto3.client("sqs", endpoint_url=os.environ["ESM_SQS_ENDPOINT"], region_name="us-east-1").create_queue(
        QueueName=config_queue)
    daemon = EsmProcess(folder, mappings=[
        {"FunctionName": "billing", "EventSourceArn": f"arn:aws:sqs:us-east-1:000000000000:{config_queue}",
         "esm": {"name": "from-config"}}]).start()
    daemon.config_queue_arn = f"arn:aws:sqs:us-east-1:000000000000:{config_queue}"  # type: ignore[attr-defined]
    yield daemon
    daemon.stop()


def error_code(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


async def wait_state(client: Any, mapping: str, state: str) -> None:
    await wait_until(lambda: client.get_event_source_mapping(UUID=mapping)["State"] == state, timeout=60,
                     what=f"mapping {mapping} in state {state}", interval=0.2)


async def test_every_operation_with_paging_and_filters(esm_api: EsmProcess):
    """Issue 15.1 and 15.3: Create answers 202 with the configuration (State Creating, then
    Enabled), Get, List filtered by FunctionName (a key or a function ARN) and EventSourceArn and
    paged with Marker/MaxItems, Update and Delete (202, State Deleting, then gone); the config
    file's mapping is listed and readable."""
    await esm_api.ready()
    lam = esm_api.client()
    async with sqs_client() as sqs:
        arns = [(await create_queue(sqs, "api-ops"))[1] for _ in range(3)]
    created = lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arns[0], BatchSize=5)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating" and created["StateTransitionReason"] == "USER_INITIATED"
    assert created["BatchSize"] == 5 and created["EventSourceArn"] == arns[0]
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:orders"
    assert created["EventSourceMappingArn"] == \
        f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{created['UUID']}"
    assert "LastProcessingResult" not in created  # AWS answers none for SQS (behaviour §10)
    assert created["MaximumBatchingWindowInSeconds"] == 0
    mine = [created["UUID"]]
    for arn in arns[1:]:
        mine.append(lam.create_event_source_mapping(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:orders",
                                                    EventSourceArn=arn)["UUID"])
    await wait_state(lam, mine[0], "Enabled")

    got = lam.get_event_source_mapping(UUID=mine[1])
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200 and got["EventSourceArn"] == arns[1]
    assert got["BatchSize"] == 10  # Lambda's SQS default

    pages, marker = [], None
    while True:
        kwargs = {"FunctionName": "orders", "MaxItems": 2} | ({"Marker": marker} if marker else {})
        page = lam.list_event_source_mappings(**kwargs)
        pages.append([m["UUID"] for m in page["EventSourceMappings"]])
        marker = page.get("NextMarker")
        if not marker:
            break
    assert all(len(p) <= 2 for p in pages) and len(pages) >= 2
    listed = [u for p in pages for u in p]
    assert set(mine) <= set(listed) and len(listed) == len(set(listed))
    by_source = lam.list_event_source_mappings(EventSourceArn=arns[2])["EventSourceMappings"]
    assert [m["UUID"] for m in by_source] == [mine[2]]
    by_arn = lam.list_event_source_mappings(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:orders")
    assert set(mine) <= {m["UUID"] for m in by_arn["EventSourceMappings"]}

    config_arn = esm_api.config_queue_arn  # type: ignore[attr-defined]
    from_config = lam.list_event_source_mappings(FunctionName="billing", EventSourceArn=config_arn)["EventSourceMappings"]
    assert len(from_config) == 1
    assert lam.get_event_source_mapping(UUID=from_config[0]["UUID"])["EventSourceArn"] == config_arn

    updated = lam.update_event_source_mapping(UUID=mine[1], BatchSize=7)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202 and updated["State"] == "Updating"
    assert updated["BatchSize"] == 7
    await wait_state(lam, mine[1], "Enabled")

    for mapping in mine:
        deleted = lam.delete_event_source_mapping(UUID=mapping)
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202 and deleted["State"] == "Deleting"
    await wait_until(lambda: not set(mine) & {m["UUID"] for m in lam.list_event_source_mappings()["EventSourceMappings"]},
                     timeout=60, what="deleted mappings gone")
    assert error_code(lambda: lam.get_event_source_mapping(UUID=mine[0]))[:2] == ("ResourceNotFoundException", 404)


async def test_each_error_type(esm_api: EsmProcess):
    """Issue 15.2 and 15.4: InvalidParameterValueException (BatchSize above 10 for SQS without a
    window; an unknown field), ResourceConflictException (a second mapping for the same function
    and source; an update while Creating; changing the config file's mapping),
    ResourceNotFoundException (unknown UUID, unknown function), each with Lambda's HTTP status."""
    await esm_api.ready()
    lam = esm_api.client()
    async with sqs_client() as sqs:
        _, arn = await create_queue(sqs, "api-errors")
    code, status, message = error_code(lambda: lam.create_event_source_mapping(
        FunctionName="orders", EventSourceArn=arn, BatchSize=50))
    assert (code, status, message) == ("InvalidParameterValueException", 400, "Maximum batch window in seconds must "
                                       "be greater than 0 if maximum batch size is greater than 10")

    request = urllib.request.Request(esm_api.endpoint + "/2015-03-31/event-source-mappings/", method="POST",
                                     data=json.dumps({"FunctionName": "orders", "EventSourceArn": arn,
                                                      "Colour": "blue"}).encode())
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(request, timeout=10)
    assert raw.value.code == 400 and raw.value.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    body = json.loads(raw.value.read())
    assert "Colour" in body["message"] and body["Type"] == "User"

    # Bodies are bounded (15.5); other paths are no operation of this API.
    huge = urllib.request.Request(esm_api.endpoint + "/2015-03-31/event-source-mappings/", method="POST",
                                  data=b"{" + b" " * (300 * 1024) + b"}")
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(huge, timeout=10)
    assert raw.value.code == 413 and raw.value.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(esm_api.endpoint + "/2015-03-31/functions/orders/invocations", timeout=10)
    assert raw.value.code == 404 and raw.value.headers["x-amzn-ErrorType"] == "UnknownOperationException"

    first = lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn)["UUID"]
    code, status, message = error_code(lambda: lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn))
    assert (code, status) == ("ResourceConflictException", 409) and first in message

    assert error_code(lambda: lam.get_event_source_mapping(UUID=str(uuid.uuid4())))[:2] == \
        ("ResourceNotFoundException", 404)
    # behaviour §10: AWS checks the source first, then the function (400, not 404).
    assert error_code(lambda: lam.create_event_source_mapping(FunctionName="nobody", EventSourceArn=arn)) == \
        ("InvalidParameterValueException", 400, "Function does not exist")

    # A queue that does not exist is refused with SQS's error, as AWS does.
    missing = f"arn:aws:sqs:us-east-1:000000000000:api-not-yet-{uuid.uuid4().hex[:8]}"
    code, status, message = error_code(lambda: lam.create_event_source_mapping(FunctionName="orders",
                                                                                 EventSourceArn=missing))
    assert (code, status) == ("InvalidParameterValueException", 400) and "NonExistentQueue" in message
    # A cluster that does not answer (not missing) keeps its mapping in Creating: it cannot be
    # changed then (ResourceInUseException), but it can be deleted.
    unreachable = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [f"127.0.0.1:{free_port()}"]}}
    pending = lam.create_event_source_mapping(FunctionName="orders", Topics=["nowhere"],
                                              SelfManagedEventSource=unreachable,
                                              SourceAccessConfigurations=NO_AUTH)["UUID"]
    assert lam.get_event_source_mapping(UUID=pending)["State"] == "Creating"
    assert error_code(lambda: lam.update_event_source_mapping(UUID=pending, BatchSize=3)) == \
        ("ResourceInUseException", 400, "Cannot update the event source mapping because it is in use.")
    assert lam.delete_event_source_mapping(UUID=pending)["State"] == "Deleting"

    config_uuid = lam.list_event_source_mappings(FunctionName="billing")["EventSourceMappings"][0]["UUID"]
    for call in (lambda: lam.update_event_source_mapping(UUID=config_uuid, BatchSize=3),
                 lambda: lam.delete_event_source_mapping(UUID=config_uuid)):
        code, status, message = error_code(call)
        assert (code, status) == ("ResourceConflictException", 409) and "config file" in message
    lam.delete_event_source_mapping(UUID=first)


async def test_disable_holds_messages_and_enable_delivers_them(esm_api: EsmProcess):
    """Issue 15.3: Enabled=false goes Disabling -> Disabled and stops polling: messages sent then
    stay in the queue; Enabled=true goes Enabling -> Enabled and delivers them."""
    await esm_api.ready()
    lam = esm_api.client()
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "api-disable")
        mapping = lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn)["UUID"]
        await wait_state(lam, mapping, "Enabled")
        await send(sqs, url, ["before"])
        await wait_until(lambda: len(esm_api.delivered(arn)) == 1, what="the first message delivered")

        assert lam.update_event_source_mapping(UUID=mapping, Enabled=False)["State"] == "Disabling"
        await wait_state(lam, mapping, "Disabled")
        held = [f"held-{i}" for i in range(5)]
        await send(sqs, url, held)
        # Nobody polls a disabled mapping: the messages stay visible, none in flight, none delivered.
        assert await queue_counts(sqs, url) == (5, 0)
        assert lam.get_event_source_mapping(UUID=mapping)["State"] == "Disabled"
        assert await queue_counts(sqs, url) == (5, 0) and len(esm_api.delivered(arn)) == 1

        assert lam.update_event_source_mapping(UUID=mapping, Enabled=True)["State"] == "Enabling"
        await wait_until(lambda: len(esm_api.delivered(arn)) == 6, what="held messages delivered after enable")
        assert sorted(r["body"] for r in esm_api.delivered(arn)[1:]) == held
        await wait_state(lam, mapping, "Enabled")
    lam.delete_event_source_mapping(UUID=mapping)


async def test_update_batch_size_applies_to_the_next_batch_without_losing_records(esm_api: EsmProcess):
    """Issue 15.3: an update drains the running mapping (the batch in flight finishes and is
    deleted) and the new BatchSize applies from the next batch; every message arrives once."""
    await esm_api.ready()
    lam = esm_api.client()
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "api-update")
        mapping = lam.create_event_source_mapping(FunctionName="single", EventSourceArn=arn, BatchSize=1)["UUID"]
        await wait_state(lam, mapping, "Enabled")
        await send(sqs, url, ["block"])  # held in flight by the handler until `release` exists
        await wait_until(lambda: _in_flight(sqs, url), what="the blocking message in flight")
        assert lam.update_event_source_mapping(UUID=mapping, BatchSize=5, MaximumBatchingWindowInSeconds=2)["State"] \
            == "Updating"
        # While the batch in flight holds the update (15.2): no second change, no delete.
        for call in (lambda: lam.update_event_source_mapping(UUID=mapping, BatchSize=3),
                     lambda: lam.delete_event_source_mapping(UUID=mapping)):
            code, status, message = error_code(call)
            assert (code, status) == ("ResourceInUseException", 400) and "because it is in use" in message
        (esm_api.folder / "release").write_text("")
        await wait_state(lam, mapping, "Enabled")
        await send(sqs, url, [f"m{i}" for i in range(5)])
        await wait_until(lambda: len(esm_api.delivered(arn)) == 6, what="all six messages delivered")
        await wait_until(lambda: _empty(sqs, url), what="the queue drained")
    records = esm_api.delivered(arn)
    assert records[0] == {"queue": arn, "body": "block", "batch": 1}
    assert sorted(r["body"] for r in records[1:]) == [f"m{i}" for i in range(5)]
    assert max(r["batch"] for r in records[1:]) > 1, "the new BatchSize did not apply"
    assert lam.get_event_source_mapping(UUID=mapping)["BatchSize"] == 5
    lam.delete_event_source_mapping(UUID=mapping)


async def _in_flight(sqs: Any, url: str) -> bool:
    return (await queue_counts(sqs, url))[1] == 1


async def _empty(sqs: Any, url: str) -> bool:
    return await queue_counts(sqs, url) == (0, 0)


async def test_restart_keeps_an_api_made_mapping(backends: dict[str, str], tmp_path: Path):
    """Issue 15.4: a mapping made through the API is stored beside the checkpoints (SQLite) and
    runs again after a restart, with the same UUID and settings."""
    daemon = EsmProcess(tmp_path).start()
    try:
        await daemon.ready()
        lam = daemon.client()
        async with sqs_client() as sqs:
            url, arn = await create_queue(sqs, "api-restart")
            mapping = lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn, BatchSize=3)["UUID"]
            await wait_state(lam, mapping, "Enabled")
            assert daemon.stop() == 0
            daemon.start()
            await daemon.ready()
            listed = lam.list_event_source_mappings()["EventSourceMappings"]
            assert [(m["UUID"], m["BatchSize"], m["EventSourceArn"]) for m in listed] == [(mapping, 3, arn)]
            await wait_state(lam, mapping, "Enabled")
            await send(sqs, url, ["after restart"])
            await wait_until(lambda: [r["body"] for r in daemon.delivered(arn)] == ["after restart"],
                             what="delivered after the restart")
    finally:
        daemon.stop()


async def test_aws_cli_creates_lists_disables_and_deletes_with_a_signature(backends: dict[str, str], tmp_path: Path):
    """Issue 15.1/15.5/15.6: the AWS CLI from PyPI, as a user types it, against an esm with
    api.credentials: create-event-source-mapping, list-event-source-mappings, a disable through
    update-event-source-mapping and delete-event-source-mapping, all signed with SigV4."""
    secret = uuid.uuid4().hex
    daemon = EsmProcess(tmp_path, credentials=(ACCESS_KEY, secret)).start()
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1",
               AWS_REGION="us-east-1", AWS_PAGER="")
    env.pop("AWS_ENDPOINT_URL_LAMBDA", None)

    def aws(*args: str) -> dict[str, Any]:
        done = subprocess.run([str(AWS), "lambda", *args, "--endpoint-url", daemon.endpoint, "--output", "json"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    try:
        await daemon.ready()
        async with sqs_client() as sqs:
            _, arn = await create_queue(sqs, "api-cli")
        created = aws("create-event-source-mapping", "--function-name", "orders", "--event-source-arn", arn,
                      "--batch-size", "5")
        assert created["State"] == "Creating" and created["BatchSize"] == 5 and created["EventSourceArn"] == arn
        listed = aws("list-event-source-mappings", "--function-name", "orders")
        assert [m["UUID"] for m in listed["EventSourceMappings"]] == [created["UUID"]]
        await wait_state(daemon.client(), created["UUID"], "Enabled")
        assert aws("update-event-source-mapping", "--uuid", created["UUID"], "--no-enabled")["State"] == "Disabling"
        await wait_state(daemon.client(), created["UUID"], "Disabled")
        assert aws("delete-event-source-mapping", "--uuid", created["UUID"])["State"] == "Deleting"
    finally:
        daemon.stop()
    assert secret not in daemon.log.read_text()


async def test_a_wrong_secret_or_no_signature_is_refused(backends: dict[str, str], tmp_path: Path):
    """Issue 15.5: with api.credentials, a request signed with a wrong secret gets Lambda's
    InvalidSignatureException (403), an unknown access key UnrecognizedClientException, an
    unsigned request MissingAuthenticationTokenException; no mapping is made, the secret is never
    logged, and the requests are counted by operation and status."""
    secret = uuid.uuid4().hex
    daemon = EsmProcess(tmp_path, credentials=(ACCESS_KEY, secret)).start()
    try:
        await daemon.ready()
        arn = "arn:aws:sqs:us-east-1:000000000000:api-never"
        code, status, _ = error_code(lambda: daemon.client(secret="wrong" + secret).create_event_source_mapping(
            FunctionName="orders", EventSourceArn=arn))
        assert (code, status) == ("InvalidSignatureException", 403)
        code, status, _ = error_code(lambda: daemon.client(key="AKIAUNKNOWN000000000").list_event_source_mappings())
        assert (code, status) == ("UnrecognizedClientException", 403)
        with pytest.raises(urllib.error.HTTPError) as raw:
            urllib.request.urlopen(daemon.endpoint + "/2015-03-31/event-source-mappings/", timeout=10)
        assert raw.value.code == 403
        assert raw.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        assert daemon.client().list_event_source_mappings()["EventSourceMappings"] == []
        metrics_port = yaml.safe_load(daemon.config.read_text())["metrics"]["listen"].rsplit(":", 1)[1]
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert 'esm_api_requests_total{operation="CreateEventSourceMapping",status="403"} 1.0' in text
        assert 'esm_api_requests_total{operation="ListEventSourceMappings",status="200"} 1.0' in text
    finally:
        daemon.stop()
    assert secret not in daemon.log.read_text()


async def test_a_kinesis_mapping_resumes_from_its_checkpoint_after_disable_update_and_enable(esm_api: EsmProcess):
    """Issue 15.3: for a stream, disable keeps the checkpoint: records put while disabled are
    delivered after enable (an update of BatchSize in between), and none before them again."""
    await esm_api.ready()
    lam = esm_api.client()
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        mapping = lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn,
                                                  StartingPosition="TRIM_HORIZON")["UUID"]
        await put(kinesis, name, [("k", b"k1"), ("k", b"k2"), ("k", b"k3")])
        await wait_until(lambda: len(esm_api.delivered(arn)) == 3, what="the first records delivered")
        await wait_state(lam, mapping, "Enabled")
        lam.update_event_source_mapping(UUID=mapping, Enabled=False)
        await wait_state(lam, mapping, "Disabled")
        await put(kinesis, name, [("k", b"k4"), ("k", b"k5")])
        assert lam.update_event_source_mapping(UUID=mapping, BatchSize=2)["State"] == "Updating"
        await wait_state(lam, mapping, "Disabled")
        assert len(esm_api.delivered(arn)) == 3
        assert lam.update_event_source_mapping(UUID=mapping, Enabled=True)["State"] == "Enabling"
        await wait_until(lambda: len(esm_api.delivered(arn)) >= 5, what="records put while disabled delivered")
        await wait_state(lam, mapping, "Enabled")
    assert [r["body"] for r in esm_api.delivered(arn)] == ["k1", "k2", "k3", "k4", "k5"]
    assert lam.get_event_source_mapping(UUID=mapping)["BatchSize"] == 2
    lam.delete_event_source_mapping(UUID=mapping)


async def test_a_mapping_created_disabled_never_polls(esm_api: EsmProcess):
    """Issue 15.3: Enabled=false on create answers Disabled at once, as AWS does (behaviour §10);
    its queue is left alone."""
    await esm_api.ready()
    lam = esm_api.client()
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "api-created-disabled")
        await send(sqs, url, ["waiting"])
        created = lam.create_event_source_mapping(FunctionName="orders", EventSourceArn=arn, Enabled=False)
        assert created["State"] == "Disabled"
        assert await queue_counts(sqs, url) == (1, 0) and esm_api.delivered(arn) == []
    lam.delete_event_source_mapping(UUID=created["UUID"])


async def test_a_kafka_mapping_keeps_its_commits_across_disable_update_and_enable(esm_api: EsmProcess):
    """Issue 15.3: for Kafka, disable commits what was processed and leaves the group; records
    produced while disabled are delivered after enable (an update in between), none again."""
    await esm_api.ready()
    lam = esm_api.client()
    async with kafka_admin() as admin:
        topic = await create_topic(admin, prefix="api")
    request = smk_mapping(topic) | {"FunctionName": "orders"}
    mapping = lam.create_event_source_mapping(**request)["UUID"]
    await produce(topic, [Message(b"v1"), Message(b"v2"), Message(b"v3")])
    await wait_until(lambda: len(esm_api.delivered(topic)) == 3, what="the first records delivered")
    await wait_state(lam, mapping, "Enabled")
    lam.update_event_source_mapping(UUID=mapping, Enabled=False)
    await wait_state(lam, mapping, "Disabled")
    await produce(topic, [Message(b"v4"), Message(b"v5")])
    assert lam.update_event_source_mapping(UUID=mapping, BatchSize=2)["State"] == "Updating"
    await wait_state(lam, mapping, "Disabled")
    assert len(esm_api.delivered(topic)) == 3
    assert lam.update_event_source_mapping(UUID=mapping, Enabled=True)["State"] == "Enabling"
    await wait_until(lambda: len(esm_api.delivered(topic)) >= 5, what="records produced while disabled delivered")
    await wait_state(lam, mapping, "Enabled")
    assert [r["body"] for r in esm_api.delivered(topic)] == ["v1", "v2", "v3", "v4", "v5"]
    lam.delete_event_source_mapping(UUID=mapping)


async def test_a_stored_mapping_whose_function_left_the_config_is_listed_and_can_be_fixed(backends: dict[str, str],
                                                                                        tmp_path: Path):
    """Issue 15.4, and nothing dropped silently: after a restart without its function, an API
    mapping is listed Disabled with the problem as StateTransitionReason; an update naming another
    function runs it again."""
    daemon = EsmProcess(tmp_path).start()
    try:
        await daemon.ready()
        lam = daemon.client()
        async with sqs_client() as sqs:
            url, arn = await create_queue(sqs, "api-orphan")
            mapping = lam.create_event_source_mapping(FunctionName="billing", EventSourceArn=arn)["UUID"]
            await wait_state(lam, mapping, "Enabled")
            assert daemon.stop() == 0
            config = yaml.safe_load(daemon.config.read_text())
            del config["functions"]["billing"]
            daemon.config.write_text(yaml.safe_dump(config))
            daemon.start()
            await daemon.ready()
            got = lam.get_event_source_mapping(UUID=mapping)
            assert got["State"] == "Disabled" and got["StateTransitionReason"].startswith("PROBLEM:")
            assert "billing" in got["StateTransitionReason"]
            assert lam.update_event_source_mapping(UUID=mapping, FunctionName="orders")["State"] == "Enabling"
            await wait_state(lam, mapping, "Enabled")
            assert lam.get_event_source_mapping(UUID=mapping)["StateTransitionReason"] == "USER_INITIATED"
            await send(sqs, url, ["fixed"])
            await wait_until(lambda: [r["body"] for r in daemon.delivered(arn)] == ["fixed"], what="delivered again")
    finally:
        daemon.stop()
