"""One table of kinds: which class or module serves each kind of source, invoker, destination
and checkpoint store (docs/design.md "Layout").

Entries are dotted paths (`module:attribute`, or a bare module), imported only when a
configuration uses that kind: this module imports nothing of esm, so reading the table never
loads aiokafka, aiobotocore or a source. A source's entry names its descriptor
(esm.descriptor.SourceDescriptor), which every shared module asks about the source; the
descriptor names the source class. A new kind is one module (a source: one package) plus one
line here.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # annotations only: at run time this module imports nothing of esm
    from esm.descriptor import SourceDescriptor

# source kind (MappingSettings.source) -> its descriptor; the order is the order messages list them in
SOURCES: Mapping[str, str] = MappingProxyType({
    "sqs": "esm.sources.sqs.descriptor:DESCRIPTOR",
    "kinesis": "esm.sources.kinesis.descriptor:DESCRIPTOR",
    "dynamodb": "esm.sources.dynamodb.descriptor:DESCRIPTOR",
    "kafka": "esm.sources.kafka.descriptor:DESCRIPTOR",
    "rabbitmq": "esm.sources.rabbitmq.descriptor:DESCRIPTOR",
    "activemq": "esm.sources.activemq.descriptor:DESCRIPTOR",
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

# on-failure destination kind (an ARN's service, or the URI scheme "kafka://" for kafka://<topic>)
# -> its builder: the ARN classes take (arn, clients, ...); the kafka one is
# make_kafka_destination(target, cluster)
DESTINATIONS: Mapping[str, str] = MappingProxyType({
    "sqs": "esm.destinations.sqs:SqsDestination",
    "sns": "esm.destinations.sns:SnsDestination",
    "s3": "esm.destinations.s3:S3Destination",
    "kafka://": "esm.destinations.kafka:make_kafka_destination",
})

# checkpoint store kind (the key set under `checkpoints:`) -> its class
CHECKPOINT_STORES: Mapping[str, str] = MappingProxyType({
    "sqlite": "esm.checkpoints.sqlite:SqliteCheckpointStore",
    "dynamodb": "esm.checkpoints.dynamodb:DynamoDbCheckpointStore",
})


def _tables() -> Mapping[str, Mapping[str, str]]:
    # Read at each call, so that a test may stand a throwaway source in SOURCES.
    return {"source": SOURCES, "runner": RUNNERS, "invoker": INVOKERS, "destination": DESTINATIONS,
            "checkpoint store": CHECKPOINT_STORES}


class UnknownKind(LookupError):
    """A kind the table does not name (the config checks should have refused it first)."""


def import_path(path: str) -> Any:
    """The object named by `module:attribute`: the class or function, or the module for a bare path."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def load(family: str, kind: str) -> Any:
    """The object registered for `kind` in `family` ("source", "runner", "invoker", "destination",
    "checkpoint store")."""
    table = _tables()[family]
    try:
        path = table[kind]
    except KeyError:
        raise UnknownKind(f"no {family} of kind {kind!r} (known: {', '.join(sorted(table))})") from None
    return import_path(path)


def descriptor(kind: str) -> SourceDescriptor:
    """The esm.descriptor.SourceDescriptor of source `kind`."""
    found: SourceDescriptor = load("source", kind)
    return found


def descriptors() -> list[SourceDescriptor]:
    """Every source's descriptor, in the table's order."""
    return [descriptor(kind) for kind in SOURCES]


def find_descriptor(kind: str) -> SourceDescriptor | None:
    """The descriptor of source `kind`, or None for a kind the table does not name."""
    return descriptor(kind) if kind in SOURCES else None


def source(kind: str) -> Any:
    """The class that runs one mapping of source `kind` (its descriptor's `source_class`)."""
    return import_path(descriptor(kind).source_class)


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
