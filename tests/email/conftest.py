"""Fixtures for the email channel: a started CrmStore on SQLite or a scratch PostgreSQL
database, the email config the demo uses, a real IMAP server (pymap) and a real SMTP
sink (aiosmtpd) for outbound mail."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from callcenter.email.config import EmailCfg
from callcenter.email.process import InboundEmail
from callcenter.email.store import EmailStore
from crm_bridge.store import CrmStore
from tests.support import eventually, free_port, require_postgres, unavailable

PG = {
    "host": os.environ.get("CRM_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("CRM_TEST_PG_PORT", "5432")),
    "user": os.environ.get("CRM_TEST_PG_USER", "postgres"),
    "database": os.environ.get("CRM_TEST_PG_DB", "test"),
}


def demo_cfg(**over: Any) -> EmailCfg:
    data: dict[str, Any] = {
        "enabled": True,
        "mailboxes": [
            {"address": "support@callcenter.local", "service": "support-email", "queue": "support"},
            {"address": "sales@callcenter.local", "service": "sales-email", "queue": "sales"},
        ],
        "smtp": {"host": "127.0.0.1", "port": 0, "max_message_bytes": 200_000},
    }
    data.update(over)
    return EmailCfg.model_validate(data)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(timeout=5, **PG)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_postgres(PG["host"], PG["port"], PG["user"], PG["database"])
    name = f"email_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"


@pytest.fixture
async def crm(db_url: str, tmp_path: Path) -> AsyncIterator[CrmStore]:
    store = CrmStore(db_url, tmp_path / "files")
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def email_store(crm: CrmStore) -> EmailStore:
    return EmailStore(crm)


@dataclass
class ListSink:
    """The channel's side as a list: what processing handed over, and which contacts are
    open (the real channel asks the contact core)."""

    delivered: list[InboundEmail] = field(default_factory=list)
    open: set[str] = field(default_factory=set)
    acks: list[dict[str, Any]] = field(default_factory=list)

    def is_open(self, contact_id: str) -> bool:
        return contact_id in self.open

    async def deliver(self, mail: InboundEmail) -> None:
        self.delivered.append(mail)
        if not mail.parsed.junk:
            self.open.add(mail.contact_id)

    def acknowledged(self, mail: InboundEmail, queued: dict[str, Any], text: str) -> None:
        self.acks.append(queued)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@dataclass
class ImapServer:
    host: str
    port: int
    user: str
    password: str
    proc: subprocess.Popen[bytes]

    def client(self) -> Any:
        import imaplib

        c = imaplib.IMAP4(self.host, self.port)
        c.login(self.user, self.password)
        return c

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        c = self.client()
        try:
            typ, data = c.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            c.logout()


@pytest.fixture
async def imap_server() -> AsyncIterator[ImapServer]:
    """pymap (PyPI), a real IMAP4rev1 server with IDLE, MOVE and UIDPLUS, in memory."""
    exe = shutil.which("pymap") or ""
    if not exe:
        unavailable("pymap", "pip install pymap (a test extra)")
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-tls",
            "dict",
            "--demo-user",
            "support",
            "--demo-password",
            "imap-pw",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = ImapServer("127.0.0.1", port, "support", "imap-pw", proc)

    async def up() -> bool:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return proc.poll() is not None  # died: stop waiting, fail below
        w.close()
        return True

    await eventually(up, 15, interval=0.1, what="pymap listening")
    if proc.poll() is not None:
        pytest.fail(f"pymap exited: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps what it receives; ``refuse`` makes it
    answer RCPT with that status instead."""

    port: int = 0
    received: list[Any] = field(default_factory=list)
    refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    from aiosmtpd.smtp import SMTP

    sink = SmtpSink()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


PYTHON = sys.executable
