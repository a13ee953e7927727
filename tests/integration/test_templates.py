"""`esm run --template` against the real backends (issue 16 "Tests").

The example SAM template end to end with --create-resources (ElasticMQ, kinesis-mock, moto's
DynamoDB); a plain CloudFormation mapping whose queue is found by name; --stack against moto's
CloudFormation; a function reached through the Lambda Invoke API served by the Runtime Interface
Emulator (it answers to the function name `function`, so the test template names its function so).
The daemon runs in the test's loop from the Config that `load_template` builds, as `esm run` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiobotocore.session import get_session

from esm.errors import ConfigError
from esm.templates import TemplateOptions, load_template
from tests.support import recorder as rec
from tests.support.daemon import running_config
from tests.support.kinesis import kinesis_client, put
from tests.support.ports import free_port
from tests.support.sqs import create_queue, queue_counts, receive_all, send, sqs_client
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sam" / "template.yaml"
MOTO_ACCOUNT = "123456789012"


def overrides(tmp_path: Path, **extra) -> str:
    """The --config file: what `esm run --config` would take besides the mappings."""
    doc = {"metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30,
           "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")}, **extra}
    path = tmp_path / "esm.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


async def load(options: TemplateOptions):
    return await asyncio.to_thread(load_template, options)  # botocore's clients block


def client(service: str, endpoint: str):
    return get_session().create_client(service, region_name="us-east-1", endpoint_url=endpoint,
                                       aws_access_key_id="test", aws_secret_access_key="test")


async def test_example_template_end_to_end(tmp_path):
    """Issue 16.3/16.5: --create-resources creates the example's queues (with redrive), stream and
    table (with its stream); the SQS mapping filters (an unpaid order never reaches the function)
    and honours the partial batch response (only the order without an id stays on the queue); the
    Kinesis mapping bisects a failing batch down to the bad record and sends only that one to the
    on-failure queue, while the good records are processed."""
    stage = f"t{uuid.uuid4().hex[:8]}"
    loaded = await load(TemplateOptions(str(EXAMPLE), parameter_overrides={"Stage": stage}, config=overrides(tmp_path),
                                        create_resources=True, skip_unsupported=True))
    assert sorted(loaded.created) == ["AccountsTable", "ClicksFailures", "ClicksStream", "OrdersDeadLetters",
                                      "OrdersQueue"]
    async with client("dynamodb", os.environ["AWS_ENDPOINT_URL_DYNAMODB"]) as dynamodb:
        table = (await dynamodb.describe_table(TableName=f"accounts-{stage}"))["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    loaded.install()
    paid = {"mapping": next(m.uuid for m in loaded.config.mappings if m.name == "OrdersFunctionPaid"), "source": "sqs"}
    async with sqs_client() as sqs, kinesis_client() as kinesis:
        orders = (await sqs.get_queue_url(QueueName=f"orders-{stage}"))["QueueUrl"]
        redrive = json.loads((await sqs.get_queue_attributes(QueueUrl=orders, AttributeNames=["RedrivePolicy"]))
                             ["Attributes"]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(f":orders-dlq-{stage}") and int(redrive["maxReceiveCount"]) == 3
        failures = (await sqs.get_queue_url(QueueName=f"clicks-failures-{stage}"))["QueueUrl"]
        async with running_config(loaded.config) as daemon:
            await send(sqs, orders, [json.dumps({"status": "paid", "id": 1}), json.dumps({"status": "new", "id": 2}),
                                     json.dumps({"status": "paid"})])
            clicks = [json.dumps(c).encode() for c in ({"page": "a"}, {"page": "b"}, {"nopage": 1}, {"page": "d"})]
            sequences = await put(kinesis, f"clicks-{stage}", [("k", data) for data in clicks])
            await daemon.wait_total("esm_filtered_out_events_total", 1)
            await wait_until(lambda: daemon.value("esm_invoked_events_total", **paid) >= 2, what="both paid orders invoked")
            await wait_until(lambda: _sum(queue_counts(sqs, orders)), what="orders queue settled")
            dead = []
            await wait_until(lambda: _received(sqs, failures, dead), what="a record on the on-failure queue")
            assert await queue_counts(sqs, orders) == (0, 1)  # the order without an id, waiting to come back
            assert daemon.value("esm_invoked_events_total", **paid) == 2
    (document,) = [json.loads(m["Body"]) for m in dead]
    info = document["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == sequences[2]
    assert document["requestContext"]["functionArn"].endswith(":function:ClicksFunction")


async def _sum(counts) -> bool:
    visible, in_flight = await counts
    return visible + in_flight == 1


async def _received(sqs, url: str, into: list) -> bool:
    into.extend(await receive_all(sqs, url, wait=0))
    return bool(into)


PLAIN = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  QueueName: {Type: String}
  Mode: {Type: String, Default: batch}
Conditions:
  Batched: !Equals [!Ref Mode, batch]
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Ref QueueName
  Worker:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-worker"
      Runtime: java21
      Handler: example.Handler
      Code: {S3Bucket: artifacts, S3Key: worker.jar}
      Role: arn:aws:iam::000000000000:role/worker
  JobsMapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !GetAtt Worker.Arn
      EventSourceArn: !GetAtt Jobs.Arn
      BatchSize: !If [Batched, 5, 1]
      FilterCriteria:
        Filters:
          - Pattern: !Sub '{"body": {"queue": ["${QueueName}"]}}'
"""


