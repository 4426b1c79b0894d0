"""Desktop login guessing against the running server (issue 20 item 4): per-account delay,
per-source lock, Retry-After, /metrics. Guessers connect from different loopback addresses
(127.0.0.x); the throttle's clock is swapped for one the test moves, so nothing waits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PATCH = {"http": {"host": "127.0.0.1", "port": 0, "login_throttle": {
    "lockout_failures": 3, "account_free_failures": 2, "account_delay_s": 1}}}  # fmt: skip


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def rig(rig_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    r = await rig_factory(server_patch=PATCH)
    r.clock = Clock()
    monkeypatch.setattr(r.center.auth.throttle, "clock", r.clock)
    return r


async def login(rig: Any, source: str, password: str, username: str = "1001") -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=rig.http, transport=transport) as http:
        return await http.post("/api/login", json={"username": username, "password": password})


async def statuses(rig: Any, sources: list[str], prefix: str = "guess") -> list[int]:
    return [(await login(rig, s, f"{prefix}-{i}")).status_code for i, s in enumerate(sources)]


async def test_guesses_from_many_addresses_are_delayed_per_account(rig: Any) -> None:
    assert await statuses(rig, [f"127.0.0.{10 + i}" for i in range(8)]) == [401] * 3 + [429] * 5
    refused = await login(rig, "127.0.0.30", "guess")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # The real user is delayed too, and gets in once the delay is over.
    assert (await login(rig, "127.0.0.50", "demo-1001")).status_code == 429
    rig.clock.now += 1.0
    assert (await login(rig, "127.0.0.50", "demo-1001")).status_code == 200
    assert (await login(rig, "127.0.0.50", "typo")).status_code == 401  # the success reset it
    async with httpx.AsyncClient(base_url=rig.http) as http:
        metrics = (await http.get("/metrics")).text
    assert 'callcenter_auth_failures_total{channel="http"} 4.0' in metrics
    assert 'callcenter_auth_refused_total{channel="http",reason="account_delayed"} 7.0' in metrics
    assert 'callcenter_auth_failures_total{channel="sip"} 0.0' in metrics


async def test_persistent_guesser_is_locked_while_the_user_gets_in(rig: Any) -> None:
    guesser = "127.0.0.20"
    assert await statuses(rig, [guesser] * 4) == [401, 401, 401, 429]
    assert (await login(rig, guesser, "demo-1001")).status_code == 429  # locked: not even checked
    assert (await login(rig, "127.0.0.51", "demo-1001")).status_code == 429  # the account's delay
    rig.clock.now += 1.0
    assert (await login(rig, "127.0.0.51", "demo-1001")).status_code == 200
    assert (await login(rig, guesser, "demo-1001")).status_code == 429
    rig.clock.now += 300  # the lock ran out
    assert (await login(rig, guesser, "demo-1001")).status_code == 200
