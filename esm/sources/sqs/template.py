"""An SQS queue in a template (esm.templates.resources): its name (a FIFO queue's gets `.fifo`),
its ARN and URL, and its creation on a local endpoint with `--create-resources`."""

from __future__ import annotations

import json
from typing import Any, Mapping

from esm.templates.resources import Kind, Resources


def _stack_name(physical: str) -> str:
    return physical.rstrip("/").rsplit("/", 1)[-1]  # a stack names a queue by its URL


def _default_name(resources: Resources, logical_id: str, properties: Mapping[str, Any]) -> str:
    fifo = str(resources.value(properties.get("FifoQueue", False), logical_id)).lower() == "true"
    return logical_id + (".fifo" if fifo else "")


def _arn(resources: Resources, logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode in ("offline", "stack"):
        return f"{arn_prefix}:{name}"
    url = resources.call(logical_id, "sqs", "get_queue_url", QueueName=name)["QueueUrl"]
    return resources.call(logical_id, "sqs", "get_queue_attributes", QueueUrl=url,
                          AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _url(resources: Resources, logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode == "offline":
        return f"https://sqs.{resources.region}.amazonaws.com/{resources.account}/{name}"
    if resources.mode == "stack":
        return resources.physical_id(logical_id)
    return resources.call(logical_id, "sqs", "get_queue_url", QueueName=name)["QueueUrl"]


def _create(resources: Resources, logical_id: str, name: str, properties: dict[str, Any]) -> None:
    # The SQS API's own list of attribute names: the CloudFormation properties of the same name.
    shape = resources.client("sqs").meta.service_model.shape_for("QueueAttributeName")
    attributes = {}
    for key, value in properties.items():
        if key in shape.enum:
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            attributes[key] = str(value)
    resources.call(logical_id, "sqs", "create_queue", QueueName=name, Attributes=attributes)


QUEUE = Kind("sqs", "QueueName", "QueueUrl", "queue", attributes={"Arn": _arn, "QueueUrl": _url}, create=_create,
             stack_name=_stack_name, default_name=_default_name)
