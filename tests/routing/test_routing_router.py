"""Router behaviour: capacity, softphone, RONA, reject, escalation, aging, overflow,
wrap-up, transfer, cancel, agent states and statistics."""

from __future__ import annotations

import pytest
from routing_helpers import make_config, ready_router

from routing import AgentState, DecisionKind, ManualClock, Router, RoutingError


def kinds(decisions: list) -> list[str]:
    return [str(d.kind) for d in decisions]


def offers(decisions: list) -> list[tuple[str, str]]:
    return [(d.task_id, d.agent_id) for d in decisions if d.kind is DecisionKind.OFFER]


AG = {"id": "a1", "name": "Ann", "skills": {"billing": 5}, "capacity": {"voice": 1, "web": 3, "email": 5}}


def test_demo_billing_call_goes_to_alice_with_explanation(demo_router: Router) -> None:
    (d,) = demo_router.submit("c1", "billing", "voice", required={"english": 5})
    assert d.kind is DecisionKind.OFFER and d.agent_id == "1001"
    assert d.reservation is not None and d.reservation.deadline == 1015.0
    text = d.explanation.text
    assert text.startswith("billing: voice task c1 → agent 1001 (Alice) by most skilled")
    assert "billing≥6 (has 8)" in text and "english≥5 (has 10)" in text
    assert demo_router.agent_state("1001") is AgentState.RESERVED


def test_voice_needs_a_registered_softphone(clock: ManualClock) -> None:
    router = Router(make_config({"q": {}}, [AG]), clock)
    router.login("a1", ready=True)
    assert kinds(router.submit("v1", "q", "voice")) == ["queued"]
    assert offers(router.submit("w1", "q", "web")) == [("w1", "a1")]
    router.cancel("w1")
    assert offers(router.set_softphone("a1", True)) == [("v1", "a1")]


def test_web_capacity_and_voice_exclusivity(clock: ManualClock) -> None:
    router = ready_router(make_config({"q": {}}, [AG]), clock)
    got = [offers(router.submit(f"w{i}", "q", "web")) for i in range(4)]
    assert got[:3] == [[("w0", "a1")], [("w1", "a1")], [("w2", "a1")]]
    assert got[3] == []  # 3 of 3 chat slots used
    assert router.agents["a1"].load == {"web": 3}
    # a voice call does not ring an agent who is chatting
    assert kinds(router.submit("v1", "q", "voice")) == ["queued"]
    # emails still fit (separate capacity)
    assert offers(router.submit("e1", "q", "email")) == [("e1", "a1")]
    for t in ("w0", "w1", "w2", "e1", "w3"):  # cancelling w0 let the waiting w3 in
        router.cancel(t)
    # the voice call waited; once the agent is free it is taken, and then blocks everything
    assert router.agents["a1"].load == {"voice": 1}
    assert kinds(router.submit("w9", "q", "web")) == ["queued"]


def test_rona_sets_not_ready_and_task_keeps_its_place(clock: ManualClock) -> None:
    cfg = make_config({"q": {"reservation_timeout_s": 10}}, [dict(AG, id="a1"), dict(AG, id="a2")])
    router = ready_router(cfg, clock)
    (o1,) = router.submit("t1", "q")
    (o2,) = router.submit("t2", "q")
    router.accept(o2.reservation.id)
    clock.advance(1)
    router.submit("t3", "q")  # waits behind t1's original place
    assert router.next_deadline() == o1.reservation.deadline
    clock.advance(9)
    ds = router.tick()
    assert kinds(ds) == ["rona"]
    assert router.agent_state(o1.agent_id) is AgentState.NOT_READY
    assert router.agents[o1.agent_id].reason == "rona"
    assert router.position("t1") == 1 and router.position("t3") == 2
    # next free agent takes t1 first (original age), not t3
    clock.advance(1)
    assert offers(router.complete("t2")) == [("t1", o2.agent_id)]
    assert router.agent_stats(o1.agent_id).rona_today == 1


