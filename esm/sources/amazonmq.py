"""Amazon MQ brokers as Lambda finds them: mq:DescribeBroker, shared by the RabbitMQ and ActiveMQ
packages (behaviour §9.11).

A broker's ARN does not say its engine. A mapping says it with `esm.broker` (the broker's URI, whose
scheme tells RabbitMQ from ActiveMQ); without it, esm asks DescribeBroker through the AWS endpoint
the environment names (AWS_ENDPOINT_URL_MQ, as every SDK reads it) for the engine when the config is
checked, and the running source asks it again, through the config's `aws:` clients, for the
broker's endpoints. Lambda does the same lookup (its execution role needs mq:DescribeBroker).
"""

from __future__ import annotations

import functools
from typing import Any

from esm.arns import parse_arn

RABBITMQ = "RABBITMQ"
ACTIVEMQ = "ACTIVEMQ"


def broker_id(arn_text: str) -> str | None:
    """The broker id DescribeBroker takes: the last part of `arn:aws:mq:…:broker:<name>:<id>`."""
    arn = parse_arn(arn_text)
    if arn is None or arn.service != "mq":
        return None
    return arn.resource.rsplit(":", 1)[-1] or None


@functools.lru_cache(maxsize=256)
def engine_of(arn_text: str) -> str | None:
    """RABBITMQ or ACTIVEMQ as DescribeBroker answers for the broker, or None when it cannot be
    asked (no endpoint answers, no credentials, an unknown broker): the config check then says how
    to name the engine instead. Asked once per ARN in a process."""
    import botocore.config
    import botocore.session

    found = broker_id(arn_text)
    arn = parse_arn(arn_text)
    if found is None or arn is None:
        return None
    config = botocore.config.Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
    try:
        client = botocore.session.get_session().create_client("mq", region_name=arn.region or "us-east-1",
                                                             config=config)
        engine = client.describe_broker(BrokerId=found).get("EngineType")
    except Exception:  # noqa: BLE001 - unreachable, unauthorised or unknown: the engine stays untold
        return None
    return str(engine).upper() if engine else None


async def broker_endpoints(clients: Any, arn_text: str) -> list[str]:
    """The broker's endpoints (URIs such as amqps://… or stomp+ssl://…) as DescribeBroker lists
    them, through the config's `aws:` clients (esm.aws.AwsClients)."""
    found = broker_id(arn_text)
    arn = parse_arn(arn_text)
    if found is None or arn is None:
        return []
    async with clients.client("mq", arn.region or None) as mq:
        answer = await mq.describe_broker(BrokerId=found)
    return [str(uri) for instance in answer.get("BrokerInstances") or [] for uri in instance.get("Endpoints") or []]

