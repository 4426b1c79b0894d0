"""Ports that are free on 127.0.0.1 right now, for peers a test starts (SIPp, baresip, …).

A probe can race another process that binds the port before the peer does; the tests
that use these accept that (the alternative, the peer picking its own port and reporting
it, is not offered by SIPp or baresip).
"""

from __future__ import annotations

import random
import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS picks as free for ``kind`` (``socket.SOCK_STREAM`` or ``SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port(
    even: bool = False, span: int = 1, lo: int = 32000, hi: int = 39990, *, tcp: bool = False
) -> int:
    """A UDP port (and the next ``span - 1``) free right now, drawn from ``lo``-``hi``; with
    ``tcp``, free for TCP as well.

    Peers' ports come from 32000-39990 and the media engines' RTP ranges the tests
    configure lie above 40000, so a peer never races our engine for a port it probed.
    ``even`` is for RTP, whose port is even by convention (SIPp's -mp)."""
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if tcp else (socket.SOCK_DGRAM,)
    for _ in range(200):
        base = random.randrange(lo, hi)
        if even:
            base &= ~1
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + span):
                for kind in kinds:
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port found")


def free_udp_tcp_port(span: int = 1) -> int:
    """A port (and the next ``span - 1``) free for both UDP and TCP: a SIP listener takes the
    same number on both."""
    return free_udp_port(span=span, tcp=True)
