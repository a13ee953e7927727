"""The contiguous position (esm.core.offsets, behaviour §9.6): a checkpoint or commit only passes records that
are finished, whatever order lanes finish them in, and whether the finished ones are taken at once or one by one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from esm.core.offsets import OffsetTracker


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.permutations(range(n)),
                                                        st.lists(st.integers(1, 8), min_size=1, max_size=20))))
def test_position_is_the_last_key_before_the_first_unfinished_one(case):
    """behaviour §9.6: after each round of finishes, the position is the last key whose predecessors and itself are
    all finished (never one that is not), and it never moves backwards."""
    count, finish_order, steps = case
    tracker = OffsetTracker()
    tracker.register_many(range(count))
    finished: set[int] = set()
    cursor, last = 0, None
    for step in steps * count:
        if cursor >= count:
            break
        batch = finish_order[cursor:cursor + step]
        cursor += step
        tracker.finish_many(batch)
        finished.update(batch)
        tracker.advance()
        contiguous = next((k for k in range(count) if k not in finished), count)
        expected = contiguous - 1 if contiguous else None
        assert tracker.position == (expected if expected is not None and expected >= 0 else last)
        last = tracker.position
    assert tracker.pending == count - (0 if tracker.position is None else tracker.position + 1)


def test_in_order_batches_move_the_position_at_once():
    """behaviour §9.6: lanes that finish their batches in order move the position to each batch's end."""
    tracker = OffsetTracker()
    tracker.register_many(range(100, 600))
    for end in range(199, 600, 100):
        tracker.finish_many(range(end - 99, end + 1))
        assert tracker.advance() == end
    assert tracker.pending == 0 and tracker.advance() is None
