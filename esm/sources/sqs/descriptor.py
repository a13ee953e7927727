"""What the shared modules know of the SQS source (esm.descriptor): queue ARNs, its config rules,
the `body` it filters and transforms, its status columns, SAM's `SQS` events and the queues a
template may create, its safety checks and its dead-letter queue replay."""

from __future__ import annotations

from esm.descriptor import TEXT, DataField, SourceDescriptor, StatusColumns, TemplateSupport

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
    safety="esm.sources.sqs.safety",
    replay="esm.sources.sqs.replay",
)
