"""Desktop logins and bearer tokens.

Passwords are verified against argon2id hashes from agents.yaml; a login
returns a signed JWT (HS256, short expiry) that the REST calls send as
``Authorization: Bearer …`` and the WebSocket sends as ``?token=…`` (browsers
cannot set headers on a WebSocket). The signing key is random per process
start unless configured, so a restart logs everyone out — acceptable for a
single node; multi-node deployments share the key through config.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callcenter.throttle import AuthThrottle
from callcenter.web.limits import HashingBusy, HashingSlots

Role = Literal["agent", "supervisor"]

# Verifying against a dummy hash when the user is unknown costs the same time
# as a real check, so login timing does not reveal which usernames exist.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class LoginRefused(Exception):
    """A login refused before its password was checked (answered 429 with Retry-After)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = max(1, retry_after)


_REFUSALS = {
    "source_locked": "too many failed logins from this address; try again later",
    "account_delayed": "too many failed logins for this user; try again in a moment",
}


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str  # agent id or supervisor username
    role: Role


class Authenticator:
    def __init__(
        self,
        agents: dict[str, str],
        supervisors: dict[str, str],
        *,
        ttl_s: int = 8 * 3600,
        key: str | None = None,
        throttle: AuthThrottle | None = None,
        hashing: HashingSlots | None = None,
        clock=time.time,
    ) -> None:
        self._agents = agents  # agent id -> argon2 hash
        self._supervisors = supervisors  # username -> argon2 hash
        self._ttl = ttl_s
        self._key = key or secrets.token_urlsafe(32)
        self._clock = clock
        self.throttle = throttle or AuthThrottle("http")
        self.hashing = hashing or HashingSlots()

    async def attempt(self, username: str, password: str, source: str) -> tuple[str, Principal] | None:
        """A desktop login from ``source`` through the guessing throttle (callcenter.throttle):
        raises :class:`LoginRefused` without hashing when the source is locked or the user's
        account is in its delay; None for a wrong password."""
        refusal = self.throttle.check(source, username)
        if refusal is not None:
            raise LoginRefused(_REFUSALS[refusal.reason], refusal.retry_after)
        # argon2 is deliberately slow (and 64 MiB each): verify in a bounded pool of threads.
        try:
            result = await self.hashing.run(self.login, username, password)
        except HashingBusy:
            self.throttle.counts["refused_busy"] += 1
            raise LoginRefused("too many logins in progress; try again in a moment", 1) from None
        if result is None:
            self.throttle.failed(source, username)
        else:
            self.throttle.succeeded(username)
        return result

    def login(self, username: str, password: str) -> tuple[str, Principal] | None:
        role: Role
        if username in self._supervisors:
            stored, role = self._supervisors[username], "supervisor"
        elif username in self._agents:
            stored, role = self._agents[username], "agent"
        else:
            stored, role = _DUMMY_HASH, "agent"
        try:
            ok = _HASHER.verify(stored, password) and stored is not _DUMMY_HASH
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            return None
        principal = Principal(username, role)
        return self.issue(principal), principal

    def issue(self, principal: Principal) -> str:
        now = int(self._clock())
        claims = {"sub": principal.subject, "role": principal.role, "iat": now, "exp": now + self._ttl}
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> Principal | None:
        try:
            claims = jwt.decode(
                token, self._key, algorithms=["HS256"], options={"verify_exp": False}
            )
        except jwt.PyJWTError:
            return None
        if int(claims.get("exp", 0)) < self._clock():
            return None
        role = claims.get("role")
        if role not in ("agent", "supervisor"):
            return None
        return Principal(str(claims["sub"]), role)
