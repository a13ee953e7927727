"""The names a mapping's function goes by in what Lambda writes: its ARN and its execution role.

`function_arn` is the ARN on-failure documents carry in `requestContext.functionArn` (behaviour §9.9):
a `lambda:` target's own ARN, else `arn:aws:lambda:<region>:<account>:function:<name>` in the
source's region and account. `execution_role_arn` is the `invokeIdentityArn` of Kinesis (and
DynamoDB) records: AWS puts the function's execution role there, never the function ARN. A
`lambda:` target's role is read once from GetFunctionConfiguration; otherwise (or when that call
cannot answer, as an emulator cannot) it is `functions.<name>.role`, else the documented default
`arn:aws:iam::<account>:role/service-role/<function>-role` (the name Lambda's console gives a
function's new role, without its random suffix).
"""

from __future__ import annotations

from typing import Any

from esm.config.settings import FunctionTarget

DEFAULT_ACCOUNT = "000000000000"


def function_name(target: FunctionTarget) -> str:
    """The function's own name: the last part of a `lambda:` name or ARN, else its `functions:` key."""
    if target.lambda_arn:
        name = target.lambda_arn
        if name.startswith("arn:"):
            # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
            parts = name.split(":")
            return parts[6] if len(parts) > 6 else name
        return name
    return target.name


def function_arn(target: FunctionTarget, region: str, account: str | None) -> str:
    """behaviour §9.9: the function's ARN as failure records name it."""
    if target.lambda_arn and target.lambda_arn.startswith("arn:"):
        return target.lambda_arn
    return f"arn:aws:lambda:{region}:{account or DEFAULT_ACCOUNT}:function:{target.lambda_arn or target.name}"


def default_role_arn(target: FunctionTarget, account: str | None) -> str:
    return f"arn:aws:iam::{account or DEFAULT_ACCOUNT}:role/service-role/{function_name(target)}-role"


async def execution_role_arn(target: FunctionTarget, invoker: Any, account: str | None) -> str:
    """The role ARN stream records carry as `invokeIdentityArn` (see the module docstring)."""
    read_role = getattr(invoker, "execution_role", None) if target.lambda_arn else None
    if read_role is not None:
        role = await read_role()
        if role:
            return str(role)
    return target.role or default_role_arn(target, account)
