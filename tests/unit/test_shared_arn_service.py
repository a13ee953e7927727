"""Two sources may share an ARN service (an Amazon MQ broker's ARN names RabbitMQ and ActiveMQ
alike): each descriptor's `claims` says which requests are its own, and a request that neither
claims is refused with the ways to say which (docs/design.md "Layout", behaviour §1)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from esm import registry
from esm.config.rules import check_mapping
from esm.descriptor import BASE64, DataField, SourceDescriptor

ARN = "arn:aws:mq:us-east-1:000000000000:broker:b:b-1234"


def claims_north(request: dict[str, Any], extension: dict[str, Any]) -> bool:
    return extension.get("side") == "north"


def claims_south(request: dict[str, Any], extension: dict[str, Any]) -> bool:
    return extension.get("side") == "south"


def no_rules(check: Any) -> None:
    """Throwaway sources: no rules of their own."""


def _descriptor(kind: str, claims: str) -> SourceDescriptor:
    return SourceDescriptor(kind=kind, title=kind.title(), source_class="unused:Unused",
                            rules=f"{__name__}:no_rules", data=DataField(key="data", encoding=BASE64),
                            arn_services=("mq",), claims=(f"{__name__}:{claims}", f"esm.side: {kind}"))


NORTH = _descriptor("north", "claims_north")
SOUTH = _descriptor("south", "claims_south")


@pytest.fixture
def two_sources_on_one_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "SOURCES", MappingProxyType({
        **registry.SOURCES, "north": f"{__name__}:NORTH", "south": f"{__name__}:SOUTH"}))


def _check(side: str | None) -> Any:
    return check_mapping({"EventSourceArn": ARN, "FunctionName": "f"}, frozenset(),
                         {"side": side} if side is not None else None)


@pytest.mark.parametrize("side", ["north", "south"])
def test_the_source_whose_claims_take_the_request_serves_it(two_sources_on_one_service: None, side: str) -> None:
    check = _check(side)
    assert check.source == side
    assert not [p for p in check.problems if p.path == "EventSourceArn"]


def test_a_request_no_source_claims_is_refused_with_the_ways_to_say_which(two_sources_on_one_service: None) -> None:
    check = _check(None)
    assert not check.source
    [problem] = [p for p in check.problems if p.path == "EventSourceArn"]
    assert "North and South share" in problem.message
    assert "North: esm.side: north" in problem.message and "South: esm.side: south" in problem.message

