"""The ``email:`` section of server.yaml (docs/email.md).

Validated like every other section (pydantic, ``file: key: reason`` on error). Mailboxes
are the addresses we accept mail for; each names the service, queue, skills and the
first-response target of the contacts its mail becomes.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_bridge.addresses import normalize_email


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _address(value: str) -> str:
    norm = normalize_email(value)
    if norm is None:
        raise ValueError(f"not an email address: {value!r}")
    return norm


class MailboxCfg(_Strict):
    """An address we take mail for and what its mail becomes."""

    address: str
    service: str
    queue: str
    skills: dict[str, int] = {}
    priority: int = Field(0, ge=0, le=100)
    vip_priority: int = Field(10, ge=0, le=100)  # added for customers of these tiers (as the IVR does)
    vip_tiers: list[str] = ["vip", "gold"]
    first_response_s: float = Field(4 * 3600, gt=0)  # the SLA target for the first reply
    auto_ack: bool = True  # send "we received your message, case #…" (at most once per thread a day)
    display_name: str = ""  # the From name of our replies

    _addr = field_validator("address")(classmethod(lambda cls, v: _address(v)))


class SmtpAuthCfg(_Strict):
    """AUTH PLAIN/LOGIN for the listener: user → argon2 hash (``callcenter hash-password``)."""

    users: dict[str, str]

    @field_validator("users")
    @classmethod
    def _hashes(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("at least one user")
        for user, h in v.items():
            if not str(h).startswith("$argon2"):
                raise ValueError(f"{user}: expected an argon2 hash (callcenter hash-password)")
        return v


class SmtpListenerCfg(_Strict):
    """The SMTP listener an MTA forwards mail to (aiosmtpd)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)  # 0: any free port (tests)
    hostname: str = "callcenter.local"  # the name in the greeting
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1024)  # larger: 552
    tls: dict[str, str] | None = None  # {cert_file, key_file}: offer STARTTLS
    require_tls: bool = False  # refuse MAIL before STARTTLS
    auth: SmtpAuthCfg | None = None  # require AUTH (needs tls unless on loopback)

    @field_validator("host")
    @classmethod
    def _ip(cls, v: str) -> str:
        ipaddress.ip_address(v)
        return v

    @field_validator("tls")
    @classmethod
    def _tls(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        from callcenter.config import TlsFilesCfg

        TlsFilesCfg.model_validate(v)  # readable PEM files, key matching the certificate
        return v

    @model_validator(mode="after")
    def _auth_needs_tls(self) -> SmtpListenerCfg:
        if self.require_tls and self.tls is None:
            raise ValueError("require_tls needs tls (cert_file, key_file)")
        if self.auth is not None and self.tls is None and not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(
                "auth on a non-loopback listener needs tls: passwords would cross the network in clear"
            )
        return self


class ImapCfg(_Strict):
    """An IMAP mailbox polled for new mail (IDLE where the server offers it)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    url: str  # imap://user@host:143/INBOX or imaps://user@host:993/INBOX
    password: str
    mailbox: str  # which of `mailboxes` its mail is for
    move_to: str | None = None  # after commit: move here; unset: flag \\Seen
    poll_s: float = Field(60.0, gt=0)  # without IDLE, or between IDLE rounds
    idle: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        u = urlparse(v)
        if u.scheme not in ("imap", "imaps") or not u.hostname or not u.username:
            raise ValueError("expected imap://USER@HOST[:PORT]/FOLDER or imaps://…")
        return v

    @field_validator("mailbox")
    @classmethod
    def _mb(cls, v: str) -> str:
        return _address(v)

    def parts(self) -> dict[str, Any]:
        u = urlparse(self.url)
        tls = u.scheme == "imaps"
        return {
            "host": u.hostname,
            "port": u.port or (993 if tls else 143),
            "tls": tls,
            "user": unquote(u.username or ""),
            "folder": unquote(u.path.lstrip("/")) or "INBOX",
        }


class RelayCfg(_Strict):
    """The SMTP relay replies leave through (aiosmtplib)."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    tls: bool = False  # implicit TLS (port 465)
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(30.0, gt=0)
    verify: bool = True  # check the relay's certificate

    @model_validator(mode="after")
    def _one_tls(self) -> RelayCfg:
        if self.tls and self.starttls:
            raise ValueError("choose tls (implicit, 465) or starttls, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class OutboundCfg(_Strict):
    relay: RelayCfg | None = None  # unset: replies are kept as "not sent: no relay"
    max_attempts: int = Field(12, ge=1)
    backoff_s: float = Field(5.0, gt=0)
    backoff_max_s: float = Field(900.0, gt=0)
    domain: str = "callcenter.local"  # right-hand side of our Message-IDs


class AutoAckCfg(_Strict):
    enabled: bool = True
    subject: str = "We received your message [#{case}]"
    text: str = (
        "Thank you for your message. We have received it and will answer as soon as we can.\n"
        "Your case number is #{case}; please keep it in the subject when you write again.\n"
    )

    @field_validator("subject", "text")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            v.format(case="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{case}} may be used: {exc}") from None
        return v


class EmailCfg(_Strict):
    enabled: bool = False
    mailboxes: list[MailboxCfg] = []
    smtp: SmtpListenerCfg = SmtpListenerCfg()
    imap: list[ImapCfg] = []
    outbound: OutboundCfg = OutboundCfg()
    auto_ack: AutoAckCfg = AutoAckCfg()

    @model_validator(mode="after")
    def _consistent(self) -> EmailCfg:
        addrs = [m.address for m in self.mailboxes]
        dup = sorted({a for a in addrs if addrs.count(a) > 1})
        if dup:
            raise ValueError(f"mailboxes: duplicate address(es) {dup}")
        if self.enabled and not self.mailboxes:
            raise ValueError("mailboxes: at least one is needed when email is enabled")
        names = [i.name for i in self.imap]
        if len(set(names)) != len(names):
            raise ValueError(f"imap: duplicate names in {names}")
        for i in self.imap:
            if i.mailbox not in addrs:
                raise ValueError(f"imap {i.name}: mailbox {i.mailbox!r} is not one of mailboxes")
        return self

    def mailbox(self, address: str) -> MailboxCfg | None:
        norm = normalize_email(address)
        return next((m for m in self.mailboxes if m.address == norm), None)
