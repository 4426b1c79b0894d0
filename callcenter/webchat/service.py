"""The customer side of web chat: sessions, the chat protocol, self-service, limits, timeouts.

``WebChat`` keeps the customers' sessions (callcenter/webchat/sessions.py) and speaks the
customer WebSocket protocol (docs/webchat.md lists every message); the contact core is reached
only through the chat channel adapter (callcenter/channels/chat.py), which calls back
``agent_joined``/``agent_line``/``agent_typing``/``closed`` when the agent acts.

One background task (``_sweep``, once a second) pushes queue position and estimated wait to
waiting customers, ends chats whose customer has been gone longer than ``resume_grace_s`` and
chats where nobody said anything for ``idle_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from callcenter.webchat.config import WebChatConfig
from callcenter.webchat.ratelimit import RateLimiter
from callcenter.webchat.selfservice import SelfService
from callcenter.webchat.sessions import ChatSession, CustomerSocket
from crm_bridge.addresses import normalize_email, normalize_phone

if TYPE_CHECKING:
    from callcenter.channels.chat import ChatChannel, WebFormChannel

log = logging.getLogger(__name__)

SWEEP_S = 1.0
GREETING = ("Hello {name}! I can answer common questions and tell you where your order is "
            "(type its number, e.g. ORD-1001). Choose 'Talk to a person' at any time.")  # fmt: skip


class Refused(Exception):
    """A customer request refused with a code the page understands."""

    def __init__(self, code: str, detail: str, retry_after: int = 0) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class WebChat:
    def __init__(self, cfg: WebChatConfig, services: Any, selfservice: SelfService, *,
                 default_region: str = "GB", agent_name: Callable[[str], str] = str,
                 mailer: Callable[[], Any] | None = None) -> None:  # fmt: skip
        self.cfg = cfg
        self.services = services  # callcenter.ivr.services.ServicesConfig: business hours
        self.selfservice = selfservice
        self.region = default_region
        self.agent_name = agent_name
        # The email channel's outbound queue (callcenter/email/outbound.py ``Outbound``), read
        # when a transcript is sent: None while the server runs without email.
        self.mailer = mailer or (lambda: None)
        self._mailing: set[asyncio.Task[None]] = set()
        self.channel: ChatChannel | None = None  # set by the channel when it is built
        self.webform: WebFormChannel | None = None  # forms and offline messages
        self.sessions: dict[str, ChatSession] = {}  # token → session
        self.by_contact: dict[str, ChatSession] = {}
        lim = cfg.limits
        self.new_sessions = RateLimiter(lim.sessions_per_ip)
        self.ip_lines = RateLimiter(lim.messages_per_ip)
        self.session_lines = RateLimiter(lim.messages_per_session)
        self.form_posts = RateLimiter(lim.forms_per_ip)
        self._sweeper: asyncio.Task[None] | None = None
        self._last_queue_info: dict[str, tuple[int | None, int | None]] = {}

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="webchat-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for s in list(self.sessions.values()):
            if s.socket is not None:
                s.socket.close()
        if self._mailing:
            await asyncio.wait(self._mailing, timeout=5)

    # ------------------------------------------------------------------ availability

    def topic_open(self, topic: str, now: datetime | None = None) -> tuple[bool, str]:
        """Can a chat on ``topic`` reach an agent now? (False, why) when it cannot: outside the
        service's hours, or nobody who takes chats is signed in to the topic's queue."""
        t = self.cfg.topics[topic]
        service = self.services.services[t.service or self.cfg.service]
        if not service.is_open(now or datetime.now(UTC)):
            return False, "closed"
        if self.channel is None or self.channel.staffed(t.queue) == 0:
            return False, "no_agents"
        return True, ""

    def topics(self) -> list[dict[str, Any]]:
        out = []
        for name, t in self.cfg.topics.items():
            ok, why = self.topic_open(name)
            out.append({"id": name, "label": t.label, "open": ok, "reason": why})
        return out

    # ------------------------------------------------------------------ sessions

    def hello(self, socket: CustomerSocket, ip: str, origin: str, token: str, last_seq: int) -> ChatSession:
        """A page (re)connects. A known token resumes its session and gets every line after
        ``last_seq``; otherwise a new session (limited per address)."""
        session = self.sessions.get(token) if token else None
        if session is None:
            if len(self.sessions) >= self.cfg.limits.max_sessions:
                raise Refused("busy", "Chat is very busy right now; please try again in a minute.", 60)
            wait = self.new_sessions.take(ip)
            if wait:
                raise Refused("rate_limited", "Too many new chats from your address; please wait.", wait)
            session = ChatSession(ip=ip, origin=origin)
            self.sessions[session.token] = session
            last_seq = 0
        session.attach(socket)
        topics = self.topics()
        socket.send({
            "type": "welcome", "token": session.token, "session": session.id, "state": session.state,
            "prechat": session.prechat(), "agent": session.agent_name or None, "topics": topics,
            "open": any(t["open"] for t in topics), "faq": [{"id": f.id, "question": f.question}
                                                             for f in self.cfg.faq],
            "limits": {"message_chars": self.cfg.limits.message_chars},
        })  # fmt: skip
        for message in session.replay(last_seq):
            socket.send(message)
        if session.state == "queued":
            self._last_queue_info.pop(session.token, None)
            self._push_queue(session)
        return session

    def gone(self, session: ChatSession, socket: CustomerSocket) -> None:
        """The socket closed; the session waits ``resume_grace_s`` for the customer."""
        session.detach(socket)

    def _addresses(self, session: ChatSession) -> list[tuple[str, str]]:
        out = []
        if session.email:
            out.append(("email", session.email))
        if session.phone:
            out.append(("phone", session.phone))
        return out

    def check_contact(self, name: str, email: str, phone: str, topic: str) -> tuple[str, str, str, str]:
        """The pre-chat (or message) form's fields, checked: name, a usable email or phone."""
        name = " ".join(str(name or "").split())[:100]
        if not name:
            raise Refused("invalid", "Please tell us your name.")
        email_n = normalize_email(str(email or "")) if email else None
        phone_n = normalize_phone(str(phone or ""), self.region) if phone else None
        if email and email_n is None:
            raise Refused("invalid", "That email address does not look right.")
        if phone and phone_n is None:
            raise Refused("invalid", "That phone number does not look right.")
        if not (email_n or phone_n):
            raise Refused("invalid", "Please give an email address or a phone number.")
        if topic not in self.cfg.topics:
            raise Refused("invalid", "Please choose a topic.")
        return name, email_n or "", phone_n or "", topic

    def _contact_fields(self, data: dict[str, Any]) -> tuple[str, str, str, str]:
        return self.check_contact(data.get("name", ""), data.get("email", ""), data.get("phone", ""),
                                  data.get("topic", ""))  # fmt: skip

    async def start(self, session: ChatSession, data: dict[str, Any]) -> None:
        """The pre-chat form: the chat becomes a contact (self-service first)."""
        if session.state != "new":
            raise Refused("state", "This chat has already started.")
        name, email, phone, topic = self._contact_fields(data)
        session.name, session.email, session.phone, session.topic = name, email, phone, topic
        assert self.channel is not None
        session.contact_id = self.channel.open_chat(session)
        self.by_contact[session.contact_id] = session
        self._state(session, "selfservice")
        self._bot(session, GREETING.format(name=name.split()[0]), {"selfservice": "greeting"})

    async def ask(self, session: ChatSession, text: str) -> None:
        """A self-service question (free text, an FAQ id, or an order number)."""
        if session.state != "selfservice":
            raise Refused("state", "Self-service is over for this chat.")
        text = self._text(session, text)
        self._customer(session, text, "")
        await self._answer(session, text)

    async def _answer(self, session: ChatSession, text: str) -> None:
        answer = await self.selfservice.answer(text, self._addresses(session))
        if answer.customer_id and not session.verified:
            session.verified = True
            session.customer_id = answer.customer_id
        step = {"asked": text, "answered": answer.text, "kind": answer.kind, "ref": answer.ref}
        session.selfservice.append(step)
        self._bot(session, answer.text, {"selfservice": answer.kind, "ref": answer.ref,
                                         **({"verified_customer_id": answer.customer_id}
                                            if answer.customer_id else {})})  # fmt: skip

    async def to_agent(self, session: ChatSession) -> None:
        """'Talk to a person': the chat joins its topic's queue with the self-service context."""
        if session.state != "selfservice":
            raise Refused("state", "This chat is not in self-service.")
        ok, why = self.topic_open(session.topic)
        if not ok:
            session.send({"type": "offline", "reason": why})
            return
        assert self.channel is not None and session.contact_id is not None
        t = self.cfg.topics[session.topic]
        self._state(session, "queued")
        self._system(session, "Finding someone to help you…")
        await self.channel.queue_chat(session, t.queue, t.priority, dict(t.skills))
        self._push_queue(session)

    async def say(self, session: ChatSession, text: str, client_id: str) -> None:
        """A chat line from the customer: a question in self-service, else a line for the agent
        (kept while the chat waits). A client id already taken is acknowledged, not repeated."""
        if session.state not in ("queued", "connected", "selfservice"):
            raise Refused("state", "This chat has ended.")
        if session.was_seen(client_id):
            session.send({"type": "ack", "client_id": client_id, "duplicate": True})
            return
        text = self._text(session, text)
        session.mark_seen(client_id)
        line = self._customer(session, text, client_id)
        session.send({"type": "ack", "client_id": client_id, "seq": line.seq})
        if session.state == "selfservice":
            await self._answer(session, text)

    def typing(self, session: ChatSession, on: bool) -> None:
        if session.state == "connected" and self.channel is not None and session.contact_id:
            self.channel.customer_typing(session.contact_id, bool(on))

    def end(self, session: ChatSession, reason: str = "customer_ended", by: str = "customer") -> None:
        if session.state == "ended":
            return
        previous = session.state
        self._finish(session, "The chat has ended." if by == "customer" else "The chat was closed.")
        if self.channel is not None and session.contact_id and previous != "new":
            self.channel.customer_gone(session.contact_id, reason, by)

    def transcript(self, session: ChatSession, email: str) -> None:
        """The customer asks for the transcript by email: recorded now, sent when the chat ends
        (at once if it has) through the email channel's outbound queue."""
        address = normalize_email(email or "") or ""
        if not address:
            raise Refused("invalid", "That email address does not look right.")
        if not session.contact_id:
            raise Refused("state", "Nothing has been said yet.")
        session.transcript_to = address
        if self.channel is not None:
            self.channel.transcript_requested(session, address)
        session.send({"type": "transcript", "to": address, "state": "requested"})
        if session.state == "ended":
            self._mail_transcript(session)

    def _mail_transcript(self, session: ChatSession) -> None:
        if not session.transcript_to or session.transcript_sent:
            return
        session.transcript_sent = True
        task = asyncio.create_task(self._send_transcript(session), name=f"transcript-{session.id}")
        self._mailing.add(task)
        task.add_done_callback(self._mailing.discard)

    async def _send_transcript(self, session: ChatSession) -> None:
        outbound = self.mailer()
        state, email_id = "unavailable", None
        if outbound is not None:
            try:
                sent = await outbound.send(to=[session.transcript_to], subject="Your chat with us",
                                           text=transcript_text(session), contact_id=session.contact_id,
                                           kind="transcript", author="web chat")  # fmt: skip
                state, email_id = str(sent.get("state") or "pending"), sent.get("id")
            except Exception:  # the chat is over either way; the record says the mail failed
                log.exception("transcript of chat %s not queued", session.contact_id)
                state = "failed"
        if self.channel is not None:
            self.channel.transcript_result(session, state, email_id)
        session.send({"type": "transcript", "to": session.transcript_to, "state": state})

    async def offline_message(self, ip: str, data: dict[str, Any], session: ChatSession | None = None) -> str:
        """The message form (outside hours, nobody signed in): an interaction routed as a web form."""
        wait = self.form_posts.take(ip)
        if wait:
            raise Refused("rate_limited", "Too many messages from your address; please wait.", wait)
        name, email, phone, topic = self._contact_fields(data)
        text = str(data.get("message") or "").strip()
        if not text:
            raise Refused("invalid", "Please write your message.")
        longest = self.cfg.limits.message_chars * 5
        if len(text) > longest:
            raise Refused("too_long", f"Please keep the message under {longest} characters.")
        queue = self.cfg.offline_queue or self.cfg.topics[topic].queue
        fields = {"name": name, "email": email, "phone": phone, "topic": topic, "message": text}
        assert self.webform is not None
        cid = await self.webform.submit("offline", fields, queue, 0, ip=ip,
                                        web_id=session.id if session else "")  # fmt: skip
        if session is not None and session.state in ("new", "offline"):
            session.state = "offline"
        return cid

    # ------------------------------------------------------------------ from the agent side

    def agent_joined(self, contact_id: str, agent_id: str) -> None:
        session = self.by_contact.get(contact_id)
        if session is None:
            return
        session.agent_id = agent_id
        session.agent_name = self.agent_name(agent_id)
        self._last_queue_info.pop(session.token, None)
        self._state(session, "connected")
        session.send({"type": "agent", "name": session.agent_name})
        self._system(session, f"{session.agent_name} has joined the chat.")

    def agent_left(self, contact_id: str) -> None:
        """Transferred: the chat waits for the next agent."""
        session = self.by_contact.get(contact_id)
        if session is None or session.state != "connected":
            return
        self._system(session, f"{session.agent_name} has passed your chat on. Please wait…")
        session.agent_id = None
        session.agent_name = ""
        session.send({"type": "agent", "name": None})
        self._state(session, "queued")

    def agent_line(self, contact_id: str, agent_id: str, text: str) -> dict[str, Any]:
        session = self.by_contact.get(contact_id)
        if session is None or session.state != "connected":
            raise Refused("state", "the chat is not connected")
        line = session.add("agent", self.agent_name(agent_id), text)
        session.send({"type": "typing", "on": False})
        return line.message()

    def agent_typing(self, contact_id: str, on: bool) -> None:
        session = self.by_contact.get(contact_id)
        if session is not None and session.state == "connected":
            session.send({"type": "typing", "on": bool(on)})

    def closed(self, contact_id: str, by: str) -> None:
        """The agent (or the center) ended the chat."""
        session = self.by_contact.get(contact_id)
        if session is not None and session.state != "ended":
            self._finish(session, "The chat was closed by " + (session.agent_name or "us") + "."
                         if by == "agent" else "The chat has ended.")  # fmt: skip

    def lines_of(self, contact_id: str) -> list[dict[str, Any]]:
        session = self.by_contact.get(contact_id)
        return [line.message() for line in session.lines] if session else []

    def session_of(self, contact_id: str) -> ChatSession | None:
        return self.by_contact.get(contact_id)

    # ------------------------------------------------------------------ internals

    def _text(self, session: ChatSession, text: Any) -> str:
        text = str(text or "").strip()
        if not text:
            raise Refused("invalid", "Empty message.")
        limit = self.cfg.limits.message_chars
        if len(text) > limit:
            raise Refused("too_long", f"Messages can be at most {limit} characters.")
        for limiter, key in ((self.session_lines, session.token), (self.ip_lines, session.ip)):
            wait = limiter.take(key)
            if wait:
                raise Refused("rate_limited", "You are sending messages too fast; please wait.", wait)
        return text

    def _customer(self, session: ChatSession, text: str, client_id: str) -> Any:
        line = session.add("customer", session.name, text, {"client_id": client_id} if client_id else None)
        if self.channel is not None and session.contact_id:
            self.channel.line(session, line)
        return line

    def _bot(self, session: ChatSession, text: str, meta: dict[str, Any]) -> None:
        line = session.add("bot", "Assistant", text, meta)
        if self.channel is not None and session.contact_id:
            self.channel.line(session, line)

    def _system(self, session: ChatSession, text: str) -> None:
        session.add("system", "", text)  # shown to the customer; not part of the record's transcript

    def _state(self, session: ChatSession, state: Any) -> None:
        session.state = state
        session.send({"type": "state", "state": state})

    def _finish(self, session: ChatSession, text: str) -> None:
        self._system(session, text)
        self._state(session, "ended")
        self._last_queue_info.pop(session.token, None)
        self._mail_transcript(session)

    def forget(self, session: ChatSession) -> None:
        self.sessions.pop(session.token, None)
        if session.contact_id:
            self.by_contact.pop(session.contact_id, None)
        self.session_lines.forget(session.token)
        self._last_queue_info.pop(session.token, None)

    def _push_queue(self, session: ChatSession) -> None:
        if self.channel is None or not session.contact_id:
            return
        position, wait = self.channel.queue_info(session.contact_id)
        figures = (position, None if wait is None else round(wait))
        if self._last_queue_info.get(session.token) == figures:
            return
        self._last_queue_info[session.token] = figures
        session.send({"type": "queue", "position": figures[0], "wait_s": figures[1]})

    async def _sweep(self) -> None:
        lim = self.cfg.limits
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                try:
                    if session.state == "ended":
                        if session.socket is None or now - session.last_activity > lim.resume_grace_s:
                            self.forget(session)
                        continue
                    away = session.disconnected_at
                    gone = away is not None and now - away > lim.resume_grace_s
                    never = session.socket is None and session.disconnected_at is None
                    if gone or never:
                        self.end(session, "customer_gone", "customer")
                        self.forget(session)
                    elif session.state != "queued" and now - session.last_activity > lim.idle_timeout_s:
                        self.end(session, "idle_timeout", "system")
                    elif session.state == "queued":
                        self._push_queue(session)
                except Exception:  # one bad session must not stop the sweep for the others
                    log.exception("web chat sweep failed for session %s", session.id)


def transcript_text(session: ChatSession) -> str:
    """The chat as plain text for the customer's email: time, who, what."""
    out = [f"Your chat with us ({session.topic}), reference {session.contact_id}", ""]
    for line in session.lines:
        when = datetime.fromtimestamp(line.ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        who = {"customer": session.name or "You", "system": "—"}.get(line.kind, line.author or line.kind)
        out.append(f"[{when}] {who}: {line.text}")
    return "\n".join(out) + "\n"
