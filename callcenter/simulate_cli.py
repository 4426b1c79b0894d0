"""``callcenter simulate``: the what-if simulator from the command line (docs/reports.md).

    callcenter simulate --from DATE --to DATE [--agents FILE] [--queues FILE]
                        [--interval-min 30] [--queue Q ...] [--json] [--config DIR]
        replay the recorded contacts of the range (from the configured CRM store) through
        the routing library against another staffing and/or queue configuration (default:
        the configured ones); print the per-interval report beside what actually happened.

    callcenter simulate --synthetic --arrivals-per-30min 100 --aht-s 180 --agents 14
                        [--threshold-s 20] [--patience-s S] [--days 1] [--seed 1] [--json]
        Poisson traffic against N identical agents, with Erlang C's prediction beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callcenter.configerrors import ConfigError


def register(sub: Any, default_config: Path) -> None:
    """Add the ``simulate`` subcommand to cli.py's subparsers."""
    s = sub.add_parser("simulate", help="what-if: replay recorded or synthetic traffic through routing")
    s.add_argument("--config", type=Path, default=default_config)
    s.add_argument("--from", dest="start", help="replay: first day (YYYY-MM-DD or ISO time, UTC)")
    s.add_argument("--to", dest="end", help="replay: last day (inclusive) or end time")
    s.add_argument("--agents", help="replay: staffing YAML (agents.yaml style, optional shifts); "
                   "synthetic: number of agents")  # fmt: skip
    s.add_argument("--queues", type=Path, help="replay: queues YAML (queues.yaml style), not the config's")
    s.add_argument("--queue", action="append", default=[], help="replay: only this queue (repeatable)")
    s.add_argument("--interval-min", type=int, choices=[15, 30, 60], default=30)
    s.add_argument("--synthetic", action="store_true", help="Poisson traffic instead of recorded contacts")
    s.add_argument("--arrivals-per-30min", type=float, default=100.0)
    s.add_argument("--aht-s", type=float, default=180.0)
    s.add_argument("--threshold-s", type=float, default=None, help="default: server.reports.threshold_s (20)")
    s.add_argument("--patience-s", type=float, default=None, help="synthetic: mean patience (none: never)")
    s.add_argument("--days", type=float, default=1.0, help="synthetic: simulated days")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--json", action="store_true", help="print the whole result as JSON")
    s.set_defaults(func=cmd_simulate)


def _fail(message: str) -> int:
    print(f"simulate: {message}", file=sys.stderr)
    return 2


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        out = _synthetic(args) if args.synthetic else asyncio.run(_replay(args))
    except ConfigError as exc:
        return _fail(f"configuration is invalid:\n{exc}")
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False, default=_no_inf))
    else:
        print(_synthetic_text(out) if args.synthetic else _replay_text(out))
    return 0


def _no_inf(value: Any) -> Any:
    raise TypeError(f"not JSON: {value!r}")


def _synthetic(args: argparse.Namespace) -> dict[str, Any]:
    from callcenter.whatif import Synthetic, finite, synthetic

    try:
        agents = int(args.agents if args.agents is not None else 14)
    except ValueError:
        raise ValueError("--synthetic takes --agents as a number of agents") from None
    if agents < 1 or args.arrivals_per_30min <= 0 or args.aht_s <= 0 or args.days <= 0:
        raise ValueError("--agents, --arrivals-per-30min, --aht-s and --days must be positive")
    out = synthetic(Synthetic(
        args.arrivals_per_30min, args.aht_s, agents, threshold_s=args.threshold_s or 20.0,
        patience_s=args.patience_s, duration_s=args.days * 86_400, seed=args.seed,
    ))  # fmt: skip
    return finite(out)


def _yaml(path: Path) -> Any:
    from callcenter.config import read_yaml

    return read_yaml(path)


def _staffing_entries(path: Path) -> list[dict[str, Any]]:
    doc = _yaml(path)
    entries = doc.get("agents") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{path}: expected a list of agents (or a mapping with an 'agents' list)")
    return entries


async def _replay(args: argparse.Namespace) -> dict[str, Any]:
    from callcenter.config import load_config
    from callcenter.whatif import parse_time, replay, staffing_from_entries
    from crm_bridge.db import make_engine
    from crm_bridge.reports import ReportSpec
    from routing.config import build_config

    if not args.start or not args.end:
        raise ValueError("replay needs --from and --to (or use --synthetic)")
    cfg = load_config(args.config)
    entries = _staffing_entries(Path(args.agents)) if args.agents else cfg.agents
    staff = staffing_from_entries(entries)
    routing = cfg.routing
    if args.queues:
        skills = _yaml(cfg.directory / "skills.yaml")
        routing = build_config(skills, _yaml(args.queues), [a.config.model_dump() for a in staff])
    start, end = parse_time(args.start), parse_time(args.end, end=True)
    spec = ReportSpec(
        start,
        end,
        interval_s=args.interval_min * 60.0,
        threshold_s=args.threshold_s or cfg.server.reports.threshold_s,
        short_abandon_s=cfg.server.reports.short_abandon_s,
        queues=tuple(args.queue),
    )
    db_file = cfg.server.database.sqlite_file()
    if db_file is not None and not db_file.exists():
        raise ValueError(f"no CRM database at {db_file}: nothing recorded to replay (try --synthetic)")
    engine = make_engine(cfg.server.database.url)
    try:
        return await replay(engine, routing, staff, spec)
    finally:
        await engine.dispose()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def _synthetic_text(out: dict[str, Any]) -> str:
    i = out["inputs"]
    return "\n".join([
        f"{i['arrivals_per_interval']:g} arrivals / 30 min, AHT {i['aht_s']:g} s, {i['agents']} agents, "
        f"{i['duration_s'] / 86400:g} day(s), seed {i['seed']}",
        f"service level (simulated): {_pct(out['service_level'])}   "
        f"Erlang C: {_pct(out['erlang_c_service_level'])}",
        f"ASA (simulated): {_num(out['totals']['asa_s'])} s   contacts: {out['contacts']}   "
        f"abandoned: {out['totals']['abandoned']}",
    ])  # fmt: skip


_COLUMNS = (("offered", _num), ("answered", _num), ("abandoned", _num), ("service_level", _pct),
            ("asa_s", _num))  # fmt: skip


def _replay_text(out: dict[str, Any]) -> str:
    """One line per interval, queue and channel: each figure as recorded / simulated."""
    head = f"{'interval (UTC)':<17} {'queue':<14} {'channel':<8}" + "".join(
        f" {name.replace('_s', '').replace('service_level', 'SL'):>15}" for name, _ in _COLUMNS
    )
    lines = [f"service level formula: {out['service_level_formula']}", "figures: recorded / simulated", head]

    def cells(actual: dict[str, Any] | None, sim: dict[str, Any] | None) -> str:
        return "".join(
            f" {(fmt(actual.get(k)) if actual else '·') + ' / ' + (fmt(sim.get(k)) if sim else '·'):>15}"
            for k, fmt in _COLUMNS
        )

    for row in out["intervals"]:
        when = datetime.fromtimestamp(row["interval_start"], UTC).strftime("%Y-%m-%d %H:%M")
        label = f"{when:<17} {row['queue']:<14} {row['channel']:<8}"
        lines.append(label + cells(row["actual"], row["simulated"]))
    t = out["totals"]
    lines.append(f"{'total':<17} {'':<14} {'':<8}" + cells(t["actual"], t["simulated"]))
    lines.append(f"{out['contacts']} contacts replayed against {out['agents']} agents")
    return "\n".join(lines)
