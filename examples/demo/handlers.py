"""The demo's function: a Lambda-style handler that processes paid orders.

It reports a partial batch failure the first time it sees order 13, the way a real function
would when one record in a batch cannot be processed yet.
"""

import json

seen_failures: set[str] = set()


def process(event, context):
    failures = []
    for record in event["Records"]:
        order = json.loads(record["body"])
        if order["id"] == 13 and record["messageId"] not in seen_failures:
            seen_failures.add(record["messageId"])
            print(f"  handler: order {order['id']:>2} failed (will be retried by SQS)")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        attempt = record["attributes"]["ApproximateReceiveCount"]
        print(f"  handler: order {order['id']:>2} paid {order['amount']:>6.2f} (receive #{attempt})")
    return {"batchItemFailures": failures}
