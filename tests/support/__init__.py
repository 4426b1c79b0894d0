"""Helpers shared by every test folder: required services and tools (skip locally, fail
under CI), free ports, and bounded polling for async tests."""

from tests.support.polling import eventually
from tests.support.ports import free_port, free_udp_port, free_udp_tcp_port
from tests.support.services import (
    REDIS_URL,
    ROOT,
    in_ci,
    require_postgres,
    require_redis,
    require_tool,
    unavailable,
)

__all__ = [
    "REDIS_URL",
    "ROOT",
    "eventually",
    "free_port",
    "free_udp_port",
    "free_udp_tcp_port",
    "in_ci",
    "require_postgres",
    "require_redis",
    "require_tool",
    "unavailable",
]
