"""The shared core of the CRM store: engine, lifecycle, write transactions,
retry while the database is away, and the outbox write. The store's behaviour
lives in the mixins built on it: ``ingest`` (events → records), ``customers``
(identity, links, merges, cases) and ``queries`` (the questions callcenter asks).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from sqlalchemy import String
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_bridge.db import is_postgres, make_engine, normalize_url, upsert
from crm_bridge.migrate import upgrade_engine
from crm_bridge.record_types import InteractionSummary
from crm_bridge.schema import (
    interactions,
    outbox,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_URL = "sqlite+aiosqlite:///var/crm.sqlite3"
_ATTACH_NS = uuid.UUID("5b1d8f1e-4c1a-4a8e-9d1e-c2b0cafe0002")
RECORD_COLUMNS = [c.name for c in interactions.columns]
# Bounded text columns of the record: longer producer values are cut and flagged,
# never allowed to fail the batch (which would block every event behind it).
_RECORD_LIMITS = {
    c.name: c.type.length
    for c in interactions.columns
    if isinstance(c.type, String) and c.type.length and c.name != "id"
}
# The columns of a recent-interactions entry, in select order: the TypedDict's keys.
SUMMARY_COLUMNS = tuple(InteractionSummary.__annotations__)
CHUNK = 500


def _is_disconnect(exc: BaseException) -> bool:
    """True for "the database is not reachable right now" errors (and deadlock or
    serialization failures, which are equally safe to retry), looked up
    along the whole cause chain (SQLAlchemy wraps the driver's error)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DBAPIError) and cur.connection_invalidated:
            return True
        if isinstance(cur, OSError | ConnectionError | OperationalError | InterfaceError):
            return True
        if type(cur).__name__ in _CONNECT_ERRORS:
            return True
        sqlstate = getattr(cur, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57", "53", "40"):
            return True
        nxt = getattr(cur, "orig", None)
        cur = (
            nxt
            if isinstance(nxt, BaseException) and id(nxt) not in seen
            else (cur.__cause__ or cur.__context__)
        )
    return False


_CONNECT_ERRORS = frozenset(
    {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ObjectNotInPrerequisiteStateError",  # database not accepting connections
        "AdminShutdownError",
        "TooManyConnectionsError",
        "InterfaceError",
    }
)


class CrmError(Exception):
    """Base class of the errors this package raises on purpose."""


class ContactPointConflict(CrmError):
    """The contact point already belongs to another customer."""


class NotFound(CrmError):
    pass


@dataclass(frozen=True, slots=True)
class ApplyResult:
    received: int  # events handed in
    new: int  # events not seen before (the rest were duplicates)
    records: int  # interaction records written (created or changed)
    outbox: int  # outbox rows written
    flagged: int  # events kept with a flag (bad input)


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class StoreCore:
    """State and plumbing every part of the store shares."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        files_dir: str | Path = "var/crm_files",
        default_region: str = "GB",
        *,
        clock: Callable[[], float] = time.time,
        engine: AsyncEngine | None = None,
        migrate: bool = True,
        retry_for: float = 60.0,
        cache_contacts: int = 20_000,
    ) -> None:
        self.url = normalize_url(url)
        self.files_dir = Path(files_dir)
        self.default_region = default_region.upper()
        self.clock = clock
        self._engine = engine
        self._migrate = migrate
        self.retry_for = retry_for
        # contact_id -> (record version we wrote, its events): spares re-reading
        # the timeline of contacts still in progress. Validated by version.
        self._cache: collections.OrderedDict[str, tuple[int, list[dict[str, Any]]]] = (
            collections.OrderedDict()
        )
        self.cache_contacts = cache_contacts
        self.timeline_reads = 0  # contacts whose timeline had to be read (metrics)
        self.db_retries = 0  # times a write waited for the database (metrics)
        self.on_db_retry: Callable[[BaseException], None] | None = None
        self._write_lock = asyncio.Lock()
        # Set after a commit that wrote outbox rows: wakes an in-process dispatcher.
        self.outbox_signal = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("CrmStore.start() has not been awaited")
        return self._engine

    async def start(self) -> None:
        """Open the engine and run migrations to head."""
        if self._engine is None:
            self._engine = make_engine(self.url)
        if self._migrate:
            await upgrade_engine(self._engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if is_postgres(self.engine):
            async with self.engine.begin() as conn:
                yield conn
        else:
            async with self._write_lock, self.engine.begin() as conn:
                yield conn

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run a transaction again while the database is unreachable (restart,
        failover, dropped connection), for up to ``retry_for`` seconds. Safe
        because applying events is idempotent; other errors propagate at once."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                return await op()
            except Exception as exc:
                if not _is_disconnect(exc) or time.monotonic() > deadline:
                    raise
                log.warning("CRM database unavailable (%s); retrying in %.2fs", exc, delay)
                self.db_retries += 1
                if self.on_db_retry is not None:
                    self.on_db_retry(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _enqueue(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
        stmt = (
            upsert(self.engine, outbox).on_conflict_do_nothing(index_elements=["key"]).returning(outbox.c.seq)
        )
        count = 0
        for chunk in _chunks(rows):
            res = await conn.execute(stmt, list(chunk))
            count += len(res.all())
        return count