async def test_plain_cloudformation_mapping_runs(tmp_path):
    """Issue 16.1/16.3: a plain AWS::Lambda::EventSourceMapping (no SAM) with a parameter, a
    condition and Fn::Sub; its queue, defined in the template, is found by its QueueName on the
    configured SQS endpoint; the Java function is overridden by the --config file's functions:."""
    recorder = rec.install(rec.Recorder())
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(PLAIN))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "jobs")
        name = arn.rsplit(":", 1)[-1]
        config = overrides(tmp_path, functions={"Worker": {"handler": "tests.support.recorder:handle"}})
        loaded = await load(TemplateOptions(str(template), parameter_overrides={"QueueName": name}, config=config))
        (mapping,) = loaded.config.mappings
        assert mapping.source_id == arn and mapping.get("BatchSize") == 5
        assert loaded.rows[0].runs == "--config functions:"
        async with running_config(loaded.config) as daemon:
            await send(sqs, url, [json.dumps({"queue": name, "n": i}) for i in range(6)] + [json.dumps({"queue": "x"})])
            await recorder.wait_for(lambda r: len(r.records) >= 6)
            await daemon.wait_total("esm_filtered_out_events_total", 1)
    assert sorted(json.loads(b)["n"] for b in recorder.bodies()) == list(range(6))
    assert all(len(batch) <= 5 for batch in recorder.batches)
    assert recorder.records[0]["eventSourceARN"] == arn


async def test_missing_queue_is_a_clear_error(tmp_path):
    """Issue 16.3: a queue the template names that does not exist on the endpoint is an error at the
    property that needs it, saying how to get it created."""
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(PLAIN))
    with pytest.raises(ConfigError) as raised:
        await load(TemplateOptions(str(template), parameter_overrides={"QueueName": f"absent-{uuid.uuid4().hex[:8]}"},
                                   functions_url="http://127.0.0.1:9/{function}"))
    (problem,) = raised.value.problems
    assert problem.path == "JobsMapping.Properties.EventSourceArn.Fn::GetAtt"
    assert problem.message.startswith("Jobs: get_queue_url at ") and problem.message.endswith(
        "; create it, or pass --create-resources"), problem.message


async def test_stack_resources_from_moto_cloudformation(tmp_path):
    """Issue 16.3: with --stack, the template's queue is the deployed stack's (moto's CloudFormation,
    DescribeStackResources): its physical queue, in the stack's account, is the one esm polls."""
    recorder = rec.install(rec.Recorder())
    stack = f"esm-{uuid.uuid4().hex[:8]}"
    name = f"stackq-{uuid.uuid4().hex[:8]}"
    deployed = {"Resources": {"Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}}}
    moto = os.environ["ESM_AWS_ENDPOINT"]
    async with client("cloudformation", moto) as cloudformation:
        await cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(deployed))
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(PLAIN))
    config = overrides(tmp_path, functions={"Worker": {"handler": "tests.support.recorder:handle"}},
                       aws={"endpoints": {"cloudformation": moto, "sqs": moto}})
    # QueueName is given but not used: the stack says which queue Jobs is.
    loaded = await load(TemplateOptions(str(template), parameter_overrides={"QueueName": name}, config=config,
                                        stack=stack))
    (mapping,) = loaded.config.mappings
    assert mapping.source_id == f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:{name}"
    async with client("sqs", moto) as sqs:
        url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
        async with running_config(loaded.config):
            await sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"queue": name}))
            await recorder.wait_for(lambda r: len(r.records) >= 1)
    assert recorder.records[0]["eventSourceARN"] == mapping.source_id


