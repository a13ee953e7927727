"""Kinesis on-failure documents end to end, compared key by key with the shapes recorded against
real AWS (behaviour §4 "Recorded against real AWS"; issue 13 point 2).

One daemon runs four mappings, each on its own stream with its own on-failure queue, and the
in-process function answers by record: a partial batch response naming one record, an invalid
partial batch response, an unhandled error, and (for the fourth stream) never sees its record,
which is older than MaximumRecordAgeInSeconds before its first invoke.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import replace
from types import MappingProxyType

import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import recorder as rec
from tests.support.daemon import RECORDER, running_config
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.sqs import create_queue, receive_all, sqs_client

pytestmark = pytest.mark.usefixtures("backends")

FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:recorder"
TOP_KEYS = ["requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"]
REQUEST_KEYS = ["requestId", "functionArn", "condition", "approximateInvokeCount"]
RESPONSE_KEYS = ["statusCode", "executedVersion", "functionError"]
INFO_KEYS = ["shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
             "approximateArrivalOfLastRecord", "batchSize", "streamArn"]


def data_of(record: dict) -> str:
    return base64.b64decode(record["kinesis"]["data"]).decode()


def answer(event: dict) -> object:
    """The function under test: what it answers depends on the records it is given."""
    records = event["Records"]
    kinds = {data_of(r).split("-")[0] for r in records}
    if "error" in kinds:
        raise RuntimeError("unhandled")
    if "invalid" in kinds:
        return {"batchItemFailures": [{"itemIdentifier": ""}]}
    failed = [r for r in records if data_of(r) == "partial-bad"]
    return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in failed]}


async def _first_message(sqs, url: str) -> dict:
    for _ in range(90):
        messages = await receive_all(sqs, url)
        if messages:
            assert len(messages) == 1, [m["Body"] for m in messages]
            return json.loads(messages[0]["Body"])
    raise AssertionError(f"nothing reached {url}")


async def test_destination_documents_match_the_shapes_recorded_against_aws(tmp_path):
    """behaviour §4 "Recorded against real AWS": a partial failure and an invalid partial response end with
    responseContext {200, $LATEST, functionError null}; a function error with functionError
    "Unhandled"; a record that expired before its first invoke has no responseContext key and
    approximateInvokeCount 1. Every document has AWS's keys in AWS's order."""
    recorder = rec.install(rec.Recorder(answer))
    async with kinesis_client() as kinesis, sqs_client() as sqs:
        cases = {}
        for case in ("partial", "invalid", "error", "expired"):
            name, arn = await create_stream(kinesis)
            url, queue_arn = await create_queue(sqs, f"docs-{case}-{uuid.uuid4().hex[:6]}")
            cases[case] = (name, arn, url, queue_arn)
        sequences = {
            "partial": await put(kinesis, cases["partial"][0], [("k", b"partial-ok"), ("k", b"partial-bad")]),
            "invalid": await put(kinesis, cases["invalid"][0], [("k", b"invalid-1")]),
            "error": await put(kinesis, cases["error"][0], [("k", b"error-1")]),
            "expired": await put(kinesis, cases["expired"][0], [("k", b"expired-1")]),
        }
        await asyncio.sleep(2.5)  # the "expired" record is now older than its mapping's 2 s limit

        def mapping(case: str, **fields) -> dict:
            _, arn, _, queue_arn = cases[case]
            return {"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
                    "DestinationConfig": {"OnFailure": {"Destination": queue_arn}}, **fields}

        rbif = {"FunctionResponseTypes": ["ReportBatchItemFailures"], "MaximumRetryAttempts": 1}
        text = yaml.safe_dump({
            "functions": RECORDER,
            "event_source_mappings": [mapping("partial", **rbif), mapping("invalid", **rbif),
                                      mapping("error", MaximumRetryAttempts=1),
                                      mapping("expired", MaximumRecordAgeInSeconds=60)],
            "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30,
            "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")}}, sort_keys=False)
        config = parse_config(text)
        # The API's minimum age is 60 s; the rule is the same at 2 s, which keeps the test short.
        expired = config.mappings[3]
        config = replace(config, mappings=config.mappings[:3] + (
            replace(expired, request=MappingProxyType({**expired.request, "MaximumRecordAgeInSeconds": 2})),))
        async with running_config(config):
            documents = {case: await _first_message(sqs, cases[case][2]) for case in cases}

    assert "expired-1" not in [data_of(r) for r in recorder.records]  # never invoked
    for case, document in documents.items():
        expected_top = [k for k in TOP_KEYS if not (case == "expired" and k == "responseContext")]
        assert list(document) == expected_top, case
        assert list(document["requestContext"]) == REQUEST_KEYS, case
        assert list(document["KinesisBatchInfo"]) == INFO_KEYS, case
        assert document["requestContext"]["functionArn"] == FUNCTION_ARN
        assert document["version"] == "1.0"
        assert document["KinesisBatchInfo"]["streamArn"] == cases[case][1]
        assert document["KinesisBatchInfo"]["batchSize"] == 1

    partial = documents["partial"]
    assert partial["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert partial["requestContext"]["approximateInvokeCount"] == 2
    assert partial["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None}
    assert list(partial["responseContext"]) == RESPONSE_KEYS
    assert partial["KinesisBatchInfo"]["startSequenceNumber"] == sequences["partial"][1]

    invalid = documents["invalid"]
    assert invalid["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert invalid["requestContext"]["approximateInvokeCount"] == 2
    assert invalid["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None}
    assert list(invalid["responseContext"]) == RESPONSE_KEYS

    error = documents["error"]
    assert error["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert error["requestContext"]["approximateInvokeCount"] == 2
    assert error["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert list(error["responseContext"]) == RESPONSE_KEYS

    gone = documents["expired"]
    assert gone["requestContext"]["condition"] == "RecordAgeExceeded"
    assert gone["requestContext"]["approximateInvokeCount"] == 1
    assert gone["KinesisBatchInfo"]["startSequenceNumber"] == sequences["expired"][0]


async def test_lambda_target_reports_executed_version_and_role_from_the_lambda_api(tmp_path):
    """behaviour §4 "Recorded against real AWS": executedVersion is the version the Invoke response says
    ran (X-Amz-Executed-Version), and Kinesis records' invokeIdentityArn is the function's execution
    role, read once from GetFunctionConfiguration. The Lambda API here is a named fake
    (tests/support/lambda_fake.py): no server here runs a published version."""
    from tests.support.lambda_fake import fake_lambda

    role = "arn:aws:iam::123456789012:role/orders-execution"
    function = "arn:aws:lambda:us-east-1:000000000000:function:orders:7"
    async with fake_lambda(version="7", role=role) as api, kinesis_client() as kinesis, sqs_client() as sqs:
        name, arn = await create_stream(kinesis)
        url, queue_arn = await create_queue(sqs, f"docs-version-{uuid.uuid4().hex[:6]}")
        await put(kinesis, name, [("k", b"v-1")])
        text = yaml.safe_dump({
            "functions": {"orders": {"lambda": function}},
            "event_source_mappings": [{
                "FunctionName": "orders", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
                "MaximumRetryAttempts": 0, "DestinationConfig": {"OnFailure": {"Destination": queue_arn}}}],
            "aws": {"endpoints": {"lambda": api.url}},
            "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30,
            "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")}}, sort_keys=False)
        async with running_config(parse_config(text)):
            document = await _first_message(sqs, url)
    assert document["responseContext"] == {"statusCode": 200, "executedVersion": "7", "functionError": "Unhandled"}
    assert document["requestContext"]["functionArn"] == function
    assert [r["invokeIdentityArn"] for e in api.events for r in e["Records"]] == [role]
    assert api.configuration_reads == 1
