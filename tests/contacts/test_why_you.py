"""Routing's decision facts as the agent's "Why you" sentence (issue 19)."""

from __future__ import annotations

from callcenter.contacts.why_you import why_you


def test_task_first_names_skills_and_how_the_agent_stood_out() -> None:
    facts = {"decision": "task_first", "strategy": "longest_idle", "eligible_considered": 3,
             "required": {"billing": 4}, "agent_levels": {"billing": 4, "english": 9}}  # fmt: skip
    assert why_you(facts) == "You have skill billing at level 4; you were the longest idle of 3 agents."
    facts |= {"strategy": "most_skilled", "required": {"billing": 4, "english": 5}}
    assert why_you(facts) == (
        "You have skills billing at level 4 and english at level 9; you were the most skilled of 3 agents.")


def test_only_agent_preferred_agent_agent_first_and_escalation() -> None:
    one = {"decision": "task_first", "strategy": "round_robin", "eligible_considered": 1, "required": {},
           "agent_levels": {}}  # fmt: skip
    assert why_you(one) == (
        "This queue needs no particular skill; you were the only agent who could take it.")
    preferred = one | {"strategy": "preferred_agent"}
    assert why_you(preferred).endswith("; you served this customer before.")
    took = {"decision": "agent_first", "heads_considered": 2, "required": {"sales": 1},
            "agent_levels": {"sales": 7}, "escalation_steps": ["relaxed sales to 1"]}  # fmt: skip
    assert why_you(took) == (
        "You have skill sales at level 7; you became free and this was the most urgent of 2 waiting calls "
        "you could take (the caller had waited, so the queue widened its search).")


def test_unknown_facts_give_no_sentence() -> None:
    assert why_you({}) == ""
    assert why_you({"decision": "task_first", "strategy": "telepathy"}) == ""
