"""The email channel assembled: store, outbound queue, channel, processing, SMTP listener,
IMAP pollers and the relay dispatcher, started and stopped with the server.

``install_email(center)`` builds it from ``server.yaml``'s ``email:`` section (None when
``enabled`` is false) and adds its desk endpoints and panel; ``Center`` then calls
``restore`` (before crash recovery closes open records), ``start`` and ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.channels.email import EmailChannel
from callcenter.email import desk_api
from callcenter.email.config import EmailCfg
from callcenter.email.imap import ImapPoller
from callcenter.email.outbound import Outbound, OutboundDispatcher
from callcenter.email.process import EmailProcessor
from callcenter.email.smtp import SmtpListener
from callcenter.email.store import EmailStore
from callcenter.web.channel_api import include_channel
from callcenter.web.pages import PAGES_DIR

if TYPE_CHECKING:
    from callcenter.center import Center
    from callcenter.contacts.core import ContactCore
    from crm_bridge.store import CrmStore

log = logging.getLogger(__name__)


class EmailService:
    def __init__(self, cfg: EmailCfg, core: ContactCore, crm: CrmStore, files_dir: Path) -> None:
        self.cfg = cfg
        self.store = EmailStore(crm)
        self.outbound = Outbound(self.store, cfg.outbound, cfg.mailboxes)
        self.channel = EmailChannel(core, cfg, self.store, self.outbound)
        self.processor = EmailProcessor(cfg, self.store, files_dir, self.channel, self.outbound)
        self.smtp = SmtpListener(cfg, self.store, self.processor.wake) if cfg.smtp.enabled else None
        self.pollers = [ImapPoller(i, self.store, self.processor.wake) for i in cfg.imap]
        self.dispatcher = OutboundDispatcher(self.store, cfg.outbound) if cfg.outbound.relay else None
        self._tasks: list[asyncio.Task[None]] = []

    async def restore(self) -> list[str]:
        """Email contacts left open by the previous run, back in their queues (their ids, for
        crash recovery to leave open)."""
        ids = await self.store.open_email_contacts()
        restored = await self.processor.restore(ids)
        if restored:
            log.info("email: %d open email contact(s) back in their queues after the restart", len(restored))
        return restored

    async def start(self) -> None:
        def spawn(coro: object, name: str) -> None:
            self._tasks.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]

        spawn(self.processor.run(), "email-processing")  # the rows a previous run left come first
        for poller in self.pollers:
            spawn(poller.run(), f"email-imap-{poller.cfg.name}")
        if self.dispatcher is not None:
            spawn(self.dispatcher.run(), "email-outbound")
        if self.smtp is not None:
            await self.smtp.start()

    async def close(self) -> None:
        if self.smtp is not None:
            await self.smtp.stop()  # no new 250s; what was committed is processed after a restart
        self.processor.stop()
        for poller in self.pollers:
            poller.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        for task in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        self._tasks.clear()
        await self.channel.close()


def install_email(center: Center) -> EmailService | None:
    """The email channel from ``email:`` in server.yaml; None when it is not enabled."""
    s = center.cfg.server
    cfg: EmailCfg = s.email
    if not cfg.enabled:
        return None
    service = EmailService(cfg, center.core, center.crm, Path(s.crm.files_dir))
    include_channel(
        center.app,
        "email",
        router=desk_api.router(service.channel, Path(s.crm.files_dir)),
        script=PAGES_DIR / "desk_email.js",
    )
    return service
