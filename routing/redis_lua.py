"""The Lua scripts behind :mod:`routing.redis_store`, and their one loader.

The scripts live in ``routing/lua/*.lua`` (package data): ``common.lua`` holds the
functions every script shares, and each other file is one script's body. Each runs
atomically inside Redis.

Every state change of a shared agent or task happens in one of these scripts,
so two server processes can never reserve the same agent slot or hand one task
to two agents: a script re-checks the task's status and the agent's free
capacity under Redis' single-threaded execution before it writes.

What varies per call travels in KEYS (the prefix) and ARGV. What is fixed for a
deployment — which channels are exclusive, which skills get which agent indexes,
auditing, and the most-skilled score's weights from :mod:`routing.matching` — is
written by :func:`build` as a header of Lua ``local`` constants in front of
``common.lua``. Those values never change between calls and are read in the
scans' inner loops: in ARGV they would add arguments and parsing to every call.
The ``.lua`` files themselves carry no placeholders.

Key layout (P is the prefix, wrapped in a {hash tag} so every key of one
deployment lives in one cluster slot):

    P:a:<agent>          hash  s:<skill>=level per skill, sk="skill=level,..." (for the
                               index upkeep), grp="g1,g2", cap="voice=1,web=3"
                               pres, reason, soft (0/1), l:<channel> (slots used),
                               idle (idle sequence), idx (channels routable on), cnt, rona
    P:av:<ch>:<skill>    zset  agents having <skill>, scored by idle sequence (skills
                               that some queue requires)
    P:av:<ch>:           zset  every agent of the channel (only when a queue can route
                               a task without required skills)
    P:avl:<ch>:<skill>:<level>
                         zset  agents with exactly that level, scored by idle sequence
                               (only for skills that longest-idle and most-skilled
                               queues require)
    P:ao:<ch>:<skill>    zset  the same, scored by ordinal (round-robin queues' skills)
    P:has:<skill>        zset  every agent having <skill>, scored by level; static (changes
                               only with the agent's configuration), so a task's own
                               required skills need no bucket upkeep on every reservation
    P:t:<task>           hash  st (waiting/reserved/assigned/wrap_up), q, ch, req, pref,
                               grp, pri, created, seq, key, res, agent, rej, pa, ans,
                               oreq/opref (the task's own requirements), qat (entered
                               the queue), ep (queue epoch), v (version), steps, notes,
                               hops, only (preferred-agent window), tk (timer kinds)
    P:q:<queue>          zset  waiting task ids by sort key (smaller = served first)
    P:r:<reservation>    hash  task, agent, ch, q, owner
    P:leases             zset  reservation ids (and "w:<task>" wrap-ups) by expiry time
    P:timers             zset  "<task>|<epoch>|<kind>" by due time: escalation steps
                               (step<i>), max wait, end of the preferred-agent window
    P:seq                counter for idle sequence numbers
    P:rr:<queue>         round-robin position (last agent ordinal) of a queue
    P:log                list  audit trail (only when auditing is on)

The agent buckets are kept *lazily*: an agent who becomes routable on a channel
is added to every bucket of that channel (with a new idle sequence), but one who
stops being routable (a reservation, not ready) is only marked in ``idx`` and
left in the buckets; a scan that meets such a stale entry skips it and removes it
from the bucket it scanned. A reservation therefore writes one hash field instead
of removing the agent from ~20 sorted sets, and buckets that no decision reads
are never cleaned at all (they hold every agent at most once).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from routing.config import MAX_LEVEL
from routing.matching import PREFERRED_WEIGHT, REQUIRED_WEIGHT

# One script per file in routing/lua/ (besides common.lua); RedisRouter calls them by these names.
SCRIPTS = (
    "upsert_agent",
    "remove_agent",
    "set_field",
    "enqueue",
    "take_for_task",
    "update_task",
    "move",
    "take_for_agent",
    "release",
    "accept",
    "complete",
    "end_wrap",
    "cancel",
    "due",
)


@dataclass(frozen=True, slots=True)
class LuaConfig:
    """A deployment's constants for the scripts (see ``common.lua`` for each one)."""

    exclusive: frozenset[str]
    audit: bool = False
    rr_skills: frozenset[str] = frozenset()
    level_skills: frozenset[str] = frozenset()
    any_bucket: bool = True
    indexed_skills: frozenset[str] = frozenset()


@cache
def source(name: str) -> str:
    """The text of ``routing/lua/<name>.lua`` (read once per process)."""
    return resources.files("routing").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def _lua_str(text: str) -> str:
    """A Lua 5.1 string literal: every byte but letters, digits, '_' and '-' as a
    three-digit decimal escape, so any skill or channel name is safe."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if char.isascii() and (char.isalnum() or char in "_-") else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _lua_set(items: frozenset[str]) -> str:
    return "{" + ", ".join(f"[{_lua_str(s)}] = true" for s in sorted(items)) + "}"


def header(config: LuaConfig) -> str:
    """The Lua ``local`` constants every script starts with."""
    lines = [
        f"local EXCL = {_lua_set(config.exclusive)}",
        f"local RRS = {_lua_set(config.rr_skills)}",
        f"local LVS = {_lua_set(config.level_skills)}",
        f"local ANY = {'true' if config.any_bucket else 'false'}",
        f"local IDX = {_lua_set(config.indexed_skills)}",
        f"local AUDIT = {'true' if config.audit else 'false'}",
        f"local W_REQ, W_PREF, MAX_LEVEL = {REQUIRED_WEIGHT}, {PREFERRED_WEIGHT}, {MAX_LEVEL}",
    ]
    return "\n".join(lines) + "\n"


def build(name: str, config: LuaConfig) -> str:
    """One script, ready for SCRIPT LOAD: the header, ``common.lua``, then its body."""
    return header(config) + source("common") + source(name)
