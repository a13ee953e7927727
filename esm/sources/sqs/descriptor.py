"""What the shared modules know of the SQS source (esm.descriptor): queue ARNs, its config rules,
the `body` it filters and transforms, its status columns, SAM's `SQS` events and the queues a
template may create."""

from __future__ import annotations

from esm.descriptor import TEXT, ApiAnswers, DataField, SourceDescriptor, StatusColumns, TemplateSupport

DESCRIPTOR = SourceDescriptor(
    kind="sqs",
    title="SQS",
    source_class="esm.sources.sqs.source:SqsSource",
    rules="esm.sources.sqs.rules:check",
    data=DataField(key="body", encoding=TEXT),
    arn_services=("sqs",),
    status=StatusColumns(counts=frozenset({"deleted"}), acked="deleted"),
    templates=TemplateSupport(sam_events=(("SQS", "Queue"),),
                              resources=(("AWS::SQS::Queue", "esm.sources.sqs.template:QUEUE"),)),
    answers=ApiAnswers(
        user_reason="USER_INITIATED",
        defaults=(("MaximumBatchingWindowInSeconds", 0),),
        omitted=("LastProcessingResult",),
        duplicate=('An event source mapping with SQS arn (" {source} ") and function (" {function} ") already exists. '
                   'Please update or delete the existing mapping with UUID {uuid}'),
        missing=("Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. "
                 "SQS Error Message: The specified queue does not exist for this wsdl version."),
        exists="esm.sources.sqs.rules:queue_exists",
    ),
)
