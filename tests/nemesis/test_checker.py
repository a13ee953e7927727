"""The nemesis's checker (issue 23) catches what it is there to catch: a lost record, a key out of
order, a checkpoint past an unfinished record, duplicates over the bound, metrics that disagree."""

from __future__ import annotations

from tests.nemesis.checker import check_source, metric_problems
from tests.support.ledger import Ledger


def books(ordered: bool = True) -> Ledger:
    ledger = Ledger("nemesis/test", "kinesis", ordered=ordered)
    for n in range(4):
        ledger.produce(f"r{n}", "k0", unit="shard-0", position=10 + n)
    return ledger


def check(ledger: Ledger, **kwargs):
    args = dict(lanes=1, batch_size=2, faults=0, failed_invocations=0, unnamed_dead_letters=[], metric_problems=[])
    return check_source(ledger, **{**args, **kwargs})


def test_sound_books_pass():
    ledger = books()
    ledger.invoked(["r0", "r1"], ["r0", "r1"], when=1.0)
    ledger.checkpoint("shard-0", 11, when=2.0)
    ledger.invoked(["r2", "r3"], ["r2"], when=3.0)
    ledger.dead_letter("r3", when=4.0, message="m1")
    report = check(ledger)
    assert report.sound, report.problems
    assert (report.delivered, report.dead_lettered, report.lost) == (3, 1, 0)


def test_a_record_neither_delivered_nor_dead_lettered_is_lost_and_named():
    ledger = books()
    ledger.invoked(["r0", "r1", "r2"], ["r0", "r2"], when=1.0)
    ledger.invoked(["r3"], ["r3"], when=1.0)
    report = check(ledger)
    assert report.lost == 1 and not report.sound
    assert "r1 key k0 at shard-0@11 (presented, never processed)" in report.problems[0]


def test_a_key_presented_out_of_order_is_a_violation():
    ledger = books()
    ledger.invoked(["r1", "r0"], ["r1", "r0"], when=1.0)
    ledger.invoked(["r2", "r3"], ["r2", "r3"], when=1.0)
    assert check(ledger).order_violations > 0
    unordered = books(ordered=False)
    unordered.invoked(["r1", "r0", "r2", "r3"], ["r1", "r0", "r2", "r3"], when=1.0)
    assert check(unordered).sound


def test_a_checkpoint_seen_before_its_records_finished_is_a_violation():
    ledger = books()
    ledger.checkpoint("shard-0", 12, when=1.0)  # covers r0..r2 before any was processed
    ledger.invoked(["r0", "r1", "r2", "r3"], ["r0", "r1", "r2", "r3"], when=2.0)
    report = check(ledger)
    assert report.checkpoint_violations == 1 and not report.sound


def test_duplicates_over_the_bound_fail_and_within_it_pass():
    ledger = books()
    for _ in range(3):
        ledger.invoked(["r0", "r1", "r2", "r3"], ["r0", "r1", "r2", "r3"], when=1.0)
    # 8 duplicates; bound = batch 2 * (2 * 1 lane * (faults + 1) + failed invocations)
    assert not check(ledger, faults=0).sound
    assert check(ledger, faults=1).sound


def test_metrics_that_disagree_with_the_function_are_reported():
    before = {"esm_invoked_events_total": 10.0, "esm_deleted_events_total": 10.0}
    after = {"esm_invoked_events_total": 30.0, "esm_deleted_events_total": 29.0}
    assert metric_problems("sqs", before, after, presented=20, probe_records=20) == [
        "metrics: esm_deleted_events_total moved 19 over the probe of 20 records"]
    assert metric_problems("kinesis", before, after, presented=20, probe_records=20) == []
    assert metric_problems("kinesis", before, after, presented=21, probe_records=20)


def test_where_no_order_is_promised_reordering_is_counted_and_never_fails():
    """Amazon MQ and SQS standard promise no order per key (competing consumers, redelivery after
    later messages went out): a record first presented after a later one of its key is counted."""
    ledger = books(ordered=False)
    ledger.invoked(["r1", "r0"], ["r1", "r0"], when=1.0)
    ledger.invoked(["r3"], ["r3"], when=2.0)
    ledger.invoked(["r2"], ["r2"], when=3.0)
    report = check(ledger)
    assert report.sound, report.problems
    assert (report.order_violations, report.reordered) == (0, 2)
    assert check(books()).reordered is None  # an ordered source: order is checked, not counted
