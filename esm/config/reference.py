"""The configuration reference page (docs/reference.md), written from the code's own schema.

Two sources, so the page cannot drift from what `esm validate` checks: the top-level, `functions:`
and `esm:` keys are esm.config.loading's own key lists (each needs a line in `DESCRIBED` below, or
rendering fails), and a mapping's fields are botocore's `CreateEventSourceMapping` input shape, the
same shape esm.config.api_shape validates against (types, limits, enums), with what esm does with
each field from `HANDLING` (behaviour §1, §9). `python -m esm.config.reference > docs/reference.md`
rewrites the page; tests/unit/test_docs_reference.py fails while the page is stale.
"""

from __future__ import annotations

from typing import Any

import botocore.session

from esm.config.loading import FUNCTION_KEYS, TOP_LEVEL_KEYS, extension_keys

DESCRIBED: dict[str, str] = {
    # top level
    "functions": "map of name -> target; a mapping's `FunctionName` is one of these names",
    "event_source_mappings": "list of CreateEventSourceMapping requests, each with an optional `esm:` key",
    "aws": "`region`, `endpoints.<service>`: override what the AWS SDK finds itself",
    "checkpoints": "`sqlite: PATH` (one process) or `dynamodb: {table: NAME}` (replicas); stream positions and API mappings",
    "metrics": "`listen: HOST:PORT` (default 127.0.0.1:9090): /metrics, /healthz, /readyz",
    "shutdown_timeout": "seconds to drain in-flight batches on SIGTERM (default 25)",
    "startup_timeout": "seconds for sources and targets to answer before exit 3 (default 60)",
    "api": "the control API listener and its credentials ([api.md](api.md))",
    # functions.<name>
    "url": "POST each event to this URL (a Lambda image's emulator, or any HTTP service)",
    "lambda": "an AWS Lambda function name or ARN, called with Invoke",
    "handler": "`module:function` run in esm's process",
    "timeout": "seconds, default 30, at most 900; exceeding it is a function error",
    "max_concurrency": "invokes in flight at once for this target",
    "role": "the execution role ARN stream records carry as `invokeIdentityArn`",
    # esm:
    "name": "the mapping's name (metrics, logs); its UUID is uuid5 of it unless `uuid` is set",
    "uuid": "pin the mapping's UUID (checkpoints, default Kafka group) so a rename keeps its positions",
    "transform": "a JMESPath expression applied to each record's decoded data",
    "max_in_flight_bytes": "record bytes held in memory per mapping (default 256MiB, at least 8MiB)",
    "secrets": "Kafka: where secrets named by SourceAccessConfigurations come from outside AWS",
    "kafka_tls": "Kafka: TLS on or off against Lambda's default",
    "on_failure_kafka": "Kafka: the cluster of a `kafka://` on-failure topic, when not the source's",
    "parallelization_factor": "Kafka: lanes per partition by record key, 1 to 10",
    "broker": "Amazon MQ: the broker's URI (amqps://… RabbitMQ, stomp+ssl://… ActiveMQ); without it esm asks mq:DescribeBroker",
}

# What esm does with each CreateEventSourceMapping field; a field missing here renders "honoured".
HANDLING: dict[str, str] = {
    "FunctionName": "a key of `functions:` (or a `lambda:` target's name/ARN)",
    "DestinationConfig": "OnFailure honoured (SQS, SNS, S3, `kafka://`); OnSuccess refused",
    "KMSKeyArn": "accepted, not honoured (filters are not stored encrypted)",
    "MetricsConfig": "accepted, not honoured: every metric is always exported (behaviour §9.8)",
    "LoggingConfig": "accepted, not honoured: esm logs as `--log-level` says",
    "Tags": "stored with the mapping; the control API lists them (ListTags), nothing else reads them",
    "Queues": "refused: Amazon MQ is not served yet",
    "DocumentDBEventSourceConfig": "refused: DocumentDB is not served yet",
    "ProvisionedPollerConfig": "SQS: provisioned-mode scaling; Kafka: MaximumPollers bounds the partitions worked, MinimumPollers and PollerGroupName refused (behaviour §9.7)",
    "SourceAccessConfigurations": "honoured; VPC_SUBNET and VPC_SECURITY_GROUP accepted, not honoured",
    "ScalingConfig": "SQS: MaximumConcurrency honoured",
}


def _constraints(shape: Any) -> str:
    meta = shape.metadata
    parts = []
    if "min" in meta:
        parts.append(f"min {meta['min']}")
    if "max" in meta:
        parts.append(f"max {meta['max']}")
    if getattr(shape, "enum", None):
        parts.append("one of " + ", ".join(f"`{v}`" for v in shape.enum))
    return "; ".join(parts)


def _type(shape: Any) -> str:
    if shape.type_name == "list":
        return f"list of {_type(shape.member)}"
    if shape.type_name == "map":
        return f"map of {_type(shape.value)}"
    return shape.type_name


def _rows(shape: Any, prefix: str, depth: int) -> list[str]:
    rows = []
    for name, member in shape.members.items():
        path = f"{prefix}{name}"
        handling = HANDLING.get(path, "honoured") if not prefix else ""
        rows.append(f"| `{path}` | {_type(member)} | {_constraints(member)} | {handling} |")
        inner = member.member if member.type_name == "list" else member
        if inner.type_name == "structure" and depth < 3:
            rows.extend(_rows(inner, f"{path}{'[].' if member.type_name == 'list' else '.'}", depth + 1))
    return rows


def _keys(keys: tuple[str, ...]) -> list[str]:
    return [f"| `{key}` | {DESCRIBED[key]} |" for key in keys]


def render() -> str:
    """The whole page; KeyError names a key of the code's schema with no description yet."""
    shape = (botocore.session.get_session().get_service_model("lambda")
             .operation_model("CreateEventSourceMapping").input_shape)
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m esm.config.reference > docs/reference.md`; do not edit by hand.",
        "     tests/unit/test_docs_reference.py fails while this page differs from what the code says. -->",
        "",
        "Every key `esm validate` knows. Prose, examples and the rules across fields are in",
        "[configuration.md](configuration.md); how each field behaves is in [behaviour.md](behaviour.md) §1.",
        "",
        "## Top level",
        "",
        "| key | meaning |",
        "|---|---|",
        *_keys(TOP_LEVEL_KEYS),
        "",
        "## `functions.<name>`",
        "",
        "| key | meaning |",
        "|---|---|",
        *_keys(FUNCTION_KEYS),
        "",
        "## `event_source_mappings[]`: CreateEventSourceMapping fields",
        "",
        "From botocore's model of the Lambda API (the shape `esm validate`",
        "checks against). Required by the API: " + ", ".join(f"`{r}`" for r in shape.required_members) + ".",
        "",
        "| field | type | limits | esm |",
        "|---|---|---|---|",
        *_rows(shape, "", 0),
        "",
        "## `event_source_mappings[].esm`",
        "",
        "| key | meaning |",
        "|---|---|",
        *_keys(extension_keys()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
