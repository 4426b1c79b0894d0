"""How several nodes' queue figures add up to what a supervisor on any node sees
(callcenter/cluster/queue_view.py), and when a node's figures stop counting."""

from __future__ import annotations

import math

from callcenter import events as ev
from callcenter.cluster.queue_view import ClusterQueues, merge_figures


def row(queue: str = "sales", **figures: float | int | None) -> dict[str, object]:
    base: dict[str, object] = {
        "queue": queue, "waiting": 0, "reserved": 0, "longest_wait_s": 0.0, "offered": 0, "answered": 0,
        "abandoned": 0, "service_level": None, "service_level_target": 80.0, "service_level_seconds": 20.0,
        "asa_s": None, "aht_s": None, "abandon_rate": None, "staffed": 0, "available": 0, "occupancy": None,
        "ewt_s": 0.0, "ewt_erlang_c_s": None, "window_s": 900.0}  # fmt: skip
    return base | figures


def test_counts_add_up_and_rates_are_weighted_by_their_denominators() -> None:
    a = row(waiting=2, longest_wait_s=30.0, offered=10, answered=8, abandoned=2, service_level=50.0,
            abandon_rate=20.0, asa_s=10.0, staffed=2, available=0, occupancy=90.0, ewt_s=40.0)  # fmt: skip
    b = row(waiting=1, longest_wait_s=75.0, offered=4, answered=2, abandoned=0, service_level=100.0,
            abandon_rate=0.0, asa_s=4.0, staffed=1, available=1, occupancy=30.0, ewt_s=0.0)  # fmt: skip
    (m,) = merge_figures([[a], [b]])
    assert (m["waiting"], m["offered"], m["answered"], m["abandoned"], m["staffed"], m["available"]) == (
        3, 14, 10, 2, 3, 1)  # fmt: skip
    assert m["longest_wait_s"] == 75.0
    # within target: 5 of 10 decided on a (50 %), 2 of 2 on b: 7 of 12, not (50 + 100) / 2
    assert math.isclose(m["service_level"], 100.0 * 7 / 12)
    assert math.isclose(m["abandon_rate"], 100.0 * 2 / 12)
    assert math.isclose(m["asa_s"], (10.0 * 8 + 4.0 * 2) / 10)
    assert math.isclose(m["occupancy"], (90.0 * 2 + 30.0) / 3)
    assert m["ewt_s"] == 20.0
    assert m["service_level_target"] == 80.0  # settings as configured


def test_a_queue_only_one_node_counts_is_kept_as_is_and_no_decisions_stay_unknown() -> None:
    m = merge_figures([[row("sales", waiting=1), row("support")], [row("sales", waiting=1)]])
    assert [(r["queue"], r["waiting"]) for r in m] == [("sales", 2), ("support", 0)]
    assert m[0]["service_level"] is None and m[0]["asa_s"] is None
    assert math.isinf(merge_figures([[row(ewt_s=math.inf)], [row(ewt_s=5.0)]])[0]["ewt_s"])


def test_another_nodes_figures_count_until_they_go_stale() -> None:
    now = [100.0]
    view = ClusterQueues("a", lambda: [row(waiting=1)], stale_s=10.0, clock=lambda: now[0])
    assert view.on_figures(ev.QueueFigures(queues=[row(waiting=2)], node="b"))[0]["waiting"] == 3
    own = ev.QueueFigures(queues=[row(waiting=5)], node="a")  # this node: read fresh, not kept
    assert view.on_figures(own)[0]["waiting"] == 3
    now[0] += 9.0
    assert view.figures()[0]["waiting"] == 3 and view.nodes() == ["b"]
    now[0] += 2.0  # b silent past its heartbeats: dead or cut off
    assert view.figures()[0]["waiting"] == 1 and view.nodes() == []


def test_an_agent_signed_in_on_another_node_shows_as_that_node_sees_them() -> None:
    now = [100.0]
    view = ClusterQueues("a", list, stale_s=10.0, clock=lambda: now[0])
    here = [{"agent_id": "1001", "state": "available", "in_state_s": 5.0},
            {"agent_id": "1003", "state": "offline", "in_state_s": 0.0}]  # fmt: skip
    view.heard(ev.NodeAgents(node="b", agents=[{"agent_id": "1003", "state": "busy", "in_state_s": 12.0}]))
    now[0] += 2.0
    shown = view.agents(here)
    assert shown[0] == here[0]  # signed in here: this node's own view
    assert (shown[1]["state"], shown[1]["node"], shown[1]["in_state_s"]) == ("busy", "b", 14.0)
    now[0] += 9.0  # b silent: its agents are signed out as far as this board knows
    assert view.agents(here) == here
