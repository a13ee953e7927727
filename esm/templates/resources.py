"""The template's queues, streams, tables, topics, buckets and functions: their names and ARNs.

A resource is found one of three ways (issue 16.3), chosen once per run:

- `offline` (`esm validate --template`): ARNs are built from physical names, region and account;
  nothing is asked of any service.
- `endpoints`: each resource is looked up by its physical name (`QueueName`, `Name`, `TableName`,
  `TopicName`, `BucketName`, `FunctionName`, else the logical id; a FIFO queue's gets `.fifo`) on
  the configured endpoints, and with `create` the template's queues (FIFO and redrive settings),
  streams (shard count) and tables (keys, StreamSpecification) are created there first.
- `stack`: CloudFormation's DescribeStackResources gives each resource's physical id.

Clients are plain botocore clients, built the way esm builds its own: the `aws:` block's region and
endpoints override what botocore finds itself (AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>, profiles).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from esm.config.settings import AwsSettings
from esm.templates.intrinsics import Unresolvable

# How long a created stream or table may take to become ACTIVE before esm gives up on it.
ACTIVE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Kind:
    service: str
    name_property: str
    ref: str  # what `Ref` returns
    label: str


KINDS: Mapping[str, Kind] = {
    "AWS::SQS::Queue": Kind("sqs", "QueueName", "QueueUrl", "queue"),
    "AWS::Kinesis::Stream": Kind("kinesis", "Name", "Name", "stream"),
    "AWS::DynamoDB::Table": Kind("dynamodb", "TableName", "Name", "table"),
    "AWS::SNS::Topic": Kind("sns", "TopicName", "TopicArn", "topic"),
    "AWS::S3::Bucket": Kind("s3", "BucketName", "Name", "bucket"),
    "AWS::Lambda::Function": Kind("lambda", "FunctionName", "Name", "function"),
}
CREATABLE = ("AWS::SQS::Queue", "AWS::Kinesis::Stream", "AWS::DynamoDB::Table")
NAME_ATTRIBUTES = {"Name", "QueueName", "TopicName"}


def endpoint_override(service: str, aws: AwsSettings, environ: Mapping[str, str]) -> str | None:
    """The endpoint a client for `service` would use instead of AWS's, or None (it would reach AWS)."""
    return (aws.endpoint_for(service) or environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
            or environ.get("AWS_ENDPOINT_URL"))


def services_to_create(resources: Mapping[str, Any]) -> list[str]:
    return sorted({KINDS[r["Type"]].service for r in resources.values() if r.get("Type") in CREATABLE})