async def test_unknown_stack_is_a_clear_error(tmp_path):
    """Issue 16.3: a --stack that CloudFormation does not know is an error naming it."""
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(PLAIN))
    config = overrides(tmp_path, aws={"endpoints": {"cloudformation": os.environ["ESM_AWS_ENDPOINT"]}})
    with pytest.raises(ConfigError) as raised:
        await load(TemplateOptions(str(template), config=config, stack="no-such-stack",
                                   parameter_overrides={"QueueName": "jobs"}))
    (problem,) = raised.value.problems
    assert problem.path == "--stack" and problem.message.startswith("cannot read stack 'no-such-stack'")


async def test_function_through_the_invoke_api_at_an_endpoint(tmp_path):
    """Issue 16.2: --functions-endpoint reaches the template's function by its logical id through the
    Lambda Invoke API (the Runtime Interface Emulator's, which serves the name `function`); the
    template's Timeout is the function's, and a --config entry without a target adjusts it (one invoke
    at a time); a message is deleted only after the invoke succeeded."""
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent("""
        Transform: AWS::Serverless-2016-10-31
        Parameters:
          Queue: {Type: String}
        Resources:
          function:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: nodejs20.x
              Handler: index.handler
              CodeUri: ./
              Timeout: 20
              Events:
                Jobs:
                  Type: SQS
                  Properties: {Queue: !Sub "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:${Queue}", BatchSize: 2}
        """))
    endpoint = os.environ["AWS_ENDPOINT_URL_LAMBDA"]
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "rie")
        loaded = await load(TemplateOptions(str(template), parameter_overrides={"Queue": arn.rsplit(":", 1)[-1]},
                                            functions_endpoint=endpoint,
                                            # The emulator serves one invoke at a time (behaviour §9.1).
                                            config=overrides(tmp_path, functions={"function": {"max_concurrency": 1}})))
        target = loaded.config.functions["function"]
        assert (target.kind, target.lambda_arn, target.timeout, target.max_concurrency) == ("lambda", "function", 20, 1)
        assert loaded.rows[0].runs == f"Invoke API at {endpoint}"
        async with running_config(loaded.config) as daemon:
            await send(sqs, url, ["one", "two", "three"])
            await daemon.wait_total("esm_deleted_events_total", 3)
            assert daemon.total("esm_invoke_errors_total") == 0
        assert await queue_counts(sqs, url) == (0, 0)


async def http_status(url: str) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(url) as response:
                await response.read()
                return response.status
        except aiohttp.ClientError:
            return 0


