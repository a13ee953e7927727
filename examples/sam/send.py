"""Send the README walk-through's records to the example template's queue, stream and table, then
show what reached the on-failure queue. Endpoints come from the environment, as for esm itself
(`eval "$(scripts/backends start)"` sets AWS_ENDPOINT_URL_SQS / _KINESIS / _DYNAMODB and AWS_REGION).

    python examples/sam/send.py [--stage dev]
"""

import argparse
import json
import time

import boto3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", help="the template's Stage parameter")
    stage = parser.parse_args().stage
    sqs, kinesis, dynamodb = boto3.client("sqs"), boto3.client("kinesis"), boto3.client("dynamodb")

    orders = sqs.get_queue_url(QueueName=f"orders-{stage}")["QueueUrl"]
    for order in ({"status": "paid", "id": 1, "total": 30}, {"status": "new", "id": 2}, {"status": "paid"}):
        sqs.send_message(QueueUrl=orders, MessageBody=json.dumps(order))
        print(f"order sent: {order}")
    for click in ({"page": "home"}, {"page": "cart"}, {"button": "buy"}, {"page": "checkout"}):
        kinesis.put_record(StreamName=f"clicks-{stage}", PartitionKey="user-1", Data=json.dumps(click).encode())
        print(f"click sent: {click}")
    account = f"acct-{int(time.time())}"
    dynamodb.put_item(TableName=f"accounts-{stage}", Item={"id": {"S": account}, "plan": {"S": "free"}})
    dynamodb.update_item(TableName=f"accounts-{stage}", Key={"id": {"S": account}},  # a MODIFY: filtered out
                         UpdateExpression="SET #p = :p", ExpressionAttributeNames={"#p": "plan"},
                         ExpressionAttributeValues={":p": {"S": "pro"}})
    print(f"account created, then updated: {account}")

    failures = sqs.get_queue_url(QueueName=f"clicks-failures-{stage}")["QueueUrl"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=failures, WaitTimeSeconds=2).get("Messages", [])
        for message in messages:
            info = json.loads(message["Body"])["KinesisBatchInfo"]
            print(f"on-failure queue: {info['batchSize']} record(s) at {info['shardId']} "
                  f"{info['startSequenceNumber']} (the click without a page)")
            sqs.delete_message(QueueUrl=failures, ReceiptHandle=message["ReceiptHandle"])
            return
    print("nothing on the on-failure queue yet: is `esm run --template` running?")


if __name__ == "__main__":
    main()
