"""Security basics (issue 8.5): what esm exposes, whom it trusts, and which files it reads.

- The metrics/health listener binds the `metrics.listen` address only, serves /metrics, /healthz
  and /readyz to GET and HEAD, and nothing else (README "aws:, checkpoints:, metrics:").
- An HTTPS function target is verified against the trusted CAs: a self-signed server fails the
  invoke (never a silent success, the request never sent); a CA trusted through SSL_CERT_FILE
  works (README "functions:").
- A config cannot make esm read a file it does not name: YAML is read safely (no Python tags, no
  includes), `${ENV}` reads the environment only, and a daemon run with file paths planted in
  every free-text field (tags, names, filter values, transforms, env defaults) opens none of them.
  Kafka's TLS defaults are tested with the Kafka security tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
import yaml
from aiohttp import web

from esm.config.loading import parse_config
from esm.config.settings import AwsSettings, FunctionTarget
from esm.errors import ConfigError
from esm.invokers import make_invoker
from esm.invokers.base import InvocationError, Succeeded
from tests.support import recorder as rec
from tests.support.daemon import RECORDER, running_config
from tests.support.ports import free_port
from tests.support.sqs import create_queue, send, sqs_client, wait_until_empty

ROOT = Path(__file__).resolve().parents[2]


def other_local_addresses() -> list[str]:
    """Addresses of this machine other than 127.0.0.1: 127.0.0.2 (loopback, but another address)
    and the machine's own non-loopback IPv4 addresses, if it has any."""
    found = {"127.0.0.2"}
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    with contextlib.suppress(OSError):  # the address the default route would leave from (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            found.add(probe.getsockname()[0])
    return sorted(a for a in found if a != "127.0.0.1" and not ipaddress.ip_address(a).is_unspecified)


def refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return False
    except OSError:
        return True


# ---------------------------------------------------------------- (a) the listener


@pytest.mark.usefixtures("backends")
async def test_listener_binds_the_configured_address_and_serves_three_paths():
    """README: `metrics.listen` is the one HTTP listener (/metrics, /healthz, /readyz). Bound to
    127.0.0.1:<port> it is not reachable on the machine's other addresses; other paths are 404 and
    methods other than GET and HEAD are refused (405)."""
    rec.install(rec.Recorder())
    port = free_port()
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "sec")
        doc = {"functions": RECORDER, "event_source_mappings": [{"FunctionName": "recorder", "EventSourceArn": arn}],
               "metrics": {"listen": f"127.0.0.1:{port}"}, "shutdown_timeout": 10, "startup_timeout": 30}
        async with running_config(parse_config(yaml.safe_dump(doc))):
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                for path in ("/metrics", "/healthz", "/readyz"):
                    async with http.get(base + path) as response:
                        assert response.status == 200, path
                    async with http.head(base + path) as response:
                        assert response.status == 200, path
                for path in ("/", "/admin", "/metrics/", "/healthz/x", "/debug/pprof", "/static/../../etc/passwd",
                             "/%2e%2e/%2e%2e/etc/passwd", "//metrics", "/metrics.json", "/config", "/.env"):
                    async with http.get(base + path) as response:
                        assert response.status == 404, path
                for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
                    for path in ("/metrics", "/healthz", "/readyz"):
                        async with http.request(method, base + path, data=b"x") as response:
                            assert response.status == 405, (method, path)
            others = other_local_addresses()
            assert others, "at least 127.0.0.2 is another local address"
            for host in others:
                assert refused(host, port), f"the listener answers on {host}, not only on 127.0.0.1"
            if socket.has_ipv6:
                assert refused("::1", port)
            assert not refused("127.0.0.1", port)