async def test_esm_run_template_command(tmp_path):
    """Issue 16.4/16.5: `esm run --template` as a user runs it (the README walk-through): the table of
    what was found, the same /readyz and /metrics as `esm run --config`, the example's handler at
    work (the SQS order and, since issue 14, the DynamoDB stream's new account), exit 0 on SIGTERM."""
    stage = f"c{uuid.uuid4().hex[:8]}"
    port = free_port()
    config = overrides(tmp_path, metrics={"listen": f"127.0.0.1:{port}"})
    command = [sys.executable, "-m", "esm", "run", "--template", str(EXAMPLE), "--create-resources",
               "--parameter-overrides", f"Stage={stage}", "--config", config]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        await wait_until(lambda: _ready(f"http://127.0.0.1:{port}/readyz"), what="/readyz 200", timeout=120)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        assert 'name="OrdersFunctionPaid"' in metrics and 'name="ClicksFunctionClicks"' in metrics
        assert 'name="AccountsFunctionNewAccounts"' in metrics
        async with client("dynamodb", os.environ["AWS_ENDPOINT_URL_DYNAMODB"]) as dynamodb:
            await dynamodb.put_item(TableName=f"accounts-{stage}", Item={"id": {"S": "acct-1"}})
        await wait_until(lambda: _invoked_from(f"http://127.0.0.1:{port}/metrics", "dynamodb"),
                         what="the new account invoked", timeout=60)
        async with sqs_client() as sqs:
            url = (await sqs.get_queue_url(QueueName=f"orders-{stage}"))["QueueUrl"]
            await send(sqs, url, [json.dumps({"status": "paid", "id": 7, "total": 12})])
            await wait_until(lambda: _empty(queue_counts(sqs, url)), what="the order processed")
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(process.communicate, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    header = next(line for line in output.splitlines() if line.startswith("MAPPING"))
    assert header.split() == ["MAPPING", "FUNCTION", "SOURCE", "SETTINGS", "RUNS"]
    assert f"[{stage}] order 7 paid: 12" in output
    assert f"[{stage}] new account acct-1" in output


async def _invoked_from(url: str, source: str) -> bool:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            text = await response.text()
    return any(line.startswith("esm_invoked_events_total{") and f'source="{source}"' in line
               and float(line.rsplit(" ", 1)[1]) >= 1 for line in text.splitlines())


async def _ready(url: str) -> bool:
    return await http_status(url) == 200


async def _empty(counts) -> bool:
    return await counts == (0, 0)


async def test_create_resources_fifo_queue_with_redrive(tmp_path):
    """Issue 16.3: --create-resources creates a FIFO queue (named by its logical id + .fifo, with
    content-based deduplication) whose RedrivePolicy points at a dead-letter queue created first,
    and the mapping reads from it; a second run finds them as they are."""
    suffix = uuid.uuid4().hex[:8]
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(f"""
        Resources:
          Jobs{suffix}:
            Type: AWS::SQS::Queue
            Properties:
              FifoQueue: true
              ContentBasedDeduplication: true
              VisibilityTimeout: 45
              RedrivePolicy: {{deadLetterTargetArn: !GetAtt Dead{suffix}.Arn, maxReceiveCount: 2}}
          Dead{suffix}: {{Type: AWS::SQS::Queue, Properties: {{FifoQueue: true}}}}
          Fn: {{Type: AWS::Lambda::Function, Properties: {{Runtime: java21, Handler: x, Code: {{S3Bucket: b, S3Key: k}}}}}}
          Mapping:
            Type: AWS::Lambda::EventSourceMapping
            Properties: {{FunctionName: !Ref Fn, EventSourceArn: !GetAtt Jobs{suffix}.Arn}}
        """))
    options = TemplateOptions(str(template), config=overrides(tmp_path), create_resources=True,
                              functions_url="http://127.0.0.1:9/{{function}}")
    loaded = await load(options)
    assert loaded.created == (f"Dead{suffix}", f"Jobs{suffix}")  # the dead-letter queue first
    async with sqs_client() as sqs:
        url = (await sqs.get_queue_url(QueueName=f"Jobs{suffix}.fifo"))["QueueUrl"]
        attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
    assert attributes["FifoQueue"] == "true" and attributes["ContentBasedDeduplication"] == "true"
    assert attributes["VisibilityTimeout"] == "45"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":Dead{suffix}.fifo") and int(redrive["maxReceiveCount"]) == 2
    assert loaded.config.mappings[0].source_id.endswith(f":Jobs{suffix}.fifo")
    again = await load(options)
    assert again.config.mappings[0].source_id == loaded.config.mappings[0].source_id


