"""The AWS half of on-failure destinations: one client per destination ARN, failures as DestinationError.

`AwsDestination` is what the SQS, SNS and S3 destinations share: it checks the ARN names its
service, opens its AWS client on first use (in the ARN's region; S3 ARNs have none: the default
region) and keeps it until `close()`, and turns any failed call into a retriable
`DestinationError` that names the call and the AWS error (behaviour §9.6: the caller keeps its
checkpoint and tries again).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.aws import AwsClients
from esm.errors import DestinationError, UnsupportedDestination

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
