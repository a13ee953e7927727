"""What the shared modules know of the Kafka source (esm.descriptor): Amazon MSK cluster ARNs or
a self-managed cluster's bootstrap servers, its config rules and `esm:` options, the base64
`value` it filters and transforms, its status columns and SAM's `MSK` and `SelfManagedKafka` events,
its safety check and how `esm replay` reads a partition's offsets again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esm.descriptor import BASE64, ApiAnswers, ArnlessSource, DataField, SourceDescriptor, StatusColumns, TemplateSupport

if TYPE_CHECKING:
    from esm.arns import Arn


def _self_managed_id(request: dict[str, Any]) -> str:
    """`kafka://<bootstrap servers>/<topic>`: what names a self-managed cluster's mapping."""
    servers = request.get("SelfManagedEventSource", {}).get("Endpoints", {}).get("KAFKA_BOOTSTRAP_SERVERS") or []
    topic = (request.get("Topics") or [""])[0]
    return f"kafka://{','.join(servers)}/{topic}"


def _label(arn: "Arn | None", source_id: str) -> str:
    return source_id


DESCRIPTOR = SourceDescriptor(
    kind="kafka",
    title="Kafka",
    source_class="esm.sources.kafka.source:KafkaSource",
    rules="esm.sources.kafka.rules:check",
    data=DataField(key="value", encoding=BASE64),
    arn_services=("kafka",),
    arnless=ArnlessSource(key="SelfManagedEventSource",
                          with_arn="not allowed with EventSourceArn (self-managed Kafka has no ARN)",
                          source_id=_self_managed_id),
    status=StatusColumns(counts=frozenset({"committed", "on_failure", "dropped"}), acked="committed",
                         lag="offset_lag"),
    templates=TemplateSupport(sam_events=(("MSK", "Stream"), ("SelfManagedKafka", "KafkaBootstrapServers")),
                              resources=(("AWS::MSK::Cluster", "esm.sources.kafka.template:CLUSTER"),
                                         ("AWS::MSK::ServerlessCluster", "esm.sources.kafka.template:CLUSTER")),
                              label=_label),
    extension=(("secrets", ""), ("kafka_tls", ""), ("on_failure_kafka", ""),
               ("parallelization_factor", " (Kinesis and DynamoDB Streams take ParallelizationFactor)")),
    extension_rules="esm.config.kafka_access:check_kafka_extension",
    lanes_from_extension=True,
    unique_group_keys=("SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig"),
    conformance="tests.conformance.sources:KafkaSource",
    answers=ApiAnswers(
        duplicate=('An event source mapping with event source ("{source}"), function ("{function_arn}"), '
                   'topics ("{topics}") already exists. Please update or delete the existing mapping with UUID {uuid}'),
        missing="Cluster not found: {arn}",
        exists="esm.sources.kafka.rules:cluster_exists",  # an MSK cluster; a self-managed one cannot be asked
    ),
    safety="esm.sources.kafka.safety",
    replay="esm.sources.kafka.replay",
    max_function_timeout=840,  # 14 minutes, as Lambda allows a Kafka or MSK mapping's function
)
