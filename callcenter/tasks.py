"""Background tasks that are kept, logged when they fail, and cancelled on close.

asyncio keeps only a weak reference to a task, so a fire-and-forget
``create_task`` can be collected mid-flight, and its exception is reported, if
ever, only when the garbage collector gets to it. Every long-lived component
(the UA, the transport layer, the contact core) owns one ``BackgroundTasks``
instead: it holds each task until it is done, logs a failure the moment it
happens, and ``close()`` cancels and awaits what is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    """A set of tasks owned by one component."""

    def __init__(self, logger: logging.Logger, *, level: int = logging.ERROR) -> None:
        self._log = logger
        self._level = level  # a failed background send is a warning; a failed call handler an error
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._log.log(self._level, "task %s failed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    def snapshot(self) -> set[asyncio.Task[Any]]:
        """The tasks running now (to wait on them without cancelling)."""
        return set(self._tasks)

    async def close(self) -> None:
        """Cancel every task still running and wait until each has finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