async def test_stack_names_every_kind_of_source(tmp_path):
    """Issue 16.3: from a deployed stack (moto's CloudFormation) a stream's ARN is built from its
    physical name in the stack's account, and a table's StreamArn is the table's latest stream as
    DynamoDB reports it (esm.templates.resources in `stack` mode)."""
    from esm.config.settings import AwsSettings
    from esm.templates.resources import Resources

    stack = f"esm-{uuid.uuid4().hex[:8]}"
    table = f"accounts-{uuid.uuid4().hex[:8]}"
    deployed = {"Resources": {
        "Clicks": {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCount": 1}},
        "Accounts": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": table, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "StreamSpecification": {"StreamViewType": "NEW_IMAGE"}}}}}
    moto = os.environ["ESM_AWS_ENDPOINT"]
    async with client("cloudformation", moto) as cloudformation:
        await cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(deployed))
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in (await cloudformation.describe_stack_resources(StackName=stack))["StackResources"]}
    aws = AwsSettings(endpoints={"cloudformation": moto, "dynamodb": moto})
    resources = Resources(deployed["Resources"], mode="stack", region="us-east-1", account="000000000000",
                          partition="aws", aws=aws, stack=stack)
    try:
        stream_arn = await asyncio.to_thread(resources.attribute, "Clicks", "Arn")
        table_stream = await asyncio.to_thread(resources.attribute, "Accounts", "StreamArn")
    finally:
        resources.close()
    assert stream_arn == f"arn:aws:kinesis:us-east-1:{MOTO_ACCOUNT}:stream/{physical['Clicks']}"
    async with client("dynamodb", moto) as dynamodb:
        described = (await dynamodb.describe_table(TableName=table))["Table"]
    assert table_stream == described["LatestStreamArn"] and f":table/{table}/stream/" in table_stream


FAN_OUT = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String}
Resources:
  Clicks:
    Type: AWS::Kinesis::Stream
    Properties: {Name: !Sub "fan-${Stage}", ShardCount: 1}
  Reader:
    Type: AWS::Kinesis::StreamConsumer
    Properties: {ConsumerName: !Sub "reader-${Stage}", StreamARN: !GetAtt Clicks.Arn}
  Credentials:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub "creds-${Stage}"
      GenerateSecretString: {SecretStringTemplate: '{"username": "app"}', GenerateStringKey: password,
                             PasswordLength: 20, ExcludePunctuation: true}
  Cluster:
    Type: AWS::MSK::Cluster
    Properties: {ClusterName: !Sub "msk-${Stage}", KafkaVersion: 3.6.0, NumberOfBrokerNodes: 2}
  ClicksFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: clicks-handler.handle
      CodeUri: code/
      Environment:
        Variables: {SECRET_ARN: !Ref Credentials, CLUSTER_ARN: !GetAtt Cluster.Arn}
      Events:
        Clicks:
          Type: Kinesis
          Properties: {Stream: !Ref Reader, StartingPosition: TRIM_HORIZON, BatchSize: 10}
"""


async def test_create_resources_consumer_and_secret_and_msk_lookup(tmp_path):
    """Issue 26.1: --create-resources registers the template's stream consumer on kinesis-mock and
    creates its secret in moto's Secrets Manager (a password made as GenerateSecretString says, in
    its JSON template); the template's MSK cluster is never created but found by name through the
    MSK API (moto); the mapping reads through the registered consumer (enhanced fan-out) and the
    function, whose module name has a hyphen, runs in-process with the resolved ARNs in its environment."""
    stage = f"f{uuid.uuid4().hex[:8]}"
    moto = os.environ["ESM_AWS_ENDPOINT"]
    async with client("kafka", moto) as kafka:
        cluster_arn = (await kafka.create_cluster(
            ClusterName=f"msk-{stage}", KafkaVersion="3.6.0", NumberOfBrokerNodes=2,
            BrokerNodeGroupInfo={"InstanceType": "kafka.m5.large", "ClientSubnets": ["a", "b"]}))["ClusterArn"]
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "clicks-handler.py").write_text(textwrap.dedent("""
        import os
        from tests.support import recorder

        async def handle(event, context):
            return await recorder.handle({"Records": [dict(r, env=[os.environ["SECRET_ARN"], os.environ["CLUSTER_ARN"]])
                                                      for r in event["Records"]]}, context)
        """))
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(FAN_OUT))
    recorder = rec.install(rec.Recorder())
    config = overrides(tmp_path, aws={"endpoints": {"kafka": moto}})
    loaded = await load(TemplateOptions(str(template), parameter_overrides={"Stage": stage}, config=config,
                                        create_resources=True))
    assert sorted(loaded.created) == ["Clicks", "Credentials", "Reader"]
    async with client("secretsmanager", os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"]) as secrets:
        stored = await secrets.get_secret_value(SecretId=f"creds-{stage}")
    value = json.loads(stored["SecretString"])
    assert value["username"] == "app" and len(value["password"]) == 20 and value["password"].isalnum()
    (mapping,) = loaded.config.mappings
    async with kinesis_client() as kinesis:
        stream_arn = (await kinesis.describe_stream_summary(StreamName=f"fan-{stage}"))["StreamDescriptionSummary"]["StreamARN"]
        consumer = (await kinesis.describe_stream_consumer(StreamARN=stream_arn, ConsumerName=f"reader-{stage}"))
        assert mapping.source_id == consumer["ConsumerDescription"]["ConsumerARN"]
        assert loaded.environment == {"SECRET_ARN": stored["ARN"], "CLUSTER_ARN": cluster_arn}
        loaded.install()
        async with running_config(loaded.config):
            await put(kinesis, f"fan-{stage}", [("k", b'{"page": "a"}')])
            await recorder.wait_for(lambda r: len(r.records) >= 1)
    assert recorder.records[0]["env"] == [stored["ARN"], cluster_arn]
