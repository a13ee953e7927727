"""On-failure documents (esm's and AWS's: behaviour §4) read as the ranges of records they name.

A stream document's `KinesisBatchInfo` / `DDBStreamBatchInfo` names a shard and a sequence range; a
Kafka document's `KafkaBatchInfo` names offset ranges per `<topic>-<partition>` (`recordsInfo`, a
batch) or one offset (`recordInfo`, with the payload naming its partition).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ShardRange:
    """Records of one Kinesis or DynamoDB Streams shard, first to last sequence number, both included."""

    stream_arn: str
    shard_id: str
    first: str
    last: str
    count: int

    def describe(self) -> str:
        return f"{self.shard_id} {self.first}..{self.last}"


@dataclass(frozen=True)
class PartitionRange:
    """Records of one Kafka partition, first to last offset, both included."""

    topic: str
    partition: int
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def describe(self) -> str:
        return f"{self.topic}-{self.partition}@{self.first}..{self.last}"


Range = ShardRange | PartitionRange


class NotAFailureDocument(ValueError):
    """The text is not an on-failure document esm can replay."""


def _split_partition_key(key: str) -> tuple[str, int]:
    topic, _, partition = key.rpartition("-")
    if not topic or not partition.isdigit():
        raise NotAFailureDocument(f"not a <topic>-<partition> key: {key!r}")
    return topic, int(partition)


def ranges(text: str | bytes) -> list[Range]:
    """The record ranges an on-failure document names (raises NotAFailureDocument otherwise)."""
    try:
        document: Any = json.loads(text)
    except ValueError as error:
        raise NotAFailureDocument(f"not JSON: {error}") from error
    if not isinstance(document, dict):
        raise NotAFailureDocument("not a JSON object")
    try:
        return _ranges(document)
    except (KeyError, TypeError, ValueError) as error:  # a batch info without the fields it must have
        if isinstance(error, NotAFailureDocument):
            raise
        raise NotAFailureDocument(f"a batch info without {error}") from error


def _ranges(document: dict[str, Any]) -> list[Range]:
    for key in ("KinesisBatchInfo", "DDBStreamBatchInfo"):  # the same fields for both streams
        info = document.get(key)
        if isinstance(info, dict):
            return [ShardRange(stream_arn=info["streamArn"], shard_id=info["shardId"],
                               first=str(info["startSequenceNumber"]), last=str(info["endSequenceNumber"]),
                               count=int(info.get("batchSize", 0)))]
    info = document.get("KafkaBatchInfo")
    if isinstance(info, dict):
        if isinstance(info.get("recordsInfo"), dict):
            found: list[Range] = []
            for key, bounds in info["recordsInfo"].items():
                topic, partition = _split_partition_key(key)
                found.append(PartitionRange(topic, partition, int(bounds["firstRecordOffset"]),
                                            int(bounds["lastRecordOffset"])))
            return found
        payload = document.get("payload")
        if isinstance(payload, str):
            payload = json.loads(payload)
        if isinstance(info.get("recordInfo"), dict) and isinstance(payload, dict):
            [key] = list(payload.get("records") or {})
            topic, partition = _split_partition_key(key)
            offset = int(info["recordInfo"]["offset"])
            return [PartitionRange(topic, partition, offset, offset)]
    raise NotAFailureDocument("no KinesisBatchInfo, DDBStreamBatchInfo or KafkaBatchInfo")
