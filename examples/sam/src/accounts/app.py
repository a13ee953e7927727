"""New accounts from the AccountsTable stream (the template's filter keeps INSERT events only)."""

import os


def handler(event, context):
    for record in event["Records"]:
        print(f"[{os.environ['STAGE']}] new account {record['dynamodb']['Keys']['id']['S']}")
