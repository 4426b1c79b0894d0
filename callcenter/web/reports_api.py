"""Supervisor reports over HTTP (supervisor role only): historical queue and agent
reports as JSON or CSV, the live queue history for the board's charts, and the what-if
simulator. The figures come from :class:`callcenter.reporting.ReportService`, found on
``app.state.reports`` (set by Center); without it (an app built without a CRM store)
these routes answer 503.

    GET  /api/reports/queues?from=&to=&interval=&queue=&format=json|csv
    GET  /api/reports/agents?from=&to=&queue=&format=json|csv
    GET  /api/reports/live
    POST /api/reports/simulate   {"mode": "synthetic", ...} | {"mode": "replay", ...}

``from``/``to`` are ISO 8601 dates or times (UTC unless they carry an offset; a bare
``to`` date includes that whole day) or epoch seconds.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from callcenter.reporting import MAX_SYNTHETIC_DAYS, ReportService, Synthetic, TooLarge
from callcenter.whatif import finite, parse_time
from crm_bridge.reports import ReportSpec

router = APIRouter(prefix="/api/reports", tags=["reports"])
_bearer = HTTPBearer(auto_error=False)
MAX_RANGE_DAYS = 92  # a quarter: past that, ask the database directly


def _service(
    request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ReportService:
    """The supervisor check of app.py's routes (401 without a valid token, 403 for agents)."""
    p = request.app.state.auth.verify(cred.credentials) if cred else None
    if p is None:
        raise HTTPException(401, "missing or invalid token", {"WWW-Authenticate": "Bearer"})
    if p.role != "supervisor":
        raise HTTPException(403, "supervisor role required")
    service = getattr(request.app.state, "reports", None)
    if service is None:
        raise HTTPException(503, "reports are not available on this server")
    return service


Service = Annotated[ReportService, Depends(_service)]


def _spec(
    service: ReportService, start: str, end: str, interval: int | None, queues: list[str]
) -> ReportSpec:
    try:
        t0, t1 = parse_time(start), parse_time(end, end=True)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if t1 <= t0:
        raise HTTPException(422, "'to' must come after 'from'")
    if t1 - t0 > MAX_RANGE_DAYS * 86_400:
        raise HTTPException(422, f"at most {MAX_RANGE_DAYS} days per report")
    if interval is not None and interval not in INTERVALS:
        raise HTTPException(422, f"interval must be one of {INTERVALS} seconds")
    return service.spec(t0, t1, interval, [q for q in queues if q])


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV, columns in the rows' own order; None as an empty cell."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return out.getvalue()


def _answer(report: dict[str, Any], fmt: str, name: str, table: str = "rows") -> Any:
    if fmt == "csv":
        if table not in report or not isinstance(report[table], list):
            raise HTTPException(422, f"no table {table!r} in this report")
        stamp = datetime.fromtimestamp(report["from"], UTC).strftime("%Y%m%d")
        name = name if table == "rows" else f"{name}-{table}"
        return Response(
            csv_text(report[table]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"'},
        )
    return report


From = Annotated[str, Query(alias="from", description="start: YYYY-MM-DD, ISO 8601 or epoch seconds")]
To = Annotated[str, Query(alias="to", description="end (a bare date includes that day)")]
Interval = Annotated[int | None, Query(description="seconds: 900, 1800 or 3600; default from config")]
INTERVALS = (900, 1800, 3600)
Queues = Annotated[list[str], Query(alias="queue", description="repeat for several; none = all")]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]


@router.get("/queues")
async def queues_report(
    service: Service, start: From, end: To, interval: Interval = None, queue: Queues = [],  # noqa: B006
    fmt: Format = "json",
) -> Any:  # fmt: skip
    """Per interval, queue and channel: offered, answered, abandoned, SL, ASA, AHT split …"""
    report = await service.queues(_spec(service, start, end, interval, queue))
    return _answer(report, fmt, "queues")


@router.get("/agents")
async def agents_report(
    service: Service, start: From, end: To, queue: Queues = [], fmt: Format = "json",  # noqa: B006
    table: Annotated[Literal["rows", "states", "reasons"], Query(description="which table as CSV")] = "rows",
) -> Any:  # fmt: skip
    """Per agent and channel: handled, AHT split, ASA, SL of the contacts they answered
    (``rows``); per agent: seconds in each state and occupancy (``states``); per agent and
    reason code: seconds not ready (``reasons``)."""
    report = await service.agents_report(_spec(service, start, end, None, queue))
    return _answer(report, fmt, "agents", table)


@router.get("/live")
async def live(service: Service) -> dict[str, Any]:
    """The queues' waiting count and service level (percent), sampled over the last hours."""
    return {"sample_s": service.cfg.live_sample_s, "samples": list(service.samples)}


class SimulateIn(BaseModel):
    mode: Literal["synthetic", "replay"]
    # synthetic
    arrivals_per_30min: float = Field(100, gt=0, le=10_000)
    aht_s: float = Field(180, gt=0, le=86_400)
    agents: int = Field(14, ge=0, le=5_000)
    patience_s: float | None = Field(None, gt=0)
    days: float = Field(1, gt=0, le=MAX_SYNTHETIC_DAYS)
    seed: int = 1
    # replay
    start: str = Field("", alias="from")
    end: str = Field("", alias="to")
    interval_s: int | None = None
    queues: list[str] = []
    agent_count: int | None = Field(None, ge=0, le=5_000)  # None: the configured staffing


@router.post("/simulate")
async def simulate(body: SimulateIn, service: Service) -> dict[str, Any]:
    """Run the what-if simulator (one at a time, in a worker thread; bounded in size)."""
    try:
        if body.mode == "synthetic":
            out = await service.simulate_synthetic(Synthetic(
                body.arrivals_per_30min, body.aht_s, body.agents, threshold_s=service.cfg.threshold_s,
                patience_s=body.patience_s, duration_s=body.days * 86_400, seed=body.seed,
            ))  # fmt: skip
        else:
            if not body.start or not body.end:
                raise HTTPException(422, "replay needs 'from' and 'to'")
            spec = _spec(service, body.start, body.end, body.interval_s, body.queues)
            out = await service.simulate_replay(spec, body.agent_count)
    except TooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return finite(out)  # Erlang C's ASA is infinite with too few agents; JSON has no Infinity
