"""Ports for the servers a test starts and reaches later: chosen below the kernel's ephemeral range.

A port found by binding port 0 comes from the ephemeral range (ip_local_port_range), the range the
kernel also draws source ports from for every outgoing connection on the machine: between the
probe and the server's own bind, any connection can take it, and the server fails with "address
already in use" (seen under load in the flake hunt). The kernel never hands out a port below that
range by itself, so a port chosen there and found free stays free until the server binds it. Each
port is handed out once per test process; the choice is random so that parallel test processes
reach for different ports.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 20000  # above the well-known and registered ports services commonly listen on
_given: set[int] = set()
_rng = random.Random()


def ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 elsewhere, its default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on, below the ephemeral range, not handed out before."""
    highest = ephemeral_start()
    if highest - LOWEST < 1000:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as probe:
            probe.bind((host, 0))
            return probe.getsockname()[1]
    for _ in range(1000):
        port = _rng.randrange(LOWEST, highest)
        if port in _given:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port on {host} between {LOWEST} and {highest}")
