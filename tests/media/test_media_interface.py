"""Both media session classes satisfy the ``MediaSession`` Protocol the SIP layer, the IVR
and the contact core type against: every member present, every method with the
Protocol's parameters (names, kinds, defaults), so either class can stand behind a call."""

from __future__ import annotations

import inspect

import pytest

from callcenter.media.interface import MediaSession
from callcenter.media.session import RtpSession
from callcenter.media.worker import MediaWorker, ProxySession

from .conftest import EngineFactory, port_range

MEMBERS = [
    name
    for name in dir(MediaSession)
    if not name.startswith("_") and name not in dir(object)
] + list(MediaSession.__annotations__)


def _parameters(fn: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("cls", [RtpSession, ProxySession])
def test_methods_match_the_protocol(cls: type) -> None:
    for name in MEMBERS:
        declared = inspect.getattr_static(MediaSession, name, None)
        if not callable(declared) or isinstance(declared, property):
            continue
        implemented = inspect.getattr_static(cls, name, None)
        assert implemented is not None, f"{cls.__name__} lacks {name}"
        assert inspect.iscoroutinefunction(implemented) == inspect.iscoroutinefunction(declared), name
        assert _parameters(implemented) == _parameters(declared), f"{cls.__name__}.{name}"


async def test_in_process_session_is_a_media_session(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    session = engine.allocate()
    assert isinstance(session, MediaSession)
    session.close()


async def test_worker_session_is_a_media_session() -> None:
    lo, hi = port_range(4)
    # no process is started: a ProxySession's members exist without its worker
    session = ProxySession(MediaWorker("127.0.0.1", lo, hi), lo)
    assert isinstance(session, MediaSession)
    assert {"on_dtmf", "on_audio", "local_port", "last_rx"} <= set(MEMBERS)