# ---------------------------------------------------------------- (b) TLS to function targets


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, made with `cryptography` (an esm dependency
    through aiobotocore/moto in the test environment)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "esm test function")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "function.crt", directory / "function.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class HttpsFunction:
    """A real HTTPS server standing in for a function (it answers every POST with `null`) and counting
    the requests that got through the TLS handshake."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response(None)

    @contextlib.asynccontextmanager
    async def serving(self, cert: Path, key: Path) -> AsyncIterator["HttpsFunction"]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"https://{host}:{port}/invoke"
        try:
            yield self
        finally:
            await runner.cleanup()


async def test_https_target_with_an_untrusted_certificate_fails(tmp_path):
    """README "functions:": an HTTPS target's certificate is verified by default; a self-signed one makes
    the invoke fail (an invocation error, retried and logged: the function was never called), never a
    silent success, and the request never reaches the server."""
    cert, key = self_signed_certificate(tmp_path)
    async with HttpsFunction().serving(cert, key) as function:
        invoker = make_invoker(FunctionTarget(name="fn", url=function.url, timeout=10), AwsSettings())
        try:
            result = await invoker.invoke({"Records": []})
        finally:
            await invoker.close()
        assert isinstance(result, InvocationError), result
        assert "certificate" in result.reason.lower() or "ssl" in result.reason.lower(), result.reason
        assert function.requests == 0


TRUSTING_CLIENT = textwrap.dedent("""
    import asyncio, sys
    from esm.invokers import make_invoker
    from esm.config.settings import AwsSettings, FunctionTarget

    async def main():
        invoker = make_invoker(FunctionTarget(name="fn", url=sys.argv[1], timeout=10), AwsSettings())
        try:
            print(type(await invoker.invoke({"Records": []})).__name__)
        finally:
            await invoker.close()

    asyncio.run(main())
""")


async def test_https_target_trusted_through_ssl_cert_file_works(tmp_path):
    """README "functions:": a private CA is trusted by pointing SSL_CERT_FILE at it (OpenSSL's own
    variable); the same server then answers and the invoke succeeds."""
    cert, key = self_signed_certificate(tmp_path)
    async with HttpsFunction().serving(cert, key) as function:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", TRUSTING_CLIENT, function.url, cwd=ROOT,
            env={**os.environ, "SSL_CERT_FILE": str(cert)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
        assert out.decode().strip() == Succeeded.__name__, err.decode()[-2000:]
        assert function.requests == 1


# ---------------------------------------------------------------- (c) files a config can make esm read


def test_yaml_tags_and_includes_are_refused():
    """Config files are read with PyYAML's safe loader: Python object tags and include-style tags are
    errors at the root, never objects built, modules imported or files read."""
    for text in ["functions: !!python/object/apply:os.system ['touch /tmp/esm-pwned']\n",
                 "functions: !!python/name:os.system\n",
                 "functions: !!python/module:os\n",
                 "functions: !include /etc/passwd\n",
                 "functions: !!binary /etc/passwd\n"]:
        with pytest.raises(ConfigError) as caught:
            parse_config(text, environ={})
        assert caught.value.problems[0].path == "", text
    assert not os.path.exists("/tmp/esm-pwned")


def test_env_references_read_the_environment_only(tmp_path):
    """README: `${ENV}` and `${ENV:-default}` substitute environment variables; a value that names a
    file stays that name (never the file's content), and anything else shaped like `${...}` is kept."""
    canary = tmp_path / "canary.txt"
    canary.write_text("SECRET-CONTENT")
    doc = {"functions": {"fn": {"url": "http://127.0.0.1:1/"}},
           "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q",
                                      "Tags": {"a": "${CANARY}", "b": f"${{UNSET:-{canary}}}", "c": f"${{{canary}}}",
                                               "d": f"$(cat {canary})", "e": f"file://{canary}"}}]}
    config = parse_config(yaml.safe_dump(doc), environ={"CANARY": str(canary)})
    tags = config.mappings[0].get("Tags")
    assert tags == {"a": str(canary), "b": str(canary), "c": f"${{{canary}}}", "d": f"$(cat {canary})",
                    "e": f"file://{canary}"}
    assert "SECRET-CONTENT" not in json.dumps(dict(tags))


