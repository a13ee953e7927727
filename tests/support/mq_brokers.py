"""Amazon MQ brokers made on moto, for the tests that find a broker the way Lambda does
(mq:DescribeBroker): moto keeps the broker's engine and lists (made-up) endpoints for it."""

from __future__ import annotations

import os
import uuid

from aiobotocore.session import get_session


async def moto_broker(engine: str) -> str:
    """A broker made on moto (RABBITMQ or ACTIVEMQ), named by the ARN form AWS gives (broker:<name>:<id>)."""
    name = f"b{uuid.uuid4().hex[:8]}"
    version = "3.13" if engine == "RABBITMQ" else "5.18"
    async with get_session().create_client("mq", region_name="us-east-1",
                                           endpoint_url=os.environ["ESM_AWS_ENDPOINT"]) as mq:
        made = await mq.create_broker(BrokerName=name, EngineType=engine, EngineVersion=version,
                                      HostInstanceType="mq.t3.micro", DeploymentMode="SINGLE_INSTANCE",
                                      PubliclyAccessible=False, AutoMinorVersionUpgrade=False,
                                      Users=[{"Username": "esm", "Password": "esm-password-1"}])
    return f"arn:aws:mq:us-east-1:000000000000:broker:{name}:{made['BrokerId']}"
