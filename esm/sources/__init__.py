"""Event sources: one module per service, registered here by the name config.py gives a source.

A source knows its service and nothing about functions (DESIGN.md). `SOURCES` maps a source
kind (`sqs`, `kinesis`, `kafka`) to the class that runs one mapping of that kind; each is built as
`cls(mapping, runtime, invoker, metrics)`.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from esm.aws import AwsClients

SOURCES: dict[str, Any] = {}


def _owner_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Runtime:
    """What sources share in one daemon: AWS clients, the checkpoint store, this process's identity."""

    clients: AwsClients
    checkpoints: Any = None  # an esm.checkpoints store, opened by the daemon when a stream needs it
    owner: str = field(default_factory=_owner_id)
