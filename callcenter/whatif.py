"""The what-if simulator over the configured center: the glue between the CRM store's
records and reports (crm_bridge) and the simulator (routing.simulation), which may not
import each other. Used by ``callcenter simulate`` and ``POST /api/reports/simulate``.

Replay: the records arriving in the range are read once, turned into arrivals and run
through the production Router against the staffing and queues under test (default: the
configured ones); the recorded report of the same range is computed by the same
definitions, and both are paired row by row (``side_by_side``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.reports import ReportSpec, queue_report, records_between, totals
from routing.config import AgentConfig, RoutingConfig
from routing.simulation import StaffedAgent, arrivals_from_records, run_synthetic, side_by_side, simulate

# Keys of an agents.yaml entry that are callcenter's own (credentials, display), not routing's.
_PROFILE_KEYS = set(AgentConfig.model_fields) | {"shifts"}


class TooLarge(ValueError):
    """The range holds more contacts than this caller may replay."""


@dataclass(frozen=True, slots=True)
class Synthetic:
    arrivals_per_30min: float
    aht_s: float
    agents: int
    threshold_s: float = 20.0
    patience_s: float | None = None
    duration_s: float = 86_400.0
    seed: int = 1


def finite(value: Any) -> Any:
    """inf/nan (Erlang C's ASA with too few agents, an estimated wait with nobody staffed) as
    None: JSON has no Infinity, and browsers' JSON.parse rejects a whole message that has one.
    The reports API and the desk/board WebSocket messages (web/app.py) both use it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def parse_time(value: str, *, end: bool = False) -> float:
    """ISO date/time (UTC unless an offset is given) or epoch seconds. A bare date as the
    end of a range means the end of that day (``--from 2026-12-01 --to 2026-12-01`` = that day)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date or time: {value!r} (use YYYY-MM-DD or ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(value) == 10:  # YYYY-MM-DD
        moment += timedelta(days=1)
    return moment.timestamp()


def staffing_from_entries(entries: Sequence[Mapping[str, Any]]) -> list[StaffedAgent]:
    """Agents-file entries (agents.yaml style: credentials and names are ignored) as staffing."""
    return [StaffedAgent.from_dict({k: v for k, v in e.items() if k in _PROFILE_KEYS}) for e in entries]


def with_agent_count(staff: Sequence[StaffedAgent], count: int) -> list[StaffedAgent]:
    """The first ``count`` agents; more than staffed repeats the roster (clones get new ids),
    so "the same team, two more people" keeps the skills mix."""
    if count < 0:
        raise ValueError("agent count must be 0 or more")
    if not staff:
        raise ValueError("no agents to scale: the staffing is empty")
    out = list(staff[:count])
    k = 0
    while len(out) < count:
        base = staff[k % len(staff)]
        clone = base.config.model_copy(update={"id": f"{base.config.id}+{k // len(staff) + 1}"})
        out.append(StaffedAgent(clone, base.shifts))
        k += 1
    return out


def synthetic(s: Synthetic) -> dict[str, Any]:
    return run_synthetic(
        s.arrivals_per_30min,
        s.aht_s,
        s.agents,
        threshold_s=s.threshold_s,
        interval_s=1800.0,
        duration_s=s.duration_s,
        patience_s=s.patience_s,
        seed=s.seed,
    )


async def replay(
    engine: AsyncEngine,
    routing: RoutingConfig,
    staff: Sequence[StaffedAgent],
    spec: ReportSpec,
    *,
    max_contacts: int | None = None,
) -> dict[str, Any]:
    """Replay ``spec``'s range against ``routing`` (its queues) and ``staff``; the recorded
    report beside it. The simulation runs in a worker thread: it is CPU work and the
    server's loop must keep answering calls meanwhile."""
    limit = max_contacts + 1 if max_contacts is not None else None
    records = await records_between(engine, spec.start, spec.end, queues=spec.queues, limit=limit)
    if max_contacts is not None and len(records) > max_contacts:
        raise TooLarge(f"more than {max_contacts} contacts in this range: choose a shorter one")
    actual = await queue_report(engine, spec)
    arrivals = arrivals_from_records(records)
    result = await asyncio.to_thread(
        simulate,
        arrivals,
        routing,
        list(staff),
        interval_s=spec.interval_s,
        threshold_s=spec.threshold_s,
        short_abandon_s=spec.short_abandon_s,
        start=spec.start,
    )
    # Self-served contacts never reach routing: compare only what was routed.
    routed = [r for r in actual if r["queue"]]
    sim = result.to_dict()
    return {
        "service_level": sim["service_level"],
        "recorded_service_level": totals(routed)["service_level"] if routed else None,
        "service_level_formula": sim["service_level_formula"],
        "start": spec.start,
        "end": spec.end,
        "interval_s": spec.interval_s,
        "threshold_s": spec.threshold_s,
        "short_abandon_s": spec.short_abandon_s,
        "contacts": sim["contacts"],
        "agents": len(staff),
        "totals": {"actual": totals(routed) if routed else None, "simulated": sim["totals"]},
        "intervals": side_by_side(routed, sim["intervals"]),
        "simulated_agents": sim["agents"],
    }
