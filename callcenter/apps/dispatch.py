"""Route inbound calls to applications by DNIS (the number dialled).

``UserAgent(engine, on_call=DnisDispatcher({"600": EchoTest(prompt)}, default=ivr))``:
the DNIS is the Request-URI user (see ``Call.dnis``). A DNIS with no application and
no default gets ``404 Not Found``, which tells the caller's carrier the number is
not served here rather than busy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from callcenter.sip.calls import Call, CallError

log = logging.getLogger(__name__)

CallApp = Callable[[Call], Awaitable[None]]


class DnisDispatcher:
    """An ``on_call`` handler that picks the application for each call's DNIS."""

    def __init__(self, apps: Mapping[str, CallApp], *, default: CallApp | None = None) -> None:
        self.apps = dict(apps)
        self.default = default

    async def __call__(self, call: Call) -> None:
        app = self.apps.get(call.dnis, self.default)
        if app is None:
            log.info("no application for DNIS %r (call %s)", call.dnis, call.call_id)
            with contextlib.suppress(CallError):  # the caller may already have given up
                await call.reject(404, "Not Found")
            return
        await app(call)


__all__ = ["CallApp", "DnisDispatcher"]
