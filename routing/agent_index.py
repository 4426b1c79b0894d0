"""Index of routable agents by (channel, skill), so a decision never scans every agent.

Each bucket is a dict kept in *idle order*: an agent is (re)inserted at the end
whenever their idle time restarts — a contact ended, or they became routable on
a channel they were not routable on — and gets a new ``idle_seq`` at that
moment. So iterating a bucket yields agents in ``idle_seq`` order, the
longest-idle agent first, and the longest-idle strategy stops at the first
eligible agent. (A reject or a revoked offer therefore sends the agent to the
back of the line, which is also the fair outcome.)
The bucket for skill ``""`` holds every routable agent of the channel, and a
bucket keyed ``(skill, level)`` holds those with exactly that level (for the
most-skilled strategy, which walks levels from 10 down and stops early).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from routing.matching import routable_channels
from routing.model import Agent

ANY = ""


class AgentIndex:
    def __init__(self, exclusive: frozenset[str]) -> None:
        self._exclusive = exclusive
        self._buckets: dict[tuple[str, str | tuple[str, int]], dict[str, Agent]] = {}
        self._indexed: dict[str, frozenset[str]] = {}  # agent id -> channels indexed on
        self._idle_seq = itertools.count(1)
        self._keys: dict[str, tuple[str | tuple[str, int], ...]] = {}

    def _keys_of(self, agent: Agent) -> tuple[str | tuple[str, int], ...]:
        keys = self._keys.get(agent.id)
        if keys is None:
            keys = (*agent.skills, ANY, *agent.skills.items())
            self._keys[agent.id] = keys
        return keys

    def channels_of(self, agent_id: str) -> frozenset[str]:
        return self._indexed.get(agent_id, frozenset())

    def refresh(self, agent: Agent, *, restart_idle: bool = False) -> None:
        """Bring the agent's bucket membership up to date after any change.

        ``restart_idle``: a contact ended, so the agent goes to the back of the line.
        """
        old = self._indexed.get(agent.id, frozenset())
        new = routable_channels(agent, self._exclusive)
        moved_to_end = restart_idle or bool(new - old)
        if moved_to_end:
            agent.idle_seq = next(self._idle_seq)
        keys = self._keys_of(agent)
        for ch in old - new:
            for skill in keys:
                bucket = self._buckets.get((ch, skill))
                if bucket is not None:
                    bucket.pop(agent.id, None)
        for ch in new:
            stay = ch in old
            for skill in keys:
                bucket = self._buckets.setdefault((ch, skill), {})
                if stay and moved_to_end:
                    bucket.pop(agent.id, None)
                elif stay:
                    continue
                bucket[agent.id] = agent
        if new:
            self._indexed[agent.id] = new
        else:
            self._indexed.pop(agent.id, None)

    def drop(self, agent: Agent) -> None:
        keys = self._keys_of(agent)
        for ch in self._indexed.pop(agent.id, frozenset()):
            for skill in keys:
                bucket = self._buckets.get((ch, skill))
                if bucket is not None:
                    bucket.pop(agent.id, None)
        self._keys.pop(agent.id, None)

    def at_level(self, channel: str, skill: str, level: int) -> dict[str, Agent]:
        """Routable agents with exactly ``level`` in ``skill``, in idle order."""
        return self._buckets.get((channel, (skill, level)), {})

    def candidates(self, channel: str, required: Mapping[str, int]) -> dict[str, Agent]:
        """The smallest bucket that every eligible agent must be in."""
        best = self._buckets.get((channel, ANY), {})
        for skill in required:
            bucket = self._buckets.get((channel, skill))
            if not bucket:
                return {}
            if len(bucket) < len(best):
                best = bucket
        return best

    def routable_count(self, channel: str) -> int:
        return len(self._buckets.get((channel, ANY), {}))
