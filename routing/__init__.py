"""Skills-based routing (ACD) as a pure library: plain data in, decisions out.

No telephony, web or database imports, and never ``callcenter``: the server
drives a :class:`Router` (single process, in memory) or a
:class:`routing.redis_store.RedisRouter` (several processes sharing Redis); code
written for either store uses the :class:`RoutingStore` Protocol (the in-memory
router through :class:`MemoryStore`).
"""

from routing.clock import ManualClock
from routing.config import (
    AgentConfig,
    ConfigError,
    Queue,
    RoutingConfig,
    Strategy,
    build_config,
    check_references,
    load_config_files,
)
from routing.model import (
    Agent,
    AgentState,
    Decision,
    DecisionKind,
    Explanation,
    Phase,
    Presence,
    Reservation,
    Task,
)
from routing.router import Router, RoutingError
from routing.stats import AgentStats, QueueStats
from routing.store import MemoryStore, RoutingStore

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentState",
    "AgentStats",
    "ConfigError",
    "Decision",
    "DecisionKind",
    "Explanation",
    "ManualClock",
    "MemoryStore",
    "Phase",
    "Presence",
    "Queue",
    "QueueStats",
    "Reservation",
    "Router",
    "RoutingConfig",
    "RoutingError",
    "RoutingStore",
    "Strategy",
    "Task",
    "build_config",
    "check_references",
    "load_config_files",
]
