"""Rate limits for the public web channel: a token bucket per key (an IP, a chat session).

``callcenter/throttle.py`` counts *failures* (wrong passwords) and bans a source; here every
request counts and the answer is only "not so fast": a bucket holds ``per_minute`` tokens,
refilled evenly over the minute, so a customer may type a quick burst and then keeps the
average. State is in memory and bounded like the throttle's: the least recently seen keys are
forgotten first, which only lets them start with a full bucket again.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if per_minute < 1 or max_keys < 1:
            raise ValueError("need per_minute >= 1 and max_keys >= 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self.refused = 0

    def take(self, key: str) -> int:
        """Spend one token of ``key``: 0 when allowed, else whole seconds until one is back."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0
        self._buckets[key] = (tokens, now)
        self.refused += 1
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)
