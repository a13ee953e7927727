"""The control API answers as AWS's Lambda does (behaviour §10), per source and operation: HTTP
status, error code and message text, response members and their defaults. AWS's answers are the
data of the tables below (from the Lambda API reference, botocore's model and answers recorded
against AWS).

The whole stack answers (esm's HTTP listener, the Lambda model's parsing, the manager, the
renderer) with a SQLite mapping store; mappings are created disabled, so no source is polled and
none needs to exist here (the source existence check runs in tests/integration/test_api.py).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from esm.api.entry import Entry
from esm.api.manager import MappingManager
from esm.api.server import ApiServer
from esm.checkpoints.mappings import SqliteMappingStore
from esm.checkpoints.sqlite import SqliteCheckpointStore
from esm.config.loading import parse_config
from esm.config.settings import ApiSettings
from esm.observability.metrics import Metrics

SQS = "arn:aws:sqs:us-east-1:000000000000:orders"
KINESIS = "arn:aws:kinesis:us-east-1:000000000000:stream/payments"
DYNAMODB = "arn:aws:dynamodb:us-east-1:000000000000:table/items/stream/2026-01-01T00:00:00.000"
MSK = "arn:aws:kafka:us-east-1:000000000000:cluster/events/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0-1"
SELF_MANAGED = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}}
# A self-managed cluster without authentication: its VPC entries (AWS requires SourceAccessConfigurations).
NO_AUTH = [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-0123"},
           {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123"}]
ROOT = "/2015-03-31/event-source-mappings"

CONFIG = """
functions:
  orders: {handler: "mod:fn"}
event_source_mappings:
  - {FunctionName: orders, EventSourceArn: "arn:aws:sqs:us-east-1:000000000000:from-config", Tags: {team: config}}
