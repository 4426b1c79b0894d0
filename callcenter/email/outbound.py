"""Mail we send: replies from the desk, auto-acknowledgements, chat transcripts.

``Outbound.send`` composes the message (Message-ID, In-Reply-To and the whole
References chain of the thread, the ``[#case]`` subject token) and queues it in
``email_outbound`` in one transaction with its thread entry; nothing is sent from the
request. ``OutboundDispatcher`` sends the queue through the configured relay with
aiosmtplib under the webhook outbox's discipline (crm_bridge/outbox.py): leased while
in flight, retried with exponential backoff and jitter, a dead letter after
``max_attempts`` or at once on a permanent (5xx) refusal, replayable with
``callcenter email outbox replay``. Without a relay a message is kept with state
``no_relay`` ("not sent: no relay"), which the desk shows.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from callcenter.email.config import MailboxCfg, OutboundCfg
from callcenter.email.parse import MemoHeaders, case_token
from callcenter.email.store import EmailStore, Write

log = logging.getLogger(__name__)

# CRLF line ends, RFC 5322 folding; each header parsed once (MemoHeaders: setting a header
# parses it, and most of an acknowledgement's headers are the same every time)
POLICY = email.policy.SMTP.clone(header_factory=MemoHeaders())


@dataclass(frozen=True, slots=True)
class Composed:
    raw: bytes
    message_id: str  # without <>
    subject: str
    text: str
    to: list[str]


def reply_subject(subject: str, case: str) -> str:
    subject = (subject or "").strip() or "Your message"
    if not subject.lower().startswith(("re:", "aw:", "sv:")):
        subject = f"Re: {subject}"
    if case_token(subject) != case:
        subject = f"{subject} [#{case}]"
    return subject


def compose(
    *,
    mailbox: MailboxCfg,
    to: Sequence[str],
    subject: str,
    text: str,
    domain: str,
    in_reply_to: str = "",
    references: Sequence[str] = (),
    auto: bool = False,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> Composed:
    """A message from ``mailbox`` to ``to``; ``references``: the thread's ids, oldest first."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = email.utils.formataddr((mailbox.display_name, mailbox.address))
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    mid = email.utils.make_msgid(domain=domain)
    msg["Message-ID"] = mid
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    refs = [r for r in dict.fromkeys(references) if r]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs[-20:])  # the chain, bounded (RFC 5322 §3.6.4)
    if auto:  # RFC 3834: robots must not answer this one
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text)
    for name, ctype, data in attachments:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(
            data, maintype=maintype or "application", subtype=subtype or "octet-stream", filename=name
        )
    return Composed(msg.as_bytes(), mid.strip("<>"), subject, text, list(to))


def quote(text: str, who: str, when: str) -> str:
    """The customer's text quoted under a reply ("On … wrote:" and ``> `` lines)."""
    lines = (text or "").splitlines() or [""]
    return f"On {when}, {who} wrote:\n" + "\n".join(f"> {ln}" if ln else ">" for ln in lines)


