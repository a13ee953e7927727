"""The in-flight bytes cap (esm/core/inflight.py): what a mapping may hold in memory (issue 8: memory is
capped by configuration, in-flight bytes per mapping, and the cap is enforced)."""

from __future__ import annotations

import asyncio

import pytest

from esm.config.loading import parse_config
from esm.errors import ConfigError
from esm.core.inflight import DEFAULT_MAX_IN_FLIGHT_BYTES, InFlightBytes, parse_size

SQS_MAPPING = """
functions: {f: {handler: "tests.support.recorder:handle"}}
event_source_mappings:
  - FunctionName: f
    EventSourceArn: arn:aws:sqs:us-east-1:000000000000:q
    esm: {max_in_flight_bytes: %s}
"""


@pytest.mark.parametrize("text, expected", [
    (268435456, 268435456), ("64MiB", 64 * 1024 ** 2), ("300 MB", 300 * 1000 ** 2), ("1GiB", 1024 ** 3),
    ("12", 12), (True, None), ("ten MB", None), ("5 TB", None), (1.5, None), (None, None)])
def test_sizes_are_bytes_or_a_number_with_a_unit(text, expected):
    """esm: max_in_flight_bytes takes bytes or a size with a unit."""
    assert parse_size(text) == expected


def test_config_reads_the_cap_and_defaults_to_256_mib():
    """The cap is per mapping, from its esm: key; without one it is 256 MiB."""
    assert parse_config(SQS_MAPPING % '"32MiB"').mappings[0].extension.max_in_flight_bytes == 32 * 1024 ** 2
    text = SQS_MAPPING.replace("    esm: {max_in_flight_bytes: %s}\n", "")
    assert parse_config(text).mappings[0].extension.max_in_flight_bytes == DEFAULT_MAX_IN_FLIGHT_BYTES


@pytest.mark.parametrize("value", ['"1MiB"', '"lots"', "-5", "true"])
def test_a_cap_too_small_or_not_a_size_names_the_field(value):
    """A malformed config names the field: a cap below 8 MiB could not hold one 6 MB batch."""
    with pytest.raises(ConfigError) as caught:
        parse_config(SQS_MAPPING % value)
    assert "event_source_mappings[0].esm.max_in_flight_bytes" in str(caught.value)


async def test_room_waits_until_enough_is_released():
    """A poller waits while the held bytes are at or above the cap, and goes on once they drop below."""
    cap = InFlightBytes(100)
    cap.hold(60)
    await asyncio.wait_for(cap.room(), 1)  # below the cap: no wait
    cap.hold(50)
    assert not cap.has_room() and cap.peak == 110
    waiter = asyncio.create_task(cap.room())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    cap.release(5)
    await asyncio.sleep(0.01)
    assert not waiter.done(), "still at the cap (105 of 100)"
    cap.release(50)
    await asyncio.wait_for(waiter, 1)
    assert cap.held == 55 and cap.peak == 110
