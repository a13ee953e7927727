"""Observability: what esm tells operators about itself.

`metrics` defines the Prometheus series (behaviour §6) and the per-mapping labels; `events` names each
thing worth counting so one call both logs it (with the mapping's context) and counts it; `health`
serves /metrics, /healthz and /readyz; `status` is `esm status`; `logs` configures text or JSON
logging; `loop_monitor` measures event-loop lag. Nothing here is re-exported: import the module.
"""
