"""Outbox delivery to a real local HTTP sink: signatures, retries, dead letters,
a sink that is down then up, a dispatcher killed mid-delivery, a database that
goes away. Every test ends with the receiver's count: each change applied
exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from crm_events import abandoned_call, answered_call
from crm_pg import pg_admin
from crm_receiver import WebhookReceiver

from crm_bridge import admin
from crm_bridge.outbox import OutboxDispatcher, WebhookSink
from crm_bridge.signing import sign, verify
from crm_bridge.store import CrmStore
from tests.support import eventually

SECRET = "s3cret"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def _load(store: CrmStore, n: int, prefix: str = "c") -> set[str]:
    """n ended contacts → n outbox rows; returns their idempotency keys."""
    events = []
    for i in range(n):
        make = answered_call if i % 2 else abandoned_call
        events += make(f"{prefix}{i}", ani=f"+4477009{i:05d}", t0=1000 + i)
    res = await store.apply_events(events)
    assert res.outbox == n
    return await _keys(store)


async def _keys(store: CrmStore) -> set[str]:
    from sqlalchemy import select

    from crm_bridge.schema import outbox

    async with store.engine.connect() as conn:
        return set((await conn.execute(select(outbox.c.key))).scalars())


async def _outbox_size(store: CrmStore, *, equals: int, dead_only: bool = False) -> bool:
    """The outbox (or only its dead letters) holds ``equals`` rows: a condition for eventually()."""
    return len(await admin.outbox_list(store.url, dead_only=dead_only)) == equals


@contextlib.asynccontextmanager
async def running(dispatcher: OutboxDispatcher) -> AsyncIterator[OutboxDispatcher]:
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        await asyncio.wait_for(dispatcher.stop(), 30)
        await asyncio.wait_for(task, 30)


def sink(url: str, **kw: object) -> WebhookSink:
    params = {"max_attempts": 100, "backoff": 0.02, "backoff_max": 0.2, "timeout": 5.0, **kw}
    return WebhookSink("erp", url, SECRET, **params)  # type: ignore[arg-type]


def test_signature_scheme() -> None:
    body = b'{"a":1}'
    sig = sign("k", 1700000000, body)
    assert sig.startswith("v1=")
    assert verify("k", "1700000000", body, sig, now=1700000010)
    assert not verify("k", "1700000000", body + b" ", sig, now=1700000010)
    assert not verify("other", "1700000000", body, sig, now=1700000010)
    assert not verify("k", "1700000000", body, sig, now=1700009999)  # stale timestamp


def test_sink_config_is_validated() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookSink.from_config({"name": "x", "url": "http://127.0.0.1/h", "secret": ""})
    with pytest.raises(ValueError, match="unknown keys"):
        WebhookSink.from_config({"name": "x", "url": "http://h/", "secret": "s", "retries": 3})
    with pytest.raises(ValueError, match="url"):
        WebhookSink.from_config({"name": "x", "url": "ftp://h/", "secret": "s"})
    ok = WebhookSink.from_config({"name": "x", "url": "https://h/x", "secret": "s", "backoff": 2})
    assert 1.0 <= ok.delay(1) <= 2.0 and 4.0 <= ok.delay(3) <= 8.0
    # with the defaults, a sink down for an hour is still retried, not dead-lettered
    default = WebhookSink("erp", "http://127.0.0.1/h", "s")
    assert default.min_retry_window() > 3600


async def test_signed_delivery_once_per_change(store: CrmStore, receiver: WebhookReceiver) -> None:
    keys = await _load(store, 12)
    async with running(OutboxDispatcher(store, [sink(receiver.url)], poll_interval=0.05)):
        await receiver.wait_for(lambda: len(receiver.applied) == 12)
        # more changes while running: woken by the store's signal
        more = await store.apply_events(answered_call("late", ani="+447700988888", t0=5000))
        assert more.outbox == 1
        await receiver.wait_for(lambda: len(receiver.applied) == 13)
    keys |= await _keys(store)
    assert set(receiver.applied) == keys and len(keys) == 13
    assert receiver.bad_signatures == 0
    assert all(n == 1 for n in receiver.apply_count.values())
    body = receiver.applied[next(k for k in keys if ":late:" in k)]
    assert body["topic"] == "interaction.record"
    assert body["record"]["id"] == "late" and body["record"]["outcome"] == "answered"
    assert body["customer"]["provisional"] is True
    stats = await admin.outbox_stats(store.url)
    assert stats["erp"] == {"delivered": 13} and stats["_outbox"] == {"unfanned": 0}


async def test_sink_down_then_up_loses_nothing(store: CrmStore, receiver: WebhookReceiver) -> None:
    await receiver.stop()  # the port is closed: connection refused
    keys = await _load(store, 20)
    dispatcher = OutboxDispatcher(store, [sink(receiver.url)], poll_interval=0.05)
    async with running(dispatcher):
        # wait until every delivery has failed at least twice against the closed port
        async def failed_twice() -> list[dict[str, Any]] | None:
            rows = await admin.outbox_list(store.url)
            return rows if len(rows) == 20 and all(r["attempts"] >= 2 for r in rows) else None

        rows = await eventually(failed_twice, timeout=10, interval=0.05)  # polling the DB
        assert all(r["attempts"] >= 2 and r["last_status"] is None for r in rows)
        assert "ConnectError" in rows[0]["last_error"]
        await receiver.start()  # back up on the same port
        await receiver.wait_for(lambda: len(receiver.applied) == 20)
    assert set(receiver.applied) == keys
    assert all(n == 1 for n in receiver.apply_count.values())
    assert await admin.outbox_list(store.url) == []  # nothing pending or dead


async def test_retry_limit_dead_letters_and_replay(store: CrmStore, receiver: WebhookReceiver) -> None:
    receiver.status = 503
    keys = await _load(store, 5)
    dispatcher = OutboxDispatcher(store, [sink(receiver.url, max_attempts=3)], poll_interval=0.05)
    async with running(dispatcher):
        await receiver.wait_for(lambda: len(receiver.requests) >= 15)
    dead = await admin.outbox_list(store.url, dead_only=True)
    assert len(dead) == 5 and all(d["attempts"] == 3 and d["last_status"] == 503 for d in dead)
    assert len(receiver.requests) == 15 and receiver.applied == {}  # exactly max_attempts each

    receiver.status = 200
    one = dead[0]["id"]
    assert await admin.outbox_replay(store.url, [one]) == 1
    async with running(OutboxDispatcher(store, [sink(receiver.url)], poll_interval=0.05)):
        await receiver.wait_for(lambda: len(receiver.applied) == 1)
    assert set(receiver.applied) == {dead[0]["key"]}
    assert len(await admin.outbox_list(store.url, dead_only=True)) == 4
    assert await admin.outbox_replay(store.url, None) == 4
    assert await admin.outbox_replay(store.url, None) == 0
    async with running(OutboxDispatcher(store, [sink(receiver.url)], poll_interval=0.05)):
        await receiver.wait_for(lambda: len(receiver.applied) == 5)
    assert set(receiver.applied) == keys
    assert all(n == 1 for n in receiver.apply_count.values())


async def test_permanent_4xx_goes_straight_to_dead_letters(
    store: CrmStore, receiver: WebhookReceiver
) -> None:
    receiver.status = 422
    await _load(store, 2)
    async with running(OutboxDispatcher(store, [sink(receiver.url)], poll_interval=0.05)):
        await receiver.wait_for(lambda: len(receiver.requests) >= 2)
        await eventually(lambda: _outbox_size(store, dead_only=True, equals=2), timeout=5, interval=0.05)
    dead = await admin.outbox_list(store.url, dead_only=True)
    assert [d["attempts"] for d in dead] == [1, 1] and dead[0]["last_status"] == 422


async def test_wrong_secret_is_refused_by_the_receiver(store: CrmStore, receiver: WebhookReceiver) -> None:
    await _load(store, 1)
    bad = WebhookSink("erp", receiver.url, "wrong", max_attempts=1)
    async with running(OutboxDispatcher(store, [bad], poll_interval=0.05)):
        await receiver.wait_for(lambda: receiver.bad_signatures == 1)
    assert receiver.applied == {}


async def _spawn_worker(url: str, sink_url: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("crm_dispatch_worker.py")),
        url,
        sink_url,
        SECRET,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready"
    return proc


async def test_dispatcher_killed_mid_delivery_then_restarted(
    store: CrmStore, receiver: WebhookReceiver
) -> None:
    keys = await _load(store, 30)
    receiver.hold_after = 8  # after 8 applied, hold responses: deliveries in flight
    proc = await _spawn_worker(store.url, receiver.url)
    try:
        await receiver.wait_for(lambda: receiver.held >= 1)
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    receiver.hold_after = None
    receiver.release.set()
    pending = await admin.outbox_list(store.url)
    # applied by the receiver, never recorded as delivered by the killed sender
    in_flight = {p["key"] for p in pending} & set(receiver.applied)
    assert in_flight

    proc = await _spawn_worker(store.url, receiver.url)
    try:
        await receiver.wait_for(lambda: len(receiver.applied) == 30, timeout=60)
        await eventually(lambda: _outbox_size(store, equals=0), timeout=20, interval=0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
    assert await admin.outbox_list(store.url) == []
    # zero loss: every change arrived; zero duplicates: each applied exactly once,
    # although the ones in flight at the kill were sent twice.
    assert set(receiver.applied) == keys
    assert all(n == 1 for n in receiver.apply_count.values())
    assert all(receiver.requests.count(k) >= 2 for k in in_flight)


async def test_database_restart_during_delivery(
    pg_db: str, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """PostgreSQL only: our scratch database stops accepting connections and every
    session is terminated (what a restart looks like to clients), then comes back."""
    db = pg_db.rsplit("/", 1)[1]
    store = CrmStore(pg_db, tmp_path / "files", retry_for=60)
    await store.start()
    try:
        keys = await _load(store, 20)
        receiver.hold_after = 5
        dispatcher = OutboxDispatcher(store, [sink(receiver.url)], poll_interval=0.05, lease_s=1.0)
        async with running(dispatcher):
            await receiver.wait_for(lambda: receiver.held >= 1)
            await pg_admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
            await pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'")
            receiver.hold_after = None
            receiver.release.set()  # the dispatcher now fails to record the outcome
            # events keep coming while the database is down: apply_events retries
            outage_seen = asyncio.Event()
            store.on_db_retry = lambda exc: outage_seen.set()
            late = asyncio.create_task(
                store.apply_events(answered_call("during", ani="+447700977777", t0=9000))
            )
            await asyncio.wait_for(outage_seen.wait(), 30)  # the writer hit the outage
            assert not late.done()
            await pg_admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
            res = await asyncio.wait_for(late, 60)
            assert res.outbox == 1
            await receiver.wait_for(lambda: len(receiver.applied) == 21, timeout=60)
        keys |= await _keys(store)
        assert set(receiver.applied) == keys and len(keys) == 21
        assert all(n == 1 for n in receiver.apply_count.values())
        await eventually(lambda: _outbox_size(store, equals=0), timeout=10, interval=0.05)
        assert await admin.outbox_list(store.url) == []
    finally:
        with contextlib.suppress(Exception):
            await pg_admin(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        await store.close()


if os.environ.get("CRM_SKIP_SLOW"):
    pytestmark = pytest.mark.skip("CRM_SKIP_SLOW set")
