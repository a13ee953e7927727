"""One table of kinds: which class or module serves each kind of source, invoker, destination
and checkpoint store (DESIGN.md "Layout").

Entries are dotted paths (`module:attribute`, or a bare module), imported only when a
configuration uses that kind: this module imports nothing of esm, so reading the table never
loads aiokafka, aiobotocore or a source. A new kind is one module plus one line here.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Any, Mapping

# source kind (MappingSettings.source) -> the class that runs one mapping of that kind,
# built as cls(mapping, runtime, invoker, metrics)
SOURCES: Mapping[str, str] = MappingProxyType({
    "sqs": "esm.sources.sqs.source:SqsSource",
    "kinesis": "esm.sources.kinesis.source:KinesisSource",
    "dynamodb": "esm.sources.dynamodb.source:DynamoDbSource",
    "kafka": "esm.sources.kafka.source:KafkaSource",
})

# source mode (a source class's `mode`: an esm.core.decide.Mode's value) -> the engine runner that
# runs one mapping of it, built as cls(mapping, source_class, runtime, invoker, metrics)
RUNNERS: Mapping[str, str] = MappingProxyType({
    "stream": "esm.engine.stream_mapping:StreamMapping",
    "queue": "esm.engine.queue_mapping:QueueMapping",
})

# function target kind (FunctionTarget.kind) -> the module whose
# make(target, aws, *, default_concurrency, region, account) builds the invoker
INVOKERS: Mapping[str, str] = MappingProxyType({
    "url": "esm.invokers.http",
    "lambda": "esm.invokers.aws_lambda",
    "handler": "esm.invokers.python",
})

# on-failure destination kind (an ARN's service, or "kafka" for kafka://<topic>) -> its builder:
# the ARN classes take (arn, clients, ...); the kafka one is make_kafka_destination(target, cluster)
DESTINATIONS: Mapping[str, str] = MappingProxyType({
    "sqs": "esm.destinations.sqs:SqsDestination",
    "sns": "esm.destinations.sns:SnsDestination",
    "s3": "esm.destinations.s3:S3Destination",
    "kafka": "esm.destinations.kafka:make_kafka_destination",
})

# checkpoint store kind (the key set under `checkpoints:`) -> its class
CHECKPOINT_STORES: Mapping[str, str] = MappingProxyType({
    "sqlite": "esm.checkpoints.sqlite:SqliteCheckpointStore",
    "dynamodb": "esm.checkpoints.dynamodb:DynamoDbCheckpointStore",
})

KINDS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "source": SOURCES,
    "runner": RUNNERS,
    "invoker": INVOKERS,
    "destination": DESTINATIONS,
    "checkpoint store": CHECKPOINT_STORES,
})


class UnknownKind(LookupError):
    """A kind the table does not name (the config checks should have refused it first)."""


def load(family: str, kind: str) -> Any:
    """The object registered for `kind` in `family` ("source", "invoker", "destination",
    "checkpoint store"): the class or function for `module:attribute`, the module for a bare one."""
    table = KINDS[family]
    try:
        path = table[kind]
    except KeyError:
        raise UnknownKind(f"no {family} of kind {kind!r} (known: {', '.join(sorted(table))})") from None
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def source(kind: str) -> Any:
    """The class that runs one mapping of source `kind`."""
    return load("source", kind)


def runner(mode: str) -> Any:
    """The engine runner for sources of `mode` ("stream" or "queue")."""
    return load("runner", mode)


def invoker_module(kind: str) -> Any:
    """The module whose `make(...)` builds an invoker for function target `kind`."""
    return load("invoker", kind)


def destination(kind: str) -> Any:
    """The builder of on-failure destination `kind`."""
    return load("destination", kind)


def checkpoint_store(kind: str) -> Any:
    """The class of checkpoint store `kind`."""
    return load("checkpoint store", kind)
