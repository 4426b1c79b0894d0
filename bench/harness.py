"""The pieces of a whole-call-path bench that bench/call_path.py and bench/soak.py share:
agent phones (SIPp REGISTER then UAS), agent desktops (a child process logging every agent
in over HTTP + WebSocket) and the SIPp caller scenario with its DTMF capture.

    python bench/harness.py --desktop-worker http://127.0.0.1:PORT 2001 2002 …

runs the desktop worker itself (the benches start it as a child process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import free_udp_port, limits, sipp, write_dtmf_pcap

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIOS = HERE / "call_path"
CALLER_ANI = "+441632960001"  # the demo CRM's customer: the screen-pop carries a record
AGENT_PHONES = 2  # SIPp processes sharing the agents (each REGISTERs its own half)


async def run_sipp(args: list[str], timeout: float, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*args, cwd=str(cwd), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    code = proc.returncode if proc.returncode is not None else -1
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def caller_scenario(tmp: Path) -> Path:
    """The caller scenario (main line, press 4 → queue general) with its capture filled in."""
    pcap = write_dtmf_pcap(tmp / "dtmf4.pcap")
    xml = tmp / "caller_uac.xml"
    xml.write_text((SCENARIOS / "caller_uac.xml").read_text()
                   .replace("@PCAP@", str(pcap)).replace("@ANI@", CALLER_ANI))  # fmt: skip
    return xml


@dataclass
class AgentPhones:
    """SIPp agent phones: each REGISTERs its share of the agents, then answers every INVITE
    on the same port and logs the epoch time it arrived (``logs``)."""

    procs: list[asyncio.subprocess.Process] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    async def start(self, center: Any, ids: list[str], target: str, tmp: Path, *,
                    max_calls: int, run_s: float, scenario: Path | None = None) -> None:  # fmt: skip
        """``scenario``: the answering scenario (default ``agent_uas.xml``; bench/webrtc.py's
        streams a tone once answered)."""
        registered = asyncio.Event()
        bound: set[str] = set()

        def on_reg(user: str, is_registered: bool) -> None:
            if is_registered:
                bound.add(user)
                if len(bound) >= len(ids):
                    registered.set()

        center.registrar.on_change(on_reg)
        for k in range(AGENT_PHONES):
            share = ids[k::AGENT_PHONES]
            port = free_udp_port()  # the agents register from the port their UAS answers on
            users = tmp / f"agents{k}.csv"
            users.write_text("SEQUENTIAL\n" + "".join(
                f"{u};[authentication username={u} password=bench-{u}]\n" for u in share))  # fmt: skip
            rc, out, err = await run_sipp(
                [*sipp(port=port, loops=1000), target, "-sf", str(SCENARIOS / "register_agents.xml"),
                 "-inf", str(users), "-m", str(len(share)), "-r", "100", *limits(30)], 40, tmp)  # fmt: skip
            if rc != 0:
                raise RuntimeError(f"agent REGISTER failed (rc {rc}): {err[-800:] or out[-800:]}")
            logf = tmp / f"agent{k}.log"
            self.logs.append(logf)
            self.procs.append(await asyncio.create_subprocess_exec(
                *sipp(port=port, loops=1000), "-sf", str(scenario or SCENARIOS / "agent_uas.xml"),
                "-m", str(max_calls), "-timeout", f"{int(run_s)}s",
                "-trace_logs", "-log_file", str(logf), "-trace_err",
                "-error_file", str(tmp / f"agent{k}_errors.log"),
                cwd=str(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        await asyncio.wait_for(registered.wait(), 30)

    async def stop(self) -> None:
        for p in self.procs:
            if p.returncode is None:
                p.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(p.wait(), 5)


@dataclass
class Desktops:
    """Every agent's desktop in a child process; ``on_offer`` gets each offer line
    ({agent, cid, sent_at, recv_at}) as the child prints it."""

    on_offer: Callable[[dict[str, Any]], None]
    proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task[None] | None = None

    async def start(self, http: str, ids: list[str]) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--desktop-worker", http, *ids,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT))  # fmt: skip
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if line.strip() != b"READY":
            raise RuntimeError(f"desktop worker did not start: {line!r}")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.on_offer(json.loads(raw))

    async def stop(self) -> None:
        if self.proc is not None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
            if self.proc.returncode is None:
                self.proc.kill()
        if self._reader is not None:
            self._reader.cancel()


async def desktop_worker(http: str, agents: list[str]) -> None:
    """Child process: every agent's desktop. Prints READY, then one JSON line per offer."""
    import httpx
    import websockets

    sem = asyncio.Semaphore(8)
    socks: list[Any] = []
    async with httpx.AsyncClient(base_url=http, timeout=60.0) as client:

        async def login(agent: str) -> tuple[str, Any]:
            async with sem:
                r = await client.post("/api/login", json={"username": agent, "password": f"bench-{agent}"})
                r.raise_for_status()
                token = r.json()["token"]
                # the token as the subprotocol, as the pages send it (never in the URL)
                ws = await websockets.connect(http.replace("http", "ws", 1) + "/ws", max_queue=None,
                                              subprotocols=["callcenter.bearer", token])  # fmt: skip
                socks.append(ws)
                while json.loads(await ws.recv()).get("type") != "snapshot":
                    pass
                r = await client.post("/api/agent/state", json={"state": "available"},
                                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                r.raise_for_status()
                return agent, ws

        pairs = await asyncio.gather(*(login(a) for a in agents))
        print("READY", flush=True)

        async def pump(agent: str, ws: Any) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    recv_at = time.time()
                    msg = json.loads(raw)
                    if msg.get("type") == "offer":
                        line = {"agent": agent, "cid": msg.get("interaction_id"),
                                "sent_at": msg.get("sent_at"), "recv_at": recv_at}  # fmt: skip
                        sys.stdout.write(json.dumps(line) + "\n")
                        sys.stdout.flush()

        pumps = [asyncio.create_task(pump(a, ws)) for a, ws in pairs]
        # The parent closes our stdin when the run is over.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for ws in socks:
            with contextlib.suppress(Exception):
                await ws.close()
        for p in pumps:
            p.cancel()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--desktop-worker":
        asyncio.run(desktop_worker(sys.argv[2], sys.argv[3:]))
    else:
        raise SystemExit(__doc__)
