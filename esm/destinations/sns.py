"""The SNS on-failure destination: one Publish per document, the message its JSON (behaviour §4).

SNS takes at most 256 KB (262,144 bytes) per message. A document over that loses its `payload`
(behaviour §4: "payload dropped if exceeded"); one still over it — or over it without a payload to drop —
cannot be published and raises DestinationError, so the records stay where they are (behaviour §9.6).
"""

from __future__ import annotations

from typing import Any

from esm.destinations.aws import AwsDestination
from esm.destinations.records import dumps
from esm.errors import DestinationError

SNS_MAX_MESSAGE_BYTES = 256 * 1024


def sns_message(document: dict[str, Any]) -> str:
    """The message for `document`: its JSON, without `payload` if that is what breaks the limit."""
    message = dumps(document)
    if len(message.encode()) > SNS_MAX_MESSAGE_BYTES and "payload" in document:
        message = dumps({key: value for key, value in document.items() if key != "payload"})
    if len(message.encode()) > SNS_MAX_MESSAGE_BYTES:
        raise DestinationError(
            f"on-failure document of {len(message.encode())} bytes exceeds SNS's {SNS_MAX_MESSAGE_BYTES}-byte limit")
    return message


class SnsDestination(AwsDestination):
    service = "sns"

    async def deliver(self, document: dict[str, Any], *, invocation_event: Any | None = None,
                      shard_id: str = "") -> None:
        """SNS destinations get the metadata document only; the invocation event is not sent."""
        try:
            message = sns_message(document)
        except DestinationError as error:
            raise DestinationError(f"{self.arn}: {error}") from None
        await self._call("publish", TopicArn=self.arn, Message=message)
