"""Clicks from the ClicksStream. A click without a `page` fails the whole batch; the mapping bisects
the batch until the bad record is alone, then sends its coordinates to the ClicksFailures queue
(MaximumRetryAttempts 0), and the good records are processed."""

import base64
import json
import os


def handler(event, context):
    clicks = [json.loads(base64.b64decode(record["kinesis"]["data"])) for record in event["Records"]]
    for click in clicks:
        if "page" not in click:
            raise ValueError(f"a click without a page: {click}")
    for click in clicks:
        print(f"[{os.environ['STAGE']}] click on {click['page']}")
