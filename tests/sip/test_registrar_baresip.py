"""A real softphone (baresip) registers with digest auth, and un-registers when it quits.

This is the registrar's view only (the call tests with baresip live elsewhere). It also
pins the interop finding documented in docs/registrar.md: baresip 1.0 gives up
when the 401 carries any non-MD5 challenge, so it must be offered MD5 alone.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.sip.digest import Credentials
from callcenter.sip.registrar import Registrar
from callcenter.sip.transport import SipTransportLayer
from callcenter.sip.ua import UserAgent
from tests.support import free_udp_port, unavailable

REALM = "callcenter.test"


def _baresip() -> tuple[str, str]:
    exe = shutil.which("baresip")
    modules = None
    if exe is not None:
        out = subprocess.run(["dpkg", "-L", "baresip-core"], capture_output=True, text=True)
        modules = next((str(Path(p).parent) for p in out.stdout.split() if p.endswith("/g711.so")), None)
    if exe is None or modules is None:
        unavailable("baresip with its g711 module", "apt-get install baresip")
    return exe, modules


@pytest.fixture
async def stack() -> AsyncIterator[tuple[Registrar, int, asyncio.Queue[tuple[str, bool]]]]:
    creds = {"1001": Credentials.from_password("1001", REALM, "demo-1001")}
    registrar = Registrar(REALM, creds)
    changes: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
    registrar.on_change(lambda user, up: changes.put_nowait((user, up)))
    ua = UserAgent(None, registrar=registrar)
    layer = SipTransportLayer([("udp", "127.0.0.1", 0)], ua.on_message)
    await layer.start()
    for t in layer.transports:
        ua.add_transport(t, t.advertised, t.name)
    await ua.start()
    try:
        yield registrar, layer.transports[0].local[1], changes
    finally:
        await ua.stop()
        await layer.stop()


def _write_config(folder: Path, modules: str, server_port: int, sip_port: int) -> None:
    (folder / "config").write_text(
        "poll_method epoll\n"
        "net_interface 127.0.0.1\n"
        f"sip_listen 127.0.0.1:{sip_port}\n"
        "audio_player aubridge,nil\naudio_source aubridge,nil\naudio_alert aubridge,nil\n"
        f"module_path {modules}\n"
        "module g711.so\nmodule aubridge.so\n"
        "module_tmp uuid.so\nmodule_tmp account.so\n"
    )
    (folder / "accounts").write_text(f"<sip:1001@127.0.0.1:{server_port}>;auth_pass=demo-1001;regint=300\n")


async def test_baresip_registers_with_digest_and_unregisters_on_exit(stack: Any, tmp_path: Path) -> None:
    exe, modules = _baresip()
    registrar, port, changes = stack
    sip_port = free_udp_port()
    _write_config(tmp_path, modules, port, sip_port)
    proc = await asyncio.create_subprocess_exec(
        exe,
        "-f",
        str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert await asyncio.wait_for(changes.get(), 15) == ("1001", True)
        (binding,) = await registrar.contacts("1001")
        assert binding.source == ("127.0.0.1", sip_port)
        assert binding.transport == "udp"
        assert "baresip" in binding.user_agent
        proc.send_signal(signal.SIGTERM)  # baresip un-registers (Expires: 0) on the way out
        assert await asyncio.wait_for(changes.get(), 15) == ("1001", False)
        assert await registrar.contacts("1001") == []
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
