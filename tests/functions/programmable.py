"""A Lambda handler whose behaviour the test event chooses, run by the Runtime Interface Emulator.

`scripts/backends start` runs it as `programmable.handler` under the RIE (``ESM_FUNCTION_URL``,
function timeout 3 s). An event that is a dict with an ``"esm_test"`` dict controls it; the keys
apply in this order, each optional:

- ``{"sleep": seconds}``: sleep first (to provoke timeouts or measure concurrency);
- ``{"exit": code}``: end the runtime process at once (``os._exit``), a crash;
- ``{"raise": "message"}``: raise ``RuntimeError(message)``, a function error;
- ``{"return": value}``: return ``value`` exactly (e.g. a ``batchItemFailures`` response).

Any other dict event returns ``{"ok": True, "records": len(event.get("Records", []))}``;
a non-dict event returns the same with ``records`` 0.
"""

from __future__ import annotations

import os
import time
from typing import Any


def handler(event: Any, context: Any) -> Any:
    control = event.get("esm_test") if isinstance(event, dict) else None
    if isinstance(control, dict):
        if "sleep" in control:
            time.sleep(float(control["sleep"]))
        if "exit" in control:
            os._exit(int(control["exit"]))
        if "raise" in control:
            raise RuntimeError(str(control["raise"]))
        if "return" in control:
            return control["return"]
    records = event.get("Records", []) if isinstance(event, dict) else []
    return {"ok": True, "records": len(records)}