"""

# Each source's smallest valid request, created disabled.
REQUESTS: dict[str, dict[str, Any]] = {
    "sqs": {"EventSourceArn": SQS},
    "kinesis": {"EventSourceArn": KINESIS, "StartingPosition": "LATEST"},
    "dynamodb": {"EventSourceArn": DYNAMODB, "StartingPosition": "TRIM_HORIZON"},
    "kafka": {"SelfManagedEventSource": SELF_MANAGED, "Topics": ["orders"], "SourceAccessConfigurations": NO_AUTH},
    "msk": {"EventSourceArn": MSK, "Topics": ["orders"]},
}

STREAM_DEFAULTS = {"BatchSize": 100, "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 1,
                   "BisectBatchOnFunctionError": False, "MaximumRetryAttempts": -1, "MaximumRecordAgeInSeconds": -1,
                   "TumblingWindowInSeconds": 0, "FunctionResponseTypes": [], "DestinationConfig": {"OnFailure": {}},
                   "StateTransitionReason": "User action", "LastProcessingResult": "No records processed"}

# What create answers per source: these members with these values, and none of `absent`.
CREATED: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("sqs", {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 0, "FunctionResponseTypes": [],
             "StateTransitionReason": "USER_INITIATED", "State": "Disabled"},
     ("LastProcessingResult", "FilterCriteria", "DestinationConfig", "StartingPosition", "Enabled", "FunctionName")),
    ("kinesis", {**STREAM_DEFAULTS, "StartingPosition": "LATEST", "State": "Disabled"}, ("FilterCriteria", "Enabled")),
    ("dynamodb", {**STREAM_DEFAULTS, "StartingPosition": "TRIM_HORIZON", "State": "Disabled"}, ("FilterCriteria",)),
    ("kafka", {"BatchSize": 100, "StartingPosition": "LATEST", "Topics": ["orders"], "State": "Disabled",
               "StateTransitionReason": "User action", "SelfManagedEventSource": SELF_MANAGED},
     ("BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "FilterCriteria")),
    ("msk", {"BatchSize": 100, "StartingPosition": "LATEST", "Topics": ["orders"], "State": "Disabled",
             "StateTransitionReason": "User action"},
     ("BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds")),
]

NULL_POSITION = ("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: "
                 "Member must not be null.")
BAD_POSITION = ("1 validation error detected: Value 'NOW' at 'startingPosition' failed to satisfy constraint: "
                "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]")
INVALID = "InvalidParameterValueException"

# Create requests AWS refuses: (source, changes to its request, status, code, message).
REFUSED: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("sqs", {"BatchSize": 50}, 400, INVALID,
     "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"),
    ("sqs", {"StartingPosition": "LATEST"}, 400, INVALID, "StartingPosition is not valid for SQS event sources."),
    ("sqs", {"FilterCriteria": {"Filters": [{"Pattern": '{"body": {"a": []}}'}]}}, 400, INVALID,
     "Invalid filter pattern definition."),
    ("sqs", {"FunctionName": "nobody"}, 400, INVALID, "Function does not exist"),
    ("sqs", {"FunctionName": "nobody", "BatchSize": 50}, 400, INVALID,  # the source is checked first
     "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"),
    ("kinesis", {"StartingPosition": None}, 400, INVALID, NULL_POSITION),
    ("kinesis", {"StartingPosition": "NOW"}, 400, "ValidationException", BAD_POSITION),
    ("kinesis", {"StartingPositionTimestamp": 1700000000}, 400, INVALID,
     "Timestamp only valid with StartingPosition AT_TIMESTAMP"),
    ("kinesis", {"DestinationConfig": {"OnSuccess": {"Destination": SQS}}}, 400, INVALID,
     "Unsupported DestinationConfig parameter for given event source mapping type."),
    ("dynamodb", {"StartingPosition": None}, 400, INVALID, NULL_POSITION),
    ("dynamodb", {"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": 1700000000}, 400, INVALID,
     f"Unsupported starting position for arn type: {DYNAMODB}"),
    ("dynamodb", {"StartingPosition": "NOW"}, 400, "ValidationException", BAD_POSITION),
    ("kafka", {"SelfManagedEventSource": None}, 400, INVALID, "Unrecognized event source."),
    ("kafka", {"SourceAccessConfigurations": None}, 400, INVALID,
     "Required 'sourceAccessConfigurations' parameter is missing."),
]

# A second mapping of one source and function: ResourceConflictException (409), worded per source.
DUPLICATE = {
    "sqs": 'An event source mapping with SQS arn (" {arn} ") and function (" orders ") already exists. '
           "Please update or delete the existing mapping with UUID {uuid}",
    "kinesis": 'The event source arn (" {arn} ") and function (" orders ") provided mapping already exists. '
               "Please update or delete the existing mapping with UUID {uuid}",
    "dynamodb": 'The event source arn (" {arn} ") and function (" orders ") provided mapping already exists. '
                "Please update or delete the existing mapping with UUID {uuid}",
}


@contextlib.asynccontextmanager
async def running_api(tmp_path: Path) -> AsyncIterator[Api]:
    checkpoints = SqliteCheckpointStore(str(tmp_path / "state.db"))
    await checkpoints.open()
    store = SqliteMappingStore(checkpoints)
    await store.open()
    config = parse_config(CONFIG)
    manager = MappingManager(dict(config.functions), runtime=None, invokers={}, metrics=Metrics(), store=store,  # type: ignore[arg-type]
                             shutdown_timeout=1)
    # The config file's mapping as the daemon hands it over (its supervisor is not needed here).
    manager.entries[config.mappings[0].uuid] = Entry(config.mappings[0], "config", created=0.0)
    server = ApiServer(ApiSettings(listen="127.0.0.1:0"), manager, Metrics(), region_for=lambda: None)
    server.host, server.port = "127.0.0.1", 0
    await server.start()
    try:
        yield Api(f"http://127.0.0.1:{server.port}")
    finally:
        await server.stop()
        await checkpoints.close()


class Api:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body) if body is not None else None
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.endpoint + path, data=data) as response:
                text = await response.text()
                return response.status, dict(response.headers), json.loads(text) if text else None

    async def create(self, kind: str, **changes: Any) -> tuple[int, dict[str, str], Any]:
        request = {"FunctionName": "orders", "Enabled": False, **REQUESTS[kind], **changes}
        return await self.call("POST", ROOT, {k: v for k, v in request.items() if v is not None})


def error_of(status: int, headers: dict[str, str], body: Any) -> tuple[int, str, str]:
    return status, headers.get("x-amzn-ErrorType", ""), body.get("message") or body.get("Message")


@pytest.mark.parametrize("kind, members, absent", CREATED, ids=[row[0] for row in CREATED])
async def test_create_answers_aws_members_and_defaults(tmp_path: Path, kind: str, members: dict[str, Any],
                                                       absent: tuple[str, ...]) -> None:
    """behaviour §10: 202 with AWS's members and defaults for the source, nothing AWS leaves out;
    Get and List answer the same document."""
    async with running_api(tmp_path) as api:
        status, _, created = await api.create(kind)
        assert status == 202
        assert {key: created.get(key) for key in members} == members
        assert not set(absent) & set(created)
        assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{created['UUID']}")
        _, _, got = await api.call("GET", f"{ROOT}/{created['UUID']}")
        assert {k: v for k, v in got.items() if k != "LastModified"} == \
            {k: v for k, v in created.items() if k != "LastModified"}
        _, _, listed = await api.call("GET", f"{ROOT}?FunctionName=orders:$LATEST")
        assert created["UUID"] in [m["UUID"] for m in listed["EventSourceMappings"]]


@pytest.mark.parametrize("kind, changes, status, code, message", REFUSED,
                         ids=[f"{row[0]}-{row[4][:30]}" for row in REFUSED])
async def test_create_refusals_in_aws_words(tmp_path: Path, kind: str, changes: dict[str, Any], status: int, code: str,
                                            message: str) -> None:
    """behaviour §10: the status, error code and exact text AWS answers; one error at a time."""
    async with running_api(tmp_path) as api:
        assert error_of(*await api.create(kind, **changes)) == (status, code, message)


@pytest.mark.parametrize("kind", list(DUPLICATE))
async def test_a_duplicate_is_worded_per_source(tmp_path: Path, kind: str) -> None:
    """behaviour §10: AWS words the duplicate differently for SQS and for streams."""
    async with running_api(tmp_path) as api:
        _, _, first = await api.create(kind)
        expected = DUPLICATE[kind].format(arn=REQUESTS[kind]["EventSourceArn"], uuid=first["UUID"])
        assert error_of(*await api.create(kind)) == (409, "ResourceConflictException", expected)


@pytest.mark.parametrize("method, body", [("GET", None), ("PUT", {"BatchSize": 5}), ("DELETE", None)])
async def test_an_unknown_uuid_is_not_found(tmp_path: Path, method: str, body: Any) -> None:
    """behaviour §10: ResourceNotFoundException (404), AWS's fixed text."""
    async with running_api(tmp_path) as api:
        answer = await api.call(method, f"{ROOT}/{uuid.uuid4()}", body)
        assert error_of(*answer) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")


