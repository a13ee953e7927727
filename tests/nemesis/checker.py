"""The checker: settles every source's books over the whole history, once traffic stopped and the
system drained (behaviour §9.6: at least once, nothing lost).

Per source (tests/support/ledger.py does the counting):
- lost = 0: every produced record was processed by the function at least once, or a document in
  the source's dead-letter queue names it (a redriven message, or a batch-info range covering it);
- order: where the source promises it (FIFO groups, Kinesis and DynamoDB shards per partition key,
  Kafka partitions and per-key lanes), the function first saw each key's records in produced order
  and every invocation listed them in that order, across every replica change. Where it does not
  (SQS standard, Amazon MQ: competing consumers, and a failed batch redelivered after later
  messages went out), the records first presented after a later record of their key are counted
  (`reordered`), never failed;
- checkpoints: no checkpoint in the lease table, and no committed Kafka offset, ever covered a
  record not yet processed nor dead-lettered when it was seen (polled twice a second: a
  checkpoint that passed an unfinished record and moved on between two polls can escape);
- duplicates within the bound: each disruption (a fault) can re-deliver at most what every lane
  had in flight or processed but not yet checkpointed, two batches a lane; each failed invocation
  at most its own batch (a partial batch response or a bisected error re-presents the rest):
      bound = BatchSize * (2 * lanes * (faults + 1) + failed invocations)
- metrics: after the faults ended, a probe of fault-free records went through; over the probe,
  the replicas' counters moved exactly as the ledger did (events invoked = records the function
  was presented, no failed or dropped events, SQS deleted / Kafka committed = probe records).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tests.support.ledger import Ledger


@dataclass
class SourceReport:
    source: str
    records: int
    delivered: int
    dead_lettered: int
    lost: int
    order_violations: int
    checkpoint_violations: int
    checkpoints_seen: int
    duplicates: int
    duplicate_bound: int
    invocations: int
    failed_invocations: int
    metrics_ok: bool = True
    problems: list[str] = field(default_factory=list)
    reordered: int | None = None  # a source that promises no order: records overtaken by a later one of their key

    @property
    def sound(self) -> bool:
        return not self.problems


def check_source(ledger: Ledger, *, lanes: int, batch_size: int, faults: int, failed_invocations: int,
                 unnamed_dead_letters: list[str], metric_problems: list[str]) -> SourceReport:
    row = ledger.result()
    bound = batch_size * (2 * lanes * (faults + 1) + failed_invocations)
    problems: list[str] = []
    lost = ledger.lost()
    if lost:
        problems.append(f"{len(lost)} lost, first: " + ", ".join(_describe(ledger, i) for i in lost[:5]))
    order = ledger.order_violations()
    if order:
        problems.append(f"{len(order)} order violations, first: {order[:5]}")
    checkpoints = ledger.checkpoint_violations()
    if checkpoints:
        problems.append(f"{len(checkpoints)} checkpoints past unfinished records, first: {checkpoints[:3]}")
    if row.duplicated > bound:
        problems.append(f"{row.duplicated} duplicates, over the bound {bound}: "
                        f"{sorted(i for i, n in ledger.successes.items() if n > 1)[:10]}")
    if unnamed_dead_letters:
        problems.append(f"{len(unnamed_dead_letters)} dead-letter documents name no produced record, "
                        f"first: {unnamed_dead_letters[:2]}")
    problems.extend(metric_problems)
    return SourceReport(ledger.source, row.produced, row.delivered, row.dead_lettered, row.lost,
                        row.order_violations, row.checkpoint_violations, row.checkpoints_seen,
                        row.duplicated, bound, row.invocations, failed_invocations,
                        metrics_ok=not metric_problems, problems=problems,
                        reordered=None if ledger.ordered else reordered(ledger))


def reordered(ledger: Ledger) -> int:
    """Records the function first saw after a later-produced record of the same key (counted where
    the source promises no order)."""
    rank = {record_id: n for n, record_id in enumerate(ledger.order)}
    latest: dict[str, int] = {}  # key -> the highest rank first seen so far
    overtaken = 0
    for record_id in ledger.first_seen:
        key, n = ledger.produced[record_id].key, rank[record_id]
        if n < latest.get(key, -1):
            overtaken += 1
        latest[key] = max(n, latest.get(key, -1))
    return overtaken


def _describe(ledger: Ledger, record_id: str) -> str:
    p = ledger.produced[record_id]
    where = f" at {p.unit}@{p.position}" if p.unit is not None else ""
    seen = " (presented, never processed)" if record_id in ledger.first_seen else " (never presented)"
    return f"{record_id} key {p.key}{where}{seen}"


def metric_problems(source: str, before: dict[str, float], after: dict[str, float], *, presented: int,
                    probe_records: int) -> list[str]:
    """The probe window's counter deltas against what the function and the ledger saw."""
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    problems = []
    if delta("esm_invoked_events_total") != presented:
        problems.append(f"metrics: esm_invoked_events_total moved {delta('esm_invoked_events_total'):g} over the "
                        f"probe, the function was presented {presented} records")
    for name in ("esm_failed_invoke_events_total", "esm_dropped_events_total"):
        if delta(name):
            problems.append(f"metrics: {name} moved {delta(name):g} over a fault-free probe")
    expected = {"sqs": "esm_deleted_events_total", "fifo": "esm_deleted_events_total",
                "kafka": "esm_committed_events_total"}.get(source)
    if expected and delta(expected) != probe_records:
        problems.append(f"metrics: {expected} moved {delta(expected):g} over the probe of {probe_records} records")
    return problems


def table(reports: list[SourceReport]) -> str:
    """The per-source results as a Markdown table."""
    head = ("| source | records | delivered | dead-lettered | lost | order violations | checkpoint violations "
            "| duplicates (bound) | invocations (failed) | metrics |")
    lines = [head, "|" + "---|" * 10]
    for r in reports:
        order = str(r.order_violations) if r.reordered is None else f"— ({r.reordered} reordered, not promised)"
        lines.append(f"| {r.source} | {r.records} | {r.delivered} | {r.dead_lettered} | {r.lost} | "
                     f"{order} | {r.checkpoint_violations} ({r.checkpoints_seen} seen) | "
                     f"{r.duplicates} ({r.duplicate_bound}) | {r.invocations} ({r.failed_invocations}) | "
                     f"{'agree' if r.metrics_ok else 'DISAGREE'} |")
    return "\n".join(lines)


def as_json(reports: list[SourceReport]) -> list[dict[str, Any]]:
    return [asdict(r) for r in reports]
