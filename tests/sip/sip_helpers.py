"""Helpers several SIP test files share (a module of its own: test files do not import conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from callcenter.sip.calls import Call
from callcenter.sip.message import SipMessage

ServerFactory = Callable[..., Awaitable[Any]]  # the server_factory fixture
Sipp = Callable[..., Awaitable[Any]]  # the sipp and sipp_start fixtures


async def answer_and_wait(call: Call) -> None:
    """An ``on_call`` handler: answer, then keep the call until the other side ends it."""
    await call.answer()
    await call.ended.wait()


def challenge_shape(resp: SipMessage) -> tuple[Any, ...]:
    """A response minus its random parts: status, reason, header names in order, and the
    WWW-Authenticate values with the nonce blanked (tags and Call-ID values are left out)."""
    return (
        resp.status,
        resp.reason,
        [name for name, _ in resp.headers],
        [re.sub(r'nonce="[^"]*"', 'nonce="*"', v) for v in resp.headers.get_all("WWW-Authenticate")],
    )
