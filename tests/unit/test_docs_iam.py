"""docs/aws.md's IAM statements cover every AWS call esm's code makes (issue 28.2): the AWS
operations are read from the code (each module's client method calls, paginators, waiters and
operation names passed as strings, matched against botocore's model of the services that part of
the code talks to) and each must be allowed by the statement the page gives for that part."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "aws.md"

# Which part of the code talks to which services, and the page's statement (Sid) for that part.
PARTS: dict[str, tuple[tuple[str, ...], str]] = {
    "esm/sources/sqs": (("sqs",), "EsmSqsSource"),
    "esm/sources/kinesis": (("kinesis",), "EsmKinesisSource"),
    "esm/sources/dynamodb": (("dynamodbstreams",), "EsmDynamoDBStreamsSource"),
    "esm/sources/kafka": (("kafka",), "EsmKafkaMsk"),
    "esm/sources/amazonmq.py": (("mq",), "EsmAmazonMqBroker"),
    "esm/destinations/sqs.py": (("sqs",), "EsmSqsDestination"),
    "esm/destinations/sns.py": (("sns",), "EsmSnsDestination"),
    "esm/destinations/s3.py": (("s3",), "EsmS3Destination"),
    "esm/checkpoints": (("dynamodb",), "EsmCheckpointStore"),
    "esm/positions.py": (("dynamodb",), "EsmCheckpointStore"),
    "esm/invokers/aws_lambda.py": (("lambda",), "EsmLambdaTarget"),
    "esm/schemas/glue.py": (("glue",), "EsmGlueRegistry"),
    "esm/security/secrets.py": (("secretsmanager",), "EsmSecrets"),
    "esm/replay": (("sqs", "kinesis", "s3"), "EsmReplay"),
    "esm/sources/sqs/replay.py": (("sqs",), "EsmReplay"),
    "esm/sources/kinesis/replay.py": (("kinesis",), "EsmReplay"),
    "esm/sources/dynamodb/replay.py": (("dynamodbstreams",), "EsmReplay"),
    "esm/safety.py": (("sqs", "lambda"), "EsmSafetyChecks"),
    "esm/sources/sqs/safety.py": (("sqs",), "EsmSafetyChecks"),
    "esm/templates/resources.py": (("cloudformation", "secretsmanager", "sns"), "EsmTemplateStack"),
}
# Shared by both shard sources: their calls are checked against both statements.
SHARED = {"esm/sources/shard_reader.py": ("EsmKinesisSource", "EsmDynamoDBStreamsSource"),
          "esm/sources/shards.py": ("EsmKinesisSource", "EsmDynamoDBStreamsSource")}
SHARED_SERVICES = {"EsmKinesisSource": "kinesis", "EsmDynamoDBStreamsSource": "dynamodbstreams"}
# Operations whose IAM action has another name than the API operation.
IAM_NAME = {("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
            ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
            ("sqs", "SendMessageBatch"): "sqs:SendMessage",
            ("lambda", "Invoke"): "lambda:InvokeFunction",
            ("s3", "ListObjectsV2"): "s3:ListBucket"}
PREFIX = {"dynamodbstreams": "dynamodb"}
WAITERS = {"table_exists": "DescribeTable"}
# `template.py` modules and esm/templates' resource creation run only against endpoint overrides
# (`--create-resources` refuses AWS itself), so they need no statement.
LOCAL_ONLY = ("template.py",)
# A source's safety checks and replay reader run for `esm validate` and `esm replay`, not for the
# source itself: they are checked against those statements (their own PARTS entries).
OPERATOR_TOOLS = ("safety.py", "replay.py")
LOCAL_ONLY_ACTIONS = {"secretsmanager:CreateSecret"}  # esm/templates/resources.py, --create-resources only


def names_in(files: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
    return names


def actions_called(part: str, services: tuple[str, ...]) -> set[str]:
    path = ROOT / part
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    names = names_in([f for f in files if f.name not in LOCAL_ONLY and not (path.is_dir() and f.name in OPERATOR_TOOLS)])
    names |= {WAITERS[n] for n in names if n in WAITERS}
    session = botocore.session.get_session()
    actions = set()
    for service in services:
        operations = {xform_name(op): op for op in session.get_service_model(service).operation_names}
        operations.update({op: op for op in operations.values()})
        for name in names & operations.keys():
            op = operations[name]
            actions.add(IAM_NAME.get((service, op), f"{PREFIX.get(service, service)}:{op}"))
    return actions - LOCAL_ONLY_ACTIONS


def documented() -> dict[str, set[str]]:
    statements: dict[str, set[str]] = {}
    for block in re.findall(r"```json\n(.*?)```", PAGE.read_text(), re.S):
        statement = json.loads(block)
        statements[statement["Sid"]] = set(statement["Action"])
    return statements


def test_every_aws_call_is_in_the_documented_policy() -> None:
    policy = documented()
    missing = []
    for part, (services, sid) in PARTS.items():
        for action in sorted(actions_called(part, services) - policy[sid]):
            missing.append(f"{part}: {action} (statement {sid})")
    for part, sids in SHARED.items():
        for sid in sids:
            for action in sorted(actions_called(part, (SHARED_SERVICES[sid],)) - policy[sid]):
                missing.append(f"{part}: {action} (statement {sid})")
    assert not missing, "docs/aws.md misses:\n" + "\n".join(missing)


def test_the_scan_sees_the_calls_it_must() -> None:
    """The reading of the code finds what is known to be called (so an empty scan cannot pass)."""
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions_called("esm/sources/sqs", ("sqs",))
    assert {"kinesis:GetRecords", "kinesis:GetShardIterator"} <= actions_called("esm/sources/shard_reader.py",
                                                                                 ("kinesis",))
    assert "lambda:InvokeFunction" in actions_called("esm/invokers/aws_lambda.py", ("lambda",))
    assert "dynamodb:UpdateItem" in actions_called("esm/checkpoints", ("dynamodb",))


def test_every_module_that_makes_an_aws_client_is_covered() -> None:
    """A new module creating a client of some service must be given a part (and a statement)."""
    covered = list(PARTS) + list(SHARED)
    for path in sorted((ROOT / "esm").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name in LOCAL_ONLY:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                assert any(rel == p or rel.startswith(p + "/") for p in covered), (rel, node.args[0].value)
