"""IMAP polling with IDLE (aioimaplib), restart-safe by UIDVALIDITY/UID.

One poller per ``email.imap`` entry: log in, select the folder, fetch every message
above the last UID it committed (``email_imap_state``), commit each raw message
(``EmailStore.commit_inbound`` with ``source_key = imap:<name>:<uidvalidity>:<uid>``,
so a message fetched twice is kept once), and only then flag it ``\\Seen`` or move it
(UID COPY + \\Deleted + UID EXPUNGE) and advance the position. A crash anywhere in
between fetches the message again and the key dedups it. If the server's UIDVALIDITY
changed (the folder was renumbered), the old position means nothing: the poller takes
the folder's unseen messages instead. Between rounds it waits in IDLE where the server
offers it (woken by EXISTS), else polls every ``poll_s``; a lost connection is retried
with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Callable

import aioimaplib

from callcenter.email.config import ImapCfg
from callcenter.email.store import EmailStore

log = logging.getLogger(__name__)
_UIDVALIDITY_RE = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_UID_RE = re.compile(rb"UID (\d+)")


class ImapError(Exception):
    pass


def _ok(resp: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if resp.result != "OK":
        raise ImapError(f"{what}: {resp.result} {b' '.join(bytes(x) for x in resp.lines)[:200]!r}")
    return resp


class ImapPoller:
    def __init__(
        self,
        cfg: ImapCfg,
        store: EmailStore,
        on_commit: Callable[[list[str]], None],
        *,
        timeout: float = 30.0,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.on_commit = on_commit
        self.timeout = timeout
        self.parts = cfg.parts()
        self._stop = asyncio.Event()
        self.fetched = 0
        self.rounds = 0
        self.idling = False  # for tests and health: waiting in IDLE right now
        self.last_error = ""  # why the last session ended ('' while none failed)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                await self._session()
                delay = 1.0
            except (TimeoutError, ImapError, OSError, aioimaplib.Abort, aioimaplib.Error) as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.warning("imap %s: %s; reconnecting in %.0f s", self.cfg.name, exc, delay)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("imap %s: unexpected error; reconnecting in %.0f s", self.cfg.name, delay)
            self.idling = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, 60.0)

    async def _connect(self) -> aioimaplib.IMAP4:
        p = self.parts
        if p["tls"]:
            client = aioimaplib.IMAP4_SSL(
                p["host"], p["port"], timeout=self.timeout, ssl_context=ssl.create_default_context()
            )
        else:
            client = aioimaplib.IMAP4(p["host"], p["port"], timeout=self.timeout)
        await client.wait_hello_from_server()
        _ok(await client.login(p["user"], self.cfg.password), "login")
        return client

    async def _session(self) -> None:
        client = await self._connect()
        try:
            resp = _ok(await client.select(self.parts["folder"]), f"select {self.parts['folder']}")
            found = next((m for line in resp.lines if (m := _UIDVALIDITY_RE.search(bytes(line)))), None)
            if found is None:
                raise ImapError("the server sent no UIDVALIDITY")
            uidvalidity = int(found.group(1))
            while not self._stop.is_set():
                await self._round(client, uidvalidity)
                self.rounds += 1
                await self._wait(client)
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone anyway
                await asyncio.wait_for(client.logout(), 5)

    async def _round(self, client: aioimaplib.IMAP4, uidvalidity: int) -> None:
        name = self.cfg.name
        pos = await self.store.imap_position(name)
        if pos is None or pos[0] != uidvalidity:
            if pos is not None:
                log.warning(
                    "imap %s: UIDVALIDITY changed (%d → %d): taking the unseen messages again",
                    name,
                    pos[0],
                    uidvalidity,
                )
            criteria, last = ("UNSEEN",), 0
        else:
            criteria, last = (f"UID {pos[1] + 1}:*",), pos[1]
        resp = _ok(await client.uid_search(*criteria, charset=None), "search")
        uids = sorted({int(x) for line in resp.lines[:-1] for x in bytes(line).split() if x.isdigit()})
        uids = [u for u in uids if u > last] if criteria[0].startswith("UID") else uids
        for uid in uids:
            if self._stop.is_set():
                return
            raw = await self._fetch(client, uid)
            if raw is not None:
                ids = await self.store.commit_inbound(
                    raw,
                    mailboxes=[self.cfg.mailbox],
                    source=f"imap:{name}",
                    envelope_from="",
                    envelope_to=[self.cfg.mailbox],
                    source_key=f"imap:{name}:{uidvalidity}:{uid}",
                )
                self.fetched += 1
                if ids:
                    self.on_commit(ids)
            await self._settle(client, uid)  # only now: the message is committed
            await self.store.set_imap_position(name, uidvalidity, max(uid, last))
            last = max(uid, last)
        if pos is None or pos[0] != uidvalidity:
            await self.store.set_imap_position(name, uidvalidity, last)

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes | None:
        resp = _ok(await client.uid("fetch", str(uid), "(UID BODY.PEEK[])"), f"fetch {uid}")
        for i, line in enumerate(resp.lines):
            if isinstance(line, bytearray) and i > 0:
                m = _FETCH_UID_RE.search(bytes(resp.lines[i - 1]))
                if m is None or int(m.group(1)) == uid:
                    return bytes(line)
        return None  # expunged by someone else meanwhile

    async def _settle(self, client: aioimaplib.IMAP4, uid: int) -> None:
        if self.cfg.move_to:
            _ok(await client.uid("copy", str(uid), self.cfg.move_to), f"copy {uid} to {self.cfg.move_to}")
            _ok(await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), f"delete {uid}")
            if client.has_capability("UIDPLUS"):
                _ok(await client.uid("expunge", str(uid)), f"expunge {uid}")
            else:
                _ok(await client.expunge(), "expunge")
        else:
            _ok(await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)"), f"flag {uid}")

    async def _wait(self, client: aioimaplib.IMAP4) -> None:
        """Until the server says something changed (IDLE), or ``poll_s`` passes."""
        if self.cfg.idle and client.has_capability("IDLE"):
            idle = await client.idle_start(timeout=self.cfg.poll_s + 30)
            self.idling = True
            stop = asyncio.ensure_future(self._stop.wait())
            push = asyncio.ensure_future(client.wait_server_push(timeout=self.cfg.poll_s))
            try:
                await asyncio.wait([stop, push], return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.idling = False
                stop.cancel()
                if not push.done():
                    await client.stop_wait_server_push()
                    push.cancel()
                client.idle_done()
                await asyncio.wait_for(idle, self.timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.cfg.poll_s)
