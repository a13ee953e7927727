"""The demo's function: a Lambda-style handler that processes paid orders.

It reports a partial batch failure for order 13 on its first delivery, the way a real function
would when one record in a batch cannot be processed yet; SQS hands it out again after the
queue's visibility timeout, and then it succeeds. Deciding by the delivery (SQS's
ApproximateReceiveCount) rather than by what this process saw first keeps that true on a slow
machine too, where SQS may hand a message out twice at once (it is at-least-once). Each invoke
prints one line: the orders it paid and failed, with SQS's receive count from the second on.
"""

import json
import sys
import threading
from collections import Counter

paid: set[int] = set()  # orders processed successfully: the demo waits for these, and names the missing ones
deliveries: Counter[int] = Counter()  # how often each order reached the function
_lock = threading.Lock()  # invokes run in worker threads at once: whole lines, exact counts


def process(event, context):
    failures, done, failed = [], [], []
    with _lock:
        for record in event["Records"]:
            order = json.loads(record["body"])["id"]
            attempt = int(record["attributes"]["ApproximateReceiveCount"])
            deliveries[order] += 1
            name = f"{order}" if attempt == 1 else f"{order} (receive #{attempt})"
            if order == 13 and attempt == 1:
                failed.append(name)
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                done.append(name)
                paid.add(order)
        count = len(event["Records"])
        line = f"  handler: {count} order{'s' if count > 1 else ''}: paid {', '.join(done) or 'none'}"
        if failed:
            line += f"; failed {', '.join(failed)} (SQS hands it out again)"
        sys.stdout.write(line + "\n")  # one write per invoke: one whole line
        sys.stdout.flush()
    return {"batchItemFailures": failures}
