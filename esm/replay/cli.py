"""`esm replay`: the command line of esm.replay (argument handling, the summary, the exit code).

Exit codes as the rest of esm: 0 when everything named was replayed (or on a dry run), 1 when some
records still fail or are no longer in the source, 2 for a bad config or an unknown mapping.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from esm.aws import AwsClients
from esm.config.loading import load_config
from esm.errors import ConfigError
from esm.replay.dlq import replay_dlq
from esm.replay.failures import replay_failures
from esm.replay.progress import Summary

EXIT_OK, EXIT_LEFT, EXIT_INVALID = 0, 1, 2


def replay(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{args.config}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    found = [m for m in config.mappings if args.mapping in (m.name, m.uuid)]
    if not found:
        print(f"{args.config}: no mapping named {args.mapping!r}", file=sys.stderr)
        return EXIT_INVALID
    mapping = found[0]
    for path in (os.getcwd(), config.base_dir):  # handlers import as the daemon imports them
        if path not in sys.path:
            sys.path.insert(0, path)
    clients = AwsClients(config.aws)
    if args.dlq is not None:
        if mapping.source != "sqs":
            print(f"--dlq: {mapping.name} reads {mapping.source}, not an SQS queue; use --from its on-failure "
                  f"destination", file=sys.stderr)
            return EXIT_INVALID
        summary: Summary = asyncio.run(replay_dlq(clients, mapping.source_id, dlq=args.dlq or None,
                                                  execute=args.execute, rate=args.rate))
    else:
        try:
            summary = asyncio.run(replay_failures(config, mapping, args.origin, execute=args.execute,
                                                  rate=args.rate, clients=clients))
        except ValueError as error:
            print(f"esm replay: {error}", file=sys.stderr)
            return EXIT_INVALID
    for line in summary.lines():
        print(line)
    return EXIT_LEFT if summary.still_failing or summary.gone else EXIT_OK
