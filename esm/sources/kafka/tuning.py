"""The Kafka source's timings and sizes, in one module read at use time (so tests can shorten them).

Group membership: the broker's group.min.session.timeout.ms is 6 s by default, and a member that
vanished (SIGKILL) holds its partitions until its session times out. The poll loop reads at most
MAX_POLL_RECORDS per `getmany`; a partition's buffer is paused past PAUSE_RECORDS or PAUSE_BYTES.
"""

from __future__ import annotations

SESSION_TIMEOUT_MS = 10000
HEARTBEAT_INTERVAL_MS = 1000
MAX_POLL_INTERVAL_MS = 300000
REBALANCE_TIMEOUT_MS = 60000  # how long the group waits for members to rejoin (our revoke included)
REVOKE_DRAIN_SECONDS = 15.0  # a revoked partition's in-flight batch may finish within this, else abandoned
POLL_TIMEOUT_MS = 200
FETCH_MAX_WAIT_MS = 100
MAX_POLL_RECORDS = 500  # per getmany, and the most a worker takes from its partition's buffer at once
# A partition's buffer is paused past either bound (and resumed once drained): several fetches deep,
# because a pause drops what aiokafka fetched ahead for the partition.
PAUSE_RECORDS = 40 * MAX_POLL_RECORDS
PAUSE_BYTES = 8 * 1024 * 1024
TAKE_BYTES = 1024 * 1024  # a worker takes at most about one fetch's bytes at once (aiokafka's per-partition fetch)
LAG_INTERVAL = 5.0  # OffsetLag is read (and failed commits retried) this often
COMMIT_TIMEOUT = 15.0
