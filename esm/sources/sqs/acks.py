"""Settling SQS messages: DeleteMessageBatch and ChangeMessageVisibilityBatch in chunks of 10.

One call names at most 10 receipts. Entries that fail are retried (at most 3 calls per chunk, the
source backoff between them) unless every failure is the sender's fault (an expired receipt
handle: retrying cannot help); what is still unsettled then is counted (CommitErrorCount) and
logged with its message ids, and comes back after its visibility timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from esm.core.backoff import SOURCE_BACKOFF
from esm.observability.events import Events
from esm.sources.sqs.records import Receipt

MAX_ENTRIES = 10  # receipts per batch call
ATTEMPTS = 3


async def settle_batch(client: Any, queue_url: str, receipts: Sequence[Receipt], operation: str,
                       extra: dict[str, Any], events: Events, done: Callable[[int], None] | None = None) -> None:
    """Call `operation` for `receipts` in chunks; `done(n)` hears how many entries each call settled."""
    call = getattr(client, operation)
    for start in range(0, len(receipts), MAX_ENTRIES):
        pending = {str(i): r for i, r in enumerate(receipts[start:start + MAX_ENTRIES])}
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                await asyncio.sleep(SOURCE_BACKOFF.delay(attempt - 1))
            entries = [{"Id": i, "ReceiptHandle": r.handle, **extra} for i, r in pending.items()]
            try:
                response = await call(QueueUrl=queue_url, Entries=entries)
            except (ClientError, BotoCoreError, OSError) as error:
                events.log.warning("%s failed (attempt %d): %s", operation, attempt, error)
                continue
            settled = [e["Id"] for e in response.get("Successful") or []]
            if done is not None and settled:
                done(len(settled))
            for entry_id in settled:
                pending.pop(entry_id, None)
            if not pending:
                break
            failures = [f for f in response.get("Failed") or [] if f.get("Id") in pending]
            if all(f.get("SenderFault") for f in failures):
                break  # e.g. a receipt handle that expired: retrying cannot help
        if pending:
            events.commit_failed(operation, "%d message(s) could not be settled and will be redelivered: %s" % (
                len(pending), ", ".join(r.message_id for r in pending.values())), len(pending))
