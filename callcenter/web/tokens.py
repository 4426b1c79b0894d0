"""Desktop session tokens: short-lived HS256 JWTs with sliding renewal, revocation on
logout, and a signing key that survives restarts.

* A login starts a *session* (``sid``) and gets an access token valid ``ttl_s`` (15 min).
  ``POST /api/refresh`` with a valid token returns a new one for the same session; the
  pages renew at two thirds of the lifetime. A session ends ``session_max_s`` after login
  (12 h): no token of it is issued or accepted past that, so a stolen token cannot be
  renewed forever.
* Logout revokes the session: every token of it (the current one and any earlier one not
  yet expired) is refused from then on. The revocation list is keyed by ``sid`` and keeps
  an entry until the session's last token would have expired anyway; it lives in memory and
  in ``revoked-sessions.json`` beside the key file, so a restart does not bring a
  logged-out token back. One node: several nodes sharing a key would each need the list
  (a shared store is not provided).
* The key comes from ``http.jwt_key_file``; by default ``<data_dir>/jwt.key`` is created
  once (random 256 bits, mode 0600), so a restart does not log everyone out and several
  nodes can share the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt

__all__ = [
    "WS_PROTOCOL", "Principal", "RedactSecrets", "RevokedSessions", "Role", "Tokens", "load_or_create_key",
    "redact_server_logs", "ws_subprotocols",
]

# The WebSocket client offers ``[WS_PROTOCOL, token]`` as Sec-WebSocket-Protocol; the server
# picks WS_PROTOCOL, so the token itself is never echoed and never in a URL.
WS_PROTOCOL = "callcenter.bearer"


def ws_subprotocols(token: str) -> list[str]:
    """What a WebSocket client offers (``websockets.connect(url, subprotocols=...)``)."""
    return [WS_PROTOCOL, token]

log = logging.getLogger("callcenter.web.tokens")

Role = Literal["agent", "supervisor"]
_MIN_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # agent id or supervisor username
    role: Role
    session: str = ""  # sid: shared by a login's renewed tokens, revoked on logout
    started_at: int = 0  # the login (Unix seconds): the session ends session_max_s later


def load_or_create_key(path: Path, what: str = "token signing key", event: str = "http.jwt_key") -> bytes:
    """The signing key in ``path`` (created once, 0600, if missing); ``what`` and ``event``
    name it in the log lines and errors."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(_MIN_KEY_BYTES) + "\n")
        log.info("created the %s", what, extra={"event": f"{event}.created", "path": str(path)})
    if path.stat().st_mode & 0o077:
        log.warning("%s file is readable by others; chmod 600 it", what,
                    extra={"event": f"{event}.permissions", "path": str(path)})  # fmt: skip
    key = path.read_bytes().strip()
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"{path}: the {what} must be at least {_MIN_KEY_BYTES} bytes")
    return key


class RevokedSessions:
    """Revoked session ids, each until its last token would expire; optionally kept in a file."""

    def __init__(self, path: Path | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._until: dict[str, float] = {}
        if path is not None and path.exists():
            try:
                self._until = {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError) as exc:
                log.warning("unreadable revoked-sessions file ignored: %s", exc, extra={"path": str(path)})
        self._purge()

    def __contains__(self, sid: str) -> bool:
        return sid in self._until

    def add(self, sid: str, until: float) -> None:
        self._purge()
        self._until[sid] = until
        if self._path is not None:
            tmp = self._path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self._until, f)
            os.replace(tmp, self._path)

    def _purge(self) -> None:
        now = self._clock()
        for sid in [s for s, until in self._until.items() if until < now]:
            del self._until[sid]


_DECODE = {"require": ["exp", "sid", "auth_time"], "verify_exp": False, "verify_iat": False}


class Tokens:
    def __init__(
        self,
        key: bytes | str | None = None,
        *,
        ttl_s: int = 900,
        session_max_s: int = 12 * 3600,
        revoked: RevokedSessions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key or secrets.token_bytes(_MIN_KEY_BYTES)  # random: tests and one-off tools
        self.ttl_s = ttl_s
        self.session_max_s = session_max_s
        self.revoked = revoked if revoked is not None else RevokedSessions(clock=clock)
        self.clock = clock

    @classmethod
    def from_key_file(cls, path: Path, *, ttl_s: int, session_max_s: int) -> Tokens:
        """Tokens signed with the key in ``path`` (created once if missing), with the
        revocation list kept beside it."""
        try:
            key = load_or_create_key(path)
        except OSError as exc:
            raise ValueError(f"http.jwt_key_file: cannot use {path}: {exc.strerror}") from None
        revoked = RevokedSessions(path.with_name("revoked-sessions.json"))
        return cls(key, ttl_s=ttl_s, session_max_s=session_max_s, revoked=revoked)

    def issue(self, subject: str, role: Role, *, session: str = "", started_at: int = 0) -> tuple[str, int]:
        """A token (and its lifetime in seconds) for a new session, or the next of ``session``."""
        now = int(self.clock())
        session = session or secrets.token_urlsafe(12)
        started_at = started_at or now
        exp = min(now + self.ttl_s, started_at + self.session_max_s)
        claims = {"sub": subject, "role": role, "iat": now, "exp": exp, "jti": secrets.token_urlsafe(12),
                  "sid": session, "auth_time": started_at}  # fmt: skip
        return jwt.encode(claims, self._key, algorithm="HS256"), exp - now

    def verify(self, token: str) -> Principal | None:
        try:
            # Times are checked below against self.clock (injectable), not PyJWT's time.time.
            claims: dict[str, Any] = jwt.decode(token, self._key, algorithms=["HS256"], options=_DECODE)
        except jwt.PyJWTError:  # bad signature, malformed, claims missing
            return None
        role = claims.get("role")
        if role not in ("agent", "supervisor") or claims["sid"] in self.revoked:
            return None
        if not isinstance(claims["exp"], int) or claims["exp"] <= self.clock():
            return None
        return Principal(str(claims["sub"]), role, str(claims["sid"]), int(claims["auth_time"]))

    def refresh(self, p: Principal) -> tuple[str, int] | None:
        """The next token of ``p``'s session; None once the session has reached its end."""
        if self.clock() >= p.started_at + self.session_max_s:
            return None
        return self.issue(p.subject, p.role, session=p.session, started_at=p.started_at)

    def revoke(self, p: Principal) -> None:
        self.revoked.add(p.session, p.started_at + self.session_max_s)


# Defence in depth: the WebSocket token travels in a header, but a client may still put
# one in a URL (an old page, a hand-written script), and uvicorn logs request lines with
# their query strings ("WebSocket /ws?token=…" [accepted]).
_SECRET_IN_URL = re.compile(r"((?:access_)?token=)[^&\s\"']+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+")


def redact(text: str) -> str:
    return _JWT.sub("[redacted-jwt]", _SECRET_IN_URL.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    """Rewrites token query parameters and JWTs out of a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_server_logs() -> None:
    """Install :class:`RedactSecrets` on uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
