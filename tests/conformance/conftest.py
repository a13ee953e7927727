"""Fixtures of the conformance tables: `source`, one parameter per stream adapter in SOURCES, and
`queue`, one parameter per queue adapter in QUEUES (tests/conformance/queues.py).

The backends come from the session `backends` fixture (tests/conftest.py): missing backends skip
the table, or fail it under CI / ESM_REQUIRE_BACKENDS=1. Records that must already be old when
the record-age row runs, on sources that cannot backdate them, are put when the session starts,
so their wait overlaps the other rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
import pytest_asyncio

from tests.conformance.queues import QUEUES, QueueAdapter
from tests.conformance.sources import AGED_PAYLOADS, EARLY, SOURCES, StreamSource


@pytest.fixture(scope="session", autouse=True)
def early_records(backends: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = Path(tmp_path_factory.mktemp("early"))
    for cls in SOURCES:
        if cls.capabilities.record_age and not cls.capabilities.backdated_records and cls.name not in EARLY:
            EARLY[cls.name] = cls.put_early(workdir, AGED_PAYLOADS)


@pytest_asyncio.fixture(params=SOURCES, ids=[cls.name for cls in SOURCES], loop_scope="function")
async def source(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StreamSource]:
    adapter = request.param(tmp_path)
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


@pytest_asyncio.fixture(params=QUEUES, ids=[cls.name for cls in QUEUES], loop_scope="function")
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[QueueAdapter]:
    adapter = request.param()
    await adapter.open()
    try:
        yield adapter
    finally:
        await adapter.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A row marked `queue_capability(name)` is a rule only queues with that capability have (a
    partial batch response, ordered groups, a hold that runs out): it is not collected for a queue
    adapter without it, rather than collected and skipped."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("queue_capability")
        callspec = getattr(item, "callspec", None)
        adapter = callspec.params.get("queue") if callspec is not None else None
        if marker is not None and adapter is not None and not getattr(adapter.capabilities, marker.args[0]):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