async def test_list_of_an_unknown_function_is_empty(tmp_path: Path) -> None:
    """behaviour §10: 200 and no mappings, not 404."""
    async with running_api(tmp_path) as api:
        status, _, listed = await api.call("GET", f"{ROOT}?FunctionName=nobody")
        assert (status, listed["EventSourceMappings"]) == (200, [])


@pytest.mark.parametrize("kind", list(REQUESTS))
async def test_update_and_delete_answer_the_document(tmp_path: Path, kind: str) -> None:
    """behaviour §10: Update and Delete answer 202 with the mapping (the source's members)."""
    async with running_api(tmp_path) as api:
        _, _, created = await api.create(kind)
        status, _, updated = await api.call("PUT", f"{ROOT}/{created['UUID']}", {"BatchSize": 7})
        assert (status, updated["BatchSize"], updated["StateTransitionReason"]) == \
            (202, 7, created["StateTransitionReason"])
        status, _, deleted = await api.call("DELETE", f"{ROOT}/{created['UUID']}")
        assert (status, deleted["UUID"], deleted["State"]) == (202, created["UUID"], "Deleting")


async def test_tags_on_create_and_through_the_tag_operations(tmp_path: Path) -> None:
    """behaviour §10: Tags given on create are read back by ListTags; TagResource (204) adds,
    UntagResource (204) removes; the mapping document carries no Tags."""
    async with running_api(tmp_path) as api:
        _, _, created = await api.create("sqs", Tags={"team": "orders"})
        assert "Tags" not in created
        resource = "/2017-03-31/tags/" + created["EventSourceMappingArn"]
        assert (await api.call("GET", resource))[2] == {"Tags": {"team": "orders"}}
        assert (await api.call("POST", resource, {"Tags": {"env": "test"}}))[0] == 204
        assert (await api.call("GET", resource))[2] == {"Tags": {"team": "orders", "env": "test"}}
        assert (await api.call("DELETE", resource + "?tagKeys=team"))[0] == 204
        assert (await api.call("GET", resource))[2] == {"Tags": {"env": "test"}}


