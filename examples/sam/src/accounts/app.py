"""New accounts from the AccountsTable stream (the template's filter keeps INSERT events only).

esm does not serve DynamoDB Streams yet: `esm run --template` needs --skip-unsupported to run the
template's other mappings, and this function starts receiving events the day that source lands.
"""

import os


def handler(event, context):
    for record in event["Records"]:
        print(f"[{os.environ['STAGE']}] new account {record['dynamodb']['Keys']['id']['S']}")
