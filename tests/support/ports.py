"""Ports that are free on 127.0.0.1 right now, for peers a test starts (SIPp, baresip, …).

A probe can race another process that binds the port before the peer does; the tests
that use these accept that (the alternative, the peer picking its own port and reporting
it, is not offered by SIPp or baresip).
"""

from __future__ import annotations

import socket

from bench import loopback


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS picks as free for ``kind`` (``socket.SOCK_STREAM`` or ``SOCK_DGRAM``)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port(
    even: bool = False, span: int = 1, lo: int = 32000, hi: int = 39990, *, tcp: bool = False
) -> int:
    """A UDP port (and the next ``span - 1``) free right now, drawn from ``lo``-``hi``; with
    ``tcp``, free for TCP as well (the benchmarks' prober, bench/loopback.py).

    Peers' ports come from 32000-39990 and the media engines' RTP ranges the tests
    configure lie above 40000, so a peer never races our engine for a port it probed.
    ``even`` is for RTP, whose port is even by convention (SIPp's -mp)."""
    return loopback.free_udp_port(even=even, span=span, tcp=tcp, ports=(lo, hi))


def free_udp_tcp_port(span: int = 1) -> int:
    """A port (and the next ``span - 1``) free for both UDP and TCP: a SIP listener takes the
    same number on both."""
    return free_udp_port(span=span, tcp=True)