async def test_tag_errors(tmp_path: Path) -> None:
    """behaviour §10: an unknown mapping's ARN is ResourceNotFoundException; a string that is no
    Lambda ARN fails the model's pattern (ValidationException)."""
    async with running_api(tmp_path) as api:
        unknown = f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{uuid.uuid4()}"
        assert error_of(*await api.call("GET", f"/2017-03-31/tags/{unknown}")) == \
            (404, "ResourceNotFoundException", "The resource you requested does not exist.")
        status, headers, body = await api.call("GET", "/2017-03-31/tags/not-an-arn")
        assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationException")
        assert body["message"].startswith("1 validation error detected: Value 'not-an-arn' at 'resource' failed to "
                                          "satisfy constraint: Member must satisfy regular expression pattern: ")


async def test_a_config_file_mappings_tags_are_read_only(tmp_path: Path) -> None:
    """behaviour §10: `Tags:` of a config-file mapping are listed by ListTags; tagging it is refused."""
    async with running_api(tmp_path) as api:
        _, _, listed = await api.call("GET", f"{ROOT}?EventSourceArn=arn:aws:sqs:us-east-1:000000000000:from-config")
        [mapping] = listed["EventSourceMappings"]
        resource = "/2017-03-31/tags/" + mapping["EventSourceMappingArn"]
        assert (await api.call("GET", resource))[2] == {"Tags": {"team": "config"}}
        status, headers, _ = await api.call("POST", resource, {"Tags": {"team": "other"}})
        assert (status, headers["x-amzn-ErrorType"]) == (409, "ResourceConflictException")


async def test_a_poller_group_holds_at_most_2000_maximum_pollers(tmp_path: Path) -> None:
    """behaviour §7, §9.11: the MaximumPollers of a poller group's mappings total at most 2,000; a
    create that would pass it is refused naming the field, another group is not affected."""
    async with running_api(tmp_path) as api:
        group = {"PollerGroupName": "shared", "MaximumPollers": 2000}
        status, _, _ = await api.create("kafka", ProvisionedPollerConfig=group)
        assert status == 202
        status, code, message = error_of(*await api.create(
            "kafka", Topics=["other"], ProvisionedPollerConfig={**group, "MaximumPollers": 1}))
        assert (status, code) == (400, INVALID)
        assert "ProvisionedPollerConfig.PollerGroupName" in message and "2000" in message
        status, _, _ = await api.create("kafka", Topics=["third"],
                                        ProvisionedPollerConfig={"PollerGroupName": "another", "MaximumPollers": 1})
        assert status == 202
