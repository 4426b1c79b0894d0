"""The simulator's router skips explanations and live statistics; that changes no decision.

The same seeded run, once with the router as production builds it and once as the
simulator builds it (``explain=False, live_stats=False``): every router call, at the
same clock time, returns the same decisions (kind, task, agent), and the reports match
to the last digit. The load mixes strategies, channels, priorities, wrap-up, abandons,
escalation, max wait with overflow and shifts, so every decision path is exercised.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

import routing.simulation as simulation
from routing import AgentConfig, build_config
from routing.model import DecisionKind
from routing.router import UNEXPLAINED, Router, RoutingError
from routing.simulation import Arrival, StaffedAgent, simulate

CALLS = ("submit", "accept", "complete", "cancel", "tick", "login", "logout", "set_softphone")


def recording_router(log: list[Any], **flags: bool) -> type[Router]:
    """A Router that logs every call's clock time, arguments and decisions, built with ``flags``."""

    class Recording(Router):
        def __init__(self, config: Any, clock: Any, **_: bool) -> None:
            super().__init__(config, clock, **flags)

    def logged(name: str) -> Any:
        def call(self: Router, *args: Any, **kwargs: Any) -> Any:
            out = getattr(Router, name)(self, *args, **kwargs)
            log.append((self._clock(), name, args, [(d.kind, d.task_id, d.agent_id) for d in out]))
            return out

        return call

    for name in CALLS:
        setattr(Recording, name, logged(name))
    return Recording


def mixed_load(seed: int) -> tuple[list[Arrival], Any, list[StaffedAgent]]:
    rng = random.Random(seed)
    skills = ["billing", "tech", "sales", "claims"]
    queues: dict[str, dict[str, Any]] = {s: {"required_skills": {s: 1}, "wrap_up_s": 10} for s in skills}
    queues["tech"]["strategy"] = "most_skilled"
    queues["sales"] |= {"strategy": "fewest_contacts", "max_wait_s": 45, "overflow": "billing"}
    queues["claims"] |= {
        "strategy": "least_occupied",
        "escalation": [{"after_s": 30, "relax": {"claims": 1}, "raise_priority": 1}],
    }
    queues["billing"]["strategy"] = "round_robin"
    config = build_config({"skills": {s: {} for s in skills}}, {"queues": queues})
    staff = [
        StaffedAgent(
            AgentConfig(
                id=f"a{k:02d}",
                skills={s: rng.randint(1, 10) for s in rng.sample(skills, 2)},
                capacity={"voice": 1, "web": 2},
            ),
            ((0.0, 4000.0), (5000.0, 20000.0)) if k % 5 == 0 else (),
        )
        for k in range(30)
    ]
    arrivals, t = [], 0.0
    while t < 14_400:
        t += rng.expovariate(0.11)
        queue = rng.choice(skills)
        arrivals.append(
            Arrival(
                at=t,
                queue=queue,
                handle_s=rng.expovariate(1 / 240),
                channel="voice" if rng.random() < 0.7 else "web",
                required={queue: rng.randint(2, 6)} if rng.random() < 0.3 else {},
                priority=rng.choice([0, 0, 0, 1]),
                patience_s=rng.expovariate(1 / 120),
            )
        )
    return arrivals, config, staff


def run(monkeypatch: pytest.MonkeyPatch, seed: int, **flags: bool) -> tuple[list[Any], dict[str, Any]]:
    log: list[Any] = []
    monkeypatch.setattr(simulation, "Router", recording_router(log, **flags))
    arrivals, config, staff = mixed_load(seed)
    result = simulate(arrivals, config, staff, interval_s=900, threshold_s=20, start=0.0)
    return log, json.loads(json.dumps(result.to_dict()))


@pytest.mark.parametrize("seed", [1, 2])
def test_same_decisions_and_report_with_explanations_and_stats_off(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    full_log, full_report = run(monkeypatch, seed, explain=True, live_stats=True)
    fast_log, fast_report = run(monkeypatch, seed, explain=False, live_stats=False)
    kinds = {kind for *_, decisions in full_log for kind, _, _ in decisions}
    # The load reaches the paths that matter: offers, waiting, abandons, wrap-up,
    # escalation and max-wait overflow.
    assert {
        DecisionKind.OFFER,
        DecisionKind.QUEUED,
        DecisionKind.WRAP_UP_ENDED,
        DecisionKind.ESCALATED,
        DecisionKind.OVERFLOW,
    } <= kinds
    assert full_report["totals"]["abandoned"] > 0
    assert len(fast_log) == len(full_log)
    assert fast_log == full_log
    assert fast_report == full_report


def test_decisions_without_explanations_share_one_placeholder() -> None:
    config = build_config({"skills": {"en": {}}}, {"queues": {"en": {"required_skills": {"en": 1}}}})
    fast = Router(config, lambda: 0.0, explain=False, live_stats=False)
    fast.add_agent({"id": "a1", "skills": {"en": 3}})
    fast.set_softphone("a1", True)
    fast.login("a1", ready=True)
    offer, queued = fast.submit("t1", "en") + fast.submit("t2", "en")
    assert offer.kind is DecisionKind.OFFER and queued.kind is DecisionKind.QUEUED
    assert offer.explanation is UNEXPLAINED and queued.explanation is UNEXPLAINED
    with pytest.raises(RoutingError, match="live statistics are off"):
        fast.queue_stats("en")
    with pytest.raises(RoutingError, match="live statistics are off"):
        fast.agent_stats("a1")
    with pytest.raises(RoutingError, match="live statistics are off"):
        fast.estimated_wait(queue="en")


def test_production_router_still_explains_and_counts() -> None:
    config = build_config({"skills": {"en": {}}}, {"queues": {"en": {"required_skills": {"en": 1}}}})
    router = Router(config, lambda: 0.0)
    router.add_agent({"id": "a1", "skills": {"en": 3}})
    router.set_softphone("a1", True)
    router.login("a1", ready=True)
    (offer,) = router.submit("t1", "en")
    assert "longest idle" in offer.explanation.text and offer.explanation.facts["agent"] == "a1"
    assert router.queue_stats("en").offered == 1


def test_an_answered_offer_leaves_no_deadline_behind() -> None:
    """The simulator ticks at every deadline the router reports; an answered offer's RONA
    timer used to be one per contact, waking it for nothing."""
    config = build_config(
        {"skills": {"en": {}}},
        {"queues": {"en": {"required_skills": {"en": 1}, "reservation_timeout_s": 15}}},
    )
    router = Router(config, lambda: 0.0)
    router.add_agent({"id": "a1", "skills": {"en": 3}})
    router.set_softphone("a1", True)
    router.login("a1", ready=True)
    (offer,) = router.submit("t1", "en")
    assert router.next_deadline() == 15.0  # ringing: RONA is due
    router.accept(offer.reservation.id)
    assert router.next_deadline() is None
