"""What the shared modules know of the ActiveMQ source (esm.descriptor): broker ARNs it shares
with RabbitMQ (told apart by esm.broker's scheme), its config rules, the base64 `data` it filters
and transforms, its status columns and SAM's `MQ` events."""

from __future__ import annotations

from esm.descriptor import BASE64, ApiAnswers, DataField, SourceDescriptor, StatusColumns, TemplateSupport

DESCRIPTOR = SourceDescriptor(
    kind="activemq",
    title="Amazon MQ for ActiveMQ",
    source_class="esm.sources.activemq.source:ActiveMqSource",
    rules="esm.sources.activemq.rules:check",
    data=DataField(key="data", encoding=BASE64),
    arn_services=("mq",),
    claims=("esm.sources.activemq.rules:claims", "esm.broker: stomp://host:port or stomp+ssl://host:port"),
    status=StatusColumns(counts=frozenset({"deleted", "dropped"}), acked="deleted"),
    templates=TemplateSupport(sam_events=(("MQ", "Broker"),)),
    extension=(("broker", " (the broker's URI, without user or password)"),),
    answers=ApiAnswers(user_reason="USER_INITIATED"),
    max_function_timeout=840,  # 14 minutes, as Lambda allows an Amazon MQ mapping's function
)
