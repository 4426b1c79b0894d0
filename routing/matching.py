"""Eligibility and strategy keys: the pure rules shared by every store.

An agent is *eligible* for a task when they have every required skill at the
task's minimum level and share an allowed agent group (if the task restricts
groups). An agent is *routable* on a channel when ready, with a free slot on
that channel, not blocked by an exclusive channel, and — for voice — with a
registered softphone.

Strategy keys are tuples where smaller is better; the last element is always
a unique, stable value so ties never depend on dict or set order.

The most-skilled score (:func:`skill_score`) is defined here only: the in-memory
router's early stop reads its bound from :func:`top_score`, and the Redis store's
Lua gets ``REQUIRED_WEIGHT``, ``PREFERRED_WEIGHT`` and ``MAX_LEVEL`` (routing.config)
from these constants, through the script header :mod:`routing.redis_lua` writes,
so neither can drift from this definition. The Lua still spells the formula out
(it scores inside its scan loop), so tests/routing/test_routing_scoring.py checks
its scores against :func:`skill_score` on generated cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from routing.config import MAX_LEVEL, Strategy
from routing.model import Agent, Presence, Task


def meets(agent: Agent, required: Mapping[str, int], allowed_groups: frozenset[str]) -> bool:
    skills = agent.skills
    for skill, level in required.items():
        if skills.get(skill, 0) < level:
            return False
    return not allowed_groups or not allowed_groups.isdisjoint(agent.groups)


def has_levels(skills: Mapping[str, int], checks: tuple[tuple[str, int], ...]) -> bool:
    """Every (skill, minimum level) pair is met; the router's innermost check."""
    # A plain loop: all() over a generator costs about twice as much per agent here.
    for skill, level in checks:  # noqa: SIM110
        if skills.get(skill, 0) < level:
            return False
    return True


_NONE: frozenset[str] = frozenset()


def has_device(agent: Agent, channel: str) -> bool:
    """The agent can be reached on ``channel`` at all: voice needs a registered softphone."""
    return channel != "voice" or agent.softphone


def routable_channels(agent: Agent, exclusive: frozenset[str]) -> frozenset[str]:
    if agent.presence is not Presence.AVAILABLE:
        return _NONE
    load = agent.load
    busy = False
    for ch, n in load.items():
        if n:
            if ch in exclusive:
                return _NONE  # a call (exclusive channel) takes the whole agent
            busy = True
    out = []
    for ch, cap in agent.capacity.items():
        if cap <= load.get(ch, 0):
            continue
        if busy and ch in exclusive:
            continue
        if not has_device(agent, ch):
            continue
        out.append(ch)
    return frozenset(out)


REQUIRED_WEIGHT = 2  # a required skill's level counts double...
PREFERRED_WEIGHT = 1  # ...a preferred skill's once


def skill_score(agent: Agent, task: Task) -> int:
    """Proficiency-weighted score of the most-skilled strategy (higher wins)."""
    skills = agent.skills
    return REQUIRED_WEIGHT * sum(skills.get(s, 0) for s in task.required) + PREFERRED_WEIGHT * sum(
        skills.get(s, 0) for s in task.preferred
    )


def top_score(n_required: int, n_preferred: int) -> int:
    """The highest :func:`skill_score` possible with that many required and preferred
    skills (every level at the top): a scan may stop at an agent who reaches it."""
    return MAX_LEVEL * (REQUIRED_WEIGHT * n_required + PREFERRED_WEIGHT * n_preferred)


def preferred_matches(agent: Agent, task: Task) -> int:
    skills = agent.skills
    return sum(1 for s, lvl in task.preferred.items() if skills.get(s, 0) >= lvl)


def strategy_key(strategy: Strategy, agent: Agent, task: Task, rr_last: int) -> tuple[float | int, ...]:
    """Sort key of an eligible agent for a task under a queue's strategy (smaller wins)."""
    pref = -preferred_matches(agent, task)
    if strategy is Strategy.LONGEST_IDLE:
        return (pref, agent.idle_seq)
    if strategy is Strategy.MOST_SKILLED:
        return (-skill_score(agent, task), agent.idle_seq)
    if strategy is Strategy.LEAST_OCCUPIED:
        return (pref, agent.occupancy_now(), agent.idle_seq)
    if strategy is Strategy.FEWEST_CONTACTS:
        return (pref, agent.contacts_today, agent.idle_seq)
    # round robin: the next ordinal after the queue's last pick, wrapping around
    return (pref, 0 if agent.ordinal > rr_last else 1, agent.ordinal)


def describe_skills(agent: Agent, required: Mapping[str, int], preferred: Iterable[str]) -> str:
    parts = [f"{s}≥{lvl} (has {agent.skills.get(s, 0)})" for s, lvl in sorted(required.items())]
    text = "required " + ", ".join(parts) if parts else "no required skills"
    pref = [f"{s} (has {agent.skills[s]})" for s in sorted(preferred) if s in agent.skills]
    if pref:
        text += "; preferred " + ", ".join(pref)
    return text
