"""The fault matrix's books must be able to fail (tests/support/ledger.py): a lost record, a
checkpoint past an unfinished record, a key out of order and unbounded duplicates are each caught.
Pure: no backends."""

from __future__ import annotations

import pytest

from tests.support.ledger import Ledger


def stream_ledger() -> Ledger:
    ledger = Ledger("self-test", "kinesis", ordered=True)
    for n in range(4):
        ledger.produce(f"r{n}", "k", unit="shard-0", position=10 + n)
    return ledger


def test_nothing_missing_passes():
    """behaviour §9.6 books: processed or dead-lettered, in order, checkpoint behind the work: sound."""
    ledger = stream_ledger()
    ledger.invoked(["r0", "r1"], ["r0", "r1"], when=1.0)
    ledger.checkpoint("shard-0", 11, when=1.5)
    ledger.invoked(["r2", "r3"], ["r3"], when=2.0)
    ledger.dead_letter("r2", when=2.5)
    ledger.checkpoint("shard-0", 13, when=3.0)
    row = ledger.assert_sound(max_duplicates=0, expect_dead=["r2"])
    assert (row.produced, row.delivered, row.dead_lettered, row.lost, row.duplicated) == (4, 3, 1, 0, 0)


def test_a_lost_record_fails():
    """behaviour §9.6: a record neither processed nor dead-lettered is lost."""
    ledger = stream_ledger()
    ledger.invoked(["r0", "r1", "r2"], ["r0", "r1", "r2"])
    assert ledger.result().lost == 1
    with pytest.raises(AssertionError, match="lost"):
        ledger.assert_sound()


def test_a_checkpoint_past_an_unfinished_record_fails():
    """behaviour §9.6: a checkpoint seen covering a record before it was processed is a violation, even if
    the record is processed later."""
    ledger = stream_ledger()
    ledger.invoked(["r0"], ["r0"], when=1.0)
    ledger.checkpoint("shard-0", 11, when=1.5)  # covers r1, not yet processed
    ledger.invoked(["r1", "r2", "r3"], ["r1", "r2", "r3"], when=2.0)
    with pytest.raises(AssertionError, match="checkpoint past an unfinished record"):
        ledger.assert_sound()


def test_a_dead_letter_after_the_checkpoint_fails():
    """behaviour §9.6: the checkpoint may pass a failed record only after it landed in the destination."""
    ledger = stream_ledger()
    ledger.invoked(["r0", "r1", "r2", "r3"], ["r0", "r2", "r3"], when=1.0)
    ledger.checkpoint("shard-0", 13, when=2.0)
    ledger.dead_letter("r1", when=3.0)
    with pytest.raises(AssertionError, match="checkpoint past"):
        ledger.assert_sound()


def test_order_per_key_fails_when_broken():
    """behaviour §3: a key's records presented out of produced order are caught."""
    ledger = stream_ledger()
    ledger.invoked(["r1", "r0"], ["r0", "r1"])
    ledger.invoked(["r2", "r3"], ["r2", "r3"])
    with pytest.raises(AssertionError, match="order broken"):
        ledger.assert_sound()


def test_duplicates_are_counted_and_bounded():
    """At-least-once: duplicates are counted (a second success, a second dead letter, both) and the
    bound is enforced; a destination copy read twice counts once."""
    ledger = stream_ledger()
    ledger.invoked(["r0", "r1", "r2", "r3"], ["r0", "r1", "r2", "r3"])
    ledger.invoked(["r2", "r3"], ["r2", "r3"])
    ledger.dead_letter("r3", message="m1")
    ledger.dead_letter("r3", message="m1")  # the same message read back twice
    assert ledger.duplicated() == 3
    with pytest.raises(AssertionError, match="3 duplicates"):
        ledger.assert_sound(max_duplicates=2)


def test_a_record_processed_before_the_test_booked_it_counts_once_booked():
    """behaviour §9.6 books: a source may deliver a record before the producer's call returns (the
    test books it after). Known by the id in its payload, it is delivered, not lost, once booked;
    its processing time still judges the checkpoints."""
    ledger = stream_ledger()
    ledger.invoked(["r0", "r1", "r2", "r3"], ["r0", "r1", "r2", "r3"], when=1.0)
    ledger.invoked(["late"], ["late"], when=2.0)  # seen before the test booked it
    assert ledger.unknown == 1
    ledger.produce("late", "k", unit="shard-0", position=14)
    ledger.checkpoint("shard-0", 14, when=3.0)
    row = ledger.assert_sound(max_duplicates=0)
    assert (row.produced, row.delivered, row.lost, ledger.unknown) == (5, 5, 0, 0)
    assert ledger.first_seen == ["r0", "r1", "r2", "r3", "late"]


def test_a_record_no_test_booked_is_unknown_and_not_delivered():
    """behaviour §9.6 books: what the function saw but no test produced is counted as unknown and
    delivers nothing; a produced record the function never processed is still lost."""
    ledger = stream_ledger()
    ledger.invoked(["r0", "r1", "r2", "stranger", None], ["r0", "r1", "r2", "stranger"], when=1.0)
    assert ledger.unknown == 2
    assert ledger.delivered == {"r0", "r1", "r2"}
    assert ledger.lost() == ["r3"]
    with pytest.raises(AssertionError, match="lost"):
        ledger.assert_sound()
