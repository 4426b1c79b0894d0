"""RTP port allocation: bind the next free even port of a range (RFC 3550 §11).

Binding is the allocation: a port another process holds fails with EADDRINUSE and the
search moves on, so two engines (or another program) sharing a range never collide.
The media engine binds its own ports; a ``MediaPool`` binds them in the SIP process, once
per worker range, and hands the bound socket to the worker that will carry the stream.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Container


class NoFreePortError(RuntimeError):
    """Every even port of the RTP range is in use."""


class PortRange:
    __slots__ = ("_cursor", "host", "port_max", "port_min")

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        if port_min > port_max or port_min < 1 or port_max > 65535:
            raise ValueError(f"bad RTP port range {port_min}-{port_max}")
        self.host = host
        self.port_min = port_min + (port_min & 1)  # RTP on even ports
        self.port_max = port_max
        self._cursor = self.port_min

    @property
    def total(self) -> int:
        return (self.port_max - self.port_min) // 2 + 1

    def bind(self, in_use: Container[int]) -> tuple[socket.socket, int]:
        """A UDP socket bound to the next even port not in ``in_use`` nor held elsewhere.
        The search goes round the range from where the last one stopped, so a port just
        freed is the last to be reused (late packets of the old call find nobody)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(self.total):
            port = self._cursor
            self._cursor += 2
            if self._cursor > self.port_max:
                self._cursor = self.port_min
            if port in in_use:
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue  # taken by another process: try the next one
                raise
            return sock, port
        raise NoFreePortError(f"no free even RTP port in {self.port_min}-{self.port_max} on {self.host}")
