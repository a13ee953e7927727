"""Function targets behind one interface: `make_invoker(target, aws) -> Invoker` (docs/design.md).

`esm.registry.INVOKERS` maps a target's kind (`url`, `lambda`, `handler`) to the module that
serves it, imported only when a configuration uses it (aiobotocore is not loaded for a URL
target). A new kind of target is one new module with a `make(target, aws, **hints)` function plus
one entry there. Every invoker answers `invoke(payload, timeout=None)` with Succeeded, FunctionError or
InvocationError, classified as behaviour §9.1 says (`esm.invokers.classify`), each with its duration.
"""

from __future__ import annotations

from esm import registry
from esm.config.settings import AwsSettings, FunctionTarget
from esm.invokers.base import FunctionError, InvocationError, Invoker, InvokeResult, Succeeded


def make_invoker(
    target: FunctionTarget,
    aws: AwsSettings | None = None,
    *,
    default_concurrency: int = 1,
    region: str | None = None,
    account: str | None = None,
) -> Invoker:
    """The invoker for one `functions:` entry.

    `default_concurrency` is the cap when the target sets no `max_concurrency` (and is not an
    RIE URL, capped at 1). `region`/`account` name the function in the ARN an in-process handler
    sees (`context.invoked_function_arn`, behaviour §9.9); they default to `aws.region` (else
    us-east-1) and 000000000000.
    """
    if target.kind not in registry.INVOKERS:
        raise ValueError(f"function {target.name!r}: no invoker for target kind {target.kind!r}")
    module = registry.invoker_module(target.kind)
    invoker: Invoker = module.make(
        target, aws or AwsSettings(), default_concurrency=default_concurrency, region=region, account=account
    )
    return invoker


__all__ = [
    "FunctionError",
    "InvocationError",
    "InvokeResult",
    "Invoker",
    "Succeeded",
    "make_invoker",
]
