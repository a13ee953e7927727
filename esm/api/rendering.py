"""What the control API answers about a mapping: its EventSourceMappingConfiguration, and the
markers that page ListEventSourceMappings.

esm.api.protocol.render then keeps the members botocore's Lambda model declares.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from esm.api.entry import Entry
from esm.api.protocol import ApiError
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
    return {
        **settings.request,
        "UUID": entry.uuid,
        "FunctionArn": function_arn(settings.function, region, account),  # behaviour §9.9
        "EventSourceMappingArn": f"arn:aws:lambda:{region}:{account}:event-source-mapping:{entry.uuid}",
        "State": entry.state,
        "StateTransitionReason": entry.reason,
        "LastModified": entry.last_modified,
        "LastProcessingResult": entry.problem or entry.processing_result,
    }


def encode_marker(entry: Entry) -> str:
    # repr() of a float reads back exactly: the next page starts right after this entry.
    return base64.urlsafe_b64encode(f"{entry.created!r}/{entry.uuid}".encode()).decode()


def decode_marker(marker: str) -> tuple[float, str]:
    try:
        created, _, uuid = base64.urlsafe_b64decode(marker.encode()).decode().partition("/")
        return float(created), uuid
    except (ValueError, UnicodeDecodeError):
        raise ApiError("InvalidParameterValueException", f"Invalid Marker: {marker!r}") from None
