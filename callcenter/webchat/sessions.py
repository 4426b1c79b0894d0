"""A customer's chat session: who they are, the lines said so far, and their live socket.

The session outlives its WebSocket: a customer whose connection drops keeps the session (and
the chat keeps its place in the queue or its agent) for ``resume_grace_s``; coming back with
the session token replays every line after the last one the page had (``seq``), so nothing said
in between is lost. Lines the customer's page sends carry a client id, so a line re-sent after a
reconnect (the page could not know whether it arrived) is taken once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

LineKind = Literal["customer", "agent", "bot", "system"]
State = Literal["new", "selfservice", "queued", "connected", "ended", "offline"]
SEEN_CLIENT_IDS = 256  # client ids remembered per session for de-duplication


@dataclass(frozen=True, slots=True)
class Line:
    seq: int
    kind: LineKind
    author: str
    text: str
    ts: float
    meta: dict[str, Any] = field(default_factory=dict)

    def message(self) -> dict[str, Any]:
        return {"type": "line", "seq": self.seq, "from": self.kind, "author": self.author, "text": self.text,
                "ts": self.ts, **({"meta": self.meta} if self.meta else {})}  # fmt: skip


class CustomerSocket:
    """One open customer WebSocket: a queue of messages its writer task sends in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self.queue.put_nowait(message)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


@dataclass(eq=False)
class ChatSession:
    ip: str
    origin: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))  # the resume secret
    id: str = field(default_factory=lambda: "w-" + secrets.token_hex(8))  # public (web_id in the CRM)
    created: float = field(default_factory=time.time)
    state: State = "new"
    name: str = ""
    email: str = ""
    phone: str = ""
    topic: str = ""
    contact_id: str | None = None
    agent_id: str | None = None
    agent_name: str = ""
    lines: list[Line] = field(default_factory=list)
    socket: CustomerSocket | None = None
    disconnected_at: float | None = None  # monotonic: when the last socket went away
    last_activity: float = field(default_factory=time.monotonic)  # a line from either side
    verified: bool = False  # the customer proved who they are (an order number of theirs)
    customer_id: str | None = None
    selfservice: list[dict[str, Any]] = field(default_factory=list)  # steps: asked, answered
    transcript_to: str = ""  # email address the customer asked the transcript to go to
    transcript_sent: bool = False
    _seen: deque[str] = field(default_factory=lambda: deque(maxlen=SEEN_CLIENT_IDS))

    def add(self, kind: LineKind, author: str, text: str, meta: dict[str, Any] | None = None) -> Line:
        line = Line(len(self.lines) + 1, kind, author, text, time.time(), meta or {})
        self.lines.append(line)
        self.last_activity = time.monotonic()
        self.send(line.message())
        return line

    def was_seen(self, client_id: str) -> bool:
        return bool(client_id) and client_id in self._seen

    def mark_seen(self, client_id: str) -> None:
        if client_id:
            self._seen.append(client_id)

    def send(self, message: dict[str, Any]) -> None:
        if self.socket is not None:
            self.socket.send(message)

    def attach(self, socket: CustomerSocket) -> None:
        if self.socket is not None and self.socket is not socket:
            self.socket.close()  # a second tab or a reconnect: the newest socket wins
        self.socket = socket
        self.disconnected_at = None

    def detach(self, socket: CustomerSocket) -> None:
        if self.socket is socket:
            self.socket = None
            self.disconnected_at = time.monotonic()

    def replay(self, after: int) -> list[dict[str, Any]]:
        return [line.message() for line in self.lines[max(0, after):]]

    def prechat(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "topic": self.topic}
