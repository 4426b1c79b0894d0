"""Brute-force throttling of password guesses, shared by SIP digest (registrar) and the desktop login.

Two keys, two different answers, so that an attacker cannot lock the real user out for long:

* **The source address gets the ban.** ``max_failures`` bad credentials from one IP within
  ``window`` seconds lock that IP for ``lockout`` seconds; each further lock of the same IP
  doubles, up to ``max_lockout`` (a source that guesses slowly forever is soon locked for
  hours). While locked, its requests are refused *before* any credential is looked at, so it
  learns nothing and costs no hashing. Successes do not clear a source's count; otherwise an
  attacker holding one valid account could interleave good logins to reset it. Trusted
  networks (an office NAT many phones share) can be exempted by CIDR.
* **The account gets a delay, not a ban.** After ``free_failures`` failures in a row for one
  username (known or not, so the answer reveals nothing), every further failure makes the next
  attempt for that username wait ``delay`` seconds, doubling per failure up to ``max_delay``.
  Attempts inside the delay are refused unchecked and do not count, so guesses spread over many
  addresses get at most one try per delay, while the real user gets in once the delay is over;
  a success resets the account.

State is in memory (per process) and bounded: the least recently failed sources and accounts
are forgotten first, which merely lets them start counting again.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from callcenter.config import ThrottleCfg

__all__ = [
    "AccountBackoff", "AccountPolicy", "AuthThrottle", "LockoutPolicy", "LockoutTracker", "Refusal",
    "policies_from_config",
]

log = logging.getLogger("callcenter.throttle")


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """Per source address."""

    max_failures: int = 5
    window: float = 600.0
    lockout: float = 300.0
    max_lockout: float = 3600.0  # repeated locks double up to this (never below ``lockout``)
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
    locks: int = 0  # locks so far: the next one lasts lockout * 2**locks
    last_failure: float = 0.0


class LockoutTracker:
    """Counts failures per source IP; ``clock`` is monotonic seconds (injected in tests)."""

    def __init__(
        self,
        policy: LockoutPolicy | None = None,
        *,
        channel: str = "sip",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or LockoutPolicy()
        self.channel = channel
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
        state.locked_until = 0.0  # lock ran out: count afresh (the number of locks is kept)
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
        cap = max(pol.lockout, pol.max_lockout)
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
        if state.locks and now - state.last_failure > cap + pol.window:
            state.locks = 0  # quiet for longer than the longest lock: forgiven
        state.last_failure = now
        state.failures.append(now)
        recent = sum(1 for t in state.failures if now - t <= pol.window)
        if recent < pol.max_failures:
            return False
        duration = min(pol.lockout * 2 ** min(state.locks, 32), cap)
        state.locked_until = now + duration
        state.locks += 1
        state.failures.clear()
        log.warning(
            "%s source locked out after repeated authentication failures", self.channel,
            extra={
                "event": f"{self.channel}.auth.lockout",
                "source_ip": ip,
                "failures": recent,
                "window_s": pol.window,
                "lockout_s": duration,
                "locks": state.locks,
                "last_user": user,
            },
        )
        return True

    def unlock(self, ip: str) -> None:
        """Admin action: forget a source's failures and lock."""
        self._sources.pop(ip, None)

    def locked_sources(self) -> Iterable[str]:
        return [ip for ip in list(self._sources) if self.is_locked(ip)]


@dataclass(frozen=True, slots=True)
class AccountPolicy:
    """Per username."""

    free_failures: int = 5
    delay: float = 1.0
    max_delay: float = 60.0
    max_accounts: int = 100_000

    def __post_init__(self) -> None:
        if self.free_failures < 0:
            raise ValueError("free_failures must be >= 0")
        if self.delay <= 0 or self.max_delay < self.delay:
            raise ValueError("need 0 < delay <= max_delay")
        if self.max_accounts < 1:
            raise ValueError("max_accounts must be >= 1")


