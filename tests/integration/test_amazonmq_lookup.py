"""An Amazon MQ broker's ARN does not say its engine: esm asks mq:DescribeBroker, as Lambda does
(behaviour §9.11), on moto's Amazon MQ. The engine tells RabbitMQ from ActiveMQ when the mapping has
no `esm.broker`; the endpoints tell the running source where the broker is."""

from __future__ import annotations

import os
import uuid

import pytest

from esm.aws import AwsClients
from esm.config.settings import AwsSettings
from esm.sources import amazonmq
from tests.support.mq_brokers import moto_broker

pytestmark = pytest.mark.usefixtures("backends")


@pytest.mark.parametrize("engine", [amazonmq.RABBITMQ, amazonmq.ACTIVEMQ])
async def test_describe_broker_tells_the_engine(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_MQ", os.environ["ESM_AWS_ENDPOINT"])
    arn = await moto_broker(engine)
    assert amazonmq.engine_of(arn) == engine


def test_an_unknown_broker_leaves_the_engine_untold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_MQ", os.environ["ESM_AWS_ENDPOINT"])
    assert amazonmq.engine_of(f"arn:aws:mq:us-east-1:123456789012:broker:gone:b-{uuid.uuid4()}") is None


async def test_the_running_source_reads_the_brokers_endpoints() -> None:
    arn = await moto_broker(amazonmq.ACTIVEMQ)
    endpoints = await amazonmq.broker_endpoints(AwsClients(AwsSettings()), arn)
    assert any(uri.startswith("stomp+ssl://") for uri in endpoints), endpoints
