"""Prometheus exposition of the same queue and agent figures the supervisor sees.

A custom collector reads one supervisor snapshot per scrape, so the numbers on
/metrics and on the supervisor stream can never disagree, and nothing is
updated on the hot call path just for metrics. The password-guessing throttles'
counters (callcenter.throttle) are read the same way, per scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

QUEUE_GAUGES = {
    "waiting": "Tasks waiting in the queue",
    "longest_wait_s": "Longest current wait in seconds",
    "ewt_s": "Estimated wait for a new task in seconds",
    "service_level": "Service level in percent over the statistics window",
    "asa_s": "Average speed of answer in seconds",
    "aht_s": "Average handle time in seconds",
    "abandon_rate": "Abandon rate in percent",
    "staffed": "Logged-in agents able to serve the queue",
    "available": "Agents routable now for the queue",
    "offered": "Tasks offered in the window",
    "answered": "Tasks answered in the window",
    "abandoned": "Tasks abandoned in the window",
}
AGENT_STATES = ("offline", "available", "reserved", "busy", "wrap_up", "not_ready")


class SnapshotCollector:
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        for key, doc in QUEUE_GAUGES.items():
            g = GaugeMetricFamily(f"callcenter_queue_{key}", doc, labels=["queue"])
            for q in snap.get("queues", []):
                value = q.get(key)
                if value is not None:
                    g.add_metric([q["queue"]], float(value))
            yield g
        state = GaugeMetricFamily(
            "callcenter_agent_state", "1 for the agent's current state", labels=["agent", "state"]
        )
        in_state = GaugeMetricFamily(
            "callcenter_agent_in_state_seconds", "Seconds in the current state", labels=["agent"]
        )
        counts = dict.fromkeys(AGENT_STATES, 0)
        for a in snap.get("agents", []):
            for s in AGENT_STATES:
                state.add_metric([a["agent_id"], s], 1.0 if a["state"] == s else 0.0)
            in_state.add_metric([a["agent_id"]], float(a.get("in_state_s", 0.0)))
            counts[a["state"]] = counts.get(a["state"], 0) + 1
        yield state
        yield in_state
        agents = GaugeMetricFamily("callcenter_agents", "Agents per state", labels=["state"])
        for s, n in counts.items():
            agents.add_metric([s], float(n))
        yield agents
        calls = GaugeMetricFamily("callcenter_active_calls", "SIP calls in progress")
        calls.add_metric([], float(snap.get("active_calls", 0)))
        yield calls


class LoopCollector:
    """Tasks alive on the event loop: a soak run (bench/soak.py) reads it to show that
    calls leave no task behind. Scrapes run on the loop (an async route), so it is there."""

    def collect(self) -> Iterator[Metric]:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped outside the loop (a test calling the registry directly)
            return
        g = GaugeMetricFamily("callcenter_asyncio_tasks", "asyncio tasks alive on the server's event loop")
        g.add_metric([], float(tasks))
        yield g


class AuthThrottleCollector:
    """Counters of AuthThrottle.counts per channel ("sip", "http")."""

    def __init__(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        failures = CounterMetricFamily(
            "callcenter_auth_failures", "Wrong passwords and unknown users", labels=["channel"]
        )
        locks = CounterMetricFamily(
            "callcenter_auth_source_lockouts", "Source addresses locked out", labels=["channel"]
        )
        delays = CounterMetricFamily(
            "callcenter_auth_account_delays", "Failures that delayed an account's next attempt",
            labels=["channel"],
        )
        refused = CounterMetricFamily(
            "callcenter_auth_refused",
            "Attempts refused unchecked (throttle; busy: too many password hashes in flight)",
            labels=["channel", "reason"],
        )
        for channel, c in self._counts.items():
            failures.add_metric([channel], c.get("failures", 0))
            locks.add_metric([channel], c.get("source_locks", 0))
            delays.add_metric([channel], c.get("account_delays", 0))
            for reason in ("source_locked", "account_delayed", "busy"):
                refused.add_metric([channel, reason], c.get(f"refused_{reason}", 0))
        yield from (failures, locks, delays, refused)


class SipCountersCollector:
    """The SIP layer's own counters (UserAgent.stats, SipTransportLayer.stats: calls,
    refusals by the per-source limits, malformed messages, TCP caps) as
    ``callcenter_sip_<layer>_<name>_total``, read per scrape."""

    def __init__(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        for layer, counts in self._counts.items():
            for name, value in counts.items():
                yield CounterMetricFamily(f"callcenter_sip_{layer}_{name}", f"SIP {layer}: {name}", value)


def make_registry(
    snapshot: Callable[[], dict[str, Any]],
    auth_counts: Mapping[str, Mapping[str, int]] | None = None,
    sip_counts: Mapping[str, Mapping[str, int]] | None = None,
    node: str | None = None,
) -> Callable[[], bytes]:
    """``node``: a cluster node's id, put as label ``node`` on every sample."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))  # type: ignore[arg-type]
    if auth_counts is not None:
        registry.register(AuthThrottleCollector(auth_counts))  # type: ignore[arg-type]
    if sip_counts is not None:
        registry.register(SipCountersCollector(sip_counts))  # type: ignore[arg-type]
    registry.register(LoopCollector())  # type: ignore[arg-type]
    # process_resident_memory_bytes, process_open_fds, CPU seconds (from /proc; Linux only)
    ProcessCollector(registry=registry)
    if node:
        labelled = CollectorRegistry(auto_describe=False)
        labelled.register(NodeLabelled(registry, node))  # type: ignore[arg-type]
        return lambda: generate_latest(labelled)
    return lambda: generate_latest(registry)


class NodeLabelled:
    """Every metric of ``inner`` with ``node=<id>`` added: one Prometheus scrape config
    over all nodes keeps their series apart."""

    def __init__(self, inner: CollectorRegistry, node: str) -> None:
        self._inner = inner
        self._node = node

    def collect(self) -> Iterator[Metric]:
        for metric in self._inner.collect():
            metric.samples = [s._replace(labels={**s.labels, "node": self._node}) for s in metric.samples]
            yield metric
