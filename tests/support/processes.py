"""Stopping an `esm` process a test started in its own session (process group): SIGTERM first, as
an operator would, so it drains; SIGKILL only when it has not ended within the grace period."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_group(process: subprocess.Popen, grace: float = 60) -> None:
    """End `process` (started with start_new_session=True) and everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
