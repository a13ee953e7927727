"""esm demo: a local SQS queue (moto, in this process) -> a filter -> an in-process handler.

Run it with `scripts/demo`. It needs nothing but Python: moto serves SQS on 127.0.0.1, esm polls
it with a filter that keeps only paid orders, the handler in handlers.py processes them and
reports one partial batch failure, and the metrics endpoint shows what happened.

The demo waits until the queue is empty and every paid order (the retried order 13 included) was
processed, however slow the machine (a first run right after the install is): it gives up only
after ESM_DEMO_WAIT seconds (default 120) in which nothing moved, and then says what is still
waiting or in flight and exits with status 1. It says "the queue is empty" only when it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import sys
import tempfile
import urllib.request
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from esm.config.loading import load_config
from esm.daemon import run_daemon
from esm.observability.logs import configure_logging
from esm.observability.metrics import Metrics
from esm.observability.status import read_rows

HERE = Path(__file__).resolve().parent
ORDERS = 20
VISIBILITY_TIMEOUT = 4  # how soon SQS hands out the failed order 13 again
FUNCTION_TIMEOUT = 3  # below the visibility timeout, with room for a slow first invoke
POLL = 0.5
WAIT = float(os.environ.get("ESM_DEMO_WAIT", "120"))  # seconds without progress before the demo gives up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    configure_logging("text", "WARNING")
    moto_port, metrics_port = free_port(), free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    endpoint = f"http://127.0.0.1:{moto_port}"
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_REGION="us-east-1",
                      AWS_ENDPOINT_URL_SQS=endpoint)
    try:
        return asyncio.run(demo(endpoint, metrics_port))
    finally:
        server.stop()


async def demo(endpoint: str, metrics_port: int) -> int:
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rng = random.Random(7)
    orders = [{"id": i, "status": "paid" if i % 3 else "open", "amount": round(rng.uniform(5, 500), 2)}
              for i in range(1, ORDERS + 1)]
    for start in range(0, ORDERS, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(o["id"]), "MessageBody": json.dumps(o)} for o in orders[start:start + 10]])
    paid = sum(o["status"] == "paid" for o in orders)
    print(f"esm demo: sent {ORDERS} orders to {arn} ({paid} paid, {ORDERS - paid} open)")

    config_text = f"""
functions:
  orders:
    handler: "handlers:process"
    timeout: {FUNCTION_TIMEOUT}
event_source_mappings:
  - FunctionName: orders
    EventSourceArn: {arn}
    BatchSize: 10
    FilterCriteria:
      Filters:
        - Pattern: '{{"body": {{"status": ["paid"]}}}}'
    FunctionResponseTypes: [ReportBatchItemFailures]
    esm: {{name: demo-orders}}
metrics:
  listen: "127.0.0.1:{metrics_port}"
shutdown_timeout: 10
"""
    with tempfile.TemporaryDirectory() as folder:
        config_path = Path(folder) / "esm.yaml"
        config_path.write_text(config_text)
        print(f"esm demo: config\n{config_text}")
        sys.path.insert(0, str(HERE))
        import handlers  # the module esm imports for the function: it notes the orders it processed

        config = load_config(config_path)
        metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
        daemon = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
        started = asyncio.ensure_future(ready.wait())
        await asyncio.wait({daemon, started}, return_when=asyncio.FIRST_COMPLETED)
        if daemon.done():  # it stopped before it was ready: show why
            started.cancel()
            daemon.result()
            raise SystemExit("esm demo: the daemon stopped before it was ready")
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        print(f"esm demo: running; metrics at {metrics_url}, health at http://127.0.0.1:{metrics_port}/readyz\n")
        expected = {o["id"] for o in orders if o["status"] == "paid"}
        drained, (waiting, in_flight) = await wait_until_drained(sqs, url, expected, handlers.paid)
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(metrics_url, timeout=5).read().decode())
        stop.set()
        await daemon
    if drained:
        print("\nesm demo: the queue is empty. What the metrics say:")
    else:
        missing = ", ".join(str(i) for i in sorted(expected - handlers.paid)) or "none"
        print(f"\nesm demo: gave up after {WAIT:g} s in which nothing moved. Still in the queue: {waiting} "
              f"message(s) waiting and {in_flight} in flight (received, not yet deleted); paid orders not yet "
              f"processed: {missing}. What the metrics say so far:")
    rows = read_rows(text)
    for row in rows:
        for key in ("polled", "filtered", "invoked", "failed", "deleted"):
            print(f"  {key:<9} {int(row.counts.get(key, 0)):>4}")
    if not drained:
        return 1
    print("  (polled counts the retried message twice; filtered-out messages are deleted, as Lambda does)")
    again = sum(int(row.counts.get("polled", 0)) for row in rows) - ORDERS - 1  # beyond order 13's retry
    if again > 0:
        # The machine took longer than the visibility timeout: SQS handed those messages out again.
        twice = sorted(order for order, n in handlers.deliveries.items() if n > (2 if order == 13 else 1))
        reached = f"; orders {', '.join(map(str, twice))} reached the function more than once" if twice else ""
        print(f"  (SQS handed out {again} message(s) once more: this run was slower than the queue's "
              f"{VISIBILITY_TIMEOUT} s visibility timeout, and SQS delivers at least once{reached})")
    return 0


async def wait_until_drained(sqs, url: str, expected: set[int], paid: set[int]) -> tuple[bool, tuple[int, int]]:
    """Until the queue is empty and every `expected` order is in `paid` (the handler's live set):
    (True, counts); (False, counts) once WAIT seconds passed without progress.

    Progress is fewer messages left or more orders paid (a message going round and round is not).
    Waiting time is counted in this loop's own sleeps, so a machine that stalls (a slow first run)
    does not use it up; only a demo that stopped moving does.
    """
    least_left, most_paid, still = None, -1, 0.0
    while True:
        counts = await queue_counts(sqs, url)
        if counts == (0, 0) and expected <= paid:
            return True, counts
        left, done = sum(counts), len(paid)
        if least_left is None or left < least_left or done > most_paid:
            least_left = left if least_left is None else min(least_left, left)
            most_paid, still = max(most_paid, done), 0.0
        elif still >= WAIT:
            return False, counts
        await asyncio.sleep(POLL)
        still += POLL


async def queue_counts(sqs, url: str) -> tuple[int, int]:
    """(waiting, in flight); boto3 is synchronous, so off the event loop the daemon runs on."""
    attributes = (await asyncio.to_thread(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


if __name__ == "__main__":
    sys.exit(main())