@dataclass(slots=True)
class _AccountState:
    failures: int = 0
    wait_until: float = 0.0


class AccountBackoff:
    """Failures in a row per username and the delay they impose (monotonic ``clock``)."""

    def __init__(
        self, policy: AccountPolicy | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy or AccountPolicy()
        self._clock = clock
        self._accounts: OrderedDict[str, _AccountState] = OrderedDict()

    def retry_after(self, account: str) -> float:
        """Seconds until ``account`` may try again; 0 when it may now."""
        state = self._accounts.get(account)
        return max(0.0, state.wait_until - self._clock()) if state is not None else 0.0

    def record_failure(self, account: str) -> float:
        """Count one failure; returns the delay it imposes (0 while under ``free_failures``)."""
        pol = self.policy
        state = self._accounts.get(account)
        if state is None:
            if len(self._accounts) >= pol.max_accounts:
                self._accounts.popitem(last=False)
            state = self._accounts[account] = _AccountState()
        else:
            self._accounts.move_to_end(account)
        state.failures += 1
        over = state.failures - pol.free_failures
        if over <= 0:
            return 0.0
        delay = min(pol.delay * 2 ** min(over - 1, 32), pol.max_delay)
        state.wait_until = self._clock() + delay
        return delay

    def record_success(self, account: str) -> None:
        self._accounts.pop(account, None)

    def failures(self, account: str) -> int:
        state = self._accounts.get(account)
        return state.failures if state is not None else 0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt was refused unchecked, and when to come back (seconds, rounded up)."""

    reason: Literal["source_locked", "account_delayed"]
    retry_after: int


class AuthThrottle:
    """Both keys for one channel ("sip", "http"), with the counters /metrics exposes.

    Use: ``check(source)`` before parsing credentials, ``check(source, account)`` before
    verifying them, then ``failed`` or ``succeeded``.
    """

    def __init__(
        self,
        channel: str,
        sources: LockoutPolicy | None = None,
        accounts: AccountPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self.clock = clock  # monotonic seconds; both trackers read it through now()
        self.sources = LockoutTracker(sources, channel=channel, clock=self.now)
        self.accounts = AccountBackoff(accounts, clock=self.now)
        # failures, source_locks, account_delays, refused_source_locked, refused_account_delayed
        # (and refused_busy, counted by the desktop login when its hashing pool is full)
        self.counts: Counter[str] = Counter()

    def now(self) -> float:
        return self.clock()

    def check(self, source: str, account: str | None = None) -> Refusal | None:
        until = self.sources.locked_until(source)
        if until is not None:
            self.counts["refused_source_locked"] += 1
            return Refusal("source_locked", math.ceil(until - self.now()))
        if account is not None:
            wait = self.accounts.retry_after(account)
            if wait > 0:
                self.counts["refused_account_delayed"] += 1
                return Refusal("account_delayed", math.ceil(wait))
        return None

    def failed(self, source: str, account: str) -> None:
        account = account[:64]  # attacker-chosen text: keep memory and log lines bounded
        self.counts["failures"] += 1
        if self.sources.record_failure(source, user=account):
            self.counts["source_locks"] += 1
        delay = self.accounts.record_failure(account)
        if delay:
            self.counts["account_delays"] += 1
            log.warning(
                "%s account delayed after repeated authentication failures", self.channel,
                extra={
                    "event": f"{self.channel}.auth.account_delay",
                    "account": account,
                    "failures": self.accounts.failures(account),
                    "delay_s": delay,
                    "source_ip": source,
                },
            )

    def succeeded(self, account: str) -> None:
        self.accounts.record_success(account[:64])


def policies_from_config(cfg: ThrottleCfg) -> tuple[LockoutPolicy, AccountPolicy]:
    return (
        LockoutPolicy(cfg.lockout_failures, cfg.lockout_window_s, cfg.lockout_s, cfg.lockout_max_s),
        AccountPolicy(cfg.account_free_failures, cfg.account_delay_s, cfg.account_max_delay_s),
    )
