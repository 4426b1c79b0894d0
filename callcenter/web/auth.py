"""Desktop logins.

Passwords are verified against argon2id hashes from agents.yaml, through the guessing
throttle and a bounded hashing pool; a login returns a short-lived session token
(tokens.py) that the REST calls send as ``Authorization: Bearer …`` and the WebSocket
as its ``Sec-WebSocket-Protocol`` (browsers cannot set other headers on a WebSocket, and
a token in the URL would end up in access logs).
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from callcenter.throttle import AuthThrottle
from callcenter.web.limits import HashingBusy, HashingSlots
from callcenter.web.tokens import Principal, Role, Tokens

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


class Authenticator:
    def __init__(
        self,
        agents: dict[str, str],
        supervisors: dict[str, str],
        *,
        ttl_s: int = 900,
        key: bytes | str | None = None,
        throttle: AuthThrottle | None = None,
        hashing: HashingSlots | None = None,
    ) -> None:
        self._agents = agents  # agent id -> argon2 hash
        self._supervisors = supervisors  # username -> argon2 hash
        # Replaced by Center.start with tokens signed by the configured key file.
        self.tokens = Tokens(key, ttl_s=ttl_s)
        self.throttle = throttle or AuthThrottle("http")
        self.hashing = hashing or HashingSlots()

    async def attempt(self, username: str, password: str, source: str) -> Principal | None:
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

    def login(self, username: str, password: str) -> Principal | None:
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
        return Principal(username, role)

    def issue(self, principal: Principal) -> str:
        """A token for a new session of ``principal`` (what a login returns)."""
        return self.tokens.issue(principal.subject, principal.role)[0]

    def verify(self, token: str) -> Principal | None:
        return self.tokens.verify(token)
