"""What the shared modules know of the DynamoDB Streams source (esm.descriptor): table stream
ARNs, its config rules, the `dynamodb` object it filters and transforms, its status columns,
SAM's `DynamoDB` events, the tables (with streams) a template may create and how `esm replay`
reads a shard's records again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from esm.descriptor import ApiAnswers, JSON, DataField, SourceDescriptor, StatusColumns, TemplateSupport

if TYPE_CHECKING:
    from esm.arns import Arn


def _label(arn: "Arn | None", source_id: str) -> str:
    """A stream is named by its table, not its label."""
    return arn.resource.split("/")[1] if arn is not None else source_id


DESCRIPTOR = SourceDescriptor(
    kind="dynamodb",
    title="DynamoDB Streams",
    source_class="esm.sources.dynamodb.source:DynamoDbSource",
    rules="esm.sources.dynamodb.rules:check",
    data=DataField(key="dynamodb", encoding=JSON, json_patterns_only=True),
    arn_services=("dynamodb",),
    arn_check="esm.sources.dynamodb.rules:check_arn",
    status=StatusColumns(counts=frozenset({"on_failure", "dropped"}), lag="iterator_age"),
    templates=TemplateSupport(sam_events=(("DynamoDB", "Stream"),),
                              resources=(("AWS::DynamoDB::Table", "esm.sources.dynamodb.template:TABLE"),),
                              label=_label),
    checkpoints=True,
    conformance="tests.conformance.sources:DynamoDbSource",
    answers=ApiAnswers(defaults=(("MaximumBatchingWindowInSeconds", 0), ("DestinationConfig", {"OnFailure": {}})),
                       exists="esm.sources.dynamodb.rules:stream_exists"),
    replay="esm.sources.dynamodb.replay",
)
