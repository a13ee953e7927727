"""On-failure destinations (behaviour §4): where records go when retries or record age run out.

One interface, `Destination.deliver(document, invocation_event=..., shard_id=...)`, and one
factory, `make_destination(target, clients, mapping_uuid=...)`, which picks SQS, SNS or S3 by the
ARN's service (the classes are named in `esm.registry`). A delivery either lands or raises
`DestinationError` (retriable, with the AWS error in its message): the caller keeps its checkpoint
and tries again (behaviour §9.6), so a failed delivery never loses records. The AWS destinations share
`esm.destinations.aws.AwsDestination`; `kafka://` topics are built by `esm.destinations.kafka`
with the source's cluster. A target esm cannot deliver to raises `esm.errors.UnsupportedDestination`.
"""

from __future__ import annotations

from typing import Any, Protocol

from esm import registry
from esm.arns import parse_arn
from esm.aws import AwsClients
from esm.errors import UnsupportedDestination


class Destination(Protocol):
    arn: str

    async def deliver(self, document: dict[str, Any], *, invocation_event: Any | None, shard_id: str) -> None:
        """Send one on-failure document; raise DestinationError if it did not land."""

    async def close(self) -> None: ...


def make_destination(target: str, clients: AwsClients, *, mapping_uuid: str, kafka: Any = None) -> Destination:
    """The destination for `DestinationConfig.OnFailure.Destination` (an SQS, SNS or S3 ARN, or
    `kafka://<topic>` in the source's cluster, whose `esm.destinations.kafka.KafkaCluster` is `kafka`)."""
    if target.startswith("kafka://"):
        destination: Destination = registry.destination("kafka://")(target, kafka)
        return destination
    arn = parse_arn(target)
    if arn is None:
        raise UnsupportedDestination(f"on-failure destination {target!r} is not an ARN")
    if arn.service not in registry.DESTINATIONS:
        raise UnsupportedDestination(
            f"on-failure destination {target}: must be an SQS queue, SNS topic or S3 bucket (got {arn.service})"
        )
    cls = registry.destination(arn.service)
    if arn.service == "s3":  # object keys carry the mapping's UUID
        destination = cls(target, clients, mapping_uuid=mapping_uuid)
    else:
        destination = cls(target, clients)
    return destination


__all__ = ["Destination", "make_destination"]
