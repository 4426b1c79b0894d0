"""``eventually``: wait for a condition the event loop brings about, with a deadline.

For synchronisation only (until a counter reaches N, until a record exists): the timeout
is a bound on a broken run, never a measurement, so no test may assert on how long it took.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float = 5.0,
    *,
    interval: float = 0.005,
    what: str | None = None,
) -> T:
    """Call ``condition`` (a plain or an async callable) until it returns something truthy,
    and return that; raise ``TimeoutError`` once ``timeout`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() >= deadline:
            name = what or getattr(condition, "__qualname__", repr(condition))
            raise TimeoutError(f"condition not reached within {timeout} s: {name}")
        await asyncio.sleep(interval)
