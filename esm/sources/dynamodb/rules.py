"""DynamoDB Streams' config rules and Lambda's defaults (behaviour §1): the stream controls
Kinesis takes, except AT_TIMESTAMP, which CreateEventSourceMapping refuses for a DynamoDB stream
with the message below; and only a table's stream ARN names a source."""

from __future__ import annotations

from typing import Any

from esm.arns import Arn, parse_arn
from esm.config.rules import (
    NOT_FOR_STREAMS,
    MappingCheck,
    check_starting_position,
    check_stream_controls,
    not_for,
    not_found,
)


# AWS's text for AT_TIMESTAMP on a DynamoDB stream (behaviour §10).
UNSUPPORTED_POSITION = "Unsupported starting position for arn type: {arn}"


def check(check: MappingCheck) -> None:
    req = check.request
    not_for(check, NOT_FOR_STREAMS, "DynamoDB Streams")
    req.setdefault("BatchSize", 100)
    if req.get("StartingPosition") == "AT_TIMESTAMP":
        check.refuse("StartingPosition", UNSUPPORTED_POSITION.format(arn=check.source_id))
    else:
        check_starting_position(check)
    check_stream_controls(check)


def check_arn(arn: Arn) -> str | None:
    """A table's stream, `table/<table>/stream/<label>`, names a source; a table ARN alone does not."""
    parts = arn.resource.split("/")
    if len(parts) == 4 and parts[0] == "table" and parts[2] == "stream" and all(parts[i] for i in (1, 3)):
        return None
    return ("must be a DynamoDB stream ARN "
            "(arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>), not a table ARN")


async def stream_exists(clients: Any, arn_text: str) -> bool | None:
    """Whether the table's stream exists (create asks, as AWS does: behaviour §10); None when
    DynamoDB Streams does not answer."""
    arn = parse_arn(arn_text)

    async def ask() -> None:
        async with clients.client("dynamodbstreams", arn.region if arn else None) as streams:
            await streams.describe_stream(StreamArn=arn_text, Limit=1)

    return await not_found(ask, "ResourceNotFoundException")
