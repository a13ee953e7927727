"""Imports every source module so each registers itself in `esm.sources.SOURCES`."""

from esm.sources import SOURCES
from esm.sources.kafka import KafkaMapping
from esm.sources.kinesis import KinesisMapping
from esm.sources.sqs import SqsMapping

SOURCES.setdefault("sqs", SqsMapping)
SOURCES.setdefault("kinesis", KinesisMapping)
SOURCES.setdefault("kafka", KafkaMapping)
