"""Queue figures and agents across the nodes: what a supervisor on any node sees.

Routing is per node (docs/cluster.md): each node's router counts the contacts that arrived
on it and the agents signed in on it. Every node publishes its figures (``QueueFigures``,
tagged with its node id) on the bus, which the bridge carries to the others; a node keeps
the latest figures of every other node and shows supervisors their sum, so two
supervisors on different nodes see the same board. A node also republishes its figures
every ``heartbeat_s`` (when nothing changes, figures are not otherwise sent), and another
node's figures older than ``stale_s`` are dropped: a dead node's callers stop counting.

How per-node figures combine: counts add up (waiting, reserved, offered, answered,
abandoned, staffed, available); the longest wait is the longest anywhere; service level and
abandon rate are weighted by their denominator (answered + abandoned), which makes them
exact; ASA by answered contacts (exact); AHT by answered (close: handled contacts are not
in the figures); occupancy by staffed agents; estimated waits are the mean over the nodes,
since the edge spreads new calls evenly over them.

Agents sign in on one node; the others know them as signed out. Every heartbeat also
carries the node's signed-in agents as its snapshot shows them (``NodeAgents``), and a
node's board shows an agent signed out here with the view another node sent (``node``
says which), until that node goes stale; their state events, which the bridge carries as
it carries every event, keep that view live between heartbeats (cluster/elsewhere.py, which
the moving of callers reads too).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from callcenter import events as ev
from callcenter.cluster.elsewhere import AgentsElsewhere

Figures = list[dict[str, Any]]
SUMMED = ("waiting", "reserved", "offered", "answered", "abandoned", "staffed", "available")


Row = dict[str, Any]


def _weighted(rows: list[Row], field: str, weight: Callable[[Row], float]) -> float | None:
    parts = [(r[field], weight(r)) for r in rows if r.get(field) is not None and weight(r) > 0]
    total = sum(w for _v, w in parts)
    return sum(v * w for v, w in parts) / total if total else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return math.inf if any(math.isinf(v) for v in known) else sum(known) / len(known)


def merge_figures(per_node: Iterable[Figures]) -> Figures:
    """One row per queue from several nodes' rows (queue order: as the first node lists them)."""
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for rows in per_node:
        for row in rows:
            by_queue.setdefault(row["queue"], []).append(row)
    merged: Figures = []
    for rows in by_queue.values():
        if len(rows) == 1:
            merged.append(dict(rows[0]))
            continue
        out = dict(rows[0])  # the queue's settings (targets, window) are the same everywhere
        for field in SUMMED:
            out[field] = sum(int(r.get(field) or 0) for r in rows)
        out["longest_wait_s"] = max(float(r.get("longest_wait_s") or 0.0) for r in rows)
        decided = lambda r: float((r.get("answered") or 0) + (r.get("abandoned") or 0))  # noqa: E731
        out["service_level"] = _weighted(rows, "service_level", decided)
        out["abandon_rate"] = _weighted(rows, "abandon_rate", decided)
        out["asa_s"] = _weighted(rows, "asa_s", lambda r: float(r.get("answered") or 0))
        out["aht_s"] = _weighted(rows, "aht_s", lambda r: float(r.get("answered") or 0))
        out["occupancy"] = _weighted(rows, "occupancy", lambda r: float(r.get("staffed") or 0))
        out["ewt_s"] = _mean(r.get("ewt_s") for r in rows)
        out["ewt_erlang_c_s"] = _mean(r.get("ewt_erlang_c_s") for r in rows)
        merged.append(out)
    return merged


class ClusterQueues:
    """This node's figures (``local()``) plus the latest of every other node, and the
    agents signed in on the other nodes."""

    def __init__(self, node: str, local: Callable[[], Figures], stale_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.node = node
        self.local = local
        self.stale_s = stale_s
        self.clock = clock
        self._remote: dict[str, tuple[float, Figures]] = {}  # node -> (heard at, figures)
        self.elsewhere = AgentsElsewhere(node, stale_s, clock)  # the agents signed in on the others

    def heard(self, event: ev.QueueFigures | ev.NodeAgents) -> None:
        """Keep another node's figures or agents (this node's own are read fresh)."""
        if isinstance(event, ev.NodeAgents):
            self.elsewhere.heard(event)
        elif event.node and event.node != self.node:
            self._remote[event.node] = (self.clock(), event.queues)

    def _prune(self) -> None:
        now = self.clock()
        for node in [n for n, (at, _q) in self._remote.items() if now - at > self.stale_s]:
            del self._remote[node]  # silent past its heartbeats: gone, or cut off from Redis

    def figures(self) -> Figures:
        self._prune()
        return merge_figures([self.local(), *(q for _at, q in self._remote.values())])

    def agents(self, local: Figures) -> Figures:
        """``local`` (this node's agent views) with each agent signed out here but signed in
        on another node shown as that node sees them."""
        now = self.clock()
        elsewhere = {
            agent_id: view | {"node": node, "in_state_s": now - since}
            for agent_id, (node, view, since) in self.elsewhere.views().items()
        }
        return [elsewhere.get(a["agent_id"], a) if a.get("state") == "offline" else a for a in local]

    def on_figures(self, event: ev.QueueFigures) -> Figures:
        """What supervisors are sent when any node's figures change: the whole cluster's."""
        self.heard(event)
        return self.figures()

    def nodes(self) -> list[str]:
        """The other nodes whose figures count now (for /healthz)."""
        self._prune()
        return sorted(self._remote)
