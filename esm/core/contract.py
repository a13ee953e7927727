"""The source contract: what a source does, and the little it is told (docs/design.md "Layout").

It lives in the core, below both sides: the engine and every source depend on it, and neither
on the other. Declarations only (protocols and plain values), no I/O.

A source is one of two modes (`Mode`, its class's `mode`), and the mode picks the engine runner
that runs it (esm.registry.RUNNERS):

A **stream** source (`Source`: Kinesis, DynamoDB Streams, Kafka) keeps records in order within
units and knows its service and nothing about functions. It
- connects (`connect`), and says why it cannot as SourceUnavailable;
- discovers its **units of order** (a Kinesis or DynamoDB shard, a Kafka partition) and reports
  them to the engine as they come and go (`discover(units, stopping)`: `units.assigned(unit)`,
  `await units.revoked([...], reason, drain)`);
- opens a unit where its checkpoint says (`open`), fetches records for it in order (`fetch`),
  each record carrying an opaque token (a sequence number, a Kafka offset);
- settles tokens with a Disposition (`settle`): only the source turns dispositions into
  checkpoints or commits;
- closes a unit with the reason its worker stopped (`close_unit`), which decides the last
  checkpoint, as the Kinesis Client Library's shutdown reasons do: LEASE_LOST writes none,
  UNIT_END marks the unit ended so its children may start, SHUTDOWN and REVOKED write the
  contiguous position.

A **queue** source (`QueueSource`: SQS) has no units and no checkpoints: it hands out records
that stay this consumer's for a while (`hold_seconds`: SQS's visibility timeout, a broker's
unacknowledged delivery) and come back by themselves if never settled. It
- connects (`connect`);
- receives up to N records at once (`receive`), holding room for what a receive may bring
  against the mapping's in-flight cap while it is under way;
- settles tokens with a Disposition (`settle`): deleted, left to come back, or released at once;
- says how many pollers its mappings run (`scaling`: its own `ScalingPolicy`, such as SQS's
  on-demand and provisioned rules) and the most invokes one mapping may run at once
  (`concurrency_ceiling`).

Either kind says why it cannot connect as SourceUnavailable (esm.errors: retried until it can) or,
when no retry mends it, as `MappingStopped` with Lambda's StateTransitionReason code: the
supervisor then stops that mapping alone. A queue source whose broker pushes messages sizes its
pollers with `FixedScaling`.

Neither holds an invoker nor decides retries: the engine (esm.engine) gathers, invokes, decides
and dead-letters for every source alike. How records look to a function is the source's
`RecordFormat`; a stream's also says how they are ordered into lanes and how they look to an
on-failure destination (`StreamRecordFormat`); a queue's names the groups it keeps in order
(`QueueRecordFormat`).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar, Hashable, Mapping, Protocol, Sequence

from esm.core.decide import Mode
from esm.core.inflight import InFlightBytes
from esm.core.records import Disposition, Record

# What a mapping's function target allows at once when neither the target nor the source's own rules
# say more: the 1,250 concurrent invokes Lambda's on-demand SQS scaling reaches, esm's default for every source.
DEFAULT_CONCURRENCY = 1250


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
    """Records as a function sees them, for every source (pure, per mapping)."""

    source_arn: str | None  # the source's ARN, as records name it (eventSourceARN)

    def payload(self, records: Sequence[Record]) -> bytes:
        """The invoke payload for a batch (the source's event envelope, `esm.transform` applied)."""

    def events(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """The records' events as the function sees them (`esm.transform` applied)."""

    def read_identifier(self, value: Any) -> Hashable | None:
        """A partial batch response's itemIdentifier as a record's `item_id`, or None if malformed."""

    def arrival(self, record: Record) -> float:
        """Epoch seconds the record entered the source (MaximumRecordAgeInSeconds, IteratorAge, windows)."""

    def keep(self, matcher: Any, record: Record) -> bool:
        """Whether the record passes the compiled filters."""

    def where(self, unit: str, records: Sequence[Record]) -> str:
        """Where records are, for a log line (`shard-1 49..51`, `topic-0@12..14`, a queue's message ids)."""


class StreamRecordFormat(RecordFormat, Protocol):
    """What only a stream's records give: lanes, ages, pre-failures and on-failure documents."""

    reports_iterator_age: bool  # IteratorAge per unit (streams with arrival times)
    may_pre_fail: bool  # whether `pre_failure` can ever name a record (else lanes never ask it)

    def payload_cap(self, unit: str) -> int:
        """The most bytes a batch's payload may have (6 MB less what the envelope of `unit` adds)."""

    def lane_key(self, record: Record) -> bytes | None:
        """What keeps order across lanes (a partition key, a Kafka key); None: the unit's first lane."""

    def pre_failure(self, record: Record) -> PreFailure | None:
        """Why the record cannot be invoked at all, if so."""

    def failure_deliveries(self, unit: str, records: Sequence[Record], *, condition: str, invoke_count: int,
                           response: Any, per_record: bool) -> list[Delivery]:
        """The on-failure documents for records given up on (behaviour §4)."""


class QueueRecordFormat(RecordFormat, Protocol):
    """What only a queue's records give: the groups the queue keeps in order.

    A queue gives nothing up itself (its failures go back to it, and its own redrive policy
    dead-letters them), so it has no on-failure documents."""

    # The group a record belongs to, for a queue that hands out no record of a group while an earlier
    # one is in flight (SQS FIFO's MessageGroupId); None: the queue keeps no order.
    group_of: Callable[[Record], Hashable] | None


# The execution role ARN of the mapping's function, resolved by the engine (esm.identity) for
# sources whose records name it (invokeIdentityArn), so a source never holds the invoker.
IdentityLookup = Callable[[], Awaitable[str]]


class Source(Protocol):
    """One mapping's stream source (see the module docstring), built as
    `cls(mapping, settings, runtime, metrics, identity)`: the validated MappingSettings, its
    PipelineSettings (read once), the daemon's Runtime (AWS clients, checkpoint store, owner id),
    the mapping's MappingMetrics, and an IdentityLookup (None for sources whose records name no role).

    A source that sizes its own concurrency may also have `in_flight_slots`: an async context
    manager every batch enters before its invoke (Kafka's provisioned pollers)."""

    mode: ClassVar[Mode]  # Mode.STREAM
    format: StreamRecordFormat
    account: str | None  # the source's AWS account, for the default execution role (esm.identity)
    default_batch_size: int  # BatchSize when the mapping gives none (behaviour §1)
    retry_cap_with_destination: int | None  # retries when MaximumRetryAttempts is -1 and a destination waits

    @staticmethod
    def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
        """The most invokes one mapping (its CreateEventSourceMapping request; None: any the control
        API may create) may run at once: what its function target allows when it states no cap."""

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

    async def settle(self, unit: Hashable, tokens: Sequence[Any], disposition: Disposition) -> None:
        """`tokens` (a batch's, or a fetch's filtered records) all settled one way: one call, no per-record pairs."""

    async def close_unit(self, unit: Hashable, reason: StopReason) -> None: ...

    async def close(self) -> None: ...


class MappingStopped(Exception):
    """An error no retry mends (refused credentials, a queue that does not exist): any source raises
    it, from `connect` or while reading, and the mapping stops, alone; the other mappings run on.

    `reason` is the code Lambda writes into the mapping's StateTransitionReason (behaviour §9.11:
    one of the constants below); `detail` says what the source saw, naming the user, the virtual
    host or the queue and never a password."""

    retriable = False

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


# The StateTransitionReason codes AWS lists for an event source mapping whose consumer stopped.
ESM_CONFIG_NOT_VALID = "ESM_CONFIG_NOT_VALID"  # the mapping's own settings cannot work
EVENT_SOURCE_AUTHN_ERROR = "EVENT_SOURCE_AUTHN_ERROR"  # the source refused the credentials
EVENT_SOURCE_AUTHZ_ERROR = "EVENT_SOURCE_AUTHZ_ERROR"  # the credentials may not read what the mapping names
FUNCTION_CONFIG_NOT_VALID = "FUNCTION_CONFIG_NOT_VALID"  # the function's settings cannot work with the source
STOP_REASONS = (ESM_CONFIG_NOT_VALID, EVENT_SOURCE_AUTHN_ERROR, EVENT_SOURCE_AUTHZ_ERROR, FUNCTION_CONFIG_NOT_VALID)


class ScalingPolicy(Protocol):
    """How many pollers (each one batch in flight) a queue mapping runs: the queue source's own
    rules. Pollers report what they saw; a tick about once a second moves `target`; pollers above
    the target finish their batch and retire."""

    target: int

    def pollers(self, lanes: int) -> int:
        """The pollers `lanes` running lanes stand for (the ProvisionedPollers metric, behaviour §6)."""

    def polled(self, records: int) -> None:
        """A receive brought `records` records."""

    def poll_empty(self) -> None:
        """A receive came back empty."""

    def batch_done(self, *, full: bool) -> None:
        """A batch was invoked; `full`: it held BatchSize records."""

    def back_off(self) -> None:
        """The function was throttled, or failed a batch it could not answer in part."""

    def tick(self) -> int:
        """Called about once a second; returns the new target."""


@dataclass
class FixedScaling:
    """A ScalingPolicy whose target never moves: `target` pollers, each one batch in flight. For a
    source whose broker pushes messages to its consumers: there is no poll rate to learn from."""

    target: int

    def __post_init__(self) -> None:
        self.target = max(1, self.target)

    def pollers(self, lanes: int) -> int:
        return lanes

    def polled(self, records: int) -> None: ...

    def poll_empty(self) -> None: ...

    def batch_done(self, *, full: bool) -> None: ...

    def back_off(self) -> None: ...

    def tick(self) -> int:
        return self.target


class QueueSource(Protocol):
    """One mapping's queue source (see the module docstring), built as
    `cls(mapping, settings, runtime, metrics, identity)` like a stream source."""

    mode: ClassVar[Mode]  # Mode.QUEUE
    format: QueueRecordFormat
    account: str | None
    default_batch_size: int  # BatchSize when the mapping gives none (behaviour §1)

    @staticmethod
    def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
        """As `Source.concurrency_ceiling`: what the source's scaling rules let one mapping reach."""

    @property
    def hold_seconds(self) -> float:
        """How long a received record stays this consumer's before the source hands it out again
        (SQS's visibility timeout): the engine keeps retrying a throttled invoke only within it."""

    def scaling(self, invoker_cap: int) -> ScalingPolicy:
        """A fresh scaling policy for this mapping, never above `invoker_cap` concurrent invokes."""

    async def connect(self) -> None: ...

    async def receive(self, count: int, wait: float | None, in_flight: InFlightBytes,
                      stopping: asyncio.Event) -> list[Record]:
        """Up to `count` records, waiting at most `wait` seconds for some (None: the source's own
        long poll); while a receive is under way the most it may bring is held in `in_flight`.
        Retries the service itself; the wait between tries ends with esm.aio.Stopped once
        `stopping` is set."""

    async def settle(self, tokens: Sequence[tuple[Any, Disposition]]) -> None:
        """SUCCEEDED, FILTERED, DEAD_LETTERED: gone for good; FAILED: back after the hold;
        RELEASED (gathered, never invoked): back at once, for another consumer."""

    async def close(self) -> None: ...
