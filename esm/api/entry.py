"""One event source mapping as the control API sees it: its settings, where it comes from, the
supervisor running it (if enabled), the state it reports and the store revision it is based on.

Transitional states (behaviour §0) are local to a replica: `transition` overrides the supervisor's
own state while this replica applies a change.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from esm.config.settings import MappingSettings
from esm.core.outcomes import PARTIAL, SUCCESS
from esm.supervisor import MappingSupervisor

TRANSITIONAL = ("Creating", "Enabling", "Disabling", "Updating", "Deleting")
USER_INITIATED = "USER_INITIATED"  # what older stored documents say for a user's change


@dataclass
class Entry:
    """One mapping as the API sees it; `supervisor` is None while the mapping is disabled."""

    settings: MappingSettings
    origin: str  # "config" | "api"
    supervisor: MappingSupervisor | None = None
    task: asyncio.Task[None] | None = None  # start + run of an API mapping's supervisor
    transition: str | None = None  # overrides the supervisor's state while a change is applied
    last_modified: float = field(default_factory=time.time)
    created: float = field(default_factory=time.time)
    reason: str | None = None  # StateTransitionReason; None: the user's last change (the source says how)
    revision: int = 0
    problem: str | None = None
    # LastProcessingResult of the supervisors this mapping had before its current one.
    last_result: str = "No records processed"

    @property
    def uuid(self) -> str:
        return self.settings.uuid

    @property
    def state(self) -> str:
        if self.transition:
            return self.transition
        if self.supervisor is not None:
            return self.supervisor.state
        return "Disabled"

    @property
    def processing_result(self) -> str:
        """LastProcessingResult: the current supervisor's last invoke, else what the earlier ones left."""
        outcome = self.supervisor.metrics.last_outcome if self.supervisor is not None else None
        if outcome is None:
            return self.last_result
        return "OK" if outcome in (SUCCESS, PARTIAL) else "PROBLEM: Function call failed"
