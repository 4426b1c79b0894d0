"""Per-source admission limits for new calls (what Kamailio's pike module does).

INVITEs that open a call come from anyone on the network, before any authentication,
and each costs an RTP port, a media session and a task: one address sending a few
hundred of them used to fill the center (issue 20). ``SourceLimits`` says how much one
source IP may ask for; ``InviteLimiter`` keeps a token bucket per source:

- ``invite_rate`` INVITEs per second sustained, ``invite_burst`` at once (0 rate: off);
- ``max_calls_per_source`` calls up at once from one address (0: off), counted by the UA;
- over either limit the INVITE gets 503 with Retry-After, which a well-behaved client
  honours; once a source has been refused ``refusals_before_drop`` times without an
  INVITE admitted in between, further over-rate INVITEs are dropped silently: a flood
  then costs neither a response nor a transaction;
- ``trusted`` networks (the SBC or Kamailio in front, a carrier's trunk; loopback by
  default) are exempt: everything behind them shares their address, and they do their
  own limiting.

The defaults let a busy carrier trunk through (20 new calls/s from one address, 100 up
at once) while stopping one host from taking every port; a center behind an SBC lists
it in ``trusted`` (or raises the limits). The table of buckets is bounded
(``max_sources``, least recently seen dropped first), so spoofed UDP sources cannot
grow it without limit.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections import OrderedDict
from dataclasses import dataclass

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    ADMIT = "admit"
    REFUSE = "refuse"  # 503 with Retry-After
    DROP = "drop"  # no response at all (flood)


@dataclass(frozen=True, slots=True)
class SourceLimits:
    invite_rate: float = 20.0
    invite_burst: int = 40
    max_calls_per_source: int = 100
    refusals_before_drop: int = 20
    retry_after_s: int = 5
    # networks exempt, e.g. ("10.0.0.5/32", "192.0.2.0/24"). Loopback by default: it
    # cannot be spoofed from off the host, and an SBC or Kamailio on the same machine
    # (and the benchmarks) send every call from it.
    trusted: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_sources: int = 65536

    def __post_init__(self) -> None:
        if self.invite_rate < 0 or self.invite_burst < 1 or self.max_calls_per_source < 0:
            raise ValueError("invite_rate >= 0, invite_burst >= 1, max_calls_per_source >= 0")
        for net in self.trusted:
            ipaddress.ip_network(net, strict=False)  # refuse a typo at start-up


def count_down(counts: dict[str, int], key: str) -> None:
    """One fewer under ``key`` in a table of per-source counts; zero counts are removed,
    so the table holds only the sources that have something open."""
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


class _Bucket:
    __slots__ = ("refusals", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.refusals = 0


class InviteLimiter:
    """The token buckets of ``SourceLimits``; ``now`` is a monotonic clock reading."""

    def __init__(self, limits: SourceLimits) -> None:
        self.limits = limits
        self._trusted = [ipaddress.ip_network(n, strict=False) for n in limits.trusted]
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._trust_cache: dict[str, bool] = {}

    def trusted(self, ip: str) -> bool:
        known = self._trust_cache.get(ip)
        if known is None:
            try:
                addr = ipaddress.ip_address(ip)
                known = any(addr in net for net in self._trusted)
            except ValueError:
                known = False
            if len(self._trust_cache) >= self.limits.max_sources:
                self._trust_cache.clear()
            self._trust_cache[ip] = known
        return known

    def exempt(self, ip: str) -> bool:
        """No rate limit applies to ``ip`` (the UA then skips the bucket altogether)."""
        return self.limits.invite_rate <= 0 or (bool(self._trusted) and self.trusted(ip))

    def admit(self, ip: str, now: float) -> Verdict:
        """One new INVITE from ``ip``: take a token, or say how to refuse it."""
        limits = self.limits
        if self.exempt(ip):
            return Verdict.ADMIT
        bucket = self._buckets.get(ip)
        if bucket is None:
            bucket = _Bucket(float(limits.invite_burst), now)
            self._buckets[ip] = bucket
            if len(self._buckets) > limits.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(ip)
            bucket.tokens = min(
                float(limits.invite_burst), bucket.tokens + (now - bucket.stamp) * limits.invite_rate
            )
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.refusals = 0
            return Verdict.ADMIT
        bucket.refusals += 1
        # two log lines per episode (its start and the switch to dropping), not one per INVITE
        if bucket.refusals == 1:
            log.warning("sip.limits source=%s over %g INVITE/s (burst %d): answering 503",
                        ip, limits.invite_rate, limits.invite_burst)
        elif bucket.refusals == limits.refusals_before_drop + 1:
            log.warning("sip.limits source=%s still flooding: dropping its INVITEs", ip)
        return Verdict.REFUSE if bucket.refusals <= limits.refusals_before_drop else Verdict.DROP

    def may_hold_another(self, ip: str, calls_up: int) -> bool:
        """Whether ``ip``, with ``calls_up`` calls up now, may open one more."""
        cap = self.limits.max_calls_per_source
        return cap == 0 or calls_up < cap or (bool(self._trusted) and self.trusted(ip))
