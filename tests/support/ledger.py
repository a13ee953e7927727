"""The accounting of a fault scenario (behaviour §9.6: at least once, nothing lost).

A test registers every record it produced (`produce`), the function reports every invocation it
answered (`invoked`: which records, succeeded or not), in either order: a record is known by the id
in its payload, so one the function saw while the test was still booking it (the source delivered
it before the producer's call returned) counts once it is booked. The test reads back what reached the
on-failure destination (`dead_letter`) and, while the scenario runs, what the source's
checkpoint or commit said (`checkpoint`). `result()` then settles the books:

- delivered: records the function processed successfully at least once;
- dead-lettered: records found in the on-failure destination (or the queue's redrive DLQ);
- lost = produced - delivered - dead-lettered, which must be empty;
- duplicated: successful deliveries beyond the first, plus records both delivered and dead-lettered;
- order (where the source promises it, per key: a FIFO group, a shard's partition key, a Kafka
  partition): the function first saw each key's records in produced order, and every invocation
  listed them in that order;
- checkpoints: every observed checkpoint covered only records that were, at that moment, already
  delivered or dead-lettered (never one that was neither).

Records carry their identity in their payload: a JSON object {"id": ..., "key": ...}.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable


def payload(record_id: str, key: str, **extra: Any) -> str:
    """The body/data/value a fault test produces for one record."""
    return json.dumps({"id": record_id, "key": key, **extra}, separators=(",", ":"))


def identity(text: str | bytes) -> tuple[str, str] | None:
    """(id, key) of a payload made by `payload`, or None for anything else."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("id"), str):
        return doc["id"], str(doc.get("key"))
    return None


@dataclass
class Produced:
    id: str
    key: str
    unit: str | None = None  # shard id / "topic-partition"; None for SQS
    position: int | None = None  # sequence number / offset within the unit


@dataclass
class Row:
    """One line of the fault matrix."""

    scenario: str
    source: str
    produced: int
    delivered: int
    dead_lettered: int
    lost: int
    duplicated: int
    invocations: int
    order_violations: int
    checkpoint_violations: int
    checkpoints_seen: int
    notes: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.scenario:<40} {self.source:<8} produced={self.produced:<4} delivered={self.delivered:<4} "
                f"dead-lettered={self.dead_lettered:<3} lost={self.lost:<2} duplicated={self.duplicated:<4} "
                f"order-violations={self.order_violations} checkpoint-violations={self.checkpoint_violations} "
                f"({self.checkpoints_seen} checkpoints seen, {self.invocations} invocations, {self.seconds:.0f}s)")


