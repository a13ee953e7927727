"""A DynamoDB table in a template (esm.templates.resources): its ARN and its stream's, and its
creation (keys, billing, StreamSpecification) on a local endpoint with `--create-resources`."""

from __future__ import annotations

from typing import Any

from esm.templates.intrinsics import Unresolvable
from esm.templates.resources import Kind, Resources


def _attribute(attribute: str) -> Any:
    def resolve(resources: Resources, logical_id: str, name: str, arn_prefix: str) -> Any:
        if resources.mode == "offline":
            table = f"{arn_prefix}:table/{name}"
            return table if attribute == "Arn" else f"{table}/stream/1970-01-01T00:00:00.000"
        table = resources.call(logical_id, "dynamodb", "describe_table", TableName=name)["Table"]
        if attribute == "Arn":
            return table["TableArn"]
        if not table.get("LatestStreamArn"):
            raise Unresolvable("", f"{logical_id}: table {name!r} has no stream (StreamSpecification)")
        return table["LatestStreamArn"]

    return resolve


def _create(resources: Resources, logical_id: str, name: str, properties: dict[str, Any]) -> None:
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
        resources.client("dynamodb").create_table(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
            resources.call(logical_id, "dynamodb", "create_table", **kwargs)
    resources.wait(logical_id, lambda: resources.call(logical_id, "dynamodb", "describe_table", TableName=name)
                   ["Table"]["TableStatus"])


TABLE = Kind("dynamodb", "TableName", "Name", "table",
             attributes={"Arn": _attribute("Arn"), "StreamArn": _attribute("StreamArn")}, create=_create)
