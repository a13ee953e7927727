"""Kinesis's config rules and Lambda's defaults for a Kinesis mapping (behaviour §1): the stream
controls (starting position, retries, record age, bisect, lanes, tumbling windows) and an
SQS, SNS or S3 on-failure destination."""

from __future__ import annotations

from esm.config.rules import NOT_FOR_STREAMS, MappingCheck, check_starting_position, check_stream_controls, not_for


def check(check: MappingCheck) -> None:
    req = check.request
    not_for(check, NOT_FOR_STREAMS, "Kinesis")
    req.setdefault("BatchSize", 100)
    check_starting_position(check)
    check_stream_controls(check)

