"""esm.core.decide: one table from a function's answer to settle / retry / bisect / give up (behaviour §3, §9.2-9.4).

Each row names the rule it checks; the same function decides for every source, so these rows are
the whole of the failure semantics before any I/O.
"""

from __future__ import annotations

import pytest

from esm.core.conditions import RETRY_ATTEMPTS_EXHAUSTED
from esm.core.decide import (
    Bisect,
    FailureRules,
    GiveUp,
    Mode,
    Retry,
    Settle,
    decide,
    split_expired,
)
from esm.core.outcomes import FUNCTION_ERROR, PARTIAL, SUCCESS, Outcome
from esm.core.records import Record


def batch(*ids: str, groups: str = "") -> list[Record]:
    return [Record(event={"group": groups[i] if groups else None}, item_id=item, size=1, arrived_at=0.0, token=item)
            for i, item in enumerate(ids)]


def ids(records: list[Record]) -> list[str]:
    return [r.item_id for r in records]


OK = Outcome(SUCCESS)
ERROR = Outcome(FUNCTION_ERROR, reason="boom")


def partial(*failed: str) -> Outcome:
    return Outcome(PARTIAL, failed_ids=frozenset(failed))


STREAM = FailureRules(mode=Mode.STREAM, max_retries=2)
BISECT = FailureRules(mode=Mode.STREAM, max_retries=2, bisect=True)
QUEUE = FailureRules(mode=Mode.QUEUE)
FIFO = FailureRules(mode=Mode.QUEUE, group_of=lambda r: r.event["group"])

# rule, rules, batch, answer, retries so far, expected decision (as plain values)
TABLE = [
    ("behaviour §3: success settles the whole batch", STREAM, batch("a", "b"), OK, 0, ("settle", ["a", "b"], [])),
    ("behaviour §3: a partial response settles the records before the lowest failure and retries the rest",
     STREAM, batch("a", "b", "c", "d"), partial("d", "b"), 0, ("retry", ["a"], ["b", "c", "d"])),
    ("behaviour §3: a failure on the first record settles nothing", STREAM, batch("a", "b"), partial("a"), 0,
     ("retry", [], ["a", "b"])),
    ("behaviour §3: a function error retries the whole batch", STREAM, batch("a", "b"), ERROR, 1, ("retry", [], ["a", "b"])),
    ("behaviour §9.3: MaximumRetryAttempts exhausted gives up on the failed tail", STREAM, batch("a", "b", "c"),
     partial("b"), 2, ("give_up", ["a"], ["b", "c"])),
    ("behaviour §9.3: retries exhausted after a function error give up on the whole batch", STREAM, batch("a"), ERROR, 2,
     ("give_up", [], ["a"])),
    ("behaviour §9.3: MaximumRetryAttempts -1 never gives up", FailureRules(max_retries=-1), batch("a"), ERROR, 10_000,
     ("retry", [], ["a"])),
    ("behaviour §9.2: bisect splits a failing batch in halves, first half first", BISECT, batch("a", "b", "c"), ERROR, 2,
     ("bisect", ["a"], ["b", "c"])),
    ("behaviour §9.2: a batch of one cannot be split: it consumes retries", BISECT, batch("a"), ERROR, 0,
     ("retry", [], ["a"])),
    ("behaviour §9.2: a partial response is not bisected", BISECT, batch("a", "b"), partial("b"), 0, ("retry", ["a"], ["b"])),
    ("behaviour §3 SQS: success deletes everything", QUEUE, batch("a", "b"), OK, 0, ("settle", ["a", "b"], [])),
    ("behaviour §3 SQS: a partial response deletes all but the reported failures", QUEUE, batch("a", "b", "c"),
     partial("b"), 0, ("settle", ["a", "c"], ["b"])),
    ("behaviour §3 SQS: a function error deletes nothing", QUEUE, batch("a", "b"), ERROR, 0, ("settle", [], ["a", "b"])),
    ("behaviour §3 SQS FIFO: after a failure in a group, the group's later messages fail too", FIFO,
     batch("a", "b", "c", "d", groups="xyxy"), partial("a"), 0, ("settle", ["b", "d"], ["a", "c"])),
]


def plain(decision: object) -> tuple[str, list[str], list[str]]:
    if isinstance(decision, Settle):
        return "settle", ids(decision.succeeded), ids(decision.failed)
    if isinstance(decision, Retry):
        return "retry", ids(decision.succeeded), ids(decision.again)
    if isinstance(decision, Bisect):
        return "bisect", ids(decision.first), ids(decision.second)
    assert isinstance(decision, GiveUp) and decision.condition == RETRY_ATTEMPTS_EXHAUSTED
    return "give_up", ids(decision.succeeded), ids(decision.records)


@pytest.mark.parametrize("rule,rules,records,answer,retries,expected", TABLE, ids=[row[0] for row in TABLE])
def test_decide(rule, rules, records, answer, retries, expected):
    assert plain(decide(records, answer, rules, retries)) == expected


def test_only_a_leading_run_of_old_records_expires():
    """behaviour §9.3: records older than MaximumRecordAgeInSeconds are given up on before an invoke; in
    stream order only a leading run can have expired."""
    records = batch("a", "b", "c")
    ages = {"a": 100.0, "b": 61.0, "c": 5.0}
    expired, rest = split_expired(records, lambda r: ages[r.item_id], 60)
    assert (ids(expired), ids(rest)) == (["a", "b"], ["c"])
    assert split_expired(records, lambda r: ages[r.item_id], -1) == ([], records)
