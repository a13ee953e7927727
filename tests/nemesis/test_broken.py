"""The deliberately broken build (tests/nemesis/broken.py) breaks what it says it breaks, so a
nemesis run on it shows the checker at work (tests/nemesis/catches_broken_build.py runs one)."""

from __future__ import annotations

import pytest

from esm.core import decide as decide_module
from esm.core.decide import FailureRules, Settle
from esm.core.offsets import OffsetTracker
from esm.core.outcomes import PARTIAL, Outcome
from tests.nemesis.broken import checkpoint_early, skip_failed


def test_a_sound_tracker_holds_its_position_before_an_unfinished_record():
    """behaviour §9.6: a checkpoint passes only finished records, so nothing moves while none is."""
    tracker = OffsetTracker()
    tracker.register_many([1, 2, 3])
    assert tracker.advance() is None
    tracker.finish_many([1, 2])
    assert tracker.advance() == 2


def test_checkpoint_early_moves_the_position_past_records_never_finished(monkeypatch: pytest.MonkeyPatch):
    """The `checkpoint-early` break: what is read counts as finished, so the position (a shard's
    checkpoint, a partition's commit) passes records no lane has finished."""
    checkpoint_early(monkeypatch.setattr)
    tracker = OffsetTracker()
    tracker.register_many([1, 2, 3])
    tracker.register(4)
    assert tracker.advance() == 4


def test_skip_failed_settles_a_partial_batch_response_as_processed(monkeypatch: pytest.MonkeyPatch):
    """The `skip-failed` break: the records a partial batch response reported are settled as
    processed, where a sound build retries them (streams) or leaves them failed (queues)."""
    skip_failed(monkeypatch.setattr)
    decision = decide_module.decide(["r1", "r2"], Outcome(PARTIAL, frozenset({"r2"})), FailureRules(), 0)
    assert decision == Settle(["r1", "r2"], [])
