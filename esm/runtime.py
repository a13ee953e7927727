"""`Runtime`: what every source of one daemon shares (AWS clients, the checkpoint store, this
process's identity). The daemon builds one; sources receive it through the engine runners."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from esm.aws import AwsClients


def _owner_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Runtime:
    """What sources share in one daemon: AWS clients, the checkpoint store, this process's identity."""

    clients: AwsClients
    checkpoints: Any = None  # an esm.checkpoints store, opened by the daemon when a stream needs it
    owner: str = field(default_factory=_owner_id)
    # What a source's mappings share across the daemon, under names the source chooses (Kafka's
    # poller groups: esm.sources.kafka.pollers).
    shared: dict[str, Any] = field(default_factory=dict)
