"""The nemesis's schedule (issue 23): a seed replays it, faults are bounded and never share a target."""

from __future__ import annotations

from tests.nemesis.schedule import (
    BACKEND_ROOM, BACKENDS, LEAD_IN, MQ_PEERS, PROCESS_KINDS, QUIET_END, RESTARTABLE, make_schedule,
)


def test_a_seed_replays_the_same_schedule_and_another_seed_does_not():
    """Replay: the same seed and length give the same faults, in the same order, at the same times."""
    assert make_schedule(11, 1800) == make_schedule(11, 1800)
    assert make_schedule(11, 1800) != make_schedule(12, 1800)


def test_a_thirty_minute_schedule_injects_at_least_a_hundred_faults_of_every_kind():
    """The long run's promise: at least 100 faults, every kind drawn, on every replica."""
    faults = make_schedule(5, 1800)
    assert len(faults) >= 100
    kinds = {f.kind for f in faults}
    assert kinds == {"sigkill", "sigterm", "pause", "latency", "bandwidth", "timeout", "reset_peer",
                     "partition", "outage"}
    assert {f.replica for f in faults if f.kind in PROCESS_KINDS} == {0, 1, 2}


def test_every_fault_is_bounded_and_ends_inside_the_schedule():
    """No fault outlives the run: each starts after the lead-in and ends before the quiet end."""
    for seed in range(20):
        for f in make_schedule(seed, 300):
            assert LEAD_IN <= f.start and f.duration >= 1.0 and f.end <= 300 - QUIET_END + 0.1, f


def test_faults_overlap_but_never_on_one_target_at_once():
    """Overlap across targets (the point of the nemesis), never two faults on one replica or proxy
    (a process fault also keeps its replica for the restart that follows)."""
    faults = make_schedule(3, 1800)
    overlapping = sum(1 for a, b in zip(faults, faults[1:]) if b.start < a.end)
    assert overlapping > 10
    for n, a in enumerate(faults):
        for b in faults[n + 1:]:
            if b.start >= a.end + 30:
                break
            same_replica = a.peer is None and b.peer is None and a.replica == b.replica
            same_proxy = a.peer is not None and a.peer == b.peer and (
                a.replica == b.replica or a.replica is None or b.replica is None)
            if same_replica or same_proxy:
                gap = 30.0 if a.kind in ("sigkill", "sigterm") else 0.0
                assert b.start >= a.end + gap, (a.describe(), b.describe())


def test_backend_faults_only_for_a_run_that_owns_its_backends_and_one_at_a_time():
    """Shared backends are never restarted or frozen; a run's own are, the broker restarted and every
    server frozen, one backend fault at a time (bringing the broker back checks every server answers)."""
    assert not [f for f in make_schedule(5, 1800) if f.backend is not None]
    faults = [f for seed in (5, 6, 7) for f in make_schedule(seed, 1800, backends=True)]
    assert {(f.kind, f.backend) for f in faults if f.kind == "restart"} == {("restart", "kafka")}
    assert {f.backend for f in faults if f.kind == "freeze"} == set(BACKENDS)
    for seed in (5, 6, 7):
        on_backends = [f for f in make_schedule(seed, 1800, backends=True) if f.backend is not None]
        for a, b in zip(on_backends, on_backends[1:]):
            assert b.start >= a.end + BACKEND_ROOM, (a.describe(), b.describe())


def test_owning_the_backends_leaves_the_shared_runs_schedule_as_it_was():
    """The seed of a run on shared backends replays the same schedule as before backend faults existed."""
    assert make_schedule(30, 1800) == make_schedule(30, 1800, backends=False)
    # The 30-minute run of seed 30 on shared backends (no Kafka proxy) had 161 faults, 15 of them SIGKILLs.
    shared = make_schedule(30, 1800, kafka_proxied=False)
    assert (len(shared), sum(f.kind == "sigkill" for f in shared)) == (161, 15)


def test_the_amazon_mq_brokers_are_peers_and_restarted_like_the_kafka_broker():
    """With the Amazon MQ sources in, their brokers are peers (network faults and outages on each
    replica's path to them) and, on the run's own backends, restarted and frozen like the others."""
    faults = [f for seed in (5, 6, 7) for f in make_schedule(seed, 1800, backends=True, mq=True)]
    assert {f.backend for f in faults if f.kind == "restart"} == set(RESTARTABLE) == {"kafka", "rabbitmq", "activemq"}
    assert {f.backend for f in faults if f.kind == "freeze"} == set(BACKENDS) | set(MQ_PEERS)
    assert {f.peer for f in faults if f.kind in ("partition", "outage")} >= set(MQ_PEERS)
    assert len(make_schedule(2027, 1800, backends=True, mq=True)) >= 100
    # Without them, the draws are those of earlier runs.
    assert make_schedule(7, 300, backends=True) == make_schedule(7, 300, backends=True, mq=False)
