"""The safety checks (esm.safety) on real queues and a real Lambda API (behaviour §1, §7): the facts are
read from ElasticMQ (visibility timeout, redrive policy) and from moto (SQS retention periods, which
ElasticMQ does not return; Lambda's GetFunctionConcurrency, which the Runtime Interface Emulator does
not serve), each rule warns on a queue set against AWS's advice, the daemon logs and exports them as
esm_config_warnings{mapping,check}, and `esm validate` prints them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
import zipfile

import pytest
import yaml
from aiobotocore.session import get_session

from esm.aws import AwsClients
from esm.config.loading import parse_config
from esm.safety import review
from tests.support.daemon import mapping_config, running
from tests.support.sqs import create_queue, sqs_client

pytestmark = pytest.mark.usefixtures("backends")

MOTO_ACCOUNT = "123456789012"


def moto(service: str):
    return get_session().create_client(service, region_name="us-east-1", endpoint_url=os.environ["ESM_AWS_ENDPOINT"],
                                       aws_access_key_id="test", aws_secret_access_key="test")


def config_for(arn: str, timeout: float = 10, function: dict | None = None, aws: dict | None = None, **fields):
    doc = {"functions": {"f": function or {"url": "http://127.0.0.1:9/", "timeout": timeout}},
           "event_source_mappings": [{"FunctionName": "f", "EventSourceArn": arn, **fields}]}
    if aws:
        doc["aws"] = aws
    return parse_config(yaml.safe_dump(doc), base_dir=".")


async def found(config) -> set[str]:
    [(_, _, warnings)] = await review(config.mappings, AwsClients(config.aws))
    return {w.check for w in warnings}


async def test_elasticmq_queue_without_redrive_and_short_visibility_warns():
    """No redrive policy, and a visibility timeout (30 s) below 6 x the function timeout (10 s): two
    warnings, read from the queue's own attributes."""
    async with sqs_client() as sqs:
        _, arn = await create_queue(sqs, visibility=30)
    assert await found(config_for(arn, timeout=10)) == {"sqs-redrive-policy", "sqs-visibility-timeout"}
    assert await found(config_for(arn, timeout=5)) == {"sqs-redrive-policy"}


async def test_elasticmq_max_receive_count_below_five_warns():
    async with sqs_client() as sqs:
        _, dlq = await create_queue(sqs, "dlq")
        _, low = await create_queue(sqs, visibility=60, dlq_arn=dlq, max_receive=2)
        _, fine = await create_queue(sqs, visibility=60, dlq_arn=dlq, max_receive=5)
    assert await found(config_for(low)) == {"sqs-max-receive-count"}
    assert await found(config_for(fine)) == set()


async def test_moto_retention_shorter_than_the_retries_and_a_short_lived_dlq_warn():
    """Retention (60 s) below maxReceiveCount (5) x visibility (60 s); the DLQ keeping messages no
    longer than the source queue. A queue set as AWS advises passes every rule."""
    async with moto("sqs") as sqs:
        suffix = uuid.uuid4().hex[:8]
        dlq_url = (await sqs.create_queue(QueueName=f"dlq-{suffix}", Attributes={"MessageRetentionPeriod": "60"}))["QueueUrl"]
        dlq = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq, "maxReceiveCount": "5"})
        await sqs.create_queue(QueueName=f"short-{suffix}", Attributes={
            "MessageRetentionPeriod": "60", "VisibilityTimeout": "60", "RedrivePolicy": redrive})
        long_dlq_url = (await sqs.create_queue(QueueName=f"longdlq-{suffix}",
                                               Attributes={"MessageRetentionPeriod": "1209600"}))["QueueUrl"]
        long_dlq = (await sqs.get_queue_attributes(QueueUrl=long_dlq_url, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]
        await sqs.create_queue(QueueName=f"good-{suffix}", Attributes={
            "MessageRetentionPeriod": "345600", "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": long_dlq, "maxReceiveCount": "5"})})
    aws = {"endpoints": {"sqs": os.environ["ESM_AWS_ENDPOINT"]}}
    short = f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:short-{suffix}"
    good = f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:good-{suffix}"
    assert await found(config_for(short, aws=aws)) == {"sqs-retention", "sqs-dead-letter-retention"}
    assert await found(config_for(good, aws=aws)) == set()


