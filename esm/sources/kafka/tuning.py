"""The Kafka source's timings and sizes, in one module read at use time (so tests can shorten them).

Group membership: the broker's group.min.session.timeout.ms is 6 s by default, and a member that
vanished (SIGKILL) holds its partitions until its session times out. The poll loop reads at most
MAX_POLL_RECORDS per `getmany`, and a partition's buffer is paused once it holds that many.
"""

from __future__ import annotations

SESSION_TIMEOUT_MS = 10000
HEARTBEAT_INTERVAL_MS = 1000
MAX_POLL_INTERVAL_MS = 300000
REBALANCE_TIMEOUT_MS = 60000  # how long the group waits for members to rejoin (our revoke included)
REVOKE_DRAIN_SECONDS = 15.0  # a revoked partition's in-flight batch may finish within this, else abandoned
POLL_TIMEOUT_MS = 200
FETCH_MAX_WAIT_MS = 100
MAX_POLL_RECORDS = 500  # per getmany, and the most a partition's buffer holds before it is paused
LAG_INTERVAL = 5.0  # OffsetLag is read (and failed commits retried) this often
COMMIT_TIMEOUT = 15.0
BACKOFF_CAP = 10.0
