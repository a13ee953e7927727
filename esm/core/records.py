"""A record on its way from a source to a function, and what happened to it.

The `token` is whatever the source needs to acknowledge the record later (an SQS receipt, a
stream position, a Kafka offset); only the source interprets it (docs/design.md, after Vector's ack
tokens). `event` is the record exactly as the function receives it inside the batch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Disposition(enum.Enum):
    SUCCEEDED = "succeeded"
    FILTERED = "filtered"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"  # processed and failed: comes back as the source brings failures back
    RELEASED = "released"  # never processed (gathered when the mapping stopped): hand it back at once


@dataclass(frozen=True, slots=True)
class Record:
    event: dict[str, Any]
    item_id: Any  # what a partial batch response names it by (messageId, sequence number, ...)
    size: int  # bytes of `event` as JSON, for the 6 MB payload cap
    arrived_at: float  # monotonic time the poller received it
    token: Any