def test_reject_goes_to_another_agent_and_not_back(clock: ManualClock) -> None:
    cfg = make_config({"q": {}}, [dict(AG, id="a1"), dict(AG, id="a2")])
    router = ready_router(cfg, clock)
    (o1,) = router.submit("t1", "q")
    assert o1.agent_id == "a1"
    ds = router.reject(o1.reservation.id)
    assert kinds(ds) == ["requeued", "offer"]
    assert offers(ds) == [("t1", "a2")]
    assert router.agent_state("a1") is AgentState.AVAILABLE
    (r2,) = [d.reservation for d in ds if d.reservation]
    ds = router.reject(r2.id)
    assert offers(ds) == []  # both declined: the task waits
    assert router.position("t1") == 1


def test_escalation_relaxes_level_and_explains(demo_router: Router, clock: ManualClock) -> None:
    (first,) = demo_router.submit("c1", "billing")  # Alice
    demo_router.accept(first.reservation.id)
    (q,) = demo_router.submit("c2", "billing")  # Carol has billing 5 < 6
    assert q.kind is DecisionKind.QUEUED
    clock.advance(30)
    ds = demo_router.tick()
    assert kinds(ds) == ["escalated", "offer"]
    offer = ds[1]
    assert offer.agent_id == "1003"
    assert "escalation step 1 (after 30s in billing): relaxed billing 6→4" in offer.explanation.text
    assert offer.explanation.facts["required"]["billing"] == 4
    assert offer.explanation.facts["escalation_steps"]


def test_escalation_raise_priority_and_move_to(clock: ManualClock) -> None:
    cfg = make_config(
        {
            "q": {
                "escalation": [{"after_s": 10, "raise_priority": 3}, {"after_s": 20, "move_to": "r"}],
                "required_skills": {"sales": 1},
            },
            "r": {},
        },
        [AG],
    )
    router = ready_router(cfg, clock)
    assert kinds(router.submit("t1", "q")) == ["queued"]
    clock.advance(10)
    (esc,) = router.tick()
    assert esc.kind is DecisionKind.ESCALATED and router.tasks["t1"].priority == 3
    clock.advance(10)
    ds = router.tick()
    assert kinds(ds) == ["escalated", "overflow", "offer"]
    assert ds[1].target_queue == "r" and ds[2].agent_id == "a1"


def test_widen_groups(clock: ManualClock) -> None:
    cfg = make_config(
        {"q": {"groups": ["tier1"], "escalation": [{"after_s": 5, "widen_groups": ["tier2"]}]}},
        [dict(AG, id="a1", groups=["tier2"])],
    )
    router = ready_router(cfg, clock)
    assert kinds(router.submit("t1", "q")) == ["queued"]
    clock.advance(5)
    ds = router.tick()
    assert offers(ds) == [("t1", "a1")]
    assert "group tier2" in ds[-1].explanation.text


def test_aging_lets_an_old_low_priority_task_win(clock: ManualClock) -> None:
    cfg = make_config({"q": {"aging": {"priority_per_minute": 1}}}, [AG])
    router = ready_router(cfg, clock)
    (busy,) = router.submit("first", "q")
    router.accept(busy.reservation.id)
    router.submit("low", "q", priority=0)
    clock.advance(60)
    router.submit("high", "q", priority=2)  # at this instant: low has 1.0, high 2.0
    clock.advance(30)
    assert router.position("high") == 1
    clock.advance(61)  # low: 0 + 151/60 = 2.52, high: 2 + 91/60 = 3.52 -> high still first
    assert router.position("high") == 1
    # With aging each waits; FIFO inside equal effective priority; here high wins, then low
    ds = router.complete("first")
    assert offers(ds) == [("high", "a1")]


def test_without_aging_priority_then_fifo(clock: ManualClock) -> None:
    cfg = make_config({"q": {"aging": {"priority_per_minute": 0}}}, [AG])
    router = ready_router(cfg, clock)
    (busy,) = router.submit("first", "q")
    router.accept(busy.reservation.id)
    for name, prio in (("a", 0), ("b", 5), ("c", 0), ("d", 5)):
        router.submit(name, "q", priority=prio)
        clock.advance(1)
    order = [router.position(t) for t in ("b", "d", "a", "c")]
    assert order == [1, 2, 3, 4]


