"""Has a function target answered once? The readiness half of a target (docs/design.md /readyz).

A URL target is ready when its server answers any HTTP request (a container may start after
esm); a handler when its module imports; a Lambda function once a client can be built (asking
it would cost an invoke).
"""

from __future__ import annotations

import asyncio
import importlib
from urllib.parse import urlsplit

import aiohttp

from esm.config.settings import FunctionTarget


async def probe_target(target: FunctionTarget, timeout: float = 5.0) -> str | None:
    """None when the target answered; otherwise why not."""
    if target.url is not None:
        parts = urlsplit(target.url)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
                async with session.get(f"{parts.scheme}://{parts.netloc}/") as response:
                    await response.read()
            return None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            return f"{target.url} does not answer: {error or type(error).__name__}"
    if target.handler is not None:
        module = target.handler.split(":", 1)[0] if ":" in target.handler else target.handler.rsplit(".", 1)[0]
        try:
            importlib.import_module(module)
        except Exception as error:  # any import-time failure is the user's module failing
            return f"cannot import {module}: {type(error).__name__}: {error}"
        return None
    return None
