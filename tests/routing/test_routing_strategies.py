"""Each agent-selection strategy, with its deterministic tie-breaks."""

from __future__ import annotations

from routing_helpers import make_config, ready_router

from routing import DecisionKind, ManualClock, Router


def agents(n: int, skills: dict[str, int] | None = None, **cap: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"a{i}",
            "name": f"A{i}",
            "skills": dict(skills or {"billing": 5}),
            "capacity": cap or {"voice": 1},
        }
        for i in range(1, n + 1)
    ]


def offer_agent(decisions: list) -> str | None:
    offers = [d for d in decisions if d.kind is DecisionKind.OFFER]
    assert len(offers) <= 1
    return offers[0].agent_id if offers else None


def serve(router: Router, clock: ManualClock, task_id: str, queue: str = "q", **kw) -> str | None:
    """Submit, accept and finish one task; returns the chosen agent."""
    decisions = router.submit(task_id, queue, **kw)
    agent = offer_agent(decisions)
    if agent is not None:
        res = next(d.reservation for d in decisions if d.kind is DecisionKind.OFFER)
        router.accept(res.id)
        clock.advance(1)
        router.complete(task_id)
    return agent


def test_longest_idle_picks_the_agent_free_longest_and_sends_them_to_the_back() -> None:
    clock = ManualClock(0)
    router = Router(make_config({"q": {}}, agents(3)), clock)
    for a in ("a2", "a3", "a1"):  # a2 idle longest, then a3, then a1
        router.set_softphone(a, True)
        router.login(a, ready=True)
        clock.advance(5)
    assert serve(router, clock, "t1") == "a2"
    assert serve(router, clock, "t2") == "a3"  # a2 finished t1 last: now at the back
    assert serve(router, clock, "t3") == "a1"
    assert serve(router, clock, "t4") == "a2"


def test_longest_idle_explanation_says_why() -> None:
    clock = ManualClock(0)
    router = ready_router(make_config({"q": {"required_skills": {"billing": 4}}}, agents(2)), clock)
    clock.advance(30)
    (offer,) = router.submit("t1", "q")
    text = offer.explanation.text
    assert "longest idle (30s idle)" in text
    assert "required billing≥4 (has 5)" in text
    assert offer.explanation.facts["strategy"] == "longest_idle"


def test_most_skilled_prefers_higher_levels_then_longest_idle() -> None:
    clock = ManualClock(0)
    cfg = make_config(
        {
            "q": {
                "strategy": "most_skilled",
                "required_skills": {"billing": 3},
                "preferred_skills": {"spanish": 1},
            }
        },
        [
            {"id": "low", "skills": {"billing": 4}},
            {"id": "high", "skills": {"billing": 9}},
            {"id": "bilingual", "skills": {"billing": 7, "spanish": 5}},
            {"id": "high2", "skills": {"billing": 9}},
        ],
    )
    router = ready_router(cfg, clock)
    # scores: low 8, high 18, bilingual 19, high2 18; offers keep the agents reserved
    first = router.submit("t1", "q")
    assert offer_agent(first) == "bilingual"
    assert "most skilled (score 19" in first[0].explanation.text
    assert offer_agent(router.submit("t2", "q")) == "high"  # ties with high2: idle longer
    assert offer_agent(router.submit("t3", "q")) == "high2"
    assert offer_agent(router.submit("t4", "q")) == "low"


def test_least_occupied_balances_chats() -> None:
    clock = ManualClock(0)
    cfg = make_config({"q": {"strategy": "least_occupied"}}, agents(2, web=3))
    router = ready_router(cfg, clock)
    picks = [offer_agent(router.submit(f"t{i}", "q", "web")) for i in range(6)]
    assert picks == ["a1", "a2", "a1", "a2", "a1", "a2"]
    assert offer_agent(router.submit("t7", "q", "web")) is None  # both at 3/3


