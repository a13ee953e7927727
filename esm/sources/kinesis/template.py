"""A Kinesis stream in a template (esm.templates.resources): its ARN, and its creation (shard
count or on-demand) on a local endpoint with `--create-resources`."""

from __future__ import annotations

from typing import Any

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
