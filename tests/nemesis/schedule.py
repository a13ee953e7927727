"""The nemesis's schedule: a seeded random list of bounded, overlapping faults (pure, no I/O).

A fault has a start (seconds after the run began), a duration, a kind and a target:

- process faults on one replica: `sigkill` (killed, restarted after `duration`), `sigterm` (asked to
  stop, restarted `duration` after it exited), `pause` (SIGSTOP, SIGCONT after `duration`: its leases
  expire and others take them; it comes back holding stale ones);
- network faults on the toxiproxy proxy between one replica and one peer (`sqs`, `kinesis`, `aws`:
  moto, holding the lease table, the DynamoDB stream and the brokers' secrets; `function`;
  `rabbitmq` and `activemq`: the Amazon MQ brokers), or the shared Kafka proxy:
  `latency`, `bandwidth`, `timeout` (data stops), `reset_peer`, `partition` (proxy disabled);
- `outage`: one peer unreachable from every replica at once (the proxies disabled);
- backend faults, only when the run owns its backends (scripts/nemesis starts a private set; shared
  ones are never touched, other users depend on them): `restart` of a broker (Kafka, RabbitMQ,
  ActiveMQ: SIGTERM, a clean shutdown, or SIGKILL, a crash; started again after `duration` on the
  same ports, its records on disk) and `freeze` of a backend server (SIGSTOP, SIGCONT after
  `duration`: ElasticMQ, kinesis-mock, moto or a broker hangs for every client at once, its state
  kept). ElasticMQ, kinesis-mock and
  moto are frozen, never restarted: they keep their queues, streams and tables only in memory, so a
  restart would erase the very records the checker accounts for.

Two faults never share a target at the same time (a replica is not paused while it is down; one
proxy carries one fault; one backend fault at a time, since bringing the broker back checks every
backend answers), but faults on different targets overlap freely. Every fault ends before
the schedule does; the same seed and length give the same schedule.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass

PROCESS_KINDS = ("sigkill", "sigterm", "pause")
NETWORK_KINDS = ("latency", "bandwidth", "timeout", "reset_peer", "partition")
PEERS = ("sqs", "kinesis", "aws", "function")
MQ_PEERS = ("rabbitmq", "activemq")  # the Amazon MQ brokers: peers, and backends the run may restart
BACKEND_KINDS = ("restart", "freeze")
BACKENDS = ("kafka", "elasticmq", "kinesis", "moto")  # scripts/backends' names
RESTARTABLE = ("kafka",) + MQ_PEERS  # brokers that keep their records on disk
MEAN_GAP = 10.0  # seconds between fault starts on average: ~6 a minute, ~180 in 30 minutes
LEAD_IN, QUIET_END = 15.0, 15.0  # no fault in the first and last seconds of the schedule

# (shortest, longest) duration in seconds per kind.
DURATIONS = {
    "sigkill": (1.0, 8.0), "sigterm": (1.0, 8.0), "pause": (3.0, 20.0),
    "latency": (5.0, 20.0), "bandwidth": (5.0, 15.0), "timeout": (2.0, 10.0),
    "reset_peer": (2.0, 8.0), "partition": (3.0, 15.0), "outage": (5.0, 20.0),
    "restart": (2.0, 10.0), "freeze": (3.0, 15.0),
}
BACKEND_ROOM = 45.0  # seconds kept free after a backend fault: a restarted broker's start and catch-up


@dataclass(frozen=True)
class Fault:
    n: int
    start: float
    duration: float
    kind: str
    replica: int | None  # 0..replicas-1; None for a fault on every replica (outage, the shared Kafka proxy)
    peer: str | None  # the proxy's peer for network faults and outages
    params: tuple[tuple[str, int], ...] = ()
    backend: str | None = None  # the backend server of a restart or freeze

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def target(self) -> str:
        if self.backend is not None:
            return f"backend-{self.backend}"
        if self.peer is None:
            return f"replica-{self.replica}"
        return f"{'all' if self.replica is None else f'replica-{self.replica}'}->{self.peer}"

    def describe(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.params)
        return f"#{self.n:03d} t={self.start:7.1f}s +{self.duration:4.1f}s {self.kind:<10} {self.target} {extra}".rstrip()

    def as_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def _params(kind: str, rng: random.Random) -> tuple[tuple[str, int], ...]:
    if kind == "latency":
        return (("latency", rng.randrange(100, 1500, 50)), ("jitter", rng.randrange(0, 300, 50)))
    if kind == "bandwidth":
        return (("rate", rng.choice((1, 4, 16))),)
    if kind == "reset_peer":
        return (("timeout", rng.randrange(0, 2000, 100)),)
    if kind == "restart":
        return (("sigkill", rng.randrange(2)),)  # 1: a crash (SIGKILL), 0: a clean stop (SIGTERM)
    return ()


def make_schedule(seed: int, seconds: float, replicas: int = 3, kafka_proxied: bool = True,
                  backends: bool = False, mq: bool = False) -> list[Fault]:
    """Faults for a run of `seconds`, drawn from `seed`; `backends`: the run owns its backends and
    may restart or freeze them (15% of the draws). `mq`: the Amazon MQ brokers are peers (network
    faults and outages on the paths to them) and, with `backends`, restarted (half the backend
    faults, the three brokers alike) or frozen like the rest. Without them the draws are those of
    earlier runs."""
    rng = random.Random(seed)
    busy: dict[str, float] = {}  # target -> when its current fault ends
    faults: list[Fault] = []
    t = LEAD_IN
    last = seconds - QUIET_END
    own_peers = PEERS + (MQ_PEERS if mq else ())
    peers = own_peers + (("kafka",) if kafka_proxied else ())
    while True:
        t += rng.expovariate(1.0 / MEAN_GAP)
        if t >= last:
            return faults
        roll = rng.random()
        backend = None
        if backends and roll >= 0.85 and mq:  # half of them restarts of a broker, half freezes
            kind, replica, peer = "freeze", None, None
            if rng.random() < 0.5:
                kind, backend = "restart", rng.choice(RESTARTABLE)
            else:
                backend = rng.choice(BACKENDS + MQ_PEERS)
        elif backends and roll >= 0.85:  # a third of them restarts of the broker, the rest freezes
            kind, replica, peer = "freeze", None, None
            backend = "kafka" if rng.random() < 0.35 else rng.choice(BACKENDS)
            if backend == "kafka" and rng.random() < 0.35 / (0.35 + 0.65 / len(BACKENDS)):
                kind = "restart"
        elif roll < 0.35:
            kind, replica, peer = rng.choice(PROCESS_KINDS), rng.randrange(replicas), None
        elif roll < 0.9 - (0.15 if backends else 0.0):
            kind, peer = rng.choice(NETWORK_KINDS), rng.choice(peers)
            replica = None if peer == "kafka" else rng.randrange(replicas)  # one Kafka proxy for all
        else:
            kind, replica, peer = "outage", None, rng.choice(own_peers)
        low, high = DURATIONS[kind]
        duration = round(min(rng.uniform(low, high), last - t), 1)
        params = _params(kind, rng)
        fault = Fault(len(faults) + 1, round(t, 1), duration, kind, replica, peer, params, backend)
        claimed = _claims(fault, replicas)
        if duration < 1.0 or any(busy.get(c, 0.0) > fault.start for c in claimed):
            continue  # that target is taken: no fault this time (the draw still moved the generator)
        room = {"sigkill": 30.0, "sigterm": 30.0, "restart": BACKEND_ROOM, "freeze": BACKEND_ROOM}.get(kind, 0.0)
        for c in claimed:
            busy[c] = fault.end + room  # room for a restart
        faults.append(fault)


def _claims(fault: Fault, replicas: int) -> list[str]:
    """The targets a fault occupies: an outage takes the peer's proxy on every replica; a backend
    fault takes every backend (one at a time)."""
    if fault.backend is not None:
        return ["backends"]
    if fault.peer is None:
        return [f"replica-{fault.replica}"]
    if fault.replica is None and fault.peer != "kafka":
        return [f"replica-{r}->{fault.peer}" for r in range(replicas)]
    return [fault.target]


def counts(faults: list[Fault]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in faults:
        out[f.kind] = out.get(f.kind, 0) + 1
    return dict(sorted(out.items()))
