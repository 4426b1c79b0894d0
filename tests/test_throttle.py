"""The shared guessing throttle (callcenter.throttle) — pure, injected clock."""

from __future__ import annotations

import logging

import pytest

from callcenter.throttle import AccountPolicy, AuthThrottle, LockoutPolicy, Refusal

NO_LOCK = LockoutPolicy(max_failures=1000)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_account_delay_doubles_up_to_the_cap_and_resets_on_success(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    t = AuthThrottle("http", NO_LOCK, AccountPolicy(2, delay=1, max_delay=4), clock=clock)
    caplog.set_level(logging.WARNING, logger="callcenter.throttle")
    delays = []
    for i in range(6):
        assert t.check(f"10.0.0.{i}", "alice") is None
        t.failed(f"10.0.0.{i}", "alice")
        delays.append(t.accounts.retry_after("alice"))
        clock.now += delays[-1]  # wait exactly the delay
    assert delays == [0, 0, 1, 2, 4, 4]
    assert [r.delay_s for r in caplog.records if r.event == "http.auth.account_delay"] == [1, 2, 4, 4]
    t.failed("10.0.0.9", "alice")
    assert t.check("10.0.0.10", "alice") == Refusal("account_delayed", 4)
    assert t.check("10.0.0.10", "bob") is None  # other accounts are untouched
    t.succeeded("alice")
    assert t.check("10.0.0.10", "alice") is None
    t.failed("10.0.0.10", "alice")
    assert t.accounts.retry_after("alice") == 0  # counting starts afresh


def test_refused_attempts_do_not_count_or_extend_the_delay() -> None:
    clock = Clock()
    t = AuthThrottle("sip", NO_LOCK, AccountPolicy(0, delay=10, max_delay=60), clock=clock)
    t.failed("1.1.1.1", "1001")
    for _ in range(50):
        assert t.check("2.2.2.2", "1001") is not None
    clock.now += 10
    assert t.check("2.2.2.2", "1001") is None
    assert t.counts["failures"] == 1 and t.counts["refused_account_delayed"] == 50


def test_repeat_source_locks_double_and_are_forgiven_after_a_quiet_spell() -> None:
    clock = Clock()
    pol = LockoutPolicy(max_failures=2, window=600, lockout=100, max_lockout=250)
    t = AuthThrottle("sip", pol, clock=clock)
    locks = []
    for _ in range(4):  # a slow guesser: two guesses, wait out the lock, again
        t.failed("9.9.9.9", "x")
        t.failed("9.9.9.9", "x")
        until = t.sources.locked_until("9.9.9.9")
        assert until is not None
        locks.append(until - clock.now)
        clock.now = until
    assert locks == [100, 200, 250, 250]
    assert t.counts["source_locks"] == 4
    clock.now += 250 + 600 + 1  # quiet for longer than the longest lock and the window
    t.failed("9.9.9.9", "x")
    t.failed("9.9.9.9", "x")
    assert t.sources.locked_until("9.9.9.9") == clock.now + 100
    assert t.check("9.9.9.9") == Refusal("source_locked", 100)


def test_bad_account_policy_is_refused() -> None:
    for kwargs in ({"free_failures": -1}, {"delay": 0}, {"delay": 5, "max_delay": 1}, {"max_accounts": 0}):
        with pytest.raises(ValueError):
            AccountPolicy(**kwargs)
