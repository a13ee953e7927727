"""The ActiveMQ source's pure parts (behaviour §1, §2, §9.11): its config rules with Lambda's limits
and refusals, `claims` on the broker ARN it shares with RabbitMQ, and the `aws:mq` document built
from a STOMP frame's headers."""

from __future__ import annotations

import base64
import textwrap

import orjson
import pytest

from esm.config.loading import parse_config
from esm.errors import ConfigError
from esm.sources.activemq.records import ActiveMqFormat, activemq_event
from esm.sources.activemq.rules import BrokerAddress, claims, stomp_endpoint

ARN = "arn:aws:mq:us-east-1:000000000000:broker:b:b-1234"
SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:mq"


def config(extra: str = "", broker: str = "stomp://127.0.0.1:61613", access: str = "BASIC_AUTH") -> str:
    return textwrap.dedent(f"""
        functions:
          f: {{handler: "tests.support.recorder:handle"}}
        event_source_mappings:
          - {{EventSourceArn: "{ARN}", FunctionName: f, Queues: [orders],
              SourceAccessConfigurations: [{{Type: {access}, URI: "{SECRET}"}}],
              esm: {{broker: "{broker}"}} {extra}}}
    """)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=".")
    return [str(p) for p in caught.value.problems]


def test_lambdas_defaults_for_an_activemq_mapping():
    """behaviour §1: BatchSize 100 and a 0.5 s window when the mapping gives none."""
    [mapping] = parse_config(config(), base_dir=".").mappings
    assert (mapping.source, mapping.get("BatchSize"), mapping.batching_window) == ("activemq", 100, 0.5)


@pytest.mark.parametrize("extra, expected", [
    (", FunctionResponseTypes: [ReportBatchItemFailures]",
     "FunctionResponseTypes: is not supported for Amazon MQ for ActiveMQ event sources"),
    (", MaximumRetryAttempts: 2", "MaximumRetryAttempts: is not supported for Amazon MQ for ActiveMQ event sources"),
    (", BisectBatchOnFunctionError: true",
     "BisectBatchOnFunctionError: is not supported for Amazon MQ for ActiveMQ event sources"),
    (", StartingPosition: LATEST", "StartingPosition: is not supported for Amazon MQ for ActiveMQ event sources"),
    (", DestinationConfig: {OnFailure: {Destination: 'arn:aws:sqs:us-east-1:000000000000:dlq'}}",
     "DestinationConfig: is not supported for Amazon MQ for ActiveMQ event sources"),
    (", BatchSize: 10001", "BatchSize: must be at most 10000 (got 10001)"),
])
def test_what_lambda_refuses_for_mq_is_refused(extra: str, expected: str):
    """behaviour §1: the retry, bisect, partial-response, destination and position settings are not
    for MQ; BatchSize goes to 10,000."""
    assert f"event_source_mappings[0].{expected}" in problems(config(extra))


def test_the_broker_uri_and_the_secret_are_checked():
    """behaviour §9.11: esm.broker is a STOMP URI without credentials; the secret is BASIC_AUTH."""
    assert problems(config(broker="stomp://user:pw@127.0.0.1:61613")) == [
        "event_source_mappings[0].esm.broker: must not hold a user or password: they come from the BASIC_AUTH secret"]
    found = problems(config(access="VIRTUAL_HOST"))
    assert "event_source_mappings[0].SourceAccessConfigurations[0].Type: VIRTUAL_HOST is not supported for " \
           "Amazon MQ for ActiveMQ event sources (only BASIC_AUTH)" in found


def test_claims_take_stomp_uris_only():
    """behaviour §9.11: of the sources sharing `mq` ARNs, ActiveMQ is the one esm.broker names by
    a STOMP scheme."""
    assert claims({}, {"broker": "stomp://h:61613"}) and claims({}, {"broker": "stomp+ssl://h:61614"})
    assert not claims({}, {"broker": "amqps://h:5671"}) and not claims({}, {})


def test_a_stomp_frame_becomes_lambdas_message_in_lambdas_order():
    """behaviour §2, §9.11: the keys of Lambda's recorded ActiveMQ events, in order, from the
    frame's headers; a content-length header makes a bytes message; other headers are properties."""
    headers = {"message-id": "ID:1", "destination": "/queue/orders", "timestamp": "1599863938941",
               "expires": "0", "priority": "4", "persistent": "true", "redelivered": "true",
               "content-length": "5", "subscription": "s", "ack": "a", "tenant": "x"}
    event = activemq_event(headers, b"hello", 1599863938950)
    assert list(event) == ["messageID", "messageType", "timestamp", "deliveryMode", "correlationID", "replyTo",
                           "destination", "redelivered", "type", "expiration", "priority", "data", "brokerInTime",
                           "brokerOutTime", "properties"]
    assert event == {"messageID": "ID:1", "messageType": "jms/bytes-message", "timestamp": 1599863938941,
                     "deliveryMode": 2, "correlationID": "", "replyTo": "null",
                     "destination": {"physicalName": "orders"}, "redelivered": True, "type": "",
                     "expiration": 0, "priority": 4, "data": base64.b64encode(b"hello").decode(),
                     "brokerInTime": 1599863938941, "brokerOutTime": 1599863938950, "properties": {"tenant": "x"}}
    assert activemq_event({"persistent": "false"}, b"t", 1)["messageType"] == "jms/text-message"


def test_the_payload_is_the_aws_mq_envelope():
    """behaviour §2: `{"eventSource": "aws:mq", "eventSourceArn": ..., "messages": [...]}`."""
    from esm.core.records import Record
    event = activemq_event({"message-id": "ID:2"}, b"x", 5)
    payload = orjson.loads(ActiveMqFormat(source_arn=ARN).payload([Record(event, "ID:2", 1, 0.0, None)]))
    assert payload == {"eventSource": "aws:mq", "eventSourceArn": ARN, "messages": [event]}


def test_the_stomp_endpoint_of_those_describe_broker_lists():
    """behaviour §9.11: without esm.broker the source connects to the broker's stomp+ssl:// endpoint."""
    endpoints = ["ssl://b-1.mq.us-east-1.amazonaws.com:61617", "amqp+ssl://b-1.mq.us-east-1.amazonaws.com:5671",
                 "stomp+ssl://b-1.mq.us-east-1.amazonaws.com:61614", "wss://b-1.mq.us-east-1.amazonaws.com:61619"]
    assert stomp_endpoint(endpoints) == BrokerAddress("b-1.mq.us-east-1.amazonaws.com", 61614, True)
    assert stomp_endpoint(endpoints[:2]) is None


def test_a_function_timeout_over_14_minutes_is_refused():
    """behaviour §9.11: an Amazon MQ mapping's function may run at most 14 minutes (840 s)."""
    slow = config().replace('f: {handler: "tests.support.recorder:handle"}',
                            'f: {handler: "tests.support.recorder:handle", timeout: 900}')
    assert "timeout: 900" in slow
    assert problems(slow) == ["event_source_mappings[0].FunctionName: the timeout of function 'f' (900s) is over "
                              "840s, the most Lambda lets a function run for Amazon MQ for ActiveMQ event "
                              "sources (behaviour §1)"]
