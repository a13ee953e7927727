"""A Kinesis stream and a stream consumer (enhanced fan-out) in a template
(esm.templates.resources): their ARNs, and their creation (a stream's shard count or on-demand;
a consumer's registration) on a local endpoint with `--create-resources`."""

from __future__ import annotations

from typing import Any

from esm.templates.intrinsics import Unresolvable
from esm.templates.resources import Kind, Resources


def _arn(resources: Resources, logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode == "endpoints":
        return resources.call(logical_id, "kinesis", "describe_stream_summary",
                              StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    return f"{arn_prefix}:stream/{name}"


def _create(resources: Resources, logical_id: str, name: str, properties: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    mode = (properties.get("StreamModeDetails") or {}).get("StreamMode")
    kwargs: dict[str, Any] = {"StreamName": name}
    if mode == "ON_DEMAND":
        kwargs["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
    else:
        kwargs["ShardCount"] = int(properties.get("ShardCount", 1))
    try:
        resources.client("kinesis").create_stream(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUseException":  # it exists already
            resources.call(logical_id, "kinesis", "create_stream", **kwargs)  # reports the error
    resources.wait(logical_id, lambda: resources.call(logical_id, "kinesis", "describe_stream_summary",
                                                      StreamName=name)["StreamDescriptionSummary"]["StreamStatus"])


STREAM = Kind("kinesis", "Name", "Name", "stream", attributes={"Arn": _arn}, create=_create)


def _consumer_stream(resources: Resources, logical_id: str) -> str:
    stream = resources.value((resources.resources[logical_id].get("Properties") or {}).get("StreamARN"),
                             f"{logical_id}.Properties.StreamARN")
    if not isinstance(stream, str) or not stream:
        raise Unresolvable(f"{logical_id}.Properties.StreamARN", "is required (the stream's ARN)")
    return stream


def _consumer_arn(resources: Resources, logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode == "stack":
        return resources.physical_id(logical_id)
    stream = _consumer_stream(resources, logical_id)
    if resources.mode == "endpoints":
        return resources.call(logical_id, "kinesis", "describe_stream_consumer", StreamARN=stream,
                              ConsumerName=name)["ConsumerDescription"]["ConsumerARN"]
    return f"{stream}/consumer/{name}:0"


def _register(resources: Resources, logical_id: str, name: str, properties: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    stream = properties.get("StreamARN")
    try:
        resources.client("kinesis").register_stream_consumer(StreamARN=stream, ConsumerName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUseException":  # it exists already
            resources.call(logical_id, "kinesis", "register_stream_consumer", StreamARN=stream, ConsumerName=name)
    resources.wait(logical_id, lambda: resources.call(logical_id, "kinesis", "describe_stream_consumer",
                                                      StreamARN=stream, ConsumerName=name)
                   ["ConsumerDescription"]["ConsumerStatus"])


CONSUMER = Kind("kinesis", "ConsumerName", "ConsumerARN", "stream consumer", create=_register,
                attributes={"ConsumerARN": _consumer_arn,
                            "StreamARN": lambda resources, logical_id, name, prefix: _consumer_stream(resources, logical_id)})
