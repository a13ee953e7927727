"""Checkpoints and leases for ordered sources: where each unit resumes, and who works it.

`make_checkpoint_store` picks the store the configuration names: the embedded SQLite file (one
esm process owns every unit) or a DynamoDB table of leases shared by replicas (KCL style); the
classes are named in `esm.registry.CHECKPOINT_STORES`.
"""

from __future__ import annotations

from esm import registry
from esm.aws import AwsClients
from esm.checkpoints.base import (
    DEFAULT_LEASE_DURATION,
    Checkpoint,
    CheckpointStore,
    Lease,
    StoreUnavailable,
    default_owner,
)
from esm.config.settings import CheckpointSettings
from esm.errors import LeaseLost

__all__ = [
    "DEFAULT_LEASE_DURATION",
    "Checkpoint",
    "CheckpointStore",
    "Lease",
    "LeaseLost",
    "StoreUnavailable",
    "default_owner",
    "make_checkpoint_store",
]


def make_checkpoint_store(
    settings: CheckpointSettings, clients: AwsClients, *, lease_duration: float = DEFAULT_LEASE_DURATION
) -> CheckpointStore:
    """The store `checkpoints:` names (not yet open: call `open()`)."""
    store: CheckpointStore
    if settings.dynamodb_table:
        cls = registry.checkpoint_store("dynamodb")
        store = cls(settings.dynamodb_table, clients, lease_duration=lease_duration)
        return store
    if settings.sqlite:
        store = registry.checkpoint_store("sqlite")(settings.sqlite)
        return store
    raise ValueError("checkpoints: one of sqlite, dynamodb must be set")
