"""The one exception the filtering package raises for a pattern it cannot accept.

Its ``str()`` is the reason alone (for example ``Empty arrays are not allowed``), worded as
event-ruler and AWS word it (behaviour §11.2), so that configuration validation can print
``Invalid filter pattern definition: <reason>`` without rewording anything.
"""

from __future__ import annotations


class InvalidPatternError(ValueError):
    """A filter pattern is not valid; ``str(error)`` is the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason
