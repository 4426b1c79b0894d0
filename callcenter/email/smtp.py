"""The SMTP listener (aiosmtpd) an MTA forwards our mail to.

RCPT for an address that is not one of ``email.mailboxes`` gets 550; a message over
``max_message_bytes`` gets 552 (aiosmtpd's size check, also for a SIZE= announced in
MAIL FROM). ``250`` is answered only once the raw message is committed to the database
(``EmailStore.commit_inbound``), so a process killed after the 250 has lost nothing:
processing picks the row up after the restart. A database that stays away gets 451
(the MTA keeps the message and retries). STARTTLS and AUTH come from the config.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from callcenter.email.config import EmailCfg, SmtpListenerCfg
from callcenter.email.store import EmailStore

log = logging.getLogger(__name__)


class _Handler:
    def __init__(self, cfg: EmailCfg, store: EmailStore, on_commit: Callable[[list[str]], None]) -> None:
        self.cfg = cfg
        self.store = store
        self.on_commit = on_commit
        self.accepted = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.cfg.mailbox(address) is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # decode_data is off; defensive
            raw = raw.encode("utf-8", "surrogateescape")
        mailboxes = list(dict.fromkeys(mb.address for a in envelope.rcpt_tos if (mb := self.cfg.mailbox(a))))
        try:
            ids = await self.store.commit_inbound(
                raw,
                mailboxes=mailboxes,
                source="smtp",
                envelope_from=envelope.mail_from or "",
                envelope_to=list(envelope.rcpt_tos),
            )
        except Exception:
            log.exception("email intake: could not commit a message from %s", envelope.mail_from)
            return "451 4.3.0 Temporary storage failure, try again later"
        self.accepted += 1
        self.on_commit(ids)
        return f"250 2.0.0 OK queued as {ids[0] if ids else '-'}"


def _authenticator(cfg: SmtpListenerCfg) -> Callable[..., AuthResult] | None:
    if cfg.auth is None:
        return None
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError

    hasher = PasswordHasher()
    users = dict(cfg.auth.users)

    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = data.login.decode("utf-8", "replace")
        stored = users.get(user)
        try:
            ok = stored is not None and hasher.verify(stored, data.password.decode("utf-8", "replace"))
        except VerificationError:
            ok = False
        return AuthResult(success=bool(ok), handled=False)

    return check


class SmtpListener:
    """Listens on ``email.smtp.host:port`` in the running loop."""

    def __init__(self, cfg: EmailCfg, store: EmailStore, on_commit: Callable[[list[str]], None]) -> None:
        self.cfg = cfg
        self.handler = _Handler(cfg, store, on_commit)
        self._server: asyncio.base_events.Server | None = None
        self.port = cfg.smtp.port

    def _protocol(self) -> SMTP:
        s = self.cfg.smtp
        tls = None
        if s.tls:
            from callcenter.sip.tls import server_context

            tls = server_context(s.tls["cert_file"], s.tls["key_file"])
        auth = _authenticator(s)
        return SMTP(
            self.handler,
            data_size_limit=s.max_message_bytes,
            hostname=s.hostname,
            tls_context=tls,
            require_starttls=s.require_tls,
            auth_required=auth is not None,
            authenticator=auth,
            # AUTH in clear only on loopback (config refuses it elsewhere without TLS)
            auth_require_tls=tls is not None,
            enable_SMTPUTF8=True,
            timeout=60,
        )

    async def start(self) -> None:
        s = self.cfg.smtp
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, s.host, s.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("email: SMTP listener on %s:%d", s.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
