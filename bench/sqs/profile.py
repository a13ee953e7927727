"""Where esm's SQS time goes: cProfile around one in-process run of bench/sqs.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.sqs.profile [--messages 20000] [--target handler|http]
    .venv/bin/python -m bench.sqs.profile --groups [--messages 20000] [--target handler|http]

Prints the top functions by own time; with --groups, profiles the raw receive-and-delete loop and
esm (to --target) on the same number of messages and prints each one's own time by package
(botocore, aiohttp, esm's modules, asyncio, ...) side by side, with esm's extra in µs per message.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import sys
from collections import Counter
from typing import Any

from aiobotocore.session import get_session

from bench.sqs import run as bench
from esm.daemon import tune_garbage_collector


def by_package(profiler: cProfile.Profile) -> Counter[str]:
    """Own time per package: site-packages' top folder, esm's subpackage, a stdlib file or a builtin.
    Waiting in epoll is its own group (esm's run also includes the daemon's stop, which waits for
    the pollers' long polls)."""
    groups: Counter[str] = Counter()
    for (filename, _, name), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        if "epoll" in name:
            key = "waiting (epoll)"
        elif "site-packages/" in filename:
            key = filename.split("site-packages/")[1].split("/")[0]
        elif "/esm/" in filename:
            key = "esm/" + filename.split("/esm/")[1].split("/")[0]
        elif filename == "~":
            key = "builtin " + name[:40]
        else:
            key = "stdlib " + filename.rsplit("/", 1)[-1]
        groups[key] += own
    return groups


def target(kind: str) -> contextlib.AbstractAsyncContextManager[dict[str, Any]]:
    """The function esm invokes: the in-process no-op, or bench/sqs's aiohttp server in a process
    of its own (its CPU is not in the profile: it shares the machine's two cores with the rest)."""
    return bench.http_target() if kind == "http" else contextlib.nullcontext(bench.NOOP)


async def groups(args: argparse.Namespace) -> None:
    tune_garbage_collector()
    found: dict[str, Counter[str]] = {}
    async with bench.client(get_session()) as sqs:
        for path in ("raw", "esm"):
            url, arn = await bench.new_queue(sqs)
            await bench.fill(sqs, url, args.messages)
            profiler = cProfile.Profile()
            profiler.enable()
            if path == "raw":
                rate = await bench.raw_loop(sqs, url, args.messages, args.concurrency)
            else:
                async with target(args.target) as function:
                    rate = await bench.through_esm(sqs, url, arn, args.messages, function, args.concurrency)
            profiler.disable()
            found[path] = by_package(profiler)
            print(f"{path}: {rate:.0f} messages/s under the profiler")
    raw, esm = found["raw"], found["esm"]
    keys = sorted(set(raw) | set(esm), key=lambda k: esm[k] - raw[k], reverse=True)
    print(f"\n{'own time by package':48} {'raw s':>7} {'esm s':>7} {'esm extra, us/msg':>18}")
    for key in keys[:args.top]:
        print(f"{key:48} {raw[key]:7.3f} {esm[key]:7.3f} {(esm[key] - raw[key]) / args.messages * 1e6:18.1f}")
    busy = [sum(v for k, v in side.items() if k != "waiting (epoll)") for side in (raw, esm)]
    print(f"{'all but waiting':48} {busy[0]:7.3f} {busy[1]:7.3f} {(busy[1] - busy[0]) / args.messages * 1e6:18.1f}")


async def main(args: argparse.Namespace) -> None:
    async with bench.client(get_session()) as sqs, target(args.target) as function:
        url, arn = await bench.new_queue(sqs)
        await bench.fill(sqs, url, args.messages)
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            rate = await bench.through_esm(sqs, url, arn, args.messages, function, args.concurrency)
        finally:
            profiler.disable()
        print(f"{rate:.0f} messages/s under the profiler ({args.target} target)")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--target", choices=("handler", "http"), default="handler")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--groups", action="store_true", help="raw and esm side by side, own time by package")
    arguments = parser.parse_args()
    asyncio.run(groups(arguments) if arguments.groups else main(arguments))
