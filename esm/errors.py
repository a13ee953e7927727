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
    """One thing wrong at `path`. `code` is set when `message` is the very text AWS answers for it
    (with that error code), which the control API then answers alone (behaviour §10)."""

    path: str
    message: str
    code: str = ""
    detail: str = ""  # esm's reason behind AWS's fixed text: shown by `esm validate`, not answered by the API

    def __str__(self) -> str:
        text = f"{self.message} ({self.detail})" if self.detail else self.message
        return f"{self.path}: {text}" if self.path else text


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
