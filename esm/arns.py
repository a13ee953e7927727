"""Amazon Resource Names: parsing, and which event source an ARN names.

Only what esm needs: the service, region, account and resource of an ARN, and the sources Lambda
serves that esm does not yet. Which source an ARN names is its service, as the sources'
descriptors (esm.descriptor) list them.
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


def is_fifo_queue(arn: Arn) -> bool:
    return arn.resource.endswith(".fifo")
