"""Kinesis's config rules and Lambda's defaults for a Kinesis mapping (behaviour §1): the stream
controls (starting position, retries, record age, bisect, lanes, tumbling windows) and an
SQS, SNS or S3 on-failure destination."""

from __future__ import annotations

from typing import Any

from esm.arns import parse_arn
from esm.config.rules import (
    NOT_FOR_STREAMS,
    MappingCheck,
    check_starting_position,
    check_stream_controls,
    not_for,
    not_found,
)


def check(check: MappingCheck) -> None:
    req = check.request
    not_for(check, NOT_FOR_STREAMS, "Kinesis")
    req.setdefault("BatchSize", 100)
    check_starting_position(check)
    check_stream_controls(check)



async def stream_exists(clients: Any, arn_text: str) -> bool | None:
    """Whether the stream (of a consumer ARN too) exists (create asks, as AWS does: behaviour §10);
    None when Kinesis does not answer."""
    arn = parse_arn(arn_text)
    if arn is None:
        return None

    async def ask() -> None:
        async with clients.client("kinesis", arn.region) as kinesis:
            await kinesis.describe_stream_summary(StreamName=arn.resource.split("/")[1])

    return await not_found(ask, "ResourceNotFoundException")
