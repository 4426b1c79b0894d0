"""Normalizing contact points so the same person always yields the same key.

Phones and faxes become E.164 (``phonenumbers``, with a configurable default
region for national-format input); emails are lower-cased; web identities are
trimmed. A value that cannot be normalized returns ``None`` — the caller keeps
the raw value on the record and flags it instead of guessing.
"""

from __future__ import annotations

import functools
import re
from email.utils import parseaddr

import phonenumbers

KINDS = ("phone", "email", "web", "fax")

# Pragmatic check, not RFC 5322: one @, something on each side, a dot in the domain.
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_SIP_USER_RE = re.compile(r"^(?:sips?|tel):\+?([^@;>]+)", re.IGNORECASE)


@functools.lru_cache(maxsize=65536)  # parsing is the costly part of ingest; callers repeat
def normalize_phone(raw: str, default_region: str = "GB") -> str | None:
    """E.164 for a dialable number, else ``None`` (withheld, 'anonymous', junk)."""
    value = (raw or "").strip()
    if not value:
        return None
    match = _SIP_USER_RE.match(value.strip("<>\"' "))
    if match:  # sip:+4416...@host or tel:+44...
        user = match.group(1)
        value = user if not value.lower().startswith(("sip:+", "sips:+", "tel:+")) else "+" + user
    if value.startswith("00"):
        value = "+" + value[2:]
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str | None:
    """``"Ada <Ada@Example.COM>"`` → ``ada@example.com``; ``None`` if not an address."""
    _name, addr = parseaddr((raw or "").strip())
    addr = addr.strip().lower()
    if addr.startswith("mailto:"):
        addr = addr[len("mailto:") :]
    # 254: the longest address SMTP can carry; longer is junk, not a contact point
    return addr if len(addr) <= 254 and _EMAIL_RE.match(addr) else None


def normalize_web(raw: str) -> str | None:
    value = (raw or "").strip()
    return value[:256] if value else None


def normalize(kind: str, raw: str, default_region: str = "GB") -> str | None:
    """Normalize ``raw`` as a contact point of ``kind`` (phone|email|web|fax)."""
    if kind in ("phone", "fax"):
        return normalize_phone(raw, default_region)
    if kind == "email":
        return normalize_email(raw)
    if kind == "web":
        return normalize_web(raw)
    raise ValueError(f"unknown contact point kind {kind!r}; expected one of {KINDS}")
