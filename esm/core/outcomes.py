"""What a function's answer means for its batch: the one place results become decisions.

`judge(result, ...)` is pure: it turns an InvokeResult into an Outcome (behaviour §3, §9.1):
- success: every record succeeded (a null/empty response, `{}`, `batchItemFailures` null or []),
  and always when ReportBatchItemFailures is off (the body is then ignored);
- partial: ReportBatchItemFailures is on and the response names failed items, each of which is
  in the batch;
- function_error: the function failed, or its partial response is invalid (an itemIdentifier
  that is empty, null, under the wrong key, or not in the batch): the whole batch failed. An
  invalid response is retried like a function error but is not one (`invalid_response`): the
  function answered, so an on-failure document says `functionError: null` (behaviour §4);
- invocation_error: throttled or unreachable; retried with backoff, never counted as a retry.
Sources turn outcomes into deletes, checkpoints and commits.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable

from esm.core.results import FunctionError, InvocationError, InvokeResult, Succeeded

# How an offending itemIdentifier is quoted in a reason (and so in a log line): short, whatever its size or depth.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxdict, _QUOTE.maxlist = 3, 80, 80, 4, 4

SUCCESS = "success"
PARTIAL = "partial"
FUNCTION_ERROR = "function_error"
INVOCATION_ERROR = "invocation_error"
# Not an outcome kind: how `Outcome.answer` names a function_error that was an invalid partial response.
INVALID_RESPONSE = "invalid_response"


@dataclass(frozen=True)
class Outcome:
    kind: str
    failed_ids: frozenset[Hashable] = frozenset()
    reason: str = ""
    retry_after: float | None = None
    invalid_response: bool = False  # a function_error because the partial batch response was invalid

    @property
    def failed_everything(self) -> bool:
        return self.kind in (FUNCTION_ERROR, INVOCATION_ERROR)

    @property
    def answer(self) -> str:
        """What the function answered, as on-failure documents tell it apart (an invalid partial
        response is no function error there)."""
        return INVALID_RESPONSE if self.invalid_response else self.kind


def judge(
    result: InvokeResult,
    *,
    report_item_failures: bool,
    batch_ids: Iterable[Hashable],
    read_identifier: Callable[[Any], Hashable | None] | None = None,
) -> Outcome:
    """Classify one invoke. `read_identifier` turns an itemIdentifier into a batch id (or None if malformed)."""
    if isinstance(result, InvocationError):
        return Outcome(INVOCATION_ERROR, reason=result.reason, retry_after=result.retry_after)
    if isinstance(result, FunctionError):
        return Outcome(FUNCTION_ERROR, reason=f"{result.error_type}: {result.message}")
    assert isinstance(result, Succeeded)
    if not report_item_failures:
        return Outcome(SUCCESS)
    return _partial_response(result.body, frozenset(batch_ids), read_identifier or _string_identifier)


def _string_identifier(value: Any) -> Hashable | None:
    return value if isinstance(value, str) and value else None


def _partial_response(body: Any, batch_ids: frozenset[Hashable], read: Callable[[Any], Hashable | None]) -> Outcome:
    if not isinstance(body, dict):
        # Only a JSON object can carry batchItemFailures; null or anything else reports none.
        return Outcome(SUCCESS)
    failures = body.get("batchItemFailures")
    if failures is None or failures == []:
        return Outcome(SUCCESS)
    if not isinstance(failures, list):
        return _invalid("batchItemFailures is not a list")
    failed: set[Hashable] = set()
    for index, item in enumerate(failures):
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return _invalid(f"batchItemFailures[{index}] has no itemIdentifier")
        identifier = read(item["itemIdentifier"])
        if identifier is None:
            return _invalid(f"batchItemFailures[{index}].itemIdentifier is {_QUOTE.repr(item['itemIdentifier'])}")
        if identifier not in batch_ids:
            return _invalid(f"batchItemFailures[{index}].itemIdentifier {_QUOTE.repr(item['itemIdentifier'])} "
                            "is not in the batch")
        failed.add(identifier)
    return Outcome(PARTIAL, failed_ids=frozenset(failed))


def _invalid(why: str) -> Outcome:
    return Outcome(FUNCTION_ERROR, reason=f"invalid partial batch response: {why}", invalid_response=True)
