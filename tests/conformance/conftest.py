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
