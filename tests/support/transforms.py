"""`esm.transform` for one source, as that source builds it: from its descriptor's data field."""

from __future__ import annotations

from esm import registry
from esm.transform import Transform, transform_for


def source_transform(source: str, expression: str) -> Transform:
    return transform_for(expression, registry.descriptor(source).data)


def sqs_transform(expression: str) -> Transform:
    return source_transform("sqs", expression)


def kinesis_transform(expression: str) -> Transform:
    return source_transform("kinesis", expression)


def dynamodb_transform(expression: str) -> Transform:
    return source_transform("dynamodb", expression)


def kafka_transform(expression: str) -> Transform:
    return source_transform("kafka", expression)
