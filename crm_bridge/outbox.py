"""Outbox dispatcher: delivers outbox rows to webhook sinks, at least once.

Flow: outbox rows (written in the same transaction as the record) are fanned
out into one *delivery* per configured sink; deliveries that are due are
*leased* (so a second dispatcher, or this one after a crash, does not send the
same one concurrently), POSTed, then marked delivered — or rescheduled with
exponential backoff, and moved to the dead-letter state after
``max_attempts``. A process killed between the POST and the mark leaves the
lease to expire and the delivery is sent again: delivery is at-least-once, and
the ``Idempotency-Key`` header lets the receiver apply each change exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import and_, func, or_, select, update

from crm_bridge.db import is_postgres, upsert
from crm_bridge.schema import outbox, outbox_deliveries
from crm_bridge.signing import (
    ATTEMPT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOPIC_HEADER,
    sign,
)
from crm_bridge.store import CrmStore

log = logging.getLogger(__name__)

# A 4xx that retrying cannot fix goes straight to the dead-letter list for an
# admin to look at (and replay once the sink is fixed); these are the ones worth
# retrying. 409 means "already have it" for receivers that dedup by key.
RETRYABLE_4XX = frozenset({408, 425, 429})
ALREADY_HAVE_IT = 409


@dataclass(frozen=True, slots=True)
class WebhookSink:
    """A webhook sink. ``backoff`` is the first retry delay in seconds; each
    further retry doubles it, capped at ``backoff_max``."""

    name: str
    url: str
    secret: str
    # Defaults ride out a sink that is down for well over an hour before a
    # delivery becomes a dead letter: at least 1.25 h of retries (jitter included).
    max_attempts: int = 20
    backoff: float = 1.0
    backoff_max: float = 900.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if not self.name or len(self.name) > 64:
            problems.append("name: must be 1-64 characters")
        if urlparse(self.url).scheme not in ("http", "https") or not urlparse(self.url).netloc:
            problems.append(f"url: not an http(s) URL: {self.url!r}")
        if not self.secret:
            problems.append("secret: must not be empty (webhooks are signed)")
        if self.max_attempts < 1:
            problems.append("max_attempts: must be >= 1")
        if self.backoff <= 0 or self.backoff_max < self.backoff:
            problems.append("backoff: must be > 0 and <= backoff_max")
        if self.timeout <= 0:
            problems.append("timeout: must be > 0")
        if problems:
            raise ValueError(f"webhook sink {self.name!r}: " + "; ".join(problems))

    def min_retry_window(self) -> float:
        """Shortest time from the first failure to the dead letter (jitter at its lowest)."""
        return sum(
            min(self.backoff_max, self.backoff * 2 ** (n - 1)) / 2 for n in range(1, self.max_attempts)
        )

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> WebhookSink:
        known = {"name", "url", "secret", "max_attempts", "backoff", "backoff_max", "timeout"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"webhook sink: unknown keys {unknown}")
        return cls(**dict(data))

    def delay(self, attempts: int) -> float:
        """Backoff before attempt ``attempts + 1``, with jitter so a recovering
        sink is not hit by every delivery at the same instant."""
        base = min(self.backoff_max, self.backoff * (2 ** max(0, attempts - 1)))
        return base / 2 + random.uniform(0, base / 2)


@dataclass(slots=True)
class _Outcome:
    id: str
    ok: bool
    status: int | None
    error: str
    retry: bool


class OutboxDispatcher:
    """Deliver the outbox of ``store`` (a started CrmStore, or a URL) to ``sinks``."""

    def __init__(
        self,
        store: CrmStore | str,
        sinks: Sequence[WebhookSink | Mapping[str, Any]],
        *,
        batch_size: int = 100,
        concurrency: int = 8,
        poll_interval: float = 1.0,
        lease_s: float | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._own_store = isinstance(store, str)
        self.store = CrmStore(store) if isinstance(store, str) else store
        self.sinks = [s if isinstance(s, WebhookSink) else WebhookSink.from_config(s) for s in sinks]
        names = [s.name for s in self.sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"webhook sinks: duplicate names in {names}")
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        # Longer than any request can take, so a live dispatcher's lease never
        # runs out under it; short enough that a crashed one is taken over soon.
        self.lease_s = lease_s or max((s.timeout for s in self.sinks), default=10.0) * 2 + 5
        self.clock = clock
        self._client = client
        self._own_client = client is None
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self.delivered = 0  # counters for logs/metrics
        self.failed = 0

    async def __aenter__(self) -> OutboxDispatcher:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _open(self) -> None:
        if self._own_store and self.store._engine is None:
            await self.store.start()
        if self._client is None:
            self._client = httpx.AsyncClient()

    async def _close(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._own_store:
            await self.store.close()

    def stop(self) -> asyncio.Future[Any]:
        """Ask ``run()`` to return after the current pass (a delivery in
        flight completes or is retried later; nothing is lost).

        Works as ``dispatcher.stop()`` and as ``await dispatcher.stop()``; the
        latter also waits until ``run()`` has returned."""
        self._stop.set()
        if self._running:
            return asyncio.ensure_future(self._stopped.wait())
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def run(self) -> None:
        """Deliver until :meth:`stop`. Database or network errors are logged and
        retried; they never end the loop."""
        await self._open()
        self._running = True
        self._stopped.clear()
        try:
            failures = 0
            while not self._stop.is_set():
                # Cleared before the pass, so a commit during the pass wakes the next idle.
                self.store.outbox_signal.clear()
                try:
                    done = await self.run_once()
                    failures = 0
                except Exception:  # the DB restarting, a dropped connection, …
                    failures += 1
                    log.exception("outbox pass failed (%d in a row); retrying", failures)
                    await self._idle(min(30.0, 0.2 * 2**failures))
                    continue
                if done == 0:
                    await self._idle(await self._next_due_in())
        finally:
            self._running = False
            try:
                await self._close()
            finally:
                self._stopped.set()

    async def _idle(self, seconds: float) -> None:
        signal = self.store.outbox_signal
        waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(signal.wait())]
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _next_due_in(self) -> float:
        async with self.store.engine.connect() as conn:
            due = (
                await conn.execute(
                    select(func.min(outbox_deliveries.c.next_attempt_at)).where(
                        outbox_deliveries.c.state == "pending",
                        outbox_deliveries.c.sink.in_([s.name for s in self.sinks]),
                    )
                )
            ).scalar()
        if due is None:
            return self.poll_interval
        return min(self.poll_interval, max(0.0, due - self.clock()))

    async def run_once(self) -> int:
        """One pass: fan out new rows, then deliver what is due. Returns the
        number of delivery attempts made."""
        if not self.sinks:
            return 0
        await self.fan_out()
        results = await asyncio.gather(*(self._deliver_sink(s) for s in self.sinks))
        return sum(results)

    async def fan_out(self) -> int:
        store = self.store
        now = self.clock()
        total = 0
        while True:
            async with store._write() as conn:
                seqs = (
                    (
                        await conn.execute(
                            select(outbox.c.seq)
                            .where(outbox.c.fanned_out.is_(False))
                            .order_by(outbox.c.seq)
                            .limit(1000)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not seqs:
                    return total
                rows = [
                    {
                        "id": f"{sink.name}:{seq}",
                        "outbox_seq": seq,
                        "sink": sink.name,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "lease_until": None,
                        "last_status": None,
                        "last_error": "",
                        "delivered_at": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for seq in seqs
                    for sink in self.sinks
                ]
                await conn.execute(
                    upsert(store.engine, outbox_deliveries).on_conflict_do_nothing(index_elements=["id"]),
                    rows,
                )
                await conn.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(fanned_out=True))
                total += len(seqs)

    async def _claim(self, sink: WebhookSink) -> list[dict[str, Any]]:
        store = self.store
        now = self.clock()
        d = outbox_deliveries
        due = (
            select(d.c.id)
            .where(
                d.c.sink == sink.name,
                d.c.state == "pending",
                d.c.next_attempt_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until < now),
            )
            .order_by(d.c.next_attempt_at, d.c.outbox_seq)
            .limit(self.batch_size)
        )
        if is_postgres(store.engine):
            due = due.with_for_update(skip_locked=True)
        async with store._write() as conn:
            claimed = (
                await conn.execute(
                    update(d)
                    .where(
                        d.c.id.in_(due.scalar_subquery()),
                        # re-checked after a concurrent claimer commits
                        or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                    )
                    .values(lease_until=now + self.lease_s)
                    .returning(d.c.id, d.c.outbox_seq, d.c.attempts)
                )
            ).all()
            if not claimed:
                return []
            payloads = {
                r.seq: r
                for r in await conn.execute(
                    select(outbox.c.seq, outbox.c.key, outbox.c.topic, outbox.c.payload).where(
                        outbox.c.seq.in_([c.outbox_seq for c in claimed])
                    )
                )
            }
        items = [
            {
                "id": c.id,
                "attempts": c.attempts,
                "seq": c.outbox_seq,
                "key": payloads[c.outbox_seq].key,
                "topic": payloads[c.outbox_seq].topic,
                "payload": payloads[c.outbox_seq].payload,
            }
            for c in claimed
        ]
        items.sort(key=lambda i: i["seq"])
        return items

    async def _post(self, sink: WebhookSink, item: dict[str, Any]) -> _Outcome:
        assert self._client is not None
        body = json.dumps(item["payload"], separators=(",", ":"), sort_keys=True).encode()
        ts = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(sink.secret, ts, body),
            IDEMPOTENCY_HEADER: item["key"],
            TOPIC_HEADER: item["topic"],
            ATTEMPT_HEADER: str(item["attempts"] + 1),
        }
        try:
            resp = await self._client.post(sink.url, content=body, headers=headers, timeout=sink.timeout)
        except httpx.HTTPError as exc:
            return _Outcome(item["id"], False, None, f"{type(exc).__name__}: {exc}"[:500], True)
        code = resp.status_code
        if 200 <= code < 300 or code == ALREADY_HAVE_IT:
            return _Outcome(item["id"], True, code, "", False)
        retry = code >= 500 or code in RETRYABLE_4XX
        return _Outcome(item["id"], False, code, resp.text[:500], retry)

    async def _deliver_sink(self, sink: WebhookSink) -> int:
        items = await self._claim(sink)
        if not items:
            return 0
        sem = asyncio.Semaphore(self.concurrency)

        async def one(item: dict[str, Any]) -> _Outcome:
            async with sem:
                return await self._post(sink, item)

        outcomes = await asyncio.gather(*(one(i) for i in items))
        attempts = {i["id"]: i["attempts"] + 1 for i in items}
        now = self.clock()
        d = outbox_deliveries
        async with self.store._write() as conn:
            for out in outcomes:
                n = attempts[out.id]
                values: dict[str, Any] = {
                    "attempts": n,
                    "lease_until": None,
                    "last_status": out.status,
                    "last_error": out.error,
                    "updated_at": now,
                }
                if out.ok:
                    values.update(state="delivered", delivered_at=now)
                    self.delivered += 1
                elif out.retry and n < sink.max_attempts:
                    values.update(next_attempt_at=now + sink.delay(n))
                    self.failed += 1
                else:
                    values.update(state="dead")
                    self.failed += 1
                    log.warning("outbox delivery %s dead after %d attempts: %s", out.id, n, out.error)
                # Only if we still hold the lease: never overwrite a delivery a
                # replay or another dispatcher has moved on since.
                await conn.execute(
                    update(d).where(and_(d.c.id == out.id, d.c.state == "pending")).values(**values)
                )
        return len(items)
