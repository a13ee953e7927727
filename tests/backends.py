"""The real test backends (Kafka, ElasticMQ, kinesis-mock, moto, the Lambda RIE) for pytest.

`ensure_backends()` reuses the backends named by the environment when `eval "$(scripts/backends
start)"` already ran in this shell; otherwise it runs `scripts/backends start` itself (cached and
idempotent: servers another session started are reused) and copies its exports into
`os.environ`, so botocore finds every endpoint through `AWS_ENDPOINT_URL_<SERVICE>`.
If they cannot start, the tests that need them are skipped — or fail, when `CI` or
`ESM_REQUIRE_BACKENDS=1` is set, because there a missing backend is a broken build.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "backends"

# When all of these are set, the backends are taken as already running.
REQUIRED = (
    "ESM_SQS_ENDPOINT",
    "KAFKA_BOOTSTRAP_SERVERS",
    "ESM_KINESIS_ENDPOINT",
    "ESM_AWS_ENDPOINT",
    "ESM_FUNCTION_URL",
    "KAFKA_SASL_SSL_BOOTSTRAP",
    "TOXIPROXY_URL",
    "ACTIVEMQ_STOMP_URL",
)

# Everything `scripts/backends start` exports (returned when reusing the environment).
EXPORTS = REQUIRED + (
    "ESM_BACKENDS_DIR",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_KINESIS",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_GLUE",
    "AWS_ENDPOINT_URL_SECRETSMANAGER",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL_KAFKA",
    "AWS_ENDPOINT_URL_MQ",
    "KAFKA_SASL_BOOTSTRAP",
    "KAFKA_SSL_BOOTSTRAP",
    "KAFKA_MTLS_BOOTSTRAP",
    "KAFKA_CA_PEM",
    "KAFKA_CLIENT_CERT_PEM",
    "KAFKA_CLIENT_KEY_PEM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SCRAM256_USERNAME",
    "KAFKA_SCRAM256_PASSWORD",
    "KAFKA_SCRAM512_USERNAME",
    "KAFKA_SCRAM512_PASSWORD",
    "KAFKA_PROXIED_UPSTREAM",
    "KAFKA_PROXIED_BOOTSTRAP",
    "ACTIVEMQ_PORT",
    "ACTIVEMQ_ADMIN_URL",
    "ACTIVEMQ_USERNAME",
    "ACTIVEMQ_PASSWORD",
    "RABBITMQ_PORT",
    "RABBITMQ_URL",
    "RABBITMQ_MANAGEMENT_URL",
    "RABBITMQ_USERNAME",
    "RABBITMQ_PASSWORD",
    "RABBITMQ_VHOST",
)

# A cold start downloads jars, an npm package and a virtualenv: minutes, not hours.
START_TIMEOUT = 1200


def backends_required() -> bool:
    """True where a backend that cannot start must fail the run rather than skip tests."""
    ci = os.environ.get("CI", "").strip().lower()
    return (ci not in ("", "0", "false", "no")) or os.environ.get("ESM_REQUIRE_BACKENDS") == "1"


def parse_exports(text: str) -> dict[str, str]:
    """`export NAME='value'` lines (shell quoting) -> {NAME: value}."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] != "export" or len(words) != 2 or "=" not in words[1]:
            raise ValueError(f"unexpected line from scripts/backends: {line!r}")
        name, _, value = words[1].partition("=")
        env[name] = value
    return env


def _unavailable(reason: str) -> None:
    if backends_required():
        pytest.fail(f"test backends unavailable: {reason}", pytrace=False)
    pytest.skip(f"test backends unavailable: {reason}")


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_backends(reuse_environment: bool = True) -> dict[str, str]:
    """The backends' environment, starting them if this process does not name them yet.

    With reuse_environment=False the script runs even so: it restarts any backend that died (on
    its old port when free) and re-prints the exports — e.g. after a test crashed the RIE, which
    dies when it gets a second invocation while one is in flight.
    """
    if reuse_environment and all(os.environ.get(name) for name in REQUIRED):
        return {name: os.environ[name] for name in EXPORTS if name in os.environ}
    try:
        proc = subprocess.run(
            [str(SCRIPT), "start"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""
        _unavailable(f"scripts/backends start timed out after {START_TIMEOUT}s:\n{_tail(stderr)}")
        raise AssertionError("unreachable") from e
    except OSError as e:
        _unavailable(f"cannot run {SCRIPT}: {e}")
        raise AssertionError("unreachable") from e
    if proc.returncode != 0:
        _unavailable(f"scripts/backends start exited {proc.returncode}:\n{_tail(proc.stderr)}")
    try:
        env = parse_exports(proc.stdout)
    except ValueError as e:
        _unavailable(str(e))
        raise AssertionError("unreachable") from e
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        _unavailable(f"scripts/backends start did not export {', '.join(missing)}")
    os.environ.update(env)
    return env