async def test_moto_reserved_concurrency_below_maximum_concurrency_warns():
    """GetFunctionConcurrency on the Lambda API (moto): reserved 2 < MaximumConcurrency 5 warns; 5 does not."""
    name = f"fn-{uuid.uuid4().hex[:8]}"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("h.py", "def h(event, context):\n    return {}\n")
    async with moto("iam") as iam:
        role = (await iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]})))["Role"]["Arn"]
    async with moto("lambda") as client:
        function = await client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="h.h",
            Code={"ZipFile": archive.getvalue()})
        await client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    async with sqs_client() as sqs:
        _, dlq = await create_queue(sqs, "dlq")
        _, arn = await create_queue(sqs, visibility=60, dlq_arn=dlq, max_receive=5)
    target = {"lambda": function["FunctionArn"], "timeout": 10}
    aws = {"endpoints": {"lambda": os.environ["ESM_AWS_ENDPOINT"], "sqs": os.environ["ESM_SQS_ENDPOINT"]}}
    assert await found(config_for(arn, function=target, aws=aws,
                                  ScalingConfig={"MaximumConcurrency": 5})) == {"lambda-reserved-concurrency"}
    async with moto("lambda") as client:
        await client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    assert await found(config_for(arn, function=target, aws=aws, ScalingConfig={"MaximumConcurrency": 5})) == set()


async def test_an_endpoint_without_the_call_leaves_the_rule_silent_and_says_so():
    """The Lambda Runtime Interface Emulator serves Invoke only: the reserved-concurrency rule is
    silent and the fact is named as not read."""
    async with sqs_client() as sqs:
        _, dlq = await create_queue(sqs, "dlq")
        _, arn = await create_queue(sqs, visibility=60, dlq_arn=dlq, max_receive=5)
    config = config_for(arn, function={"lambda": "function", "timeout": 10},
                        ScalingConfig={"MaximumConcurrency": 5})
    [(_, facts, warnings)] = await review(config.mappings, AwsClients(config.aws))
    assert warnings == [] and any("reserved concurrency" in what for what in facts.unread)


async def test_daemon_logs_and_exports_the_warnings(caplog):
    """At start the daemon logs each warning (event ConfigWarning) and sets esm_config_warnings to 1
    per (mapping, check)."""
    caplog.set_level(logging.WARNING, logger="esm.safety")
    async with sqs_client() as sqs:
        _, arn = await create_queue(sqs, visibility=30)
    config = mapping_config({"FunctionName": "recorder", "EventSourceArn": arn},
                            functions={"recorder": {"handler": "tests.support.recorder:handle", "timeout": 10}})
    async with running(config) as daemon:
        from tests.support.waiting import wait_until

        await wait_until(lambda: daemon.total("esm_config_warnings") == 2, what="the warnings exported")
        checks = {s.labels["check"] for f in daemon.metrics.registry.collect() for s in f.samples
                  if s.name == "esm_config_warnings" and s.value == 1}
    assert checks == {"sqs-redrive-policy", "sqs-visibility-timeout"}
    logged = [r for r in caplog.records if getattr(r, "event", None) == "ConfigWarning"]
    assert {r.check for r in logged} == checks


def test_validate_prints_the_warnings_and_exits_0(tmp_path):
    """`esm validate` reads the queue's attributes where its endpoint answers; warnings keep exit 0."""
    import asyncio

    async def make() -> str:
        async with sqs_client() as sqs:
            return (await create_queue(sqs, visibility=30))[1]

    arn = asyncio.run(make())
    path = tmp_path / "esm.yaml"
    path.write_text(yaml.safe_dump({"functions": {"f": {"url": "http://127.0.0.1:9/", "timeout": 10}},
                                    "event_source_mappings": [{"FunctionName": "f", "EventSourceArn": arn}]}))
    run = subprocess.run([sys.executable, "-m", "esm", "validate", "--config", str(path)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "AWS_ACCESS_KEY_ID": "test",
                                                      "AWS_SECRET_ACCESS_KEY": "test"})
    assert run.returncode == 0, run.stderr
    assert "safety checks: 2 warning(s)" in run.stdout
    assert "[sqs-redrive-policy]" in run.stdout and "[sqs-visibility-timeout]" in run.stdout
    assert "AWS advises" in run.stdout
