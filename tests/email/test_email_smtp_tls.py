"""The SMTP listener with STARTTLS and AUTH from the config: smtplib must STARTTLS (with a
certificate it trusts) and log in before MAIL; a wrong password and a plain session are
refused; the message is committed only for the authenticated, encrypted session."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from conftest import demo_cfg
from test_email_intake import mail

from callcenter.email.smtp import SmtpListener
from callcenter.email.store import EmailStore
from tests.support.certs import make_pki


@pytest.fixture
async def tls_listener(email_store: EmailStore, tmp_path: Path) -> tuple[SmtpListener, Path]:
    pki = make_pki(tmp_path / "pki")
    cfg = demo_cfg(
        smtp={
            "host": "127.0.0.1",
            "port": 0,
            "tls": {"cert_file": str(pki.cert), "key_file": str(pki.key)},
            "require_tls": True,
            "auth": {"users": {"mta": PasswordHasher().hash("relay-secret")}},
        }
    )
    listener = SmtpListener(cfg, email_store, lambda ids: None)
    await listener.start()
    yield listener, pki.ca
    await listener.stop()


def session(port: int, ca: Path, *, tls: bool, password: str | None) -> None:
    raw = mail("ada@example.com", "over TLS", "secret", msgid="tls@example.com")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if tls:
            client.starttls(context=ssl.create_default_context(cafile=str(ca)))
        if password is not None:
            client.login("mta", password)
        client.sendmail("ada@example.com", ["support@callcenter.local"], raw)


async def test_starttls_and_auth_required(
    tls_listener: tuple[SmtpListener, Path], email_store: EmailStore
) -> None:
    listener, ca = tls_listener
    with pytest.raises(smtplib.SMTPException) as plain:
        await asyncio.to_thread(session, listener.port, ca, tls=False, password=None)
    assert "530" in str(plain.value) or "STARTTLS" in str(plain.value)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        await asyncio.to_thread(session, listener.port, ca, tls=True, password="wrong")
    assert await email_store.pending() == []
    await asyncio.to_thread(session, listener.port, ca, tls=True, password="relay-secret")
    assert [r["envelope_from"] for r in await email_store.pending()] == ["ada@example.com"]
