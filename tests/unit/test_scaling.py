"""ConcurrencyTarget: Lambda's SQS scaling shape (behaviour §7): start at 5, +300/min on backlog, cap, back off."""

from esm.sources.sqs.scaling import ConcurrencyTarget


def test_starts_at_five_or_the_cap():
    """behaviour §7: an SQS mapping starts with 5 concurrent batches, never above MaximumConcurrency."""
    assert ConcurrencyTarget(ceiling=1250).target == 5
    assert ConcurrencyTarget(ceiling=2).target == 2


def test_grows_by_five_a_second_on_backlog_up_to_the_cap():
    """behaviour §7: up to 300 more concurrent invokes a minute while batches come back full, capped."""
    scaling = ConcurrencyTarget(ceiling=12)
    for _ in range(3):
        scaling.batch_done(full=True)
        scaling.tick()
    assert scaling.target == 12


def test_backs_off_on_errors_and_holds():
    """behaviour §3 / §9.1: throttles and function errors without RBIF reduce concurrency."""
    scaling = ConcurrencyTarget(ceiling=100, target=40)
    scaling.back_off()
    assert scaling.target == 20
    scaling.batch_done(full=True)
    assert scaling.tick() == 20  # held: no growth right after a back-off


def test_idles_down_towards_two():
    """behaviour §7: an idle mapping scales down, but not below 2."""
    scaling = ConcurrencyTarget(ceiling=100)
    for _ in range(10):
        for _ in range(scaling.target):
            scaling.poll_empty()
        scaling.tick()
    assert scaling.target == 2
