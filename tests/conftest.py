"""Shared pytest fixtures. Add new fixtures below the backends section."""

from __future__ import annotations

import pytest

try:  # tests/ is a package (tests/__init__.py)
    from tests.backends import ensure_backends
except ImportError:  # pragma: no cover - tests/ as a plain folder that pytest puts on sys.path
    from backends import ensure_backends


# ---------------------------------------------------------------- real backends (scripts/backends)


@pytest.fixture(scope="session")
def backends() -> dict[str, str]:
    """Kafka, ElasticMQ, kinesis-mock, moto and the Lambda RIE, running on loopback.

    Returns the `scripts/backends` exports (also set in os.environ, so AWS clients built without
    an endpoint reach the right server). Skips the test if they cannot start — fails it instead
    under CI or ESM_REQUIRE_BACKENDS=1.
    """
    return ensure_backends()


# ---------------------------------------------------------------- other fixtures
