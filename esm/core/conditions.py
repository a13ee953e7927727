"""Why records were given up on: the `requestContext.condition` of an on-failure document (behaviour §4, §9.3).

One definition of each name: the decisions (`esm.core.decide`), the engine, the sources and the
documents built in `esm.destinations.records` all read them from here.
"""

from __future__ import annotations

# MaximumRetryAttempts ran out.
RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
# MaximumRecordAgeInSeconds ran out, invoked or not.
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
# A record larger than an invoke may carry: never invoked (Kafka).
MAXIMUM_PAYLOAD_SIZE_EXCEEDED = "MaximumPayloadSizeExceeded"
# How AWS spells RETRY_ATTEMPTS_EXHAUSTED in documents sent to a kafka:// topic.
RETRIES_EXHAUSTED = "RetriesExhausted"
# The schema registry step (behaviour §5): the record names a schema the registry does not have, or
# its bytes do not decode (bad framing, or not the schema's data). Never invoked.
SCHEMA_NOT_FOUND = "SCHEMA_NOT_FOUND"
DESERIALIZATION_ERROR = "DESERIALIZATION_ERROR"
