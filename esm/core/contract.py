"""The source contract: what a source does, and the little it is told (DESIGN.md "Layout").

It lives in the core, below both sides: the engine and every source depend on it, and neither
on the other. Declarations only (protocols and plain values), no I/O.

A source knows its service and nothing about functions. It
- connects (`connect`), and says why it cannot as SourceUnavailable;
- discovers its **units of order** (a Kinesis or DynamoDB shard, a Kafka partition, an SQS
  queue) and reports them to the engine as they come and go (`discover(units, stopping)`:
  `units.assigned(unit)`, `await units.revoked([...], reason, drain)`);
- opens a unit where its checkpoint says (`open`), fetches records for it in order (`fetch`),
  each record carrying an opaque token (an SQS receipt, a sequence number, a Kafka offset);
- settles tokens with a Disposition (`settle`): only the source turns dispositions into deletes,
  visibility changes, checkpoints or commits;
- closes a unit with the reason its worker stopped (`close_unit`), which decides the last
  checkpoint, as the Kinesis Client Library's shutdown reasons do: LEASE_LOST writes none,
  UNIT_END marks the unit ended so its children may start, SHUTDOWN and REVOKED write the
  contiguous position.
It holds no invoker and never decides retries: the engine (esm.engine) gathers, invokes, decides
and dead-letters for every source alike. How records look to a function and to an on-failure
destination is the source's `RecordFormat`.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, Protocol, Sequence

from esm.core.records import Disposition, Record


class StopReason(enum.Enum):
    SHUTDOWN = "shutdown"  # the mapping stops: checkpoint the contiguous position
    REVOKED = "revoked"  # the unit moved to another consumer (Kafka rebalance): commit while still owned
    LEASE_LOST = "lease_lost"  # another replica owns the unit now: write nothing
    UNIT_END = "unit_end"  # the unit is closed and every record settled: checkpoint it as ended
    FAILED = "failed"  # the worker died of an unexpected error: the engine starts a new one


@dataclass(frozen=True)
class Fetched:
    """One fetch from a unit: records in order (possibly none), and whether the unit has ended."""

    records: list[Record]
    ended: bool = False


NOTHING = Fetched([])


@dataclass(frozen=True)
class Delivery:
    """One on-failure document and what a destination may also need (the invocation event, a key)."""

    document: dict[str, Any]
    invocation_event: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PreFailure:
    """A record the source could not make invokable (a schema it cannot decode): dead-lettered as is."""

    condition: str
    reason: str


class Units(Protocol):
    """How a source reports its units to the engine (esm.engine.stream_mapping implements it)."""

    def assigned(self, unit: Hashable, key: str) -> None:
        """Start a worker for `unit` (`key` names it in logs, metrics and documents: a shard id, `topic-0`)."""

    def stop_unit(self, unit: Hashable, reason: StopReason) -> None:
        """Stop the unit's worker without waiting (a lost lease)."""

    async def revoked(self, units: Sequence[Hashable], reason: StopReason, drain: float | None) -> None:
        """Stop the units' workers (a batch in flight may finish within `drain` seconds; None: no
        limit) and close them with `reason`; returns when they are closed."""

    def running(self, unit: Hashable) -> bool:
        """Whether a worker runs for `unit`."""


class RecordFormat(Protocol):
    """Records as a function and an on-failure destination see them (pure, per mapping)."""

    reports_iterator_age: bool  # IteratorAge per unit (streams with arrival times)
    may_pre_fail: bool  # whether `pre_failure` can ever name a record (else lanes never ask it)
    source_arn: str | None  # the ARN tumbling-window invokes name as eventSourceARN

    def payload(self, records: Sequence[Record]) -> bytes:
        """The invoke payload for a batch (the source's event envelope, `esm.transform` applied)."""

    def events(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """The records' events as the function sees them (`esm.transform` applied)."""

    def read_identifier(self, value: Any) -> Hashable | None:
        """A partial batch response's itemIdentifier as a record's `item_id`, or None if malformed."""

    def arrival(self, record: Record) -> float:
        """Epoch seconds the record entered the source (MaximumRecordAgeInSeconds, IteratorAge, windows)."""

    def payload_cap(self, unit: str) -> int:
        """The most bytes a batch's payload may have (6 MB less what the envelope of `unit` adds)."""

    def lane_key(self, record: Record) -> bytes | None:
        """What keeps order across lanes (a partition key, a Kafka key); None: the unit's first lane."""

    def keep(self, matcher: Any, record: Record) -> bool:
        """Whether the record passes the compiled filters."""

    def pre_failure(self, record: Record) -> PreFailure | None:
        """Why the record cannot be invoked at all, if so."""

    def where(self, unit: str, records: Sequence[Record]) -> str:
        """Where records are, for a log line (`shard-1 49..51`, `topic-0@12..14`)."""

    def failure_deliveries(self, unit: str, records: Sequence[Record], *, condition: str, invoke_count: int,
                           response: Any, per_record: bool) -> list[Delivery]:
        """The on-failure documents for records given up on (SPEC 4)."""


# The execution role ARN of the mapping's function, resolved by the engine (esm.identity) for
# sources whose records name it (invokeIdentityArn), so a source never holds the invoker.
IdentityLookup = Callable[[], Awaitable[str]]


class Source(Protocol):
    """One mapping's source (see the module docstring), built as
    `cls(mapping, settings, runtime, metrics, identity)`: the validated MappingSettings, its
    PipelineSettings (read once), the daemon's Runtime (AWS clients, checkpoint store, owner id),
    the mapping's MappingMetrics, and an IdentityLookup (None for sources whose records name no role)."""

    format: RecordFormat
    account: str | None  # the source's AWS account, for the default execution role (esm.identity)
    default_batch_size: int  # BatchSize when the mapping gives none (SPEC 1)
    retry_cap_with_destination: int | None  # retries when MaximumRetryAttempts is -1 and a destination waits

    async def connect(self) -> None: ...

    async def destination(self, target: str) -> Any:
        """The on-failure destination for `target` (esm.destinations; Kafka adds kafka:// topics)."""

    async def discover(self, units: Units, stopping: asyncio.Event) -> None:
        """Report units until `stopping` is set."""

    def still_assigned(self, unit: Hashable) -> bool:
        """Whether `unit` is still this consumer's (a failed worker is restarted only then)."""

    async def open(self, unit: Hashable) -> bool:
        """Prepare to read `unit` from its checkpoint; False if it is no longer ours."""

    async def fetch(self, unit: Hashable) -> Fetched:
        """The next records of `unit` in order (waits while there are none; retries the service itself)."""

    async def settle(self, unit: Hashable, tokens: Sequence[tuple[Any, Disposition]]) -> None: ...

    async def close_unit(self, unit: Hashable, reason: StopReason) -> None: ...

    async def close(self) -> None: ...
