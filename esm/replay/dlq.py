"""From an SQS mapping's dead-letter queue back to its source queue (behaviour §4: SQS keeps failed
messages in the queue's redrive DLQ, not in an on-failure destination).

Where the endpoint has it, SQS's own message move task does the moving (StartMessageMoveTask, at
the rate given); elsewhere each message is received from the DLQ, sent to the source queue and only
then deleted from the DLQ, so a failure on the way leaves it in the DLQ: nothing is lost (a
message may arrive twice if the delete fails after the send).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import ClientError

from esm.arns import parse_arn
from esm.replay.progress import Pace, Progress, Summary

UNSUPPORTED = {"UnsupportedOperation", "InvalidAction", "UnknownOperationException", "AWS.SimpleQueueService.UnsupportedOperation",
               "404", "400"}
MOVE_POLL_SECONDS = 0.5


async def queue_url(sqs: Any, arn_text: str) -> str:
    arn = parse_arn(arn_text)
    assert arn is not None, arn_text
    return (await sqs.get_queue_url(QueueName=arn.resource, QueueOwnerAWSAccountId=arn.account))["QueueUrl"]


async def dead_letter_queue(sqs: Any, source_arn: str) -> str | None:
    """The DLQ named by the source queue's redrive policy."""
    url = await queue_url(sqs, source_arn)
    attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]))["Attributes"]
    policy = attributes.get("RedrivePolicy")
    return json.loads(policy).get("deadLetterTargetArn") if policy else None


async def waiting(sqs: Any, url: str) -> int:
    attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]))
    return int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))


async def move_task(sqs: Any, dlq: str, source: str, rate: float | None, progress: Progress) -> int | None:
    """SQS's message move task; the number moved, or None when the endpoint has no move tasks."""
    request: dict[str, Any] = {"SourceArn": dlq, "DestinationArn": source}
    if rate:
        request["MaxNumberOfMessagesPerSecond"] = max(1, int(rate))
    try:
        handle = (await sqs.start_message_move_task(**request))["TaskHandle"]
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code in UNSUPPORTED or "Unsupported" in code or "Unknown" in code:
            return None
        raise
    while True:
        tasks = (await sqs.list_message_move_tasks(SourceArn=dlq, MaxResults=10))["Results"]
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        status = task.get("Status", "COMPLETED")
        progress.step(f"message move task {status}: {moved} moved, "
                      f"{task.get('ApproximateNumberOfMessagesToMove', '?')} to move")
        if status == "FAILED":
            raise RuntimeError(f"the message move task failed: {task.get('FailureReason', 'no reason given')}")
        if status in ("COMPLETED", "CANCELLED"):
            return moved
        await asyncio.sleep(MOVE_POLL_SECONDS)


async def receive_send_delete(sqs: Any, dlq: str, source: str, rate: float | None, progress: Progress,
                              limit: int | None = None) -> int:
    """Each message: received from the DLQ, sent to the source queue, then deleted from the DLQ."""
    dlq_url, source_url = await queue_url(sqs, dlq), await queue_url(sqs, source)
    fifo = source.endswith(".fifo")
    pace = Pace(rate)
    moved = 0
    while limit is None or moved < limit:
        count = min(10, limit - moved) if limit is not None else 10
        messages = (await sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=count, WaitTimeSeconds=1, VisibilityTimeout=60,
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])).get("Messages") or []
        if not messages:
            break
        await pace.take(len(messages))
        entries = []
        for i, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            if fifo:
                system = message.get("Attributes", {})
                entry["MessageGroupId"] = system.get("MessageGroupId", "replay")
                entry["MessageDeduplicationId"] = system.get("MessageDeduplicationId", message["MessageId"])
            entries.append(entry)
        answer = await sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        sent = [messages[int(e["Id"])] for e in answer.get("Successful", [])]
        if sent:
            await sqs.delete_message_batch(QueueUrl=dlq_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)])
        failed = [messages[int(e["Id"])] for e in answer.get("Failed", [])]
        if failed:  # visible again in the DLQ at once: still there, nothing lost
            await sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(failed)])
            raise RuntimeError(f"{len(failed)} message(s) could not be sent to {source}: "
                               f"{answer['Failed'][0].get('Message', answer['Failed'][0].get('Code'))}")
        moved += len(sent)
        progress.step(f"moved {moved} message(s) from {dlq} to {source}")
    return moved


async def replay_dlq(clients: Any, source: str, *, dlq: str | None, execute: bool, rate: float | None,
                     use_move_task: bool = True, progress: Progress | None = None) -> Summary:
    """Move the DLQ's messages back to `source` (the mapping's queue); a dry run only counts them."""
    progress = progress or Progress()
    summary = Summary(dry_run=not execute)
    arn = parse_arn(source)
    async with clients.client("sqs", arn.region if arn else None) as sqs:
        dlq = dlq or await dead_letter_queue(sqs, source)
        if dlq is None:
            summary.notes.append(f"{source} has no redrive policy: no dead-letter queue to replay from")
            return summary
        count = await waiting(sqs, await queue_url(sqs, dlq))
        if not execute:
            summary.replayed = count
            summary.notes.append(f"{count} message(s) wait in {dlq}")
            return summary
        moved = await move_task(sqs, dlq, source, rate, progress) if use_move_task else None
        if moved is None:
            moved = await receive_send_delete(sqs, dlq, source, rate, progress)
            summary.notes.append("moved by receive-send-delete")
        else:
            summary.notes.append("moved by SQS's message move task")
        summary.replayed = moved
    return summary
