"""From an on-failure destination: read each document, read its records again from the source,
invoke the mapping's function with them in the mapping's event format (behaviour §4). The source's
part (its event format, which ranges are its own, reading them again) is the module its
descriptor's `replay` names (esm.descriptor); a source without one is refused.

Documents come from an SQS queue (received, and deleted only once every range they name was
replayed) or an S3 prefix (`s3://bucket/prefix`, the object deleted likewise). A document whose
records still fail, or are no longer in the source, stays where it was. A dry run reads the
documents and the records and invokes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, AsyncIterator, Awaitable, Callable

from esm import registry
from esm.arns import parse_arn
from esm.config.settings import Config, MappingSettings
from esm.core.outcomes import SUCCESS, judge
from esm.core.records import Record
from esm.filtering import compile_filters
from esm.identity import function_arn
from esm.invokers import make_invoker
from esm.replay.documents import NotAFailureDocument, ranges
from esm.replay.progress import Pace, Progress, Summary
from esm.transform import transform_for


@dataclass(frozen=True)
class Document:
    where: str  # for progress lines: the message id or object key
    text: str
    remove: Callable[[], Awaitable[None]]  # after a full replay


async def sqs_documents(clients: Any, arn_text: str) -> AsyncIterator[Document]:
    """Every document in the queue, each received once (hidden while the replay runs); those not
    removed are made visible again at the end."""
    arn = parse_arn(arn_text)
    assert arn is not None, arn_text
    async with clients.client("sqs", arn.region) as sqs:
        url = (await sqs.get_queue_url(QueueName=arn.resource, QueueOwnerAWSAccountId=arn.account))["QueueUrl"]
        kept: list[str] = []
        try:
            while True:
                messages = (await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                      VisibilityTimeout=300)).get("Messages") or []
                if not messages:
                    break
                for message in messages:
                    handle = message["ReceiptHandle"]
                    removed = False

                    async def remove(handle: str = handle) -> None:
                        nonlocal removed
                        await sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
                        removed = True

                    yield Document(message["MessageId"], message["Body"], remove)
                    if not removed:
                        kept.append(handle)
        finally:
            for handle in kept:  # left where it was: visible again now, not after 5 minutes
                await sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)


async def s3_documents(clients: Any, location: str) -> AsyncIterator[Document]:
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    async with clients.client("s3") as s3:
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                body = await (await s3.get_object(Bucket=bucket, Key=key))["Body"].read()

                async def remove(key: str = key) -> None:
                    await s3.delete_object(Bucket=bucket, Key=key)

                yield Document(key, body.decode(), remove)


def documents(clients: Any, location: str) -> AsyncIterator[Document]:
    if location.startswith("s3://") or location.startswith("arn:aws:s3:::"):
        return s3_documents(clients, "s3://" + location.removeprefix("arn:aws:s3:::").removeprefix("s3://"))
    return sqs_documents(clients, location)


def _source_replay(mapping: MappingSettings) -> ModuleType:
    """The module that reads the mapping's source again (its descriptor's `replay`, with `read`)."""
    path = registry.descriptor(mapping.source).replay
    module = registry.import_path(path) if path else None
    if module is None or not hasattr(module, "read"):
        raise ValueError(f"mapping {mapping.name}: {mapping.source} failures are not replayed from a destination "
                         f"(SQS mappings replay from their dead-letter queue)")
    return module


def _format(mapping: MappingSettings, config: Config, source: ModuleType) -> Any:
    """The mapping's RecordFormat, built as its source builds it (without connecting)."""
    arn = parse_arn(mapping.source_id)
    region = (arn.region if arn else None) or config.aws.region or "us-east-1"
    account = arn.account if arn else None
    expression = mapping.extension.transform
    transform = transform_for(expression, registry.descriptor(mapping.source).data) if expression else None
    return source.record_format(mapping, region=region, function_arn=function_arn(mapping.function, region, account),
                                transform=transform)


async def replay_failures(config: Config, mapping: MappingSettings, location: str, *, execute: bool,
                          rate: float | None, clients: Any, progress: Progress | None = None) -> Summary:
    """Replay every document at `location` through `mapping`'s function (see the module docstring)."""
    progress = progress or Progress()
    summary = Summary(dry_run=not execute)
    source = _source_replay(mapping)
    form = _format(mapping, config, source)
    matcher = compile_filters([f["Pattern"] for f in (mapping.get("FilterCriteria") or {}).get("Filters") or []])
    report_item_failures = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
    invoker = make_invoker(mapping.function, config.aws) if execute else None
    pace = Pace(rate)
    try:
        async for document in documents(clients, location):
            try:
                spans = ranges(document.text)
            except NotAFailureDocument as error:
                summary.documents_left += 1
                progress.step(f"{document.where}: skipped ({error})")
                continue
            whole = True
            for span in spans:
                if not source.ours(span, mapping):
                    whole = False
                    progress.step(f"{document.where}: {span.describe()} is not from {mapping.name}'s source; left")
                    continue
                records = await source.read(clients, span, form, mapping)
                if records is None:
                    whole = False
                    summary.gone += span.count
                    progress.step(f"{document.where}: {span.describe()} no longer in the source")
                    continue
                records = [r for r in records if matcher.is_match_all or form.keep(matcher, r)]
                if invoker is None:
                    summary.replayed += len(records)
                    progress.step(f"{document.where}: {span.describe()} would replay {len(records)} record(s)")
                    continue
                await pace.take(len(records))
                failure = await _invoke(invoker, form, records, report_item_failures)
                if failure is None:
                    summary.replayed += len(records)
                    progress.step(f"{document.where}: {span.describe()} replayed {len(records)} record(s)")
                else:
                    whole = False
                    summary.still_failing += len(records)
                    progress.step(f"{document.where}: {span.describe()} still failing ({len(records)} "
                                  f"record(s)): {failure}")
            if execute and whole:
                await document.remove()
                summary.documents_done += 1
            else:
                summary.documents_left += 1
    finally:
        if invoker is not None:
            await invoker.close()
    return summary


async def _invoke(invoker: Any, form: Any, records: list[Record], report_item_failures: bool) -> str | None:
    """One invoke with the records (the function sees the mapping's event); None when all succeeded,
    else why not (a partial batch response counts the whole range as still failing)."""
    if not records:
        return None
    result = await invoker.invoke(form.payload(records))
    outcome = judge(result, report_item_failures=report_item_failures, batch_ids=[r.item_id for r in records],
                    read_identifier=form.read_identifier)
    return None if outcome.kind == SUCCESS else (outcome.reason or outcome.kind)