def test_round_robin_rotates_in_order() -> None:
    clock = ManualClock(0)
    cfg = make_config({"q": {"strategy": "round_robin"}}, agents(3))
    router = ready_router(cfg, clock)
    # longest idle would pick whoever finished first; round robin keeps rotating a1,a2,a3
    assert [serve(router, clock, f"t{i}") for i in range(7)] == ["a1", "a2", "a3", "a1", "a2", "a3", "a1"]


def test_fewest_contacts_today() -> None:
    clock = ManualClock(0)
    cfg = make_config({"q": {"strategy": "fewest_contacts"}, "other": {}}, agents(2))
    router = ready_router(cfg, clock)
    # a1 handles two contacts through another queue
    for t in ("x1", "x2"):
        router.set_agent_state("a2", "not_ready", "break")
        serve(router, clock, t, queue="other")
        router.set_agent_state("a2", "available")
    assert router.agents["a1"].contacts_today == 2
    assert serve(router, clock, "t1") == "a2"
    assert serve(router, clock, "t2") == "a2"  # 1 contact vs 2
    assert serve(router, clock, "t3") in {"a1", "a2"}  # 2 vs 2: longest idle breaks the tie
    router.reset_day()
    assert router.agents["a1"].contacts_today == 0


def test_preferred_agent_first_then_window_then_anyone() -> None:
    clock = ManualClock(0)
    cfg = make_config({"q": {"preferred_agent_timeout_s": 20}}, agents(2))
    router = ready_router(cfg, clock)
    # preferred agent free: chosen even though a1 is idle longer
    (offer,) = router.submit("t1", "q", preferred_agent="a2")
    assert offer.agent_id == "a2"
    assert "preferred agent" in offer.explanation.text
    router.accept(offer.reservation.id)
    # preferred agent busy: the task waits for them during the window although a1 is free
    (queued,) = router.submit("t2", "q", preferred_agent="a2")
    assert queued.kind is DecisionKind.QUEUED
    assert "held for preferred agent a2" in queued.explanation.text
    clock.advance(19.9)
    assert router.tick() == []
    clock.advance(0.1)
    (late,) = router.tick()
    assert late.kind is DecisionKind.OFFER and late.agent_id == "a1"
    assert "preferred agent window over" in late.explanation.text


def test_preferred_agent_freed_within_window_gets_the_task() -> None:
    clock = ManualClock(0)
    router = ready_router(make_config({"q": {"preferred_agent_timeout_s": 20}}, agents(2)), clock)
    (o1,) = router.submit("t1", "q", preferred_agent="a2")
    router.accept(o1.reservation.id)
    router.submit("t2", "q", preferred_agent="a2")
    clock.advance(5)
    (o2,) = router.complete("t1")
    assert (o2.task_id, o2.agent_id) == ("t2", "a2")


def test_same_events_give_same_decisions() -> None:
    def run() -> list[tuple[str, str | None]]:
        clock = ManualClock(0)
        router = ready_router(make_config({"q": {"strategy": "most_skilled"}}, agents(5)), clock)
        out = []
        for i in range(12):
            out += [(d.task_id, d.agent_id) for d in router.submit(f"t{i}", "q")]
            clock.advance(1)
        return out

    assert run() == run()


def test_most_skilled_tie_across_levels_goes_to_the_longest_idle() -> None:
    # Same score 38 from different primary levels: b1 (billing 9, technical 10) has
    # been idle longer than b2 (billing 10, technical 9) and must win the tie, although
    # the level walk meets b2 first.
    clock = ManualClock(0)
    cfg = make_config(
        {"q": {"strategy": "most_skilled", "required_skills": {"billing": 1, "technical": 1}}},
        [
            {"id": "b1", "skills": {"billing": 9, "technical": 10}},
            {"id": "b2", "skills": {"billing": 10, "technical": 9}},
        ],
    )
    router = ready_router(cfg, clock)
    (offer,) = router.submit("t1", "q")
    assert offer.agent_id == "b1"
