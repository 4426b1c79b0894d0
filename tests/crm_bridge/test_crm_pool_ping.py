"""PostgreSQL pool: a pooled connection is pinged at checkout only after it sat idle
(crm_bridge/db.py ``PING_IDLE_S``). One killed while idle is replaced before use; one
killed right after use fails its next statement as a disconnect, which invalidates the
pool, so the statement after that (the store's retry) gets a fresh connection."""

from __future__ import annotations

import pytest
from crm_pg import pg_admin
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import crm_bridge.db as db


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _kill(pid: int) -> None:
    await pg_admin(f"SELECT pg_terminate_backend({pid})")


async def test_a_connection_killed_while_idle_is_replaced_at_checkout(
    pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(pg_db, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        await _kill(first)
        monkeypatch.setattr(db, "PING_IDLE_S", 0.0)  # every pooled connection counts as idle
        second = await _backend_pid(engine)  # no error: the ping found it dead
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_killed_right_after_use_fails_once_then_the_pool_is_fresh(
    pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(pg_db, pool_size=2, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        await _kill(first)
        monkeypatch.setattr(db, "PING_IDLE_S", 3600.0)  # handed back a moment ago: not pinged
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()
