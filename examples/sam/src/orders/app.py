"""Paid orders from the OrdersQueue (the template's filter lets only `"status": "paid"` through).

An order without an `id` cannot be processed: it is reported as a batch item failure, so only that
message comes back to the queue (and after three receives lands in orders-dlq-<Stage>), while the
rest of the batch is deleted.
"""

import json
import os


def handler(event, context):
    failures = []
    for record in event["Records"]:
        order = json.loads(record["body"])
        if "id" not in order:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        print(f"[{os.environ['STAGE']}] order {order['id']} paid: {order.get('total')}")
    return {"batchItemFailures": failures}
