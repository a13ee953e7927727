"""judge(): a function's answer into success / partial / function error / invocation error (behaviour §3, §9.1)."""

import pytest

from esm.invokers.base import FunctionError, InvocationError, Succeeded
from esm.core.outcomes import FUNCTION_ERROR, INVALID_RESPONSE, INVOCATION_ERROR, PARTIAL, SUCCESS, judge

IDS = ["a", "b", "c"]


def kind(body, rbif=True):
    return judge(Succeeded(body=body), report_item_failures=rbif, batch_ids=IDS).kind


@pytest.mark.parametrize("body", [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}, "ok", [1]])
def test_complete_success_shapes(body):
    """behaviour §3: null/empty response, {}, batchItemFailures null or [] are complete success."""
    assert kind(body) == SUCCESS


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemId": "a"}],
        [{"itemIdentifier": "zzz"}],
        ["a"],
        "a",
    ],
)
def test_invalid_partial_responses_fail_the_whole_batch(failures):
    """behaviour §3: an itemIdentifier that is "", null, under a wrong key or not in the batch fails everything."""
    outcome = judge(Succeeded(body={"batchItemFailures": failures}), report_item_failures=True, batch_ids=IDS)
    assert outcome.kind == FUNCTION_ERROR and outcome.failed_everything
    # behaviour §4 "Recorded against real AWS": retried like a failure, but the function did not error.
    assert outcome.invalid_response and outcome.answer == INVALID_RESPONSE


def test_valid_partial_response_names_the_failures():
    """behaviour §3: with ReportBatchItemFailures, listed items failed and the rest succeeded."""
    outcome = judge(Succeeded(body={"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}),
                    report_item_failures=True, batch_ids=IDS)
    assert outcome.kind == PARTIAL and outcome.failed_ids == {"b", "c"}


def test_partial_response_ignored_without_report_batch_item_failures():
    """behaviour §3: partial responses are honoured only with FunctionResponseTypes=[ReportBatchItemFailures]."""
    assert kind({"batchItemFailures": [{"itemIdentifier": "b"}]}, rbif=False) == SUCCESS
    assert kind({"batchItemFailures": [{"itemIdentifier": ""}]}, rbif=False) == SUCCESS


def test_function_error_is_complete_failure_even_with_rbif():
    """behaviour §3: a function error fails the whole batch, even with ReportBatchItemFailures."""
    outcome = judge(FunctionError("Unhandled", "boom"), report_item_failures=True, batch_ids=IDS)
    assert outcome.kind == FUNCTION_ERROR and "boom" in outcome.reason
    assert not outcome.invalid_response and outcome.answer == FUNCTION_ERROR


def test_invocation_error_carries_retry_after():
    """behaviour §9.1: throttles are invocation errors, retried with backoff (Retry-After honoured)."""
    outcome = judge(InvocationError("429", status=429, retry_after=2.0), report_item_failures=False, batch_ids=IDS)
    assert outcome.kind == INVOCATION_ERROR and outcome.retry_after == 2.0


def test_custom_identifier_reader():
    """behaviour §3: Kafka identifiers are objects; sources supply how to read them."""
    def read(value):
        return (value.get("partition"), value.get("offset")) if isinstance(value, dict) else None
    outcome = judge(Succeeded(body={"batchItemFailures": [{"itemIdentifier": {"partition": "t-0", "offset": 5}}]}),
                    report_item_failures=True, batch_ids=[("t-0", 5), ("t-0", 6)], read_identifier=read)
    assert outcome.kind == PARTIAL and outcome.failed_ids == {("t-0", 5)}
