"""An Amazon MQ broker's ARN does not say its engine: esm asks mq:DescribeBroker, as Lambda does
(behaviour §9.11), on moto's Amazon MQ. The engine tells RabbitMQ from ActiveMQ when the mapping has
no `esm.broker`; the endpoints tell the running source where the broker is."""

from __future__ import annotations

import os
import uuid

import pytest
from aiobotocore.session import get_session

from esm.aws import AwsClients
from esm.config.settings import AwsSettings
from esm.sources import amazonmq

pytestmark = pytest.mark.usefixtures("backends")


async def _broker(engine: str, version: str) -> str:
    """A broker on moto, named by the ARN form AWS gives (broker:<name>:<id>)."""
    name = f"b{uuid.uuid4().hex[:8]}"
    async with get_session().create_client("mq", region_name="us-east-1",
                                           endpoint_url=os.environ["ESM_AWS_ENDPOINT"]) as mq:
        made = await mq.create_broker(BrokerName=name, EngineType=engine, EngineVersion=version,
                                      HostInstanceType="mq.t3.micro", DeploymentMode="SINGLE_INSTANCE",
                                      PubliclyAccessible=False, AutoMinorVersionUpgrade=False,
                                      Users=[{"Username": "esm", "Password": "esm-password-1"}])
    return f"arn:aws:mq:us-east-1:123456789012:broker:{name}:{made['BrokerId']}"


@pytest.mark.parametrize("engine,version", [(amazonmq.RABBITMQ, "3.13"), (amazonmq.ACTIVEMQ, "5.18")])
async def test_describe_broker_tells_the_engine(engine: str, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_MQ", os.environ["ESM_AWS_ENDPOINT"])
    arn = await _broker(engine, version)
    assert amazonmq.engine_of(arn) == engine


def test_an_unknown_broker_leaves_the_engine_untold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_MQ", os.environ["ESM_AWS_ENDPOINT"])
    assert amazonmq.engine_of(f"arn:aws:mq:us-east-1:123456789012:broker:gone:b-{uuid.uuid4()}") is None


async def test_the_running_source_reads_the_brokers_endpoints() -> None:
    arn = await _broker(amazonmq.ACTIVEMQ, "5.18")
    endpoints = await amazonmq.broker_endpoints(AwsClients(AwsSettings()), arn)
    assert any(uri.startswith("stomp+ssl://") for uri in endpoints), endpoints
