"""Where esm's SQS time goes: cProfile around one in-process run of bench/sqs.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.sqs.profile [--messages 20000] [--target handler|http]

Prints the top functions by own time. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import subprocess
import sys

from aiobotocore.session import get_session

from bench.sqs import run as bench


async def main(args: argparse.Namespace) -> None:
    async with bench.client(get_session()) as sqs:
        url, arn = await bench.new_queue(sqs)
        await bench.fill(sqs, url, args.messages)
        server = None
        function = {"handler": "bench.sqs.handlers:noop"}
        if args.target == "http":
            port = bench.free_port()
            server = subprocess.Popen([sys.executable, "-c", bench.HTTP_SERVER, str(port)])
            await asyncio.sleep(1.5)
            function = {"url": f"http://127.0.0.1:{port}/invoke"}
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            rate = await bench.through_esm(sqs, url, arn, args.messages, function, args.concurrency)
        finally:
            profiler.disable()
            if server is not None:
                server.terminate()
        print(f"{rate:.0f} messages/s under the profiler ({args.target} target)")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--target", choices=("handler", "http"), default="handler")
    parser.add_argument("--top", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
