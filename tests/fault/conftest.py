"""The fault matrix's bookkeeping: each scenario's row (produced, delivered, dead-lettered, lost,
duplicated) is printed at the end of the run and written to build/fault-matrix.json.

The JSON file keeps the rows of earlier runs (the fast and the slow stage are two pytest runs),
replacing a scenario's row when it runs again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.backends import backends_required, ensure_backends
from tests.support.ledger import Ledger, Row, as_json

MATRIX_FILE = Path(__file__).resolve().parents[2] / "build" / "fault-matrix.json"
ROWS = pytest.StashKey[list[Row]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[ROWS] = []


def _write(rows: list[Row]) -> None:
    MATRIX_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        previous = json.loads(MATRIX_FILE.read_text())
    except (OSError, ValueError):
        previous = []
    mine = {r.scenario for r in rows}
    kept = [r for r in previous if isinstance(r, dict) and r.get("scenario") not in mine]
    stamped = [dict(r, recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())) for r in as_json(rows)]
    MATRIX_FILE.write_text(json.dumps(kept + stamped, indent=2) + "\n")


@pytest.fixture(scope="session")
def kafka_proxied(backends: dict[str, str]) -> str:
    """KAFKA_PROXIED_BOOTSTRAP: the broker listener advertised on a toxiproxy port (scripts/backends).
    An older environment without it gets the script run once more; still missing is a skip, or a
    failure under CI."""
    names = ("KAFKA_PROXIED_BOOTSTRAP", "KAFKA_PROXIED_UPSTREAM")
    if not all(os.environ.get(n) for n in names):
        ensure_backends(reuse_environment=False)
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        message = f"scripts/backends start did not export {', '.join(missing)}"
        if backends_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return os.environ["KAFKA_PROXIED_BOOTSTRAP"]


@pytest.fixture
def matrix(request: pytest.FixtureRequest) -> Callable[[Ledger], Row]:
    """`matrix(ledger)` files the scenario's row (call it before the assertions, so a failing
    scenario shows its numbers too); returns the row."""

    def record(ledger: Ledger) -> Row:
        row = ledger.result()
        rows = request.config.stash[ROWS]
        rows[:] = [r for r in rows if r.scenario != row.scenario] + [row]
        _write([row])
        print("\nfault matrix:", row.line())
        return row

    return record


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    terminalreporter.section("fault matrix (behaviour §9.6: lost must be 0)")
    header = f"{'scenario':<44} {'source':<8} {'produced':>8} {'delivered':>9} {'dead-let.':>9} " \
             f"{'lost':>5} {'dup.':>5} {'order!':>6} {'ckpt!':>5} {'ckpts':>6} {'secs':>5}"
    terminalreporter.write_line(header)
    for r in rows:
        terminalreporter.write_line(
            f"{r.scenario:<44} {r.source:<8} {r.produced:>8} {r.delivered:>9} {r.dead_lettered:>9} "
            f"{r.lost:>5} {r.duplicated:>5} {r.order_violations:>6} {r.checkpoint_violations:>5} "
            f"{r.checkpoints_seen:>6} {r.seconds:>5.0f}")
    terminalreporter.write_line(f"(written to {MATRIX_FILE})")
