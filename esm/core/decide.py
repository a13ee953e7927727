"""What to do with a batch after the function answered: the one place answers become decisions.

`decide(segment, outcome, rules, retries)` is pure. Given the records just invoked (in order), the
judged answer (`esm.core.outcomes.judge`) and the mapping's failure rules, it returns one decision:

- `Settle(succeeded, failed)`: the batch is done with. Streams settle everything as succeeded;
  queues (behaviour §3, SQS) settle the reported failures as FAILED, so they come back on their own
  (visibility timeout), and a function error fails the whole batch that way.
- `Retry(succeeded, again)`: streams only. The records before the lowest reported failure
  succeeded; `again` is invoked once more, which counts as a retry (behaviour §3).
- `Bisect(first, second)`: streams with BisectBatchOnFunctionError, a function error on more than
  one record: the halves are settled one after the other, first completely before second, and
  splitting consumes no retry (behaviour §9.2).
- `GiveUp(succeeded, records, condition)`: MaximumRetryAttempts is exhausted; the records go to
  the on-failure destination (behaviour §4, §9.3).

An invocation error (throttle, unavailable) never reaches `decide`: the invoke path waits it out
(behaviour §9.1). Record age is checked before each invoke by `split_expired`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

from esm.core.conditions import RETRY_ATTEMPTS_EXHAUSTED
from esm.core.outcomes import FUNCTION_ERROR, PARTIAL, SUCCESS, Outcome
from esm.core.records import Record


class Mode(enum.Enum):
    STREAM = "stream"  # ordered: retry in place until settled (Kinesis, DynamoDB Streams, Kafka)
    QUEUE = "queue"  # unordered: failures go back to the source (SQS)


@dataclass(frozen=True)
class FailureRules:
    mode: Mode = Mode.STREAM
    max_retries: int = -1  # -1: until the record expires
    max_age: float = -1  # seconds; -1: no limit
    bisect: bool = False
    report_item_failures: bool = False
    # Queues with ordered groups (SQS FIFO): after a failure in a group, later records of the group
    # in the batch fail too, so a group is never processed out of order.
    group_of: Callable[[Record], Hashable] | None = None

    def exhausted(self, retries: int) -> bool:
        return self.max_retries != -1 and retries > self.max_retries


@dataclass(frozen=True)
class Settle:
    succeeded: list[Record]
    failed: list[Record]


@dataclass(frozen=True)
class Retry:
    succeeded: list[Record]
    again: list[Record]


@dataclass(frozen=True)
class Bisect:
    first: list[Record]
    second: list[Record]


@dataclass(frozen=True)
class GiveUp:
    succeeded: list[Record]
    records: list[Record]
    condition: str


Decision = Settle | Retry | Bisect | GiveUp


def decide(segment: Sequence[Record], outcome: Outcome, rules: FailureRules, retries: int) -> Decision:
    """`retries`: how many retries this segment already had (a retry decided here is the next one)."""
    records = list(segment)
    if outcome.kind == SUCCESS:
        return Settle(records, [])
    if rules.mode is Mode.QUEUE:
        return _queue(records, outcome, rules)
    if outcome.kind == PARTIAL:
        first = next(i for i, r in enumerate(records) if r.item_id in outcome.failed_ids)
        succeeded, rest = records[:first], records[first:]
    else:
        assert outcome.kind == FUNCTION_ERROR, outcome.kind
        if rules.bisect and len(records) > 1:
            middle = len(records) // 2
            return Bisect(records[:middle], records[middle:])
        succeeded, rest = [], records
    if rules.exhausted(retries + 1):
        return GiveUp(succeeded, rest, RETRY_ATTEMPTS_EXHAUSTED)
    return Retry(succeeded, rest)


def _queue(records: list[Record], outcome: Outcome, rules: FailureRules) -> Settle:
    if outcome.kind == FUNCTION_ERROR:
        return Settle([], records)
    failed_ids = set(outcome.failed_ids)
    if rules.group_of is not None:
        broken: set[Hashable] = set()
        for record in records:
            group = rules.group_of(record)
            if record.item_id in failed_ids:
                broken.add(group)
            elif group in broken:
                failed_ids.add(record.item_id)
    return Settle([r for r in records if r.item_id not in failed_ids],
                  [r for r in records if r.item_id in failed_ids])


def split_expired(segment: Sequence[Record], age_of: Callable[[Record], float],
                  max_age: float) -> tuple[list[Record], list[Record]]:
    """(expired, rest): the leading records older than `max_age` seconds (behaviour §9.3).

    In stream order only a leading run can have expired, since later records are younger."""
    if max_age < 0:
        return [], list(segment)
    expired = 0
    while expired < len(segment) and age_of(segment[expired]) > max_age:
        expired += 1
    return list(segment[:expired]), list(segment[expired:])
