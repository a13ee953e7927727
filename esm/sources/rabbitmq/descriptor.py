"""What the shared modules know of the RabbitMQ source (esm.descriptor): Amazon MQ broker ARNs
(shared with ActiveMQ: `claims` tells them apart), its config rules and its `esm.broker` key, the
base64 `data` it filters and transforms, its status columns and SAM's `MQ` events."""

from __future__ import annotations

from esm.descriptor import BASE64, ApiAnswers, DataField, SourceDescriptor, StatusColumns, TemplateSupport

DESCRIPTOR = SourceDescriptor(
    kind="rabbitmq",
    title="Amazon MQ for RabbitMQ",
    source_class="esm.sources.rabbitmq.source:RabbitSource",
    rules="esm.sources.rabbitmq.rules:check",
    data=DataField(key="data", encoding=BASE64),
    arn_services=("mq",),
    claims=("esm.sources.rabbitmq.rules:claims",
            "esm.broker amqp://… or amqps://…, or a VIRTUAL_HOST SourceAccessConfiguration"),
    status=StatusColumns(counts=frozenset({"deleted", "dropped"}), acked="deleted"),
    templates=TemplateSupport(sam_events=(("MQ", "Broker"),)),
    extension=(("broker", " (the broker's URI: amqp:// or amqps:// for RabbitMQ)"),),
    extension_rules="esm.sources.rabbitmq.rules:check_extension",
    conformance="tests.conformance.queues:RabbitQueue",
    answers=ApiAnswers(user_reason="USER_INITIATED"),
    max_function_timeout=840,  # 14 minutes, as Lambda allows an Amazon MQ mapping's function
)
