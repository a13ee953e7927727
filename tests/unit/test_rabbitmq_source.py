"""The RabbitMQ source's pure parts: Lambda's document details, its config rules, which `mq`
requests it claims (behaviour §1, §2, §9.11)."""

from __future__ import annotations

import datetime as dt
import decimal
from types import SimpleNamespace

import orjson
import pytest

from esm.config.loading import parse_config
from esm.core.records import Record
from esm.errors import ConfigError
from esm.filtering import compile_filters
from esm.sources.rabbitmq.records import RabbitFormat, basic_properties, header_value, lambda_time, rmq_record
from esm.sources.rabbitmq.rules import claims
from tests.support.rabbitmq import BROKER_ARN, config


def test_timestamps_are_written_as_lambda_writes_them() -> None:
    """behaviour §9.11: "Jan 1, 1970, 12:33:41 AM" (Lambda's recorded example), in UTC, 12-hour clock."""
    assert lambda_time(dt.datetime(1970, 1, 1, 0, 33, 41, tzinfo=dt.timezone.utc)) == "Jan 1, 1970, 12:33:41 AM"
    assert lambda_time(dt.datetime(2024, 7, 9, 13, 5, 9, tzinfo=dt.timezone.utc)) == "Jul 9, 2024, 1:05:09 PM"
    assert lambda_time(dt.datetime(2024, 7, 9, 12, 0, 0)) == "Jul 9, 2024, 12:00:00 PM"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert lambda_time(dt.datetime(2024, 7, 9, 1, 0, 0, tzinfo=plus_two)) == "Jul 8, 2024, 11:00:00 PM"


def test_header_values_take_lambdas_forms() -> None:
    """behaviour §9.11: long strings as {"bytes": [...]} (Java's signed bytes), byte arrays as lists,
    timestamps as Lambda's dates, tables and arrays element by element, numbers and booleans as they are."""
    assert header_value("value1") == {"bytes": [118, 97, 108, 117, 101, 49]}
    assert header_value("é") == {"bytes": [-61, -87]}
    assert header_value(b"\xff") == {"bytes": [-1]}
    assert header_value(bytearray(b"\x01\x80")) == [1, -128]
    assert header_value({"n": 10, "t": True, "d": decimal.Decimal("1.5"), "l": ["a", 2], "v": None}) == {
        "n": 10, "t": True, "d": 1.5, "l": [{"bytes": [97]}, 2], "v": None}
    assert header_value(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) == "Jan 1, 1970, 12:00:00 AM"


def _message(**overrides: object) -> SimpleNamespace:
    fields = dict(content_type=None, content_encoding=None, headers=None, delivery_mode=2, priority=None,
                  correlation_id=None, reply_to=None, expiration=None, message_id="m1", timestamp=None, type=None,
                  user_id=None, app_id=None, cluster_id="", body=b'{"kind":"a"}', redelivered=True, delivery_tag=7)
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_payload_is_keyed_by_queue_and_vhost_and_filters_see_decoded_data() -> None:
    """behaviour §2, §5: the payload lists the messages under `<queue>::<vhost>`; a filter on `data`
    matches the decoded body."""
    record = rmq_record(_message(expiration=1.5), channel=1)
    assert record.event["basicProperties"]["expiration"] == "1500"
    assert record.event["redelivered"] is True
    fmt = RabbitFormat(source_arn=BROKER_ARN, queue="orders::/")
    document = orjson.loads(fmt.payload([record]))
    assert document == {"eventSource": "aws:rmq", "eventSourceArn": BROKER_ARN,
                        "rmqMessagesByQueue": {"orders::/": [record.event]}}
    assert fmt.keep(compile_filters(['{"data": {"kind": ["a"]}}']), record)
    assert not fmt.keep(compile_filters(['{"data": {"kind": ["b"]}}']), record)
    assert fmt.read_identifier("m1") is None  # no partial batch responses for Amazon MQ
    assert list(basic_properties(_message()))[-1] == "bodySize"
    assert isinstance(record, Record) and record.item_id == "m1"


def test_claims_amqp_brokers_and_virtual_hosts() -> None:
    """The `mq` service is shared with ActiveMQ: RabbitMQ claims amqp:// and amqps:// brokers, and
    without esm.broker any request with a VIRTUAL_HOST."""
    assert claims({}, {"broker": "amqps://b-1.mq.us-east-1.amazonaws.com:5671"})
    assert claims({}, {"broker": "AMQP://127.0.0.1:5672"})
    assert claims({"SourceAccessConfigurations": [{"Type": "VIRTUAL_HOST", "URI": "/"}]}, None)
    assert not claims({}, {"broker": "stomp+ssl://b-1.mq.us-east-1.amazonaws.com:61614"})
    assert not claims({"SourceAccessConfigurations": [{"Type": "VIRTUAL_HOST", "URI": "/"}]},
                      {"broker": "stomp://127.0.0.1:61613"})


def test_without_esm_broker_a_virtual_host_is_enough() -> None:
    """behaviour §9.11: esm.broker may be left out (the source asks mq:DescribeBroker for the
    broker's endpoints when it starts); a VIRTUAL_HOST still says the mapping is RabbitMQ's."""
    mapping = _mapping(SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": "s"},
                                                   {"Type": "VIRTUAL_HOST", "URI": "/"}])
    del mapping["esm"]
    [parsed] = parse_config(config(mapping), base_dir=".").mappings
    assert parsed.source == "rabbitmq" and "broker" not in parsed.extension.raw


