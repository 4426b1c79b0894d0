"""The shared test support behaves as the project's rules say: a missing service or tool
skips on a developer's machine and FAILS under CI; the polling helper returns the value
it waited for and gives up at its deadline; the port helpers return bindable ports."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import (
    ROOT,
    eventually,
    free_port,
    free_udp_port,
    free_udp_tcp_port,
    require_postgres,
    require_redis,
    require_tool,
)

MISSING_TOOL = "callcenter-test-no-such-tool"


def dead_port() -> int:
    """A TCP port nothing listens on (just released by the OS)."""
    return free_port(socket.SOCK_STREAM)


@pytest.fixture(params=["local", "ci"])
def environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type[BaseException]:
    """Runs a test without and with CI=true; returns the outcome a missing requirement must raise."""
    if request.param == "ci":
        monkeypatch.setenv("CI", "true")
        return pytest.fail.Exception
    monkeypatch.delenv("CI", raising=False)
    return pytest.skip.Exception


def outcome_of(call: Callable[[], object]) -> type[BaseException]:
    try:
        call()
    except (pytest.fail.Exception, pytest.skip.Exception) as exc:
        return type(exc)
    raise AssertionError("a missing requirement neither skipped nor failed")


def test_missing_tool(environment: type[BaseException]) -> None:
    assert outcome_of(lambda: require_tool(MISSING_TOOL)) is environment


def test_present_tool_is_its_path() -> None:
    assert require_tool("sh") == __import__("shutil").which("sh")


def test_unreachable_redis(environment: type[BaseException]) -> None:
    url = f"redis://127.0.0.1:{dead_port()}/0"
    assert outcome_of(lambda: asyncio.run(require_redis(url))) is environment


def test_unreachable_postgres(environment: type[BaseException]) -> None:
    pytest.importorskip("asyncpg")
    assert outcome_of(lambda: require_postgres("127.0.0.1", dead_port(), "postgres", "test")) is environment


def test_ci_rule_end_to_end(tmp_path: Path) -> None:
    """The same test file, run by pytest itself: skipped without CI, a failed run with CI=true."""
    (tmp_path / "test_needs_tool.py").write_text(
        "from tests.support import require_tool\n\n"
        f"def test_needs_tool():\n    require_tool({MISSING_TOOL!r})\n"
    )
    base = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT)}

    def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
             str(tmp_path / "test_needs_tool.py")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    local = run(base)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout + local.stderr
    ci = run(base | {"CI": "true"})
    assert ci.returncode == 1 and "1 failed" in ci.stdout, ci.stdout + ci.stderr
    assert "required when CI=true" in ci.stdout


async def test_eventually_returns_the_truthy_value() -> None:
    calls: list[int] = []

    def grows() -> list[int] | None:
        calls.append(len(calls))
        return calls if len(calls) >= 3 else None

    assert await eventually(grows) == [0, 1, 2]


async def test_eventually_awaits_an_async_condition() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)

    async def is_set() -> bool:
        return event.is_set()

    assert await eventually(is_set) is True


async def test_eventually_gives_up_at_its_deadline() -> None:
    with pytest.raises(TimeoutError, match="never"):
        await eventually(lambda: False, timeout=0.05, what="never")


def test_free_ports_are_bindable() -> None:
    base = free_udp_port(even=True, span=4)
    assert base % 2 == 0
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    try:
        for offset, s in enumerate(socks):
            s.bind(("127.0.0.1", base + offset))
    finally:
        for s in socks:
            s.close()
    both = free_udp_tcp_port(span=2)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u,
        socket.socket() as t,
        socket.socket() as t_next,
    ):
        u.bind(("127.0.0.1", both))
        t.bind(("127.0.0.1", both))
        t_next.bind(("127.0.0.1", both + 1))