class Resources:
    """`attribute(logical_id, attribute_or_None)` for the intrinsic resolver (None means Ref)."""

    def __init__(self, resources: Mapping[str, Any], *, mode: str, region: str, account: str, partition: str,
                 aws: AwsSettings, stack: str | None = None, create: bool = False):
        assert mode in ("offline", "endpoints", "stack")
        self.resources = resources
        self.mode = mode
        self.region, self.account, self.partition = region, account, partition
        self.aws = aws
        self.stack = stack
        self.create = create
        self.value: Callable[[Any, str], Any] = lambda node, path: node  # set to the resolver's `value`
        self._clients: dict[str, Any] = {}
        self._physical: dict[str, str] = {}
        self._ensured: set[str] = set()
        self._ensuring: set[str] = set()
        self.created: list[str] = []
        if mode == "stack":
            try:
                self._read_stack()
            except BaseException:
                self.close()  # the caller never gets an object to close
                raise

    # -- clients and the stack ---------------------------------------------------------------
    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import botocore.session

            self._clients[service] = botocore.session.get_session().create_client(
                service, region_name=self.aws.region or self.region, endpoint_url=self.aws.endpoint_for(service))
        return self._clients[service]

    def _read_stack(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client("cloudformation").describe_stack_resources(StackName=self.stack)
        except (ClientError, BotoCoreError) as error:
            raise Unresolvable("--stack", f"cannot read stack {self.stack!r}: {error}") from None
        for row in response["StackResources"]:
            self._physical[row["LogicalResourceId"]] = row["PhysicalResourceId"]
        stack_id = next((row.get("StackId") for row in response["StackResources"] if row.get("StackId")), "")
        parts = stack_id.split(":")
        if len(parts) > 4 and parts[3] and parts[4]:  # the stack's own region and account name its resources
            self.region, self.account = parts[3], parts[4]

    def physical_id(self, logical_id: str) -> str | None:
        return self._physical.get(logical_id)

    # -- names -------------------------------------------------------------------------------
    def _resource(self, logical_id: str) -> tuple[dict[str, Any], Kind]:
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict):
            raise Unresolvable("", f"no parameter or resource is named {logical_id}")
        kind = KINDS.get(str(resource.get("Type")))
        if kind is None:
            raise Unresolvable("", f"{logical_id} is a {resource.get('Type')}; esm resolves references to "
                                   + ", ".join(KINDS) + " only")
        return resource, kind

    def name(self, logical_id: str) -> str:
        resource, kind = self._resource(logical_id)
        if self.mode == "stack":
            physical = self._physical.get(logical_id)
            if physical is None:
                raise Unresolvable("", f"stack {self.stack!r} has no resource {logical_id}")
            return physical.rstrip("/").rsplit("/", 1)[-1] if kind.service == "sqs" else physical.rsplit(":", 1)[-1]
        properties = resource.get("Properties") or {}
        if kind.name_property in properties:
            path = f"{logical_id}.Properties.{kind.name_property}"
            name = self.value(properties[kind.name_property], path)
            if not isinstance(name, str) or not name:
                raise Unresolvable(path, f"must be a name (got {name!r})")
            return name
        fifo = kind.service == "sqs" and str(self.value(properties.get("FifoQueue", False), logical_id)).lower() == "true"
        return logical_id + (".fifo" if fifo else "")

    # -- attributes ----------------------------------------------------------------------------
    def attribute(self, logical_id: str, attribute: str | None) -> Any:
        resource, kind = self._resource(logical_id)
        attribute = attribute or kind.ref
        if self.create and resource.get("Type") in CREATABLE:
            self.ensure(logical_id)
        name = self.name(logical_id)
        if attribute in NAME_ATTRIBUTES:
            return name
        arn_prefix = f"arn:{self.partition}:{kind.service}:{self.region}:{self.account}"
        service = kind.service
        if service == "sqs" and attribute in ("Arn", "QueueUrl"):
            return self._queue(logical_id, name, attribute, arn_prefix)
        if service == "kinesis" and attribute == "Arn":
            if self.mode == "endpoints":
                return self._call(logical_id, "kinesis", "describe_stream_summary",
                                  StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
            return f"{arn_prefix}:stream/{name}"
        if service == "dynamodb" and attribute in ("Arn", "StreamArn"):
            if self.mode == "offline":
                table = f"{arn_prefix}:table/{name}"
                return table if attribute == "Arn" else f"{table}/stream/1970-01-01T00:00:00.000"
            table = self._call(logical_id, "dynamodb", "describe_table", TableName=name)["Table"]
            if attribute == "Arn":
                return table["TableArn"]
            if not table.get("LatestStreamArn"):
                raise Unresolvable("", f"{logical_id}: table {name!r} has no stream (StreamSpecification)")
            return table["LatestStreamArn"]
        if service == "sns" and attribute == "TopicArn":
            if self.mode == "stack":
                return self._physical[logical_id]
            if self.mode == "endpoints":
                return self._topic(logical_id, name)
            return f"{arn_prefix}:{name}"
        if service == "s3" and attribute == "Arn":
            return f"arn:{self.partition}:s3:::{name}"
        if service == "lambda" and attribute == "Arn":
            return f"{arn_prefix}:function:{name}"
        raise Unresolvable("", f"{logical_id}.{attribute}: esm does not resolve this attribute of a {resource['Type']}")

    def _queue(self, logical_id: str, name: str, attribute: str, arn_prefix: str) -> str:
        if self.mode == "offline":
            return f"{arn_prefix}:{name}" if attribute == "Arn" else \
                f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
        if self.mode == "stack":
            return f"{arn_prefix}:{name}" if attribute == "Arn" else self._physical[logical_id]
        url = self._call(logical_id, "sqs", "get_queue_url", QueueName=name)["QueueUrl"]
        if attribute == "QueueUrl":
            return url
        return self._call(logical_id, "sqs", "get_queue_attributes", QueueUrl=url,
                          AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def _topic(self, logical_id: str, name: str) -> str:
        client = self.client("sns")
        for page in client.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", []):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return str(topic["TopicArn"])
        raise Unresolvable("", f"{logical_id}: topic {name!r} does not exist at {self._where('sns')}")

    def _where(self, service: str) -> str:
        return endpoint_override(service, self.aws, os.environ) or f"{service} in {self.region}"

    def _call(self, logical_id: str, service: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client(service), operation)(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            missing = "NonExistent" in code or "NotFound" in code or "DoesNotExist" in code
            hint = "; create it, or pass --create-resources" if missing and self.mode == "endpoints" else ""
            raise Unresolvable("", f"{logical_id}: {operation} at {self._where(service)} failed: "
                                   f"{error.response.get('Error', {}).get('Message') or code}{hint}") from None
        except BotoCoreError as error:
            raise Unresolvable("", f"{logical_id}: cannot reach {self._where(service)}: {error}") from None

    # -- creation ------------------------------------------------------------------------------
    def create_all(self, active: Callable[[str], bool]) -> None:
        """Create every queue, stream and table of the template whose Condition holds."""
        for logical_id, resource in self.resources.items():
            if isinstance(resource, dict) and resource.get("Type") in CREATABLE and active(logical_id):
                self.ensure(logical_id)

    def ensure(self, logical_id: str) -> None:
        if logical_id in self._ensured:
            return
        if logical_id in self._ensuring:
            raise Unresolvable("", f"{logical_id} refers to itself through other resources")
        self._ensuring.add(logical_id)
        try:
            resource = self.resources[logical_id]
            properties = self.value(resource.get("Properties") or {}, f"{logical_id}.Properties")
            name = self.name(logical_id)
            {"AWS::SQS::Queue": self._create_queue, "AWS::Kinesis::Stream": self._create_stream,
             "AWS::DynamoDB::Table": self._create_table}[resource["Type"]](logical_id, name, properties)
        finally:
            self._ensuring.discard(logical_id)
        self._ensured.add(logical_id)
        self.created.append(logical_id)

    def _create_queue(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        # The SQS API's own list of attribute names: the CloudFormation properties of the same name.
        shape = self.client("sqs").meta.service_model.shape_for("QueueAttributeName")
        attributes = {}
        for key, value in properties.items():
            if key in shape.enum:
                if isinstance(value, (dict, list)):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                attributes[key] = str(value)
        self._call(logical_id, "sqs", "create_queue", QueueName=name, Attributes=attributes)

    def _create_stream(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        mode = (properties.get("StreamModeDetails") or {}).get("StreamMode")
        kwargs: dict[str, Any] = {"StreamName": name}
        if mode == "ON_DEMAND":
            kwargs["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
        else:
            kwargs["ShardCount"] = int(properties.get("ShardCount", 1))
        try:
            self.client("kinesis").create_stream(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":  # it exists already
                self._call(logical_id, "kinesis", "create_stream", **kwargs)  # reports the error
        self._wait(logical_id, lambda: self._call(logical_id, "kinesis", "describe_stream_summary", StreamName=name)
                   ["StreamDescriptionSummary"]["StreamStatus"])

    def _create_table(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"TableName": name}
        for key in ("KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
                    "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                kwargs[key] = properties[key]
        if kwargs.get("BillingMode") is None and "ProvisionedThroughput" not in kwargs:
            kwargs["BillingMode"] = "PAY_PER_REQUEST"
        view = (properties.get("StreamSpecification") or {}).get("StreamViewType")
        if view:  # CloudFormation's StreamSpecification has the view type only; the API also wants StreamEnabled
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        try:
            self.client("dynamodb").create_table(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                self._call(logical_id, "dynamodb", "create_table", **kwargs)
        self._wait(logical_id, lambda: self._call(logical_id, "dynamodb", "describe_table", TableName=name)
                   ["Table"]["TableStatus"])

    def _wait(self, logical_id: str, status: Callable[[], str]) -> None:
        deadline = time.monotonic() + ACTIVE_TIMEOUT
        while (state := status()) != "ACTIVE":
            if time.monotonic() > deadline:
                raise Unresolvable("", f"{logical_id} is still {state} after {ACTIVE_TIMEOUT:.0f}s")
            time.sleep(0.1)
