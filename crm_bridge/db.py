"""Engine creation and the few dialect differences the store has to care about.

SQLite (via aiosqlite) is the zero-set-up default; PostgreSQL (via asyncpg) is
for production. Everything else in the package is written against SQLAlchemy
Core so the two stay interchangeable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def normalize_url(url: str) -> str:
    """Accept the short forms admins type and return an async-driver URL.

    ``sqlite:///x.db`` → ``sqlite+aiosqlite:///x.db``;
    ``postgresql://…``/``postgres://…`` → ``postgresql+asyncpg://…``.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the dispatcher read while the record writer commits; busy_timeout
    # makes a second process (CLI replay, a restarted dispatcher) wait instead of
    # failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create an async engine with the settings this store relies on."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 5)
    ping = not kwargs.get("pool_pre_ping", False)
    engine = create_async_engine(url, **kwargs)
    if ping:
        _ping_when_idle(engine)
    return engine


# A connection back in the pool for longer than this is pinged at checkout.
PING_IDLE_S = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling for connections that sat idle: one killed by a database
    restart is replaced at checkout instead of failing in the middle of a delivery.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout; on asyncpg that is BEGIN, a
    query and ROLLBACK — three round trips before every read, over half of a short read's
    (bench/email_intake.py). A connection handed back moments ago is not pinged: if the
    database went away meanwhile, its statement fails as a disconnect, SQLAlchemy
    invalidates the pool, and writes are retried by the store (``_retrying``)."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_IDLE_S:
            return  # a fresh connection, or one in use a moment ago
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as err:
            # the pool discards this connection and checks out another (a new one if need be)
            raise exc.DisconnectionError(f"idle connection failed its ping: {err}") from err

    event.listen(pool, "checkin", checkin)
    event.listen(pool, "checkout", checkout)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def upsert(engine: AsyncEngine, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing/do_update`` on both dialects."""
    if is_postgres(engine):
        return postgresql.insert(table)
    return sqlite.insert(table)
