"""Amazon Resource Names: parsing, and which event source an ARN names.

Only what esm needs: the service, region, account and resource of an ARN, the kind of event
source (`sqs`, `kinesis`, `dynamodb`, `kafka`, or a source esm does not serve yet), and the names inside.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(text: str) -> Arn | None:
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return Arn(*parts[1:])


# Sources that Lambda serves and esm does not (yet): rejected by name, never silently ignored.
NOT_SERVED = {
    "mq": "Amazon MQ",
    "rds": "Amazon DocumentDB",
    "docdb": "Amazon DocumentDB",
}


def source_kind(arn: Arn) -> str:
    """`sqs`, `kinesis`, `dynamodb` or `kafka`; for a source esm does not serve, that source's service name."""
    if arn.service in ("kinesis", "dynamodb"):
        return arn.service
    if arn.service == "sqs":
        return "sqs"
    if arn.service == "kafka":
        return "kafka"
    return arn.service


def is_kinesis_consumer(arn: Arn) -> bool:
    """An enhanced fan-out consumer: `stream/<name>/consumer/<consumer>:<timestamp>`."""
    return arn.service == "kinesis" and "/consumer/" in arn.resource


def kinesis_stream_name(arn: Arn) -> str:
    return arn.resource.split("/")[1]


def is_dynamodb_stream(arn: Arn) -> bool:
    """A table's stream: `table/<table>/stream/<label>` (a table ARN alone is no event source)."""
    parts = arn.resource.split("/")
    return arn.service == "dynamodb" and len(parts) == 4 and parts[0] == "table" and parts[2] == "stream" \
        and all(parts[i] for i in (1, 3))


def sqs_queue_name(arn: Arn) -> str:
    return arn.resource


def is_fifo_queue(arn: Arn) -> bool:
    return arn.resource.endswith(".fifo")