def test_queue_weight_decides_between_queues(clock: ManualClock) -> None:
    cfg = make_config({"plain": {}, "vip": {"weight": 5}}, [dict(AG, skills={"billing": 5, "sales": 5})])
    router = ready_router(cfg, clock)
    (busy,) = router.submit("first", "plain")
    router.accept(busy.reservation.id)
    router.submit("old", "plain")
    clock.advance(60)
    router.submit("new", "vip")
    ds = router.complete("first")
    assert offers(ds) == [("new", "a1")]
    text = ds[0].explanation.text
    assert "effective priority 5.0" in text and "queue weight 5" in text


def test_max_size_overflows_then_refuses(clock: ManualClock) -> None:
    cfg = make_config(
        {
            "q": {"max_size": 1, "overflow": "o", "required_skills": {"sales": 1}},
            "o": {"max_size": 1, "required_skills": {"sales": 1}},
        },
        [AG],
    )
    router = ready_router(cfg, clock)
    assert kinds(router.submit("t1", "q")) == ["queued"]
    ds = router.submit("t2", "q")
    assert kinds(ds) == ["overflow", "queued"] and ds[0].target_queue == "o"
    assert "q is full (1 waiting): moved to o" in ds[0].explanation.text
    ds = router.submit("t3", "q")
    assert kinds(ds) == ["overflow", "refused"]
    assert "t3" not in router.tasks


def test_max_wait_overflow_and_exit(clock: ManualClock) -> None:
    cfg = make_config(
        {
            "q": {"max_wait_s": 30, "overflow": "o", "required_skills": {"sales": 1}},
            "o": {"max_wait_s": 10, "required_skills": {"sales": 1}},
        },
        [AG],
    )
    router = ready_router(cfg, clock)
    router.submit("t1", "q")
    clock.advance(30)
    assert kinds(router.tick()) == ["overflow", "queued"]
    assert router.tasks["t1"].queue == "o"
    clock.advance(10)
    (exit_,) = router.tick()
    assert exit_.kind is DecisionKind.EXITED and "t1" not in router.tasks


def test_max_wait_while_ringing_is_decided_after_rona(clock: ManualClock) -> None:
    cfg = make_config(
        {
            "q": {"max_wait_s": 10, "reservation_timeout_s": 15, "overflow": "o"},
            "o": {"required_skills": {"sales": 1}},
        },
        [AG],
    )
    router = ready_router(cfg, clock)
    router.submit("t1", "q")
    clock.advance(15)
    ds = router.tick()
    assert kinds(ds) == ["rona", "overflow", "queued"]


def test_complete_wrap_up_then_next_task(clock: ManualClock) -> None:
    cfg = make_config({"q": {"wrap_up_s": 30}}, [AG])
    router = ready_router(cfg, clock)
    (o,) = router.submit("t1", "q")
    router.accept(o.reservation.id)
    assert router.agent_state("a1") is AgentState.BUSY
    router.submit("t2", "q")
    clock.advance(100)
    assert router.complete("t1") == []
    assert router.agent_state("a1") is AgentState.WRAP_UP
    clock.advance(30)
    ds = router.tick()
    assert kinds(ds) == ["wrap_up_ended", "offer"] and offers(ds) == [("t2", "a1")]
    assert router.agent_stats("a1").aht_s == 130.0


def test_manual_end_of_wrap_up(clock: ManualClock) -> None:
    router = ready_router(make_config({"q": {"wrap_up_s": 60}}, [AG]), clock)
    (o,) = router.submit("t1", "q")
    router.accept(o.reservation.id)
    router.complete("t1")
    router.end_wrap_up("t1")
    assert router.agent_state("a1") is AgentState.AVAILABLE
    with pytest.raises(RoutingError):
        router.end_wrap_up("t1")


def test_cancel_while_ringing_frees_the_agent_for_the_next(clock: ManualClock) -> None:
    router = ready_router(make_config({"q": {}}, [AG]), clock)
    router.submit("t1", "q")
    router.submit("t2", "q")
    clock.advance(4)
    assert offers(router.cancel("t1")) == [("t2", "a1")]
    stats = router.queue_stats("q")
    assert stats.abandoned == 1 and stats.abandon_rate == 100.0


