"""esm demo: a local SQS queue (moto, in this process) -> a filter -> an in-process handler.

Run it with `scripts/demo`. It needs nothing but Python: moto serves SQS on 127.0.0.1, esm polls
it with a filter that keeps only paid orders, the handler in handlers.py processes them and
reports one partial batch failure, and the metrics endpoint shows what happened.
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

from esm.config import load_config
from esm.daemon import run_daemon
from esm.logs import configure_logging
from esm.metrics import Metrics
from esm.status import read_rows

HERE = Path(__file__).resolve().parent
ORDERS = 20


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
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
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
    timeout: 1
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
        config = load_config(config_path)
        metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
        daemon = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
        await asyncio.wait_for(ready.wait(), 60)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        print(f"esm demo: running; metrics at {metrics_url}, health at http://127.0.0.1:{metrics_port}/readyz\n")
        for _ in range(120):
            await asyncio.sleep(0.5)
            # boto3 is synchronous: keep it off the event loop the daemon runs on.
            attributes = (await asyncio.to_thread(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))["Attributes"]
            if attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0":
                break
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(metrics_url, timeout=5).read().decode())
        stop.set()
        await daemon
    print("\nesm demo: the queue is empty. What the metrics say:")
    for row in read_rows(text):
        for key in ("polled", "filtered", "invoked", "failed", "deleted"):
            print(f"  {key:<9} {int(row.counts.get(key, 0)):>4}")
    print("  (polled counts the retried message twice; filtered-out messages are deleted, as Lambda does)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
