"""esm's exception types: each says whether retrying can help (`retriable`).

ConfigError carries every problem found in a configuration, each with its zero-based path, so a
user fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

from dataclasses import dataclass


class EsmError(Exception):
    retriable = False


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(EsmError):
    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SourceUnavailable(EsmError):
    retriable = True


class LeaseLost(EsmError):
    retriable = False


class DestinationError(EsmError):
    retriable = True


class UnsupportedDestination(EsmError):
    """An on-failure destination esm cannot deliver to (yet): not retriable, a configuration matter."""

    retriable = False
