"""The server's side of supervisor reports: the report rollup kept fresh, a short history
of the live queue figures, and the questions the reports API asks (docs/reports.md).

Owned by :class:`callcenter.center.Center`, which starts its background task; the HTTP
routes (callcenter/web/reports_api.py) find it on ``app.state.reports``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.board_today import TodayFigures
from callcenter.config import ReportsCfg
from callcenter.tasks import BackgroundTasks
from callcenter.whatif import Synthetic, TooLarge, replay, staffing_from_entries, synthetic, with_agent_count
from crm_bridge.agent_states import OCCUPANCY_FORMULA, WORKING, agent_state_report
from crm_bridge.reports import SL_FORMULA, ReportSpec, agent_report, queue_report, refresh_rollup, totals
from routing.config import RoutingConfig

log = logging.getLogger(__name__)

# A what-if from the page may not tie up the server: at most this many simulated days.
MAX_SYNTHETIC_DAYS = 7
__all__ = ["MAX_SYNTHETIC_DAYS", "ReportService", "Synthetic", "TooLarge"]


class ReportService:
    def __init__(
        self,
        engine: Callable[[], AsyncEngine],
        cfg: ReportsCfg,
        routing: RoutingConfig,
        agents: Sequence[dict[str, Any]],
        snapshot: Callable[[], dict[str, Any]],
    ) -> None:
        self._engine = engine  # the CRM store's engine exists only once it has started
        self.cfg = cfg
        self.routing = routing
        self.agents = list(agents)
        self._snapshot = snapshot
        keep = max(1, int(cfg.live_history_h * 3600 / cfg.live_sample_s))
        self.samples: deque[dict[str, Any]] = deque(maxlen=keep)
        self._tasks = BackgroundTasks(log)
        # One what-if at a time: each is a CPU-bound thread on a 2-core box.
        self._simulating = asyncio.Lock()
        # Queue reports read the rollup once it has been built for our thresholds; before
        # that, and with refreshing off (rollup_every_s 0), the records.
        self.rolled_up = False

    def spec(self, start: float, end: float, interval_s: float | None, queues: Sequence[str]) -> ReportSpec:
        return ReportSpec(
            start,
            end,
            interval_s=interval_s or self.cfg.interval_s,
            threshold_s=self.cfg.threshold_s,
            short_abandon_s=self.cfg.short_abandon_s,
            queues=tuple(queues),
        )

    def _header(self, spec: ReportSpec) -> dict[str, Any]:
        return {
            "from": spec.start,
            "to": spec.end,
            "interval_s": spec.interval_s,
            "threshold_s": spec.threshold_s,
            "short_abandon_s": spec.short_abandon_s,
            "queues": list(spec.queues),
            "service_level_formula": SL_FORMULA,
        }

    async def queues(self, spec: ReportSpec) -> dict[str, Any]:
        if self.cfg.rollup_every_s > 0:
            # Catch up on what was written since the background refresh (incremental: a few
            # ms), so a report includes the contact that ended a moment ago.
            try:
                await self.refresh()
            except Exception:  # the records still answer, only slower
                log.exception("report rollup refresh failed; reading the records")
        rows = await queue_report(self._engine(), spec, rollup=self.rolled_up)
        return self._header(spec) | {"rows": rows, "totals": totals(rows) if rows else None}

    async def agents_report(self, spec: ReportSpec) -> dict[str, Any]:
        """Contacts handled per agent and channel (``rows``); time per state with occupancy
        (``states``) and not-ready time per reason code (``reasons``) per agent."""
        rows = await agent_report(self._engine(), spec)
        states = await agent_state_report(self._engine(), spec.start, spec.end)
        return self._header(spec) | {
            "rows": rows,
            "totals": totals(rows) if rows else None,
            "occupancy_formula": OCCUPANCY_FORMULA,
            **states,
        }

    async def agent_figures(self, agent_id: str, start: float, end: float) -> dict[str, Any]:
        """One agent's own figures over ``[start, end)`` from the records (the desk's "today"):
        contacts handled, average handle time, seconds per state and not-ready reason."""
        rows = [r for r in await agent_report(self._engine(), self.spec(start, end, None, ()))
                if r["agent_id"] == agent_id]  # fmt: skip
        both = totals(rows) if rows else None
        states = await agent_state_report(self._engine(), start, end, agents=(agent_id,))
        return {
            "from": start,
            "to": end,
            "handled": both["answered"] if both else 0,
            "aht_s": both["aht_s"] if both else None,
            "states": states["states"][0] if states["states"] else None,
            "reasons": states["reasons"],
        }

    async def seed_today(self, today: TodayFigures) -> None:
        """Give the board's live day counts what the records already hold for today (a
        restarted server's board does not start again from zero at noon)."""
        start, now = today.day_start, time.time()
        by_target: dict[float, list[str]] = {}  # answered within each queue's own target, as live
        for name, q in self.routing.queues.items():
            by_target.setdefault(q.service_level.seconds, []).append(name)
        queues: dict[str, dict[str, Any]] = {}
        for target, names in by_target.items():
            # short_abandon_s 0: every abandon counts, as routing's (and the live) service level
            spec = ReportSpec(start, now, interval_s=max(60.0, now - start), threshold_s=target,
                              short_abandon_s=0.0, queues=tuple(names))  # fmt: skip
            per_queue: dict[str, list[dict[str, Any]]] = {}
            for row in await queue_report(self._engine(), spec, rollup=False):
                per_queue.setdefault(row["queue"], []).append(row)
            queues.update({name: totals(rows) for name, rows in per_queue.items()})
        spec = self.spec(start, now, max(60.0, now - start), ())
        agents: dict[str, dict[str, Any]] = {}
        per_agent: dict[str, list[dict[str, Any]]] = {}
        for row in await agent_report(self._engine(), spec):
            per_agent.setdefault(row["agent_id"], []).append(row)
        for agent_id, rows in per_agent.items():
            both = totals(rows)
            agents[agent_id] = {"handled": both["answered"], "aht_s": both["aht_s"]}
        for row in (await agent_state_report(self._engine(), start, now))["states"]:
            seeded = agents.setdefault(row["agent_id"], {"handled": 0, "aht_s": None})
            seeded["working_s"] = sum(row[f"{state}_s"] for state in WORKING)
            seeded["available_s"] = row["available_s"]
        today.seed(queues, agents)

    async def simulate_synthetic(self, s: Synthetic) -> dict[str, Any]:
        if s.duration_s > MAX_SYNTHETIC_DAYS * 86_400:
            raise TooLarge(f"at most {MAX_SYNTHETIC_DAYS} simulated days")
        async with self._simulating:
            return await asyncio.to_thread(synthetic, s)

    async def simulate_replay(self, spec: ReportSpec, agent_count: int | None) -> dict[str, Any]:
        staff = staffing_from_entries(self.agents)
        if agent_count is not None:
            staff = with_agent_count(staff, agent_count)
        async with self._simulating:
            return await replay(
                self._engine(), self.routing, staff, spec, max_contacts=self.cfg.simulate_max_contacts
            )

    # ------------------------------------------------------------------ background

    def start(self) -> None:
        self._tasks.spawn(self._sampler(), name="reports-live-samples")
        if self.cfg.rollup_every_s > 0:
            self._tasks.spawn(self._refresher(), name="reports-rollup")

    async def close(self) -> None:
        await self._tasks.close()

    async def refresh(self) -> dict[str, Any]:
        done = await refresh_rollup(self._engine(), self.cfg.threshold_s, self.cfg.short_abandon_s)
        self.rolled_up = True
        return done

    async def _refresher(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a database hiccup must not end the refreshing for good
                log.exception("report rollup refresh failed")
            await asyncio.sleep(self.cfg.rollup_every_s)

    def sample(self) -> None:
        """Keep the queues' waiting count and service level of this moment."""
        snap = self._snapshot()
        self.samples.append({
            "ts": snap.get("ts", time.time()),
            "queues": {q["queue"]: {"waiting": q["waiting"], "service_level": q["service_level"],  # percent
                                    "target": q["service_level_target"]} for q in snap.get("queues", [])},
        })  # fmt: skip

    async def _sampler(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.cfg.live_sample_s)