def _mapping(**fields: object) -> dict[str, object]:
    return {"EventSourceArn": BROKER_ARN, "FunctionName": "fn", "Queues": ["q"],
            "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": "s"}],
            "esm": {"broker": "amqps://b-1.mq.us-east-1.amazonaws.com:5671"}, **fields}


def test_config_defaults() -> None:
    """behaviour §1: BatchSize defaults to 100, the batching window to 0.5 s; up to 10,000 and 300 s."""
    [mapping] = parse_config(config(_mapping()), base_dir=".").mappings
    assert (mapping.source, mapping.get("BatchSize"), mapping.batching_window) == ("rabbitmq", 100, 0.5)
    [mapping] = parse_config(config(_mapping(BatchSize=10000, MaximumBatchingWindowInSeconds=300)),
                             base_dir=".").mappings
    assert (mapping.get("BatchSize"), mapping.batching_window) == (10000, 300.0)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"FunctionResponseTypes": ["ReportBatchItemFailures"]}, "FunctionResponseTypes: is not supported"),
    ({"MaximumRetryAttempts": 2}, "MaximumRetryAttempts: is not supported"),
    ({"BisectBatchOnFunctionError": True}, "BisectBatchOnFunctionError: is not supported"),
    ({"MaximumRecordAgeInSeconds": 60}, "MaximumRecordAgeInSeconds: is not supported"),
    ({"ParallelizationFactor": 2}, "ParallelizationFactor: is not supported"),
    ({"StartingPosition": "LATEST"}, "StartingPosition: is not supported"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq"}}},
     "DestinationConfig.OnFailure: is not supported"),
    ({"Queues": ["a", "b"]}, "Queues: must have at most 1 item"),
    ({"BatchSize": 10001}, "BatchSize: must be at most 10000"),
    ({"SourceAccessConfigurations": [{"Type": "VIRTUAL_HOST", "URI": "v"}]},
     "SourceAccessConfigurations: needs a BASIC_AUTH secret"),
    ({"SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": "s"}, {"Type": "SASL_SCRAM_512_AUTH", "URI": "t"}]},
     "SASL_SCRAM_512_AUTH is not supported"),
    ({"esm": {"broker": "amqp://user:pw@host"}}, "esm.broker: must not carry a user or password"),
    ({"esm": {"broker": "amqp://host/vh"}}, "esm.broker: must not name a virtual host"),
    # A scheme neither Amazon MQ source claims: the mapping is told how to say which it is.
    ({"esm": {"broker": "http://host"}}, "nothing in the mapping says which it is"),
])
def test_what_lambda_refuses_for_amazon_mq_is_refused(fields: dict[str, object], expected: str) -> None:
    """behaviour §1, §9.11: a batch succeeds or fails whole and goes back to the broker, so partial
    responses, retries, bisecting, record ages and destinations are refused; one queue, a BASIC_AUTH
    secret, a broker URI without credentials or vhost."""
    with pytest.raises(ConfigError) as caught:
        parse_config(config(_mapping(**fields)), base_dir=".")
    assert expected in str(caught.value), str(caught.value)


SAM_MQ = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: s3://artifacts/consumer.zip
      Events:
        Orders:
          Type: MQ
          Properties:
            Broker: arn:aws:mq:us-east-1:000000000000:broker:shop:b-0d6a3bd1-1c2e-4f5a-9b8c-7d6e5f4a3b2c
            Queues: [orders]
            BatchSize: 50
            SourceAccessConfigurations:
              - {Type: BASIC_AUTH, URI: arn:aws:secretsmanager:us-east-1:000000000000:secret:shop-mq}
              - {Type: VIRTUAL_HOST, URI: /shop}
"""


def test_a_sam_mq_event_becomes_a_rabbitmq_mapping(tmp_path) -> None:
    """behaviour §9.12: `esm run --template` reads a SAM `MQ` event with a VIRTUAL_HOST as a RabbitMQ
    mapping: its broker, queue, batch size and access configurations as the template gives them."""
    from esm.templates import TemplateOptions, load_template

    path = tmp_path / "template.yaml"
    path.write_text(SAM_MQ)
    options = TemplateOptions(template=str(path), offline=True, functions_url="http://127.0.0.1:9/{function}")
    loaded = load_template(options)
    (mapping,) = loaded.config.mappings
    assert (mapping.source, mapping.get("Queues"), mapping.get("BatchSize")) == ("rabbitmq", ["orders"], 50)
    assert mapping.source_id.endswith("broker:shop:b-0d6a3bd1-1c2e-4f5a-9b8c-7d6e5f4a3b2c")
    assert {"Type": "VIRTUAL_HOST", "URI": "/shop"} in mapping.get("SourceAccessConfigurations")


def test_a_function_timeout_over_14_minutes_is_refused() -> None:
    """behaviour §9.11: Lambda lets an Amazon MQ mapping's function run at most 14 minutes: a
    function target whose `timeout:` is longer is refused when the config is read (esm validate,
    esm run, the control API); 14 minutes exactly is taken."""
    text = config(_mapping(), handler="tests.support.rabbitmq:handle")
    over = text.replace("handler: tests.support.rabbitmq:handle", "handler: tests.support.rabbitmq:handle\n    timeout: 841")
    assert over != text
    with pytest.raises(ConfigError) as caught:
        parse_config(over, base_dir=".")
    [problem] = caught.value.problems
    assert str(problem) == ("event_source_mappings[0].FunctionName: the timeout of function 'fn' (841s) is over "
                            "840s, the most Lambda lets a function run for Amazon MQ for RabbitMQ event "
                            "sources (behaviour §1)")
    [mapping] = parse_config(over.replace("timeout: 841", "timeout: 840"), base_dir=".").mappings
    assert mapping.function.timeout == 840
