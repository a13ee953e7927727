"""The batch policy: BatchSize, a window from the first record, and the 6 MB cap (behaviour §3, docs/design.md)."""

from esm.core.batching import ENVELOPE_BYTES, MAX_PAYLOAD_BYTES, BatchPolicy, FlushReason
from esm.core.records import Record


def record(size: int = 100) -> Record:
    return Record(event={}, item_id="id", size=size, arrived_at=0.0, token=None)


def test_flushes_at_batch_size():
    """behaviour §3: a batch is sent when BatchSize is reached."""
    policy = BatchPolicy(batch_size=3, window=10)
    assert policy.add(record(), now=0) is None
    assert policy.add(record(), now=0) is None
    assert policy.add(record(), now=0) is FlushReason.BATCH_SIZE
    assert len(policy.take()) == 3 and policy.room == 3


def test_window_starts_at_the_first_record():
    """docs/design.md: the window is timed from the batch's first record, not from the last flush."""
    policy = BatchPolicy(batch_size=100, window=5)
    assert policy.deadline() is None
    policy.add(record(), now=1000.0)
    assert policy.deadline() == 1005.0
    assert policy.add(record(), now=1004.9) is None
    assert policy.add(record(), now=1005.0) is FlushReason.WINDOW
    policy.take()
    policy.add(record(), now=2000.0)
    assert policy.deadline() == 2005.0


def test_payload_cap_counts_envelope_and_separators():
    """behaviour §3: a batch never exceeds 6 MB including the {"Records":[...]} envelope and commas."""
    policy = BatchPolicy(batch_size=10000, window=0)
    policy.add(record(1000), now=0)
    exact = MAX_PAYLOAD_BYTES - ENVELOPE_BYTES - 1000 - 1  # the comma between the two records counts
    assert policy.fits(record(exact))
    assert not policy.fits(record(exact + 1))
    assert policy.add(record(exact), now=0) is FlushReason.PAYLOAD_SIZE
    assert policy.payload_bytes == MAX_PAYLOAD_BYTES


def test_an_oversized_record_still_goes_alone():
    """Nothing lost: a record larger than the cap is sent in a batch of its own, not dropped."""
    policy = BatchPolicy(batch_size=10, window=0)
    assert not policy.fits(record(MAX_PAYLOAD_BYTES))
    assert policy.add(record(MAX_PAYLOAD_BYTES), now=0) is FlushReason.PAYLOAD_SIZE
    assert len(policy.take()) == 1
