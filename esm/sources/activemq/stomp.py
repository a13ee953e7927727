"""What the STOMP client does not tell: why a broker refused a connection.

stompman retries a CONNECT the broker answers with an ERROR frame and reports only that the
connection was lost, so after a failed connect esm asks once more itself, over a plain socket:
one CONNECT frame, and the first frame back. An ERROR frame there is the broker refusing the
user (ActiveMQ: "User name [...] or password is invalid."); anything else is not a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module

TIMEOUT = 5.0


async def refusal(host: str, port: int, login: str, passcode: str, *, tls: bool) -> str | None:
    """The broker's ERROR message for this user's CONNECT, or None (accepted, or no answer)."""
    context = ssl_module.create_default_context() if tls else None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        return None
    try:
        # CONNECT frames are not escaped (STOMP 1.2); a header value cannot hold a newline.
        lines = ["CONNECT", "accept-version:1.2", f"host:{host}", f"login:{login}", f"passcode:{passcode}"]
        writer.write(("\n".join(lines) + "\n\n\x00").encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\x00"), TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    head, _, body = answer.lstrip(b"\r\n").rstrip(b"\x00").partition(b"\n\n")
    command, *header_lines = head.decode("utf-8", "replace").splitlines()
    if command.strip() != "ERROR":
        return None
    headers = dict(line.split(":", 1) for line in header_lines if ":" in line)
    return headers.get("message") or body.decode("utf-8", "replace").strip() or "refused"
