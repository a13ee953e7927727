"""esm.engine.gather: the one loop that fills a batch, and why it flushed (behaviour §3, docs/design.md "batch policy").

The input is scripted: `pull` answers from a list of chunks (a chunk of None ends the input), and
records what it was asked (room, wait), so each rule is checked without a clock.
"""

from __future__ import annotations

import asyncio
from collections import deque

from esm.core.batching import ENVELOPE_BYTES, BatchPolicy, FlushReason
from esm.core.records import Record
from esm.engine.gather import gather


def rec(i: int, size: int = 10) -> Record:
    return Record(event={}, item_id=str(i), size=size, arrived_at=0.0, token=i)


class Script:
    def __init__(self, *chunks: list[Record] | None):
        self.chunks = list(chunks)
        self.asked: list[tuple[int, float | None]] = []

    async def pull(self, room: int, wait: float | None) -> list[Record] | None:
        self.asked.append((room, wait))
        return self.chunks.pop(0) if self.chunks else []


def run(policy: BatchPolicy, script: Script, pending: deque[Record] | None = None, cut=None):
    return asyncio.run(gather(policy, pending if pending is not None else deque(), script.pull, cut))


def test_batch_size_flushes_and_the_rest_waits_in_pending():
    """behaviour §3: BatchSize records make a batch; what came with them opens the next one, in order."""
    pending: deque[Record] = deque()
    records, reason = run(BatchPolicy(3, 0), Script([rec(i) for i in range(5)]), pending)
    assert ([r.item_id for r in records], reason) == (["0", "1", "2"], FlushReason.BATCH_SIZE)
    assert [r.item_id for r in pending] == ["3", "4"]


def test_without_a_window_what_is_ready_is_sent_and_nothing_more_is_awaited():
    """behaviour §3: MaximumBatchingWindowInSeconds 0 invokes with what is ready; the only waiting pull is
    for the first record."""
    script = Script([rec(0)], [rec(1)])
    records, reason = run(BatchPolicy(10, 0), script)
    assert ([r.item_id for r in records], reason) == (["0", "1"], FlushReason.IDLE)
    assert script.asked[0][1] is None and all(wait == 0 for _, wait in script.asked[1:])


def test_a_window_waits_for_more_from_the_first_record():
    """docs/design.md: the window starts at the batch's first record: later pulls wait at most what is left of it."""
    script = Script([rec(0)], [rec(1)])
    records, reason = run(BatchPolicy(10, 5.0), script)
    assert ([r.item_id for r in records], reason) == (["0", "1"], FlushReason.WINDOW)
    waits = [wait for _, wait in script.asked[1:]]
    assert waits and all(0 < wait <= 5.0 for wait in waits)


def test_the_payload_cap_cuts_before_the_record_that_does_not_fit():
    """behaviour §3: the 6 MB cap (envelope included): the record that would pass it opens the next batch."""
    cap = ENVELOPE_BYTES + 100 + 1 + 100
    pending: deque[Record] = deque()
    records, reason = run(BatchPolicy(10, 0, max_bytes=cap), Script([rec(0, 100), rec(1, 100), rec(2, 100)]), pending)
    assert ([r.item_id for r in records], reason) == (["0", "1"], FlushReason.PAYLOAD_SIZE)
    assert [r.item_id for r in pending] == ["2"]


def test_a_boundary_record_opens_the_next_batch():
    """behaviour §2 tumbling windows: a batch never crosses a boundary the lane names."""
    pending: deque[Record] = deque()
    records, reason = run(BatchPolicy(10, 0), Script([rec(0), rec(1), rec(2)]), pending, cut=lambda r: r.token == 2)
    assert ([r.item_id for r in records], reason) == (["0", "1"], FlushReason.BOUNDARY)
    assert [r.item_id for r in pending] == ["2"]


def test_the_end_of_the_input_flushes_what_is_held():
    """KCL shard end: the unit ended; what is held is its last batch."""
    records, reason = run(BatchPolicy(10, 5.0), Script([rec(0)], None))
    assert ([r.item_id for r in records], reason) == (["0"], FlushReason.END)
    assert run(BatchPolicy(10, 5.0), Script(None)) == ([], FlushReason.END)


def test_the_pull_asks_only_for_the_room_left():
    """behaviour §3: BatchSize bounds what one pull may bring (SQS receives at most the room)."""
    script = Script([rec(0), rec(1)], [rec(2)])
    run(BatchPolicy(4, 1.0), script)
    assert [room for room, _ in script.asked][:2] == [4, 2]
