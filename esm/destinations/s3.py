"""The S3 on-failure destination: one object per document, with the whole invocation event (behaviour §4).

The object is the metadata document plus `"payload"`, the invocation event as a JSON string,
with its keys in alphabetical order at every level as AWS writes it, under
`aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>` (the time is the
document's own `timestamp`) in the bucket the ARN (`arn:aws:s3:::bucket`) names. S3 ARNs carry no
region: the client uses the default one.
"""

from __future__ import annotations

from typing import Any

from esm.aws import AwsClients
from esm.destinations.aws import AwsDestination
from esm.destinations.records import dumps, s3_object_key, with_payload


class S3Destination(AwsDestination):
    service = "s3"

    def __init__(self, arn: str, clients: AwsClients, *, mapping_uuid: str):
        super().__init__(arn, clients)
        self.bucket = self.parsed.resource.split("/", 1)[0]
        self.mapping_uuid = mapping_uuid

    async def deliver(self, document: dict[str, Any], *, invocation_event: Any | None,
                      shard_id: str) -> None:
        """Puts the document (with `payload` when there is an invocation event); returns once stored."""
        body = with_payload(document, invocation_event) if invocation_event is not None else document
        await self._call(
            "put_object",
            Bucket=self.bucket,
            Key=s3_object_key(self.mapping_uuid, shard_id, document["timestamp"]),
            Body=dumps(body, sort_keys=True).encode(),
            ContentType="application/json",
        )