@dataclass
class Ledger:
    scenario: str
    source: str
    ordered: bool = False  # the source promises order per key
    produced: dict[str, Produced] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    invocations: int = 0
    # What the function saw and processed, by id, booked or not (yet): the books read them against
    # `produced` when they are settled.
    seen: list[str] = field(default_factory=list)  # ids in the order the function first saw them
    batches: list[list[str]] = field(default_factory=list)  # each invocation's ids, in its order
    successes: Counter[str] = field(default_factory=Counter)
    first_success: dict[str, float] = field(default_factory=dict)  # id -> wall time
    dead: dict[str, float | None] = field(default_factory=dict)  # id -> when it landed (None: unknown)
    dead_copies: Counter[str] = field(default_factory=Counter)
    dead_messages: set[tuple[str, str]] = field(default_factory=set)
    checkpoints: list[tuple[float, str, int]] = field(default_factory=list)  # (when, unit, covers up to)
    unreadable: int = 0  # records the function saw whose payload names no id
    started: float = field(default_factory=time.monotonic)
    notes: list[str] = field(default_factory=list)

    # -- what happened ---------------------------------------------------------------------------
    def produce(self, record_id: str, key: str, unit: str | None = None, position: int | None = None) -> None:
        assert record_id not in self.produced, f"{record_id} produced twice"
        self.produced[record_id] = Produced(record_id, key, unit, position)
        self.order.append(record_id)

    def invoked(self, ids: Iterable[str | None], succeeded: Iterable[str], when: float | None = None) -> None:
        """One invocation the function answered: the batch's ids in order, and which it processed."""
        when = time.time() if when is None else when
        ids = list(ids)
        self.invocations += 1
        self.unreadable += sum(1 for i in ids if i is None)
        self.batches.append([i for i in ids if i is not None])
        seen = set(self.seen)
        for record_id in ids:
            if record_id is not None and record_id not in seen:
                self.seen.append(record_id)
                seen.add(record_id)
        for record_id in succeeded:
            self.successes[record_id] += 1
            self.first_success.setdefault(record_id, when)

    def dead_letter(self, record_id: str, when: float | None = None, message: str | None = None) -> None:
        """`record_id` reached the destination; `message` names the destination's copy (read twice,
        it counts once)."""
        if message is not None:
            if (message, record_id) in self.dead_messages:
                return
            self.dead_messages.add((message, record_id))
        self.dead_copies[record_id] += 1
        if record_id not in self.dead or (when is not None and (self.dead[record_id] or 0) > when):
            self.dead[record_id] = when

    def dead_letter_range(self, unit: str, first: int, last: int, when: float | None = None,
                          message: str | None = None) -> int:
        """Every produced record of `unit` with first <= position <= last (a stream failure record)."""
        hits = [p.id for p in self.produced.values() if p.unit == unit and p.position is not None
                and first <= p.position <= last]
        for record_id in hits:
            self.dead_letter(record_id, when, message)
        return len(hits)

    def checkpoint(self, unit: str, covers_up_to: int, when: float | None = None) -> None:
        """An observed checkpoint: every record of `unit` at a position <= covers_up_to is released."""
        self.checkpoints.append((time.time() if when is None else when, unit, covers_up_to))

    def note(self, text: str) -> None:
        self.notes.append(text)

    # -- the books ---------------------------------------------------------------------------------
    @property
    def first_seen(self) -> list[str]:
        """Produced records in the order the function first saw them."""
        return [i for i in self.seen if i in self.produced]

    @property
    def unknown(self) -> int:
        """Records the function saw that no test produced."""
        return self.unreadable + sum(1 for i in self.seen if i not in self.produced)

    @property
    def delivered(self) -> set[str]:
        return {i for i, n in self.successes.items() if n > 0 and i in self.produced}

    def lost(self) -> list[str]:
        return [i for i in self.order if i not in self.successes and i not in self.dead]

    def duplicated(self) -> int:
        extra = sum(n - 1 for i, n in self.successes.items() if n > 1 and i in self.produced)
        extra += sum(n - 1 for n in self.dead_copies.values() if n > 1)
        return extra + len(self.delivered & set(self.dead))

    def order_violations(self) -> list[str]:
        """Per key, records are presented in produced order: the function first saw them in that
        order, and every invocation lists each key's records in that order. (When they succeed is the
        function's business: with a partial batch response it may process later records of a key
        before an earlier one it reported failed.)"""
        if not self.ordered:
            return []
        problems = []
        rank = {record_id: n for n, record_id in enumerate(self.order)}
        for label, sequence in [("first seen", self.first_seen)] + [
                (f"invocation {n + 1}", batch) for n, batch in enumerate(self.batches)]:
            by_key: dict[str, list[str]] = defaultdict(list)
            for record_id in sequence:
                if record_id in self.produced:
                    by_key[self.produced[record_id].key].append(record_id)
            for key, ids in by_key.items():
                ranks = [rank[i] for i in ids]
                if ranks != sorted(ranks):
                    at = next(n for n in range(1, len(ranks)) if ranks[n] < ranks[n - 1])
                    problems.append(f"key {key}: {label}: {ids[at]} after {ids[at - 1]}")
        return problems

    def checkpoint_violations(self) -> list[str]:
        """A checkpoint that covered a record not yet delivered nor dead-lettered when it was seen."""
        problems = []
        by_unit: dict[str, list[Produced]] = defaultdict(list)
        for p in self.produced.values():
            if p.unit is not None and p.position is not None:
                by_unit[p.unit].append(p)
        for when, unit, upto in self.checkpoints:
            for p in by_unit.get(unit, []):
                if p.position is None or p.position > upto:
                    continue
                done = self.first_success.get(p.id)
                if done is not None and done <= when:
                    continue
                if p.id in self.dead and (self.dead[p.id] is None or self.dead[p.id] <= when):  # type: ignore[operator]
                    continue
                problems.append(f"checkpoint {unit}@{upto} seen at {when:.3f} covers {p.id} (position "
                                f"{p.position}), neither delivered nor dead-lettered by then")
                break
        return problems

    def result(self) -> Row:
        return Row(
            scenario=self.scenario, source=self.source, produced=len(self.order),
            delivered=len(self.delivered & set(self.order)), dead_lettered=len(set(self.dead) & set(self.order)),
            lost=len(self.lost()), duplicated=self.duplicated(), invocations=self.invocations,
            order_violations=len(self.order_violations()), checkpoint_violations=len(self.checkpoint_violations()),
            checkpoints_seen=len(self.checkpoints), notes="; ".join(self.notes),
            seconds=time.monotonic() - self.started)

    def assert_sound(self, *, max_duplicates: int | None = None, expect_dead: Iterable[str] | None = None) -> Row:
        """The promise: nothing lost, order kept where promised, no checkpoint past an unfinished record,
        duplicates within `max_duplicates`; with `expect_dead`, exactly those records dead-lettered."""
        row = self.result()
        lost = self.lost()
        assert not lost, f"{self.scenario}: {len(lost)} record(s) lost: {lost[:10]}"
        assert not self.order_violations(), f"{self.scenario}: order broken: {self.order_violations()[:5]}"
        assert not self.checkpoint_violations(), \
            f"{self.scenario}: checkpoint past an unfinished record: {self.checkpoint_violations()[:3]}"
        if max_duplicates is not None:
            assert row.duplicated <= max_duplicates, \
                f"{self.scenario}: {row.duplicated} duplicates, more than the bound {max_duplicates}: " \
                f"processed more than once {sorted(i for i, n in self.successes.items() if n > 1)[:10]}, " \
                f"dead-lettered more than once {sorted(i for i, n in self.dead_copies.items() if n > 1)[:10]}, " \
                f"both {sorted(self.delivered & set(self.dead))[:10]}"
        if expect_dead is not None:
            assert set(self.dead) == set(expect_dead), \
                f"{self.scenario}: dead-lettered {sorted(self.dead)} instead of {sorted(expect_dead)}"
        return row


def as_json(rows: Iterable[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
