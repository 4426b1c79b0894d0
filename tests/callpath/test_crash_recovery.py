"""Crash recovery (issue 20 item 7): ``callcenter serve`` is SIGKILLed with a call up and a
callback request waiting for an agent. After a restart the call's interaction record is
closed (outcome ``interrupted``, reason ``server_restart``) and the callback request is
back in its queue with its original place; the previous run's records are not touched
twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from crm_bridge.schema import interactions
from crm_bridge.store import CrmStore
from tests.support import eventually
from tests.support.peers import Caller, make_config_dir
from tests.support.serve_process import serve

SALES = "3"  # main menu key
ALAN = "+441632960002"  # a demo customer: the callback number


async def _record(store: CrmStore, **where: str) -> dict[str, Any] | None:
    q = select(interactions).where(*(interactions.c[k] == v for k, v in where.items()))
    async with store.engine.connect() as conn:
        row = (await conn.execute(q)).first()
    return dict(row._mapping) if row is not None else None


async def _waiting(http: str, queue: str) -> float:
    async with httpx.AsyncClient(base_url=http) as client:
        text = (await client.get("/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith(f'callcenter_queue_waiting{{queue="{queue}"}}'))
    return float(line.rsplit(" ", 1)[1])


async def test_sigkill_then_restart_closes_open_records_and_keeps_callbacks(tmp_path: Path) -> None:
    cfg = make_config_dir(tmp_path, server_patch={
        "queueing": {"announce_every_s": 30, "offer_options_after_s": 0},
        "callbacks": {"dial_uri": "sip:{digits}@127.0.0.1:9", "ring_s": 10}})  # fmt: skip
    store = CrmStore(f"sqlite+aiosqlite:///{tmp_path}/crm.db", tmp_path / "files", migrate=False)
    caller = Caller()
    run_dir = tmp_path / "cwd"  # the working directory: everything written goes to data_dir
    run_dir.mkdir()
    first = await serve(cfg, run_dir)
    second = None
    try:
        await store.start()
        await caller.start()
        echo = await caller.call("600", first.sip)  # a call up when the server dies
        up = await eventually(lambda: _record(store, service="echo"), 20, interval=0.05, what="echo record")
        callback = await caller.call("5000", first.sip, ani=ALAN)
        callback.media.send_dtmf(SALES)
        await eventually(lambda: _record(store, ani=ALAN, queue="sales"), 20, interval=0.05, what="queued")
        callback.media.send_dtmf("2")  # "press 2 to be called back"
        kept = await eventually(store.pending_callbacks, 20, interval=0.05, what="kept callback")
        assert [k["data"]["callback_number"] for k in kept] == [ALAN]
        assert echo.is_active and up["status"] == "open"

        os.killpg(first.proc.pid, signal.SIGKILL)
        await first.stop()
        second = await serve(cfg, run_dir)

        recovery = second.logged("recovery:")
        assert (recovery["interrupted"], recovery["callbacks_restored"]) == (1, 1)
        rec = await _record(store, id=up["id"])
        assert rec is not None
        closed = (rec["status"], rec["outcome"], rec["end_reason"])
        assert closed == ("ended", "interrupted", "server_restart")
        assert rec["ended_at"] is not None and rec["ended_at"] >= rec["arrived_at"]
        waiting = await _record(store, id=kept[0]["contact_id"])
        assert waiting is not None and waiting["status"] == "open"  # carried on, not interrupted
        assert await store.pending_callbacks() == kept  # same request, same original creation time
        assert await _waiting(second.http, "sales") == 1  # back in its queue

        second.proc.send_signal(signal.SIGTERM)
        assert await second.proc.wait() == 0
        third = await serve(cfg, run_dir)  # a second sweep finds nothing left to close
        assert third.logged("recovery:")["interrupted"] == 0
        third.proc.send_signal(signal.SIGTERM)
        assert await third.proc.wait() == 0
        await third.stop()
        assert list(run_dir.iterdir()) == []  # nothing written into the working directory
    finally:
        await caller.stop()
        await store.close()
        await first.stop()
        if second is not None:
            await second.stop()
