"""The validated, frozen shape of an esm configuration.

`esm.config.loading` turns a YAML file into these objects; everything else in esm reads only these.
Mappings keep Lambda's CreateEventSourceMapping field names in `request` (the validated dict),
with the few values the daemon needs often lifted into typed attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from esm.core.inflight import DEFAULT_MAX_IN_FLIGHT_BYTES

DEFAULT_FUNCTION_TIMEOUT = 30.0
DEFAULT_METRICS_LISTEN = "127.0.0.1:9090"
DEFAULT_SHUTDOWN_TIMEOUT = 25.0
DEFAULT_STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class FunctionTarget:
    """One entry of `functions:`: exactly one of url, lambda_arn, handler is set."""

    name: str
    url: str | None = None
    lambda_arn: str | None = None
    handler: str | None = None
    timeout: float = DEFAULT_FUNCTION_TIMEOUT
    # None means "decide from the target": 1 for an emulator-style URL, else the mapping's concurrency.
    max_concurrency: int | None = None
    # The execution role ARN stream records name as `invokeIdentityArn` (esm.identity).
    role: str | None = None

    @property
    def kind(self) -> str:
        if self.url is not None:
            return "url"
        if self.lambda_arn is not None:
            return "lambda"
        return "handler"


@dataclass(frozen=True)
class AwsSettings:
    """Overrides of what the AWS SDK would find itself (region, per-service endpoints)."""

    region: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def endpoint_for(self, service: str) -> str | None:
        return self.endpoints.get(service)


class ListenAddress:
    """A `listen: "host:port"` setting (an IPv6 host in brackets), read as host and port."""

    listen: str

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class MetricsSettings(ListenAddress):
    listen: str = DEFAULT_METRICS_LISTEN


@dataclass(frozen=True)
class ApiCredentials:
    """The control API's access key: each part is a reference, `{env: VAR}` or `{file: PATH}`
    (the key id may also be `{value: ...}`); the secret itself is never in the config."""

    access_key_id: Mapping[str, str]
    secret_access_key: Mapping[str, str]


@dataclass(frozen=True)
class ApiSettings(ListenAddress):
    """`api:`, the Lambda-compatible control API (esm.api); absent means off."""

    listen: str
    credentials: ApiCredentials | None = None


@dataclass(frozen=True)
class CheckpointSettings:
    sqlite: str | None = "./esm-state/checkpoints.db"
    dynamodb_table: str | None = None


@dataclass(frozen=True)
class Extension:
    """The mapping's `esm:` key (behaviour §9.10): what esm adds beyond Lambda's API."""

    name: str | None = None
    transform: str | None = None
    max_in_flight_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES
    # Kafka connection security (esm.config.kafka_access): where secrets come from outside AWS (by
    # URI; absolute paths), TLS on/off against Lambda's default, a kafka:// topic in another cluster.
    secrets: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    kafka_tls: bool | None = None
    on_failure_kafka: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class MappingSettings:
    """One event source mapping: a validated CreateEventSourceMapping request plus `esm:`."""

    index: int
    uuid: str
    name: str
    source: str  # a source kind: a key of esm.registry.SOURCES ("sqs", "kinesis", "dynamodb", "kafka")
    function: FunctionTarget
    request: Mapping[str, Any]
    extension: Extension
    # Where records come from: the EventSourceArn, or for self-managed Kafka its bootstrap servers.
    source_id: str = ""
    # Seconds; Kafka's default is 0.5 s, which the integer API field cannot express.
    batching_window: float = 0.0

    def get(self, key: str, default: Any = None) -> Any:
        return self.request.get(key, default)

    @property
    def enabled(self) -> bool:
        return bool(self.request.get("Enabled", True))


@dataclass(frozen=True)
class Config:
    functions: Mapping[str, FunctionTarget]
    mappings: tuple[MappingSettings, ...]
    aws: AwsSettings = field(default_factory=AwsSettings)
    checkpoints: CheckpointSettings = field(default_factory=CheckpointSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    base_dir: str = "."
    api: ApiSettings | None = None
