"""On-failure destinations (SPEC 4): where records go when retries or record age run out.

One interface, `Destination.deliver(document, invocation_event=..., shard_id=...)`, and one
factory, `make_destination(target, clients, mapping_uuid=...)`, which picks SQS, SNS or S3 by the
ARN's service. A delivery either lands or raises `DestinationError` (retriable, with the AWS
error in its message): the caller keeps its checkpoint and tries again (SPEC 9.6), so a failed
delivery never loses records. Each destination opens its AWS client on first use and keeps it
until `close()`; the client's region is the ARN's (S3 ARNs have none: the default region).
`kafka://` topics are built by `esm.destinations.kafka` with the source's cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar, Protocol

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.aws import AwsClients
from esm.errors import DestinationError, EsmError


class UnsupportedDestination(EsmError):
    """A destination esm cannot deliver to (yet): not retriable, a configuration matter."""

    retriable = False


class Destination(Protocol):
    arn: str

    async def deliver(self, document: dict[str, Any], *, invocation_event: Any | None, shard_id: str) -> None:
        """Send one on-failure document; raise DestinationError if it did not land."""

    async def close(self) -> None: ...


def make_destination(target: str, clients: AwsClients, *, mapping_uuid: str, kafka: Any = None) -> Destination:
    """The destination for `DestinationConfig.OnFailure.Destination` (an SQS, SNS or S3 ARN, or
    `kafka://<topic>` in the source's cluster, whose `esm.destinations.kafka.KafkaCluster` is `kafka`)."""
    if target.startswith("kafka://"):
        from esm.destinations.kafka import make_kafka_destination

        return make_kafka_destination(target, kafka)
    arn = parse_arn(target)
    if arn is None:
        raise UnsupportedDestination(f"on-failure destination {target!r} is not an ARN")
    # Imported here: the implementations subclass AwsDestination from this module.
    from esm.destinations.s3 import S3Destination
    from esm.destinations.sns import SnsDestination
    from esm.destinations.sqs import SqsDestination

    if arn.service == "sqs":
        return SqsDestination(target, clients)
    if arn.service == "sns":
        return SnsDestination(target, clients)
    if arn.service == "s3":
        return S3Destination(target, clients, mapping_uuid=mapping_uuid)
    raise UnsupportedDestination(
        f"on-failure destination {target}: must be an SQS queue, SNS topic or S3 bucket (got {arn.service})"
    )


# What a failed AWS call can raise: the service's answer, botocore's own (endpoint unreachable,
# credentials, validation), or the transport underneath.
_CALL_ERRORS = (BotoCoreError, aiohttp.ClientError, OSError, asyncio.TimeoutError)


class AwsDestination:
    """An ARN-named destination with one AWS client, opened on first use and kept until close()."""

    service: ClassVar[str]

    def __init__(self, arn: str, clients: AwsClients):
        parsed = parse_arn(arn)
        if parsed is None or parsed.service != self.service:
            raise UnsupportedDestination(f"{arn!r} is not an {self.service} ARN")
        self.arn = arn
        self.parsed = parsed
        self._clients = clients
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._opening = asyncio.Lock()

    async def _aws(self) -> Any:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    stack = contextlib.AsyncExitStack()
                    try:
                        client = await stack.enter_async_context(
                            self._clients.client(self.service, self.parsed.region or None))
                    except (ClientError, *_CALL_ERRORS) as error:
                        await stack.aclose()
                        raise DestinationError(
                            f"{self.arn}: cannot create the {self.service} client: {error}") from error
                    self._stack, self._client = stack, client
        return self._client

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One AWS call; any failure becomes a DestinationError naming the call and the AWS error."""
        client = await self._aws()
        try:
            return await getattr(client, operation)(**params)
        except ClientError as error:
            details = error.response.get("Error", {})
            raise DestinationError(
                f"{self.arn}: {error.operation_name} failed: "
                f"{details.get('Code', 'Unknown')}: {details.get('Message', '')}".rstrip()
            ) from error
        except _CALL_ERRORS as error:
            name = client.meta.method_to_api_mapping.get(operation, operation)
            raise DestinationError(f"{self.arn}: {name} failed: {type(error).__name__}: {error}") from error

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


__all__ = ["AwsDestination", "Destination", "UnsupportedDestination", "make_destination"]
