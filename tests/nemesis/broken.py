"""A deliberately broken esm, to show the nemesis's checker catches one (never part of esm itself):

    python -m tests.nemesis.broken checkpoint-early run --config FILE

applies the named break to esm in this process, then runs esm's command line with the remaining
arguments. `scripts/nemesis --broken NAME` starts every replica this way.

Breaks:
- `checkpoint-early`: a record counts as finished the moment it is read (the offset tracker
  registers it as done), so a shard's checkpoint and a partition's committed offset move past
  records still being invoked, retried or bisected: behaviour §9.6 forbids exactly that. Expected
  verdict: checkpoints past unfinished records on Kinesis, DynamoDB and Kafka, and records lost
  once a replica dies between such a checkpoint and the records' end.
- `skip-failed`: a partial batch response settles the whole batch as processed (esm.core.decide),
  so the records it reported are skipped: SQS deletes them, the streams checkpoint and Kafka
  commits past them. Expected verdict: records lost on every source with partial batch responses
  (not Amazon MQ, which has none), checkpoints past them.

A break patches esm's modules before esm's command line imports the rest of esm, so every module
that imports a patched name gets the broken one.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Hashable, Iterable

from esm.core.offsets import OffsetTracker

SetAttr = Callable[[Any, str, Any], None]


def checkpoint_early(setattr_: SetAttr = setattr) -> None:
    """OffsetTracker.register / register_many mark what they register as finished."""
    register, register_many = OffsetTracker.register, OffsetTracker.register_many

    def register_done(self: OffsetTracker, key: Hashable) -> None:
        register(self, key)
        self.finish(key)

    def register_many_done(self: OffsetTracker, keys: Iterable[Hashable]) -> None:
        keys = list(keys)
        register_many(self, keys)
        self.finish_many(keys)

    setattr_(OffsetTracker, "register", register_done)
    setattr_(OffsetTracker, "register_many", register_many_done)


def skip_failed(setattr_: SetAttr = setattr) -> None:
    """esm.core.decide.decide answers a partial batch response with Settle(every record, none failed)."""
    from esm.core import decide as module
    from esm.core.outcomes import PARTIAL

    sound = module.decide

    def decide_skipping(segment: Any, outcome: Any, rules: Any, retries: int) -> Any:
        if outcome.kind == PARTIAL:
            return module.Settle(list(segment), [])
        return sound(segment, outcome, rules, retries)

    setattr_(module, "decide", decide_skipping)


BREAKS: dict[str, Callable[..., None]] = {"checkpoint-early": checkpoint_early, "skip-failed": skip_failed}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BREAKS:
        print(f"usage: python -m tests.nemesis.broken {{{','.join(BREAKS)}}} ESM-ARGUMENTS...", file=sys.stderr)
        return 2
    BREAKS[argv[0]]()
    from esm.cli import main as esm_main

    return esm_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