AUDITED_RUN = textwrap.dedent("""
    # Runs esm with an audit hook that lists every file opened, then writes the list to argv[1].
    import os, sys
    opened, recording = [], [True]
    def hook(event, args):
        if not recording[0]:
            return
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))
        elif event in ("sqlite3.connect", "os.listdir", "os.scandir") and args and args[0]:
            opened.append(os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike)) else str(args[0]))
    sys.addaudithook(hook)
    from esm.cli import main
    code = main(sys.argv[2:])
    recording[0] = False  # what follows is this script writing its list
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write("\\n".join(opened))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    sys.exit(code)
""")

HANDLER = textwrap.dedent("""
    def handle(event, context):
        return None
""")


def planted_config(tmp_path: Path, queue_arn: str) -> tuple[Path, list[Path]]:
    """A valid config whose every free-text field names a canary file (none of them a field that reads
    files), plus an in-process handler module next to it."""
    canaries = [tmp_path / f"canary-{n}.txt" for n in range(6)]
    for canary in canaries:
        canary.write_text("do not read me")
    (tmp_path / "audit_handler.py").write_text(HANDLER)
    doc = {
        "functions": {"fn": {"handler": "audit_handler:handle"}},
        "event_source_mappings": [{
            "FunctionName": "fn", "EventSourceArn": queue_arn,
            "FilterCriteria": {"Filters": [{"Pattern": json.dumps({"body": [{"anything-but": str(canaries[0])}]})},
                                           {"Pattern": json.dumps({"body": [{"prefix": f"file://{canaries[1]}"}]})}]},
            "Tags": {"path": str(canaries[2]), "env": f"${{UNSET_PATH:-{canaries[3]}}}"},
            "esm": {"name": str(canaries[4]), "transform": f"'{canaries[5]}'"},
        }],
        "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        "shutdown_timeout": 5, "startup_timeout": 30,
    }
    path = tmp_path / "esm.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, canaries


def check_opened(list_file: Path, tmp_path: Path, canaries: list[Path], allowed: set[Path]) -> list[str]:
    opened = [line for line in list_file.read_text().splitlines() if line]
    for name in opened:
        resolved = Path(name).resolve() if os.path.isabs(name) else (tmp_path / name).resolve()
        assert resolved not in {c.resolve() for c in canaries}, f"esm opened {name}, named in a field that reads no file"
        if tmp_path.resolve() in resolved.parents and "__pycache__" not in resolved.parts:
            assert resolved in {a.resolve() for a in allowed}, f"esm opened {name} in the config's folder"
    return opened


def test_validate_opens_only_the_config_file(tmp_path):
    """README `esm validate`: offline, no handler import; of the config's folder it opens the config
    file only, and none of the paths planted in its fields."""
    config, canaries = planted_config(tmp_path, "arn:aws:sqs:us-east-1:000000000000:q")
    listing = tmp_path / "opened.txt"
    run = subprocess.run([sys.executable, "-c", AUDITED_RUN, str(listing), "validate", "--config", str(config)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    opened = {Path(o).resolve() for o in check_opened(listing, tmp_path, canaries, {config})}
    assert config.resolve() in opened, "the audit hook saw the config file being read"
    assert (tmp_path / "audit_handler.py").resolve() not in opened, "validate imports no handler"


@pytest.mark.usefixtures("backends")
async def test_a_running_daemon_opens_only_what_its_config_names(tmp_path):
    """A config cannot make esm read files it does not name: `esm run` with paths planted in tags,
    names, filter values, a transform and an env default processes messages and opens the config file
    and its handler module only (of the config's folder), never a planted path."""
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "audit")
        await send(sqs, url, ["one", "two"])
        config, canaries = planted_config(tmp_path, arn)
        listing = tmp_path / "opened.txt"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", AUDITED_RUN, str(listing), "run", "--config", str(config), cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            await wait_until_empty(sqs, url, timeout=90)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()[-3000:]
    deadline = time.monotonic() + 10
    while not listing.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    opened = {Path(o).resolve() for o in check_opened(listing, tmp_path, canaries, {config, tmp_path / "audit_handler.py"})}
    assert (tmp_path / "audit_handler.py").resolve() in opened, "the audit hook saw the handler module named by the config"