class Outbound:
    """Compose and queue; ``relay`` tells whether the queue will be sent."""

    def __init__(self, store: EmailStore, cfg: OutboundCfg, mailboxes: Sequence[MailboxCfg]) -> None:
        self.store = store
        self.cfg = cfg
        self.mailboxes = {m.address: m for m in mailboxes}

    @property
    def relay(self) -> bool:
        return self.cfg.relay is not None

    async def send(self, **message: Any) -> dict[str, Any]:
        """Queue a message; returns {id, message_id, state, subject} (``prepare``'s arguments)."""
        queued, writes = self.prepare(**message)
        await self.store.commit(writes)
        return queued

    def prepare(
        self,
        *,
        to: Sequence[str],
        subject: str,
        text: str,
        contact_id: str,
        thread_id: str = "",
        mailbox: str | None = None,
        kind: str = "reply",
        in_reply_to: str = "",
        references: Sequence[str] = (),
        attachments: Sequence[tuple[str, str, bytes]] = (),
        author: str = "",
    ) -> tuple[dict[str, Any], list[Write]]:
        """Compose a message and the writes that queue it: {id, message_id, state, subject},
        and the writes for ``EmailStore.commit`` (processing commits an acknowledgement
        with its row's decision). ``mailbox``: our sending address (default: the first
        configured). ``kind``: reply | ack | transcript."""
        mb = self.mailboxes.get(mailbox or "") or next(iter(self.mailboxes.values()))
        composed = compose(
            mailbox=mb,
            to=to,
            subject=subject,
            text=text,
            domain=self.cfg.domain,
            in_reply_to=in_reply_to,
            references=references,
            auto=kind == "ack",
            attachments=attachments,
        )
        summary = {
            "message_id": composed.message_id,
            "in_reply_to": [in_reply_to] if in_reply_to else [],
            "references": list(references),
            "from": mb.address,
            "to": list(to),
            "subject": subject,
            "text": text,
            "author": author,
            "kind": kind,
            "attachments": [{"name": n, "content_type": c, "size": len(d)} for n, c, d in attachments],
        }
        out_id, writes = self.store.outbound_writes(
            raw=composed.raw,
            kind=kind,
            message_id=composed.message_id,
            mail_from=mb.address,
            rcpt_to=to,
            contact_id=contact_id,
            thread_id=thread_id or contact_id,
            mailbox=mb.address,
            summary=summary,
            relay=self.relay,
        )
        state = "pending" if self.relay else "no_relay"
        return {"id": out_id, "message_id": composed.message_id, "state": state, "subject": subject}, writes


class OutboundDispatcher:
    """Send the queue through the relay until stopped."""

    def __init__(self, store: EmailStore, cfg: OutboundCfg, *, poll_s: float = 1.0) -> None:
        if cfg.relay is None:
            raise ValueError("no relay configured")
        self.store = store
        self.cfg = cfg
        self.relay = cfg.relay
        self.poll_s = poll_s
        self.lease_s = self.relay.timeout_s * 2 + 5
        self._stop = asyncio.Event()
        self.sent = 0
        self.failed = 0

    def stop(self) -> None:
        self._stop.set()

    def delay(self, attempts: int) -> float:
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_s * 2 ** max(0, attempts - 1))
        return base / 2 + random.uniform(0, base / 2)

    async def run(self) -> None:
        signal = self.store.crm.outbox_signal
        while not self._stop.is_set():
            try:
                n = await self.run_once()
            except Exception:
                log.exception("email outbound pass failed; retrying")
                n = 0
                await asyncio.sleep(1.0)
            if n:
                continue
            wait = await self.store.next_due_in(self.poll_s)
            waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(signal.wait())]
            await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            signal.clear()

    async def run_once(self) -> int:
        rows = await self.store.claim_due(self.lease_s)
        for row in rows:
            await self._attempt(row)
        return len(rows)

    async def _attempt(self, row: dict[str, Any]) -> None:
        r = self.relay
        n = int(row["attempts"]) + 1
        try:
            await aiosmtplib.send(
                row["raw"],
                sender=row["mail_from"],
                recipients=list(row["rcpt_to"]),
                hostname=r.host,
                port=r.port,
                use_tls=r.tls,
                start_tls=r.starttls if not r.tls else False,
                username=r.username,
                password=r.password,
                timeout=r.timeout_s,
                validate_certs=r.verify,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [e.code for e in exc.recipients]
            await self._failed(
                row,
                n,
                "; ".join(f"{e.code} {e.message}" for e in exc.recipients),
                all(500 <= c < 600 for c in codes),
            )
            return
        except aiosmtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600
            await self._failed(row, n, f"{exc.code} {exc.message}", permanent)
            return
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            await self._failed(row, n, f"{type(exc).__name__}: {exc}", False)
            return
        self.sent += 1
        await self.store.settle(
            row["id"], state="sent", attempts=n, sent_at=self.store.clock(), last_error=""
        )

    async def _failed(self, row: dict[str, Any], n: int, error: str, permanent: bool) -> None:
        self.failed += 1
        if permanent or n >= self.cfg.max_attempts:
            log.warning("email %s to %s dead after %d attempt(s): %s", row["id"], row["rcpt_to"], n, error)
            await self.store.settle(row["id"], state="dead", attempts=n, last_error=error[:500])
        else:
            await self.store.settle(
                row["id"],
                attempts=n,
                last_error=error[:500],
                next_attempt_at=self.store.clock() + self.delay(n),
            )
