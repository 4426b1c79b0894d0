"""Lock out a source address after repeated authentication failures.

Policy: ``max_failures`` bad credentials from one source IP within ``window`` seconds lock
that IP for ``lockout`` seconds. While locked, requests are refused *before* any credential
is looked at (the registrar answers 403), so a guessing attacker learns nothing and costs us
no hashing. The lock is not extended by further attempts: a legitimate phone that keeps
retrying with a stale password recovers once the admin fixes it and the lock runs out.

Successes do not clear the failure count; otherwise an attacker holding one valid account
could interleave good logins to reset the counter while guessing other users' passwords.
Trusted networks (an office NAT that many phones share) can be exempted by CIDR.

Memory is bounded: at most ``max_sources`` sources are tracked; the least recently failed
ones are forgotten first (a forgotten source merely starts counting again).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["LockoutPolicy", "LockoutTracker"]

log = logging.getLogger("callcenter.sip.lockout")


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5
    window: float = 60.0
    lockout: float = 300.0
    max_sources: int = 100_000
    exempt: tuple[str, ...] = ()  # CIDRs never locked (e.g. "10.0.0.0/8")

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be >= 1")
        if self.window <= 0 or self.lockout <= 0:
            raise ValueError("window and lockout must be > 0 seconds")
        if self.max_sources < 1:
            raise ValueError("max_sources must be >= 1")
        for cidr in self.exempt:
            ipaddress.ip_network(cidr, strict=False)  # raises ValueError naming the bad CIDR


@dataclass(slots=True)
class _SourceState:
    failures: deque[float]
    locked_until: float = 0.0


class LockoutTracker:
    """Counts failures per source IP; ``clock`` is monotonic seconds (injected in tests)."""

    def __init__(
        self, policy: LockoutPolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or LockoutPolicy()
        self._clock = clock
        self._sources: OrderedDict[str, _SourceState] = OrderedDict()
        self._exempt = [ipaddress.ip_network(c, strict=False) for c in self.policy.exempt]

    def _is_exempt(self, ip: str) -> bool:
        if not self._exempt:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._exempt)

    def is_locked(self, ip: str) -> bool:
        state = self._sources.get(ip)
        if state is None or not state.locked_until:
            return False
        if self._clock() < state.locked_until:
            return True
        state.locked_until = 0.0  # lock ran out: start afresh
        state.failures.clear()
        return False

    def locked_until(self, ip: str) -> float | None:
        """Monotonic time the lock ends, or None if not locked."""
        return self._sources[ip].locked_until if self.is_locked(ip) else None

    def record_failure(self, ip: str, *, user: str = "") -> bool:
        """Count one failure; returns True if this failure locked the source."""
        if self._is_exempt(ip):
            return False
        now = self._clock()
        pol = self.policy
        state = self._sources.get(ip)
        if state is None:
            if len(self._sources) >= pol.max_sources:
                self._sources.popitem(last=False)
            state = _SourceState(deque(maxlen=pol.max_failures))
            self._sources[ip] = state
        else:
            self._sources.move_to_end(ip)
        if state.locked_until and now < state.locked_until:
            return False
        state.failures.append(now)
        recent = sum(1 for t in state.failures if now - t <= pol.window)
        if recent >= pol.max_failures:
            state.locked_until = now + pol.lockout
            state.failures.clear()
            log.warning(
                "sip source locked out after repeated authentication failures",
                extra={
                    "event": "sip.auth.lockout",
                    "source_ip": ip,
                    "failures": recent,
                    "window_s": pol.window,
                    "lockout_s": pol.lockout,
                    "last_user": user,
                },
            )
            return True
        return False

    def unlock(self, ip: str) -> None:
        """Admin action: forget a source's failures and lock."""
        self._sources.pop(ip, None)

    def locked_sources(self) -> Iterable[str]:
        return [ip for ip in list(self._sources) if self.is_locked(ip)]
