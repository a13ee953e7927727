"""What the control API answers about a mapping: its EventSourceMappingConfiguration, and the
markers that page ListEventSourceMappings.

Per source, the members AWS adds when the request left them out, those it never answers and its
StateTransitionReason come from the source's descriptor (esm.descriptor.ApiAnswers, behaviour
§10); an empty FilterCriteria is not echoed. esm.api.protocol.render then keeps the members
botocore's Lambda model declares.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from esm import registry
from esm.api.entry import USER_INITIATED, Entry
from esm.api.protocol import ApiError
from esm.descriptor import ApiAnswers
from esm.arns import parse_arn
from esm.identity import DEFAULT_ACCOUNT, function_arn

DEFAULT_REGION = "us-east-1"


def configuration(entry: Entry, region_for: Callable[[], str | None]) -> dict[str, Any]:
    """The mapping as EventSourceMappingConfiguration; `region_for` gives the region when the
    source's ARN names none (the region the AWS clients use)."""
    settings = entry.settings
    arn = parse_arn(settings.source_id) if settings.source_id.startswith("arn:") else None
    region = (arn.region if arn else "") or region_for() or DEFAULT_REGION
    account = (arn.account if arn else "") or DEFAULT_ACCOUNT
    # A mapping its source stopped (esm.core.contract.MappingStopped) answers the code as its
    # StateTransitionReason, as Lambda does for an Amazon MQ consumer that stopped (behaviour §9.11).
    stopped = entry.supervisor.stopped if entry.supervisor is not None else None
    found = registry.find_descriptor(settings.source)
    answers = found.answers if found is not None else ApiAnswers()
    document = {
        **dict(answers.defaults),
        **settings.request,
        "UUID": entry.uuid,
        "FunctionArn": function_arn(settings.function, region, account),  # behaviour §9.9
        "EventSourceMappingArn": f"arn:aws:lambda:{region}:{account}:event-source-mapping:{entry.uuid}",
        "State": entry.state,
        "StateTransitionReason": (stopped.reason if stopped is not None else
                                  answers.user_reason if entry.reason in (None, USER_INITIATED) else entry.reason),
        "LastModified": entry.last_modified,
        "LastProcessingResult": entry.problem or (f"PROBLEM: {stopped}" if stopped is not None else
                                                  entry.processing_result),
    }
    if not (document.get("FilterCriteria") or {}).get("Filters"):
        document.pop("FilterCriteria", None)
    for key in answers.omitted:
        document.pop(key, None)
    return document


def encode_marker(entry: Entry) -> str:
    # repr() of a float reads back exactly: the next page starts right after this entry.
    return base64.urlsafe_b64encode(f"{entry.created!r}/{entry.uuid}".encode()).decode()


def decode_marker(marker: str) -> tuple[float, str]:
    try:
        created, _, uuid = base64.urlsafe_b64decode(marker.encode()).decode().partition("/")
        return float(created), uuid
    except (ValueError, UnicodeDecodeError):
        raise ApiError("InvalidParameterValueException", f"Invalid Marker: {marker!r}") from None
