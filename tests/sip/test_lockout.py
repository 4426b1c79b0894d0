"""Source lockout after repeated authentication failures — pure, injected clock."""

from __future__ import annotations

import logging

import pytest

from callcenter.throttle import LockoutPolicy, LockoutTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_after_max_failures_within_window_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    t = LockoutTracker(LockoutPolicy(max_failures=3, window=10, lockout=60), clock=clock)
    caplog.set_level(logging.WARNING, logger="callcenter.throttle")
    assert not t.record_failure("10.0.0.1", user="1001")
    assert not t.record_failure("10.0.0.1", user="1001")
    assert not t.is_locked("10.0.0.1")
    assert t.record_failure("10.0.0.1", user="1002")
    assert t.is_locked("10.0.0.1")
    assert not t.is_locked("10.0.0.2")
    rec = [r for r in caplog.records if getattr(r, "event", "") == "sip.auth.lockout"]
    assert len(rec) == 1
    assert rec[0].source_ip == "10.0.0.1" and rec[0].failures == 3 and rec[0].last_user == "1002"
    assert t.locked_until("10.0.0.1") == pytest.approx(1060.0)
    clock.now += 59
    assert t.is_locked("10.0.0.1")
    clock.now += 2
    assert not t.is_locked("10.0.0.1")  # lock ran out, counting starts afresh
    assert not t.record_failure("10.0.0.1")


def test_failures_outside_window_do_not_add_up() -> None:
    clock = Clock()
    t = LockoutTracker(LockoutPolicy(max_failures=3, window=10, lockout=60), clock=clock)
    for _ in range(10):
        assert not t.record_failure("10.0.0.1")
        clock.now += 6  # never 3 failures within 10 s
    assert not t.is_locked("10.0.0.1")


def test_attempts_while_locked_do_not_extend_the_lock() -> None:
    clock = Clock()
    t = LockoutTracker(LockoutPolicy(max_failures=2, window=10, lockout=30), clock=clock)
    t.record_failure("1.2.3.4")
    assert t.record_failure("1.2.3.4")
    clock.now += 20
    assert not t.record_failure("1.2.3.4")
    clock.now += 11
    assert not t.is_locked("1.2.3.4")


def test_exempt_networks_and_unlock_and_bounded_memory() -> None:
    clock = Clock()
    pol = LockoutPolicy(max_failures=1, window=10, lockout=30, max_sources=2, exempt=("192.168.0.0/16",))
    t = LockoutTracker(pol, clock=clock)
    assert not t.record_failure("192.168.1.9")
    assert not t.is_locked("192.168.1.9")
    assert t.record_failure("1.1.1.1")
    t.unlock("1.1.1.1")
    assert not t.is_locked("1.1.1.1")
    for ip in ("2.2.2.2", "3.3.3.3", "4.4.4.4"):
        t.record_failure(ip)
    assert len(t._sources) == 2
    assert sorted(t.locked_sources()) == ["3.3.3.3", "4.4.4.4"]


@pytest.mark.parametrize(
    "kwargs", [{"max_failures": 0}, {"window": 0}, {"lockout": -1}, {"exempt": ("nonsense",)}]
)
def test_bad_policy_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LockoutPolicy(**kwargs)
