"""Group commit: the writes that arrive while a transaction is in flight go together in
the next one, and each writer returns only once its rows are committed.

An SMTP 250 (and a processed row's ``done``) still waits for its own commit; what changes
is that eight connections' messages committed in one transaction cost one BEGIN/COMMIT
and one fsync instead of eight, and the rows of one statement go as one executemany
instead of one statement each. No timer: a lone writer commits at once; the batch is
whatever queued up behind the transaction before it.

A batch that fails (a constraint, a bad value) is tried again one writer at a time, so
only the faulty writer sees the error; a lost database connection is waited out by the
store's ``_retrying`` as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.sql import Executable

from crm_bridge.store import CrmStore

log = logging.getLogger(__name__)

MAX_WRITERS = 64  # writers per transaction: bounds a transaction's size (and a 1 MB row's company)


@dataclass(slots=True)
class _Pending:
    writes: Sequence[tuple[Executable, list[dict[str, Any]]]]
    done: asyncio.Future[dict[int, list[Any]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    def __init__(self, crm: CrmStore) -> None:
        self.crm = crm
        self._queue: list[_Pending] = []
        self._busy = False
        self.transactions = 0  # committed transactions (the benchmark reports writers per commit)
        self.writers = 0

    async def write(self, writes: Sequence[tuple[Executable, list[dict[str, Any]]]]) -> dict[int, list[Any]]:
        """Run ``writes`` (statement, rows) in a transaction shared with whoever else is
        waiting; returns, per statement (by ``id()``), the rows its RETURNING gave for the
        whole batch (the caller picks its own). Returns once committed."""
        pending = _Pending(writes)
        self._queue.append(pending)
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain(), name="email-group-commit")
        return await pending.done

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_WRITERS], self._queue[MAX_WRITERS:]
                try:
                    results = await self.crm._retrying(lambda b=batch: self._transaction(b))
                except Exception as exc:
                    if len(batch) == 1:
                        if not batch[0].done.done():
                            batch[0].done.set_exception(exc)
                        continue
                    log.warning("email: a grouped commit of %d writers failed; each alone", len(batch))
                    for one in batch:
                        try:
                            res = await self.crm._retrying(lambda o=one: self._transaction([o]))
                        except Exception as exc:
                            if not one.done.done():
                                one.done.set_exception(exc)
                        else:
                            if not one.done.done():
                                one.done.set_result(res)
                    continue
                for one in batch:
                    if not one.done.done():  # a writer cancelled meanwhile: its rows are committed anyway
                        one.done.set_result(results)
        finally:
            self._busy = False

    async def _transaction(self, batch: list[_Pending]) -> dict[int, list[Any]]:
        # the same statement object from several writers: one executemany, in first-seen order
        merged: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
        for one in batch:
            for stmt, rows in one.writes:
                if rows:
                    merged.setdefault(id(stmt), (stmt, []))[1].extend(rows)
        out: dict[int, list[Any]] = {}
        async with self.crm._write() as conn:
            for key, (stmt, rows) in merged.items():
                res = await conn.execute(stmt, rows)
                out[key] = list(res) if res.returns_rows else []
        self.transactions += 1
        self.writers += len(batch)
        return out

