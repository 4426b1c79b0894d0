"""A phone whose SDP names one of its addresses while its RTP comes from another (issue 19,
defect 6): baresip writes the host's non-loopback address in its SDP and sends from
127.0.0.1, as a multi-homed softphone does. Strict latching (the default) ignores that
stream and says so once in the log; ``rtp.comedia: true`` latches to the real source after
its probation, so the echo service hears the phone."""

from __future__ import annotations

import logging
import re
import socket
from typing import Any

import pytest

from tests.support.polling import eventually
from tests.support.rig import Rig


def other_host_address() -> str:
    """An address of this host that is not loopback (the one its default route uses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet leaves: a UDP connect only picks the route
        addr = s.getsockname()[0]
    assert not addr.startswith("127."), "the test needs a host address besides loopback"
    return addr


async def dial_echo(rig: Rig) -> tuple[Any, Any]:
    """baresip (agent 1001's line, SDP on the other address) calls the echo service."""
    phone = await rig.phone("1001", net_interface=other_host_address())
    await phone.command("dial", f"sip:600@{rig.sip[0]}:{rig.sip[1]}")
    await phone.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED")
    await eventually(lambda: len(rig.center.ua.calls) == 1, what="the server's leg")
    [leg] = rig.center.ua.calls.values()
    sdp = (leg.request.body or b"").decode()
    assert f"c=IN IP4 {other_host_address()}" in sdp  # the SDP names the other address
    return phone, leg


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_comedia_latches_to_where_the_phone_really_sends_from(
    rig_factory: Any, media_workers: int
) -> None:
    rig = await rig_factory(server_edit=lambda s: s["rtp"].update(comedia=True),
                            media_workers=media_workers)  # fmt: skip
    phone, leg = await dial_echo(rig)

    async def heard() -> bool:
        stats = await leg.media.fetch_stats()
        return stats["rx_packets"] >= 50 and stats["rx_rms"] > 1000

    await eventually(heard, timeout=20, what="the phone's tone at the server")
    stats = await leg.media.fetch_stats()
    assert stats["remote"][0] == "127.0.0.1"  # latched to the real source, not the SDP's
    await phone.command("hangup")
    await eventually(lambda: not rig.center.ua.calls, what="call over")


async def test_strict_latching_ignores_the_stream_and_says_so(
    rig_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await rig_factory()  # the demo's server.yaml: comedia off
    assert rig.center.media.comedia is False
    caplog.set_level(logging.INFO, logger="callcenter.media")
    phone, leg = await dial_echo(rig)
    pattern = re.compile(r"RTP from unexpected source 127\.0\.0\.1:\d+ ignored")
    await eventually(lambda: any(pattern.search(r.getMessage()) for r in caplog.records),
                     timeout=20, what="the stray-source log line")  # fmt: skip
    stats = await leg.media.fetch_stats()
    assert stats["rx_packets"] == 0  # nothing from the unexpected source was taken
    lines = [r for r in caplog.records if "unexpected source" in r.getMessage()]
    assert len(lines) == 1  # once per session, not per packet
    await phone.command("hangup")
    await eventually(lambda: not rig.center.ua.calls, what="call over")
