"""A record on its way from a source to a function, and what happened to it.

The `token` is whatever the source needs to acknowledge the record later (an SQS receipt, a
stream position, a Kafka offset); only the source interprets it (docs/design.md, after Vector's ack
tokens). `event` is the record exactly as the function receives it inside the batch.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple


class Disposition(enum.Enum):
    SUCCEEDED = "succeeded"
    FILTERED = "filtered"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"  # processed and failed: comes back as the source brings failures back
    RELEASED = "released"  # never processed (gathered when the mapping stopped): hand it back at once


class Record(NamedTuple):
    """An immutable value; a NamedTuple rather than a frozen dataclass because a busy stream builds
    one per record, and a tuple is built in less than half the time (a frozen dataclass sets each
    field through object.__setattr__)."""

    event: dict[str, Any]
    item_id: Any  # what a partial batch response names it by (messageId, sequence number, ...)
    size: int  # bytes of `event` as JSON, for the 6 MB payload cap
    arrived_at: float  # monotonic time the poller received it
    token: Any
