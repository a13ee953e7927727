"""The demo's function: a Lambda-style handler that processes paid orders.

It reports a partial batch failure for order 13 on its first delivery, the way a real function
would when one record in a batch cannot be processed yet; SQS hands it out again after the
queue's visibility timeout, and then it succeeds. Deciding by the delivery (SQS's
ApproximateReceiveCount) rather than by what this process saw first keeps that true on a slow
machine too, where SQS may hand a message out twice at once (it is at-least-once).
"""

import json
from collections import Counter

paid: set[int] = set()  # orders processed successfully: the demo waits for these, and names the missing ones
deliveries: Counter[int] = Counter()  # how often each order reached the function


def process(event, context):
    failures = []
    for record in event["Records"]:
        order = json.loads(record["body"])
        attempt = int(record["attributes"]["ApproximateReceiveCount"])
        deliveries[order["id"]] += 1
        if order["id"] == 13 and attempt == 1:
            print(f"  handler: order {order['id']:>2} failed (will be retried by SQS)")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        print(f"  handler: order {order['id']:>2} paid {order['amount']:>6.2f} (receive #{attempt})")
        paid.add(order["id"])
    return {"batchItemFailures": failures}
