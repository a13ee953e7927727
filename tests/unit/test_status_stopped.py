"""`esm status` for a mapping its source stopped (behaviour §9.11): the row says Disabled and a
line under the table gives Lambda's StateTransitionReason code and what the source saw."""

from __future__ import annotations

from prometheus_client import generate_latest

from esm.observability.metrics import Metrics
from esm.observability.status import read_rows, render


def test_a_stopped_mapping_is_shown_disabled_with_its_reason() -> None:
    metrics = Metrics()
    for uuid, name, state in (("u-1", "orders", "Enabled"), ("u-2", "refused", "Disabled")):
        metrics.info.labels(uuid, "rabbitmq", name, "fn", "arn:aws:mq:us-east-1:1:broker:b:b-1").set(1)
        metrics.for_mapping(uuid, "rabbitmq").set_state(state)
    metrics.stopped.labels("u-2", "rabbitmq", "EVENT_SOURCE_AUTHN_ERROR").set(1)
    rows = read_rows(generate_latest(metrics.registry).decode())
    assert {r.name: (r.state, r.stopped) for r in rows} == {
        "orders": ("Enabled", None), "refused": ("Disabled", "EVENT_SOURCE_AUTHN_ERROR")}
    readiness = {"ready": True, "checks": {
        "refused/source": {"ready": True, "detail": "stopped: EVENT_SOURCE_AUTHN_ERROR: the broker refused user 'u'"},
        "orders/source": {"ready": True, "detail": "ok"}}}
    lines = render(rows, readiness).splitlines()
    assert "stopped  refused: EVENT_SOURCE_AUTHN_ERROR: the broker refused user 'u'" in lines
    assert not any(line.startswith("stopped  orders") for line in lines)
    # Without /readyz the code alone still says why.
    assert "stopped  refused: EVENT_SOURCE_AUTHN_ERROR" in render(rows, None).splitlines()
