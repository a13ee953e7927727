"""The safety rules (esm.safety) on given facts: each rule names AWS's advice and the fix, warns
exactly when the settings break that advice, and is silent when a fact was not read (behaviour §1, §7)."""

from __future__ import annotations

import pytest
import yaml

from esm.config.loading import parse_config
from esm.safety import Facts, check
from esm.sources.sqs.safety import QueueFacts

QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"


def mapping(timeout: float = 10, function: dict | None = None, **fields):
    request = {"FunctionName": "f", "EventSourceArn": QUEUE, **fields}
    doc = {"functions": {"f": function or {"url": "http://127.0.0.1:9/", "timeout": timeout}},
           "event_source_mappings": [request]}
    return parse_config(yaml.safe_dump(doc), base_dir=".").mappings[0]


def kafka(**fields):
    request = {"FunctionName": "f", "Topics": ["orders"], "StartingPosition": "LATEST",
               "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
               "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                              {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}], **fields}
    doc = {"functions": {"f": {"url": "http://127.0.0.1:9/"}}, "event_source_mappings": [request]}
    return parse_config(yaml.safe_dump(doc), base_dir=".").mappings[0]


def good_queue(**changes) -> QueueFacts:
    values = {"visibility_timeout": 60, "retention": 345600, "max_receive_count": 5,
              "dead_letter_arn": QUEUE + "-dlq", "dead_letter_retention": 1209600, **changes}
    return QueueFacts(**values)


def checks(m, facts: Facts) -> set[str]:
    return {w.check for w in check(m, facts)}


def test_a_queue_set_as_aws_advises_passes_every_rule():
    assert checks(mapping(timeout=10), Facts(source=good_queue())) == set()


def test_no_redrive_policy_warns_and_names_the_fix():
    """AWS: configure a DLQ on the source queue (SQS mappings have no on-failure destination)."""
    [warning] = check(mapping(), Facts(source=good_queue(max_receive_count=None, dead_letter_arn=None,
                                                          dead_letter_retention=None)))
    assert warning.check == "sqs-redrive-policy"
    assert "dead-letter queue" in warning.advice and "RedrivePolicy" in warning.fix
    assert "AWS advises" in warning.line() and warning.mapping in warning.line()


@pytest.mark.parametrize(("count", "warns"), [(1, True), (4, True), (5, False), (100, False)])
def test_max_receive_count_below_five_warns(count, warns):
    """AWS: maxReceiveCount of at least 5."""
    facts = Facts(source=good_queue(max_receive_count=count, visibility_timeout=60))
    assert ("sqs-max-receive-count" in checks(mapping(), facts)) is warns


@pytest.mark.parametrize(("visibility", "window", "warns"), [(59, 0, True), (60, 0, False), (64, 5, True),
                                                              (65, 5, False)])
def test_visibility_below_six_times_the_timeout_plus_the_window_warns(visibility, window, warns):
    """AWS: visibility timeout >= 6 x function timeout + MaximumBatchingWindowInSeconds."""
    m = mapping(timeout=10, MaximumBatchingWindowInSeconds=window)
    found = check(m, Facts(source=good_queue(visibility_timeout=visibility)))
    assert ("sqs-visibility-timeout" in {w.check for w in found}) is warns
    if warns:
        assert f"{60 + window:g}" in next(w for w in found if w.check == "sqs-visibility-timeout").fix


def test_retention_shorter_than_the_receives_warns():
    """maxReceiveCount x visibility timeout must fit in the retention period, or a failing message expires
    before it reaches the DLQ; an unknown retention (ElasticMQ does not say) is no warning."""
    assert "sqs-retention" in checks(mapping(), Facts(source=good_queue(max_receive_count=10, retention=500)))
    assert "sqs-retention" not in checks(mapping(), Facts(source=good_queue(max_receive_count=10, retention=600)))
    assert "sqs-retention" not in checks(mapping(), Facts(source=good_queue(retention=None)))


def test_dead_letter_queue_keeping_messages_no_longer_than_the_source_warns():
    """AWS: the DLQ's retention longer than the source queue's (age counts from the first enqueue)."""
    assert "sqs-dead-letter-retention" in checks(mapping(), Facts(source=good_queue(dead_letter_retention=345600)))
    assert "sqs-dead-letter-retention" not in checks(mapping(), Facts(source=good_queue(dead_letter_retention=None)))


def test_reserved_concurrency_below_maximum_concurrency_warns_for_lambda_targets_only():
    """AWS: MaximumConcurrency at most the function's reserved concurrency."""
    target = {"lambda": "arn:aws:lambda:us-east-1:123456789012:function:f", "timeout": 10}
    m = mapping(function=target, ScalingConfig={"MaximumConcurrency": 5})
    assert "lambda-reserved-concurrency" in checks(m, Facts(source=good_queue(), reserved_concurrency=2))
    assert "lambda-reserved-concurrency" not in checks(m, Facts(source=good_queue(), reserved_concurrency=5))
    assert "lambda-reserved-concurrency" not in checks(m, Facts(source=good_queue(), reserved_concurrency=None))
    url = mapping(ScalingConfig={"MaximumConcurrency": 5})
    assert "lambda-reserved-concurrency" not in checks(url, Facts(source=good_queue(), reserved_concurrency=2))


def test_kafka_infinite_retries_without_destination_warns():
    """A record that always fails stops its partition for good: bound the retries or add a destination."""
    assert checks(kafka(), Facts()) == {"kafka-infinite-retries"}
    assert checks(kafka(MaximumRetryAttempts=3), Facts()) == set()
    destination = {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq"}}
    assert checks(kafka(DestinationConfig=destination), Facts()) == set()


def test_a_fact_not_read_silences_its_rules():
    assert checks(mapping(timeout=100), Facts()) == set()
