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

import os
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from esm import registry
from esm.config.settings import AwsSettings
from esm.templates.intrinsics import Unresolvable

# How long a created stream or table may take to become ACTIVE before esm gives up on it.
ACTIVE_TIMEOUT = 60.0


# resolve(resources, logical_id, name, arn_prefix) -> the attribute's value
Resolve = Callable[["Resources", str, str, str], Any]


def _arn_name(physical: str) -> str:
    return physical.rsplit(":", 1)[-1]


def _logical_name(resources: "Resources", logical_id: str, properties: Mapping[str, Any]) -> str:
    return logical_id


@dataclass(frozen=True)
class Kind:
    """One CloudFormation resource type esm resolves: its service and name property, what `Ref`
    returns, the attributes it resolves besides the name, and how a stack's physical id and a
    nameless resource are named. `create(resources, logical_id, name, properties)` makes it on
    a local endpoint (`--create-resources`); a source's kinds live in its package."""

    service: str
    name_property: str
    ref: str  # what `Ref` returns
    label: str
    attributes: Mapping[str, Resolve] = field(default_factory=lambda: MappingProxyType({}))
    create: Callable[["Resources", str, str, dict[str, Any]], None] | None = None
    stack_name: Callable[[str], str] = _arn_name
    default_name: Callable[["Resources", str, Mapping[str, Any]], str] = _logical_name


def _topic_arn(resources: "Resources", logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode == "stack":
        return resources.physical_id(logical_id)
    if resources.mode == "endpoints":
        return resources.topic(logical_id, name)
    return f"{arn_prefix}:{name}"


# The resource types that are no event source; each source's descriptor adds its own (kinds()).
OTHER_KINDS: Mapping[str, Kind] = {
    "AWS::SNS::Topic": Kind("sns", "TopicName", "TopicArn", "topic", attributes={"TopicArn": _topic_arn}),
    "AWS::S3::Bucket": Kind("s3", "BucketName", "Name", "bucket", attributes={
        "Arn": lambda resources, logical_id, name, prefix: f"arn:{resources.partition}:s3:::{name}"}),
    "AWS::Lambda::Function": Kind("lambda", "FunctionName", "Name", "function", attributes={
        "Arn": lambda resources, logical_id, name, prefix: f"{prefix}:function:{name}"}),
}
NAME_ATTRIBUTES = {"Name", "QueueName", "TopicName"}


def kinds() -> dict[str, Kind]:
    """Every resource type esm resolves: the sources' (their descriptors' template resources), then the others."""
    found: dict[str, Kind] = {}
    for descriptor in registry.descriptors():
        for resource_type, path in descriptor.templates.resources:
            found[resource_type] = registry.import_path(path)
    return {**found, **OTHER_KINDS}


def _creatable(resource_type: Any) -> bool:
    kind = kinds().get(str(resource_type))
    return kind is not None and kind.create is not None


def endpoint_override(service: str, aws: AwsSettings, environ: Mapping[str, str]) -> str | None:
    """The endpoint a client for `service` would use instead of AWS's, or None (it would reach AWS)."""
    return (aws.endpoint_for(service) or environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
            or environ.get("AWS_ENDPOINT_URL"))


def services_to_create(resources: Mapping[str, Any]) -> list[str]:
    return sorted({kinds()[r["Type"]].service for r in resources.values() if _creatable(r.get("Type"))})


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
        known = kinds()
        kind = known.get(str(resource.get("Type")))
        if kind is None:
            raise Unresolvable("", f"{logical_id} is a {resource.get('Type')}; esm resolves references to "
                                   + ", ".join(known) + " only")
        return resource, kind

    def name(self, logical_id: str) -> str:
        resource, kind = self._resource(logical_id)
        if self.mode == "stack":
            physical = self._physical.get(logical_id)
            if physical is None:
                raise Unresolvable("", f"stack {self.stack!r} has no resource {logical_id}")
            return kind.stack_name(physical)
        properties = resource.get("Properties") or {}
        if kind.name_property in properties:
            path = f"{logical_id}.Properties.{kind.name_property}"
            name = self.value(properties[kind.name_property], path)
            if not isinstance(name, str) or not name:
                raise Unresolvable(path, f"must be a name (got {name!r})")
            return name
        return kind.default_name(self, logical_id, properties)

    # -- attributes ----------------------------------------------------------------------------
    def attribute(self, logical_id: str, attribute: str | None) -> Any:
        resource, kind = self._resource(logical_id)
        attribute = attribute or kind.ref
        if self.create and kind.create is not None:
            self.ensure(logical_id)
        name = self.name(logical_id)
        if attribute in NAME_ATTRIBUTES:
            return name
        arn_prefix = f"arn:{self.partition}:{kind.service}:{self.region}:{self.account}"
        resolve = kind.attributes.get(attribute)
        if resolve is not None:
            return resolve(self, logical_id, name, arn_prefix)
        raise Unresolvable("", f"{logical_id}.{attribute}: esm does not resolve this attribute of a {resource['Type']}")

    def topic(self, logical_id: str, name: str) -> str:
        client = self.client("sns")
        for page in client.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", []):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return str(topic["TopicArn"])
        raise Unresolvable("", f"{logical_id}: topic {name!r} does not exist at {self._where('sns')}")

    def _where(self, service: str) -> str:
        return endpoint_override(service, self.aws, os.environ) or f"{service} in {self.region}"

    def call(self, logical_id: str, service: str, operation: str, **kwargs: Any) -> Any:
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
            if isinstance(resource, dict) and _creatable(resource.get("Type")) and active(logical_id):
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
            create = self._resource(logical_id)[1].create
            assert create is not None  # only creatable resources are ensured
            create(self, logical_id, name, properties)
        finally:
            self._ensuring.discard(logical_id)
        self._ensured.add(logical_id)
        self.created.append(logical_id)

    def wait(self, logical_id: str, status: Callable[[], str]) -> None:
        deadline = time.monotonic() + ACTIVE_TIMEOUT
        while (state := status()) != "ACTIVE":
            if time.monotonic() > deadline:
                raise Unresolvable("", f"{logical_id} is still {state} after {ACTIVE_TIMEOUT:.0f}s")
            time.sleep(0.1)
