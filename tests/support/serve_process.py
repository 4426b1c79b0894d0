"""``callcenter serve`` as a real child process, for the tests that need the whole program
(signals, a crash and a restart): started in its own session with JSON logs, read until
its start-up line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.polling import eventually
from tests.support.services import ROOT


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)  # every JSON log line so far
    info: dict[str, Any] = field(default_factory=dict)  # the "callcenter started" line
    drain: asyncio.Task[None] | None = None

    @property
    def sip(self) -> tuple[str, int]:
        host, port = self.info["sip"][0].split(":", 1)[1].rsplit(":", 1)
        return host, int(port)

    @property
    def http(self) -> str:
        return f"http://{self.info['http']}"

    def logged(self, prefix: str) -> dict[str, Any]:
        return next(line for line in self.lines if str(line.get("msg", "")).startswith(prefix))

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                continue

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.drain is not None:
            await self.drain


async def serve(cfg: Path, cwd: Path, timeout: float = 60.0) -> Served:
    """Start ``callcenter serve --config cfg`` (JSON logs) and wait for its start-up line."""
    server = yaml.safe_load((cfg / "server.yaml").read_text())
    server["logging"]["format"] = "json"  # structured lines: tests read the records
    (cfg / "server.yaml").write_text(yaml.safe_dump(server))
    # This checkout's code, whichever checkout the editable install points at.
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    env = os.environ | {"PYTHONPATH": path}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callcenter.cli", "serve", "--config", str(cfg),
        "--flows", str(ROOT / "ivr_flows"),
        cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    served = Served(proc)
    served.drain = asyncio.create_task(served._read())

    def started() -> dict[str, Any] | None:
        if served.drain is not None and served.drain.done():
            raise AssertionError("server exited before start-up:\n" + "\n".join(map(str, served.lines)))
        return next((line for line in served.lines if line.get("msg") == "callcenter started"), None)

    served.info = await eventually(started, timeout, interval=0.05, what="callcenter started")
    return served
