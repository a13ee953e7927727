"""Shared pytest fixtures. Add new fixtures below the backends section."""

from __future__ import annotations

import os

import pytest

try:  # tests/ is a package (tests/__init__.py)
    from tests.backends import backends_required, ensure_backends
except ImportError:  # pragma: no cover - tests/ as a plain folder that pytest puts on sys.path
    from backends import backends_required, ensure_backends


# ---------------------------------------------------------------- real backends (scripts/backends)


@pytest.fixture(scope="session")
def backends() -> dict[str, str]:
    """Kafka, ElasticMQ, kinesis-mock, moto and the Lambda RIE, running on loopback.

    Returns the `scripts/backends` exports (also set in os.environ, so AWS clients built without
    an endpoint reach the right server). Skips the test if they cannot start — fails it instead
    under CI or ESM_REQUIRE_BACKENDS=1.
    """
    return ensure_backends()


@pytest.fixture(scope="session")
def toxiproxy(backends: dict[str, str]) -> str:
    """TOXIPROXY_URL: the toxiproxy API the fault tests drive (started by scripts/backends).

    Backends named by an older environment lack it: the script runs once more and starts it. Still
    missing is a skip, or a failure under CI / ESM_REQUIRE_BACKENDS=1 (a broken build there).
    """
    if not os.environ.get("TOXIPROXY_URL"):
        ensure_backends(reuse_environment=False)
    url = os.environ.get("TOXIPROXY_URL")
    if not url:
        message = "scripts/backends start did not export TOXIPROXY_URL (is `go` on PATH?)"
        if backends_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


# ---------------------------------------------------------------- other fixtures
