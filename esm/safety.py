"""Safety checks: settings that will lose or duplicate messages, warned about before they do.

Each rule reads one mapping's settings plus what its source and its function say about
themselves (`Facts`: the source's own facts, such as an SQS queue's attributes, and the
function's reserved concurrency) and names AWS's advice and the fix (behaviour §1, §7). A
source's rules and the reading of its facts live in its package, named by its descriptor's
`safety` (esm.descriptor); this module holds the rule about the function target, gathers the
facts and reports. The rules are pure; `gather_facts` asks the services, and a fact it cannot
read (an endpoint that does not serve the call, no network) only leaves its rules silent and is
said in `Facts.unread`.

They run at start (the daemon, once its mappings run) and in `esm validate` (which reads the
queue attributes when the endpoint answers). `report` logs each as a warning (event
`ConfigWarning`) and sets `esm_config_warnings{mapping,check}` to 1, clearing the mapping's
earlier ones, so a run of the checks after a change replaces what the last one said.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from esm import registry
from esm.arns import parse_arn
from esm.config.settings import MappingSettings
from esm.observability.metrics import Metrics

log = logging.getLogger("esm.safety")

# How long reading the facts of one mapping may take: validate must stay quick when nothing answers.
FACTS_TIMEOUT = 10.0
PROBE_CLIENT = {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 1}}


@dataclass(frozen=True)
class Facts:
    """What the services said about one mapping's source and function."""

    source: Any = None  # what the source's `read_facts` returned (None: nothing, or not read)
    reserved_concurrency: int | None = None  # None: unreserved, or not read
    unread: tuple[str, ...] = ()  # what could not be read, and why


@dataclass(frozen=True)
class ConfigWarning:
    """One rule a mapping breaks: the problem, AWS's advice and the fix."""

    uuid: str
    mapping: str
    check: str
    problem: str
    advice: str
    fix: str

    def line(self) -> str:
        return f"{self.mapping}: [{self.check}] {self.problem}. AWS advises: {self.advice}. Fix: {self.fix}."


Rule = Callable[[MappingSettings, Facts], "tuple[str, str, str] | None"]


def reserved_concurrency(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
    reserved = facts.reserved_concurrency
    if mapping.function.kind != "lambda" or maximum is None or reserved is None or reserved >= int(maximum):
        return None
    return (f"the function's reserved concurrency ({reserved}) is below the mapping's MaximumConcurrency "
            f"({maximum}): invokes beyond it are throttled, and throttled messages count as receives toward "
            f"the dead-letter queue",
            "keep MaximumConcurrency at or below the function's reserved concurrency",
            f"lower ScalingConfig.MaximumConcurrency to {reserved}, or raise the function's reserved concurrency")


# The rules about the function target, for every source (after the source's own).
RULES: dict[str, Rule] = {
    "lambda-reserved-concurrency": reserved_concurrency,
}


def _source_checks(mapping: MappingSettings) -> ModuleType | None:
    """The module of the mapping's source's rules and facts (its descriptor's `safety`), or None."""
    path = registry.descriptor(mapping.source).safety
    return registry.import_path(path) if path else None


def _rules(mapping: MappingSettings) -> dict[str, Rule]:
    """Every rule for `mapping`, as rule(mapping, facts): its source's, then the function target's."""
    own = _source_checks(mapping)
    found: dict[str, Rule] = {}
    for name, rule in (own.RULES if own is not None else {}).items():
        found[name] = lambda m, facts, rule=rule: rule(m, facts.source)
    return {**found, **RULES}


def check(mapping: MappingSettings, facts: Facts) -> list[ConfigWarning]:
    """Every rule `mapping` breaks, given `facts`."""
    found = []
    for name, rule in _rules(mapping).items():
        broken = rule(mapping, facts)
        if broken is not None:
            found.append(ConfigWarning(mapping.uuid, mapping.name, name, *broken))
    return found


# -- reading the facts ----------------------------------------------------------------------------

def _why(error: BaseException) -> str:
    return str(error) or type(error).__name__


async def _reserved_concurrency(clients: Any, function: str, unread: list[str]) -> int | None:
    arn = parse_arn(function)
    async with clients.client("lambda", arn.region if arn else None, **PROBE_CLIENT) as client:
        try:
            answer = await client.get_function_concurrency(FunctionName=function)
        except (ClientError, BotoCoreError, OSError) as error:
            unread.append(f"the function's reserved concurrency ({_why(error)})")
            return None
    value = answer.get("ReservedConcurrentExecutions")
    return int(value) if value is not None else None


async def gather_facts(mapping: MappingSettings, clients: Any) -> Facts:
    """What the rules need from the services for `mapping` (what its source reads of itself, such as
    an SQS queue's attributes; reserved concurrency for a `lambda:` target with MaximumConcurrency);
    what cannot be read goes to `unread`."""
    unread: list[str] = []
    source = None
    reserved = None
    own = _source_checks(mapping)

    async def read() -> None:
        nonlocal source, reserved
        if own is not None and hasattr(own, "read_facts"):
            source = await own.read_facts(mapping, clients, unread, PROBE_CLIENT)
        if mapping.function.kind == "lambda" and (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"):
            assert mapping.function.lambda_arn is not None
            reserved = await _reserved_concurrency(clients, mapping.function.lambda_arn, unread)

    try:
        await asyncio.wait_for(read(), FACTS_TIMEOUT)
    except asyncio.TimeoutError:
        unread.append(f"no answer within {FACTS_TIMEOUT:g}s")
    return Facts(source=source, reserved_concurrency=reserved, unread=tuple(unread))


async def review(mappings: Iterable[MappingSettings],
                 clients: Any) -> list[tuple[MappingSettings, Facts, list[ConfigWarning]]]:
    """Each mapping with its facts and the rules it breaks (the facts read concurrently)."""
    mappings = list(mappings)
    facts = await asyncio.gather(*(gather_facts(m, clients) for m in mappings))
    return [(m, f, check(m, f)) for m, f in zip(mappings, facts)]


def report(mapping: MappingSettings, warnings: list[ConfigWarning], metrics: Metrics | None) -> None:
    """Log each warning and set esm_config_warnings for `mapping` to exactly these checks."""
    if metrics is not None:
        forget(mapping, metrics)
        for warning in warnings:
            metrics.config_warnings.labels(mapping.uuid, warning.check).set(1)
    for warning in warnings:
        log.warning("%s", warning.line(), extra={"mapping": mapping.name, "event": "ConfigWarning",
                                                 "check": warning.check})


def forget(mapping: MappingSettings, metrics: Metrics) -> None:
    """Clear the mapping's esm_config_warnings series (before a new review, or when it is deleted)."""
    family = metrics.config_warnings
    for name in _rules(mapping):
        try:
            family.remove(mapping.uuid, name)
        except KeyError:
            pass


async def review_and_report(mappings: Iterable[MappingSettings], clients: Any, metrics: Metrics | None) -> None:
    """The checks as the daemon runs them: every warning logged and exported; unread facts at debug."""
    for mapping, facts, warnings in await review(mappings, clients):
        for what in facts.unread:
            log.debug("safety checks: %s not read for %s", what, mapping.name, extra={"mapping": mapping.name})
        report(mapping, warnings, metrics)