def test_transfer_keeps_age_and_releases_agent(clock: ManualClock) -> None:
    cfg = make_config(
        {"q": {}, "r": {"required_skills": {"sales": 1}}}, [AG, dict(AG, id="s1", skills={"sales": 3})]
    )
    router = ready_router(cfg, clock)
    (o,) = router.submit("t1", "q")
    assert o.agent_id == "a1"
    router.accept(o.reservation.id)
    created = router.tasks["t1"].created
    clock.advance(50)
    ds = router.transfer("t1", "r")
    assert offers(ds) == [("t1", "s1")]
    assert "transferred from q" in ds[0].explanation.text
    assert router.tasks["t1"].created == created
    assert router.agent_state("a1") is AgentState.AVAILABLE


def test_not_ready_reason_and_offline_revokes_offer(clock: ManualClock) -> None:
    cfg = make_config({"q": {}}, [AG, dict(AG, id="a2")])
    router = ready_router(cfg, clock)
    router.set_agent_state("a2", "not_ready", "lunch")
    assert router.agent_stats("a2").reason == "lunch"
    (o,) = router.submit("t1", "q")
    assert o.agent_id == "a1"
    router.set_agent_state("a2", "available")
    ds = router.logout("a1")
    assert kinds(ds) == ["requeued", "offer"] and offers(ds) == [("t1", "a2")]
    assert router.agent_state("a1") is AgentState.OFFLINE


def test_remove_agent_refused_while_connected(clock: ManualClock) -> None:
    router = ready_router(make_config({"q": {}}, [AG]), clock)
    (o,) = router.submit("t1", "q")
    router.accept(o.reservation.id)
    with pytest.raises(RoutingError, match="still handles"):
        router.remove_agent("a1")
    router.complete("t1")
    router.remove_agent("a1")
    assert "a1" not in router.agents
    router.add_agent({"id": "a9", "skills": {"billing": 2}})
    assert router.agent_state("a9") is AgentState.OFFLINE


def test_bad_calls_raise_routing_error_and_change_nothing(clock: ManualClock) -> None:
    router = ready_router(make_config({"q": {}}, [AG]), clock)
    with pytest.raises(RoutingError, match="unknown queue"):
        router.submit("t1", "nope")
    with pytest.raises(RoutingError, match="level must be 1-10"):
        router.submit("t1", "q", required={"billing": 12})
    router.submit("t1", "q")
    with pytest.raises(RoutingError, match="already"):
        router.submit("t1", "q")
    with pytest.raises(RoutingError):
        router.accept("res-404")
    with pytest.raises(RoutingError, match="unknown agent state"):
        router.set_agent_state("a1", "sleeping")
    assert list(router.tasks) == ["t1"]


def test_queue_statistics_and_estimates(clock: ManualClock) -> None:
    cfg = make_config({"q": {"service_level": {"percent": 80, "seconds": 20}}}, [AG, dict(AG, id="a2")])
    router = ready_router(cfg, clock)
    # two answered quickly, one after 30 s, one abandoned
    for i, wait in enumerate((5, 10)):
        (o,) = router.submit(f"t{i}", "q")
        clock.advance(wait)
        router.accept(o.reservation.id)
    router.submit("late", "q")
    router.submit("gone", "q")
    assert router.position("gone") == 2
    ewt = router.estimated_wait("gone")
    assert ewt == pytest.approx(2 * 180 / 2)  # position 2, default AHT 180 s, 2 staffed
    clock.advance(30)
    router.cancel("gone")
    clock.advance(90)
    (o,) = router.complete("t0")  # a1 frees and takes "late" after 120 s
    router.accept(o.reservation.id)
    s = router.queue_stats("q")
    assert (s.answered, s.abandoned, s.offered) == (3, 1, 4)
    assert s.service_level == pytest.approx(50.0)  # 2 within 20 s of 4 answered+abandoned
    assert s.asa_s == pytest.approx((5 + 10 + 120) / 3)
    assert s.abandon_rate == pytest.approx(25.0)
    assert s.aht_s == pytest.approx(130.0)  # t0: accepted at +5, ended at +135
    assert s.staffed == 2 and s.waiting == 0
    assert 0 < s.occupancy <= 100
    assert router.estimated_wait(queue="q") > 0  # nobody free: a new call waits
