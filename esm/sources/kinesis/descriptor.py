"""What the shared modules know of the Kinesis source (esm.descriptor): stream and consumer ARNs,
its config rules, the base64 `data` it filters and transforms, its status columns, SAM's
`Kinesis` events and the streams a template may create."""

from __future__ import annotations

from esm.descriptor import ApiAnswers, BASE64, DataField, SourceDescriptor, StatusColumns, TemplateSupport

DESCRIPTOR = SourceDescriptor(
    kind="kinesis",
    title="Kinesis",
    source_class="esm.sources.kinesis.source:KinesisSource",
    rules="esm.sources.kinesis.rules:check",
    data=DataField(key="data", encoding=BASE64, container="kinesis", json_patterns_only=True),
    arn_services=("kinesis",),
    status=StatusColumns(counts=frozenset({"on_failure", "dropped"}), lag="iterator_age"),
    templates=TemplateSupport(sam_events=(("Kinesis", "Stream"),),
                              resources=(("AWS::Kinesis::Stream", "esm.sources.kinesis.template:STREAM"),
                                         ("AWS::Kinesis::StreamConsumer", "esm.sources.kinesis.template:CONSUMER"))),
    checkpoints=True,
    conformance="tests.conformance.sources:KinesisSource",
    answers=ApiAnswers(defaults=(("MaximumBatchingWindowInSeconds", 0), ("DestinationConfig", {"OnFailure": {}})),
                       exists="esm.sources.kinesis.rules:stream_exists"),
)
