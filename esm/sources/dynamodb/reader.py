"""Where a DynamoDB stream shard's reading starts, and how it is polled (behaviour §1, §7).

`StreamStart`: after its checkpoint, else TRIM_HORIZON for a child shard (its parents were read),
else the mapping's StartingPosition (TRIM_HORIZON or LATEST; DynamoDB offers no AT_TIMESTAMP).
The polling itself is esm.sources.shard_reader's, shared with Kinesis: GetRecords of at most
1,000 records, an idle shard read four times a second, as Lambda reads DynamoDB streams.
"""

from __future__ import annotations

from typing import Any

from esm.sources.shards import Shard

IDLE_POLL_INTERVAL = 0.25  # Lambda polls each DynamoDB stream shard 4 times a second
GET_RECORDS_LIMIT = 1000  # DynamoDB Streams' GetRecords maximum


class StreamStart:
    def __init__(self, starting_position: str):
        self.starting_position = starting_position

    def iterator_args(self, shard: Shard) -> dict[str, Any]:
        if shard.last_read is not None:
            return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_read}
        if shard.child:
            return {"ShardIteratorType": "TRIM_HORIZON"}
        return {"ShardIteratorType": self.starting_position}
