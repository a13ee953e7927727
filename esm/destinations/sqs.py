"""The SQS on-failure destination: one SendMessage per document, the body its JSON (behaviour §4).

The queue URL comes from GetQueueUrl with the ARN's queue name and account, resolved once and
forgotten when the queue stops answering, so a queue deleted and created again is found again.
FIFO queues are refused by configuration (mapping_rules), so no group or deduplication id is set.
"""

from __future__ import annotations

from typing import Any

from esm.aws import AwsClients
from esm.destinations.aws import AwsDestination
from esm.destinations.records import dumps
from esm.errors import DestinationError


class SqsDestination(AwsDestination):
    service = "sqs"

    def __init__(self, arn: str, clients: AwsClients):
        super().__init__(arn, clients)
        self._queue_url: str | None = None

    async def _url(self) -> str:
        if self._queue_url is None:
            params: dict[str, Any] = {"QueueName": self.parsed.resource}
            if self.parsed.account:
                params["QueueOwnerAWSAccountId"] = self.parsed.account
            self._queue_url = (await self._call("get_queue_url", **params))["QueueUrl"]
        return self._queue_url

    async def deliver(self, document: dict[str, Any], *, invocation_event: Any | None = None,
                      shard_id: str = "") -> None:
        """SQS destinations get the metadata document only; the invocation event is not sent."""
        url = await self._url()
        try:
            await self._call("send_message", QueueUrl=url, MessageBody=dumps(document))
        except DestinationError:
            self._queue_url = None  # deleted, recreated, moved: resolve it again next time
            raise
