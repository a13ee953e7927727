"""Event sources: one module per service, registered here by the name config.py gives a source.

A source knows its service and nothing about functions (DESIGN.md). `SOURCES` maps a source
kind (`sqs`, `kinesis`, `kafka`) to the class that runs one mapping of that kind.
"""

from __future__ import annotations

from typing import Any

SOURCES: dict[str, Any] = {}
