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
most-skilled strategy, which walks levels from 10 down and stops early; kept
only for the skills given as ``level_skills``).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping

from routing.matching import routable_channels
from routing.model import Agent

ANY = ""
_NONE: frozenset[str] = frozenset()


def _idle_seq(agent: Agent) -> int:
    return agent.idle_seq


def _level(item: tuple[int, dict[str, Agent]]) -> int:
    return item[0]


def _size(item: tuple[int, str, int, dict[str, Agent]]) -> int:
    return item[0]


class AgentIndex:
    def __init__(self, exclusive: frozenset[str], level_skills: frozenset[str] = frozenset()) -> None:
        self._exclusive = exclusive
        self._level_skills = level_skills
        self._buckets: dict[tuple[str, str | tuple[str, int]], dict[str, Agent]] = {}
        self._indexed: dict[str, frozenset[str]] = {}  # agent id -> channels indexed on
        self._idle_seq = itertools.count(1)
        self._keys: dict[str, tuple[str | tuple[str, int], ...]] = {}
        self._agent_buckets: dict[tuple[str, str], list[dict[str, Agent]]] = {}
        # (channel, skill) -> its level buckets, lowest level first: a level scan visits
        # only the levels some agent has instead of all ten.
        self._levels: dict[tuple[str, str], tuple[tuple[int, dict[str, Agent]], ...]] = {}

    def _keys_of(self, agent: Agent) -> tuple[str | tuple[str, int], ...]:
        keys = self._keys.get(agent.id)
        if keys is None:
            levels = [(s, lvl) for s, lvl in agent.skills.items() if s in self._level_skills]
            keys = (*agent.skills, ANY, *levels)
            self._keys[agent.id] = keys
        return keys

    def _buckets_of(self, agent: Agent, channel: str) -> list[dict[str, Agent]]:
        # The agent's buckets on one channel, resolved once: refresh runs on every
        # reservation and release, and skips re-hashing the bucket keys each time.
        found = self._agent_buckets.get((agent.id, channel))
        if found is None:
            found = []
            for k in self._keys_of(agent):
                bucket = self._buckets.get((channel, k))
                if bucket is None:
                    bucket = self._buckets[(channel, k)] = {}
                    if isinstance(k, tuple):
                        skill, level = k
                        levels = (*self._levels.get((channel, skill), ()), (level, bucket))
                        self._levels[(channel, skill)] = tuple(sorted(levels, key=_level))
                found.append(bucket)
            self._agent_buckets[(agent.id, channel)] = found
        return found

    def channels_of(self, agent_id: str) -> frozenset[str]:
        return self._indexed.get(agent_id, _NONE)

    def refresh(self, agent: Agent, *, restart_idle: bool = False) -> None:
        """Bring the agent's bucket membership up to date after any change.

        ``restart_idle``: a contact ended, so the agent goes to the back of the line.
        """
        aid = agent.id
        old = self._indexed.get(aid, _NONE)
        new = routable_channels(agent, self._exclusive)
        if new == old and not restart_idle:
            return  # same channels, same place in line: nothing to move
        moved_to_end = restart_idle or not new <= old
        if moved_to_end:
            agent.idle_seq = next(self._idle_seq)
        for ch in old:
            if ch in new:
                if not moved_to_end:
                    continue
                for bucket in self._buckets_of(agent, ch):
                    del bucket[aid]
                    bucket[aid] = agent
            else:
                for bucket in self._buckets_of(agent, ch):
                    del bucket[aid]
        for ch in new:
            if ch not in old:
                for bucket in self._buckets_of(agent, ch):
                    bucket[aid] = agent
        if new:
            self._indexed[aid] = new
        else:
            self._indexed.pop(aid, None)

    def drop(self, agent: Agent) -> None:
        for ch in self._indexed.pop(agent.id, frozenset()):
            for bucket in self._buckets_of(agent, ch):
                bucket.pop(agent.id, None)
        for key in [k for k in self._agent_buckets if k[0] == agent.id]:
            del self._agent_buckets[key]
        self._keys.pop(agent.id, None)

    def has_levels(self, skill: str) -> bool:
        return skill in self._level_skills

    def level_buckets(self, channel: str, skill: str) -> tuple[tuple[int, dict[str, Agent]], ...]:
        """(level, routable agents with exactly that level in idle order) for every level
        some agent has in ``skill``, lowest first; levels nobody has are left out."""
        return self._levels.get((channel, skill), ())

    def candidates(
        self, channel: str, required: Mapping[str, int]
    ) -> tuple[Collection[Agent], tuple[tuple[str, int], ...]]:
        """Agents holding every required skill (any level), in idle order, and the level
        checks ordered most selective first (fewest routable holders).

        One required skill: its bucket as is. Several: the intersection of their
        buckets (a C-speed set operation), sorted by idle sequence — far fewer agents
        to check one by one than the smallest bucket alone.
        """
        if not required:
            return self._buckets.get((channel, ANY), {}).values(), ()
        if len(required) == 1:  # the common case: the queue's one skill
            for skill, level in required.items():
                bucket = self._buckets.get((channel, skill))
                if not bucket:
                    return (), ()
                return bucket.values(), ((skill, level),)
        sized = []
        for skill, level in required.items():
            bucket = self._buckets.get((channel, skill))
            if not bucket:
                return (), ()
            sized.append((len(bucket), skill, level, bucket))
        sized.sort(key=_size)
        checks = tuple((s, lvl) for _, s, lvl, _ in sized)
        smallest = sized[0][3]
        if len(sized) == 1:
            return smallest.values(), checks
        ids = smallest.keys() & sized[1][3].keys()
        for _, _, _, bucket in sized[2:]:
            ids &= bucket.keys()
        agents = [smallest[i] for i in ids]
        agents.sort(key=_idle_seq)
        return agents, checks

    def routable_count(self, channel: str) -> int:
        return len(self._buckets.get((channel, ANY), {}))
