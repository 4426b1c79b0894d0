"""Several nodes behind Kamailio (docs/cluster.md): the call path through the edge with
one and two nodes, per-node CPU per call, and failover time.

What runs (loopback only): Kamailio with the shipped deploy/kamailio/kamailio.cfg on
127.0.0.1, ``callcenter serve`` nodes on 127.0.0.2/127.0.0.3 as child processes, a Redis
of the bench's own, one PostgreSQL database (created, migrated, dropped), and SIPp
callers dialling the echo test (600) through the edge (tests/cluster/uac_routed.xml:
SIPp's uac with ACK and BYE along the route set), each call held ``--hold-ms``.

Runs, each with ``--calls`` calls at ``--rate`` calls/s:

- ``memory``: one node with ``cluster.enabled: false`` (the single-node server as before:
  no Redis at all) — the comparison peer;
- ``cluster-1``: one node with the cluster on (events bridged through Redis, leases,
  SIP bindings in Redis);
- ``cluster-2``: two nodes with the cluster on; Kamailio's round robin splits the calls.

Per run: calls succeeded/failed (SIPp), calls per node, and each node's CPU seconds
(process + media workers, /proc) per call handled — on one machine the nodes share the
cores, so per-node CPU per call is what tells how the work scales. The ratio
cluster-1 / memory is the cost of the cluster plumbing per call (target ≤ 1.5).

Failover: with two nodes up, node a is killed (SIGKILL); from then single calls are placed
one after another; the failover time is from the kill until a call placed after it
succeeds (the edge fails over on the dead node's timeout, FR_MS, then its probe keeps it
out). Routing decisions/s with the Redis store are not measured here: ``serve`` routes
per node and moves callers between nodes instead (docs/cluster.md), so no such decisions
happen; bench/routing.py measures the Redis store on its own.

Moving callers (``handoff``): two nodes; Carol's baresip registers through the edge and
her desk is on node b. Calls to the sales queue one after another, each answered by her
phone, held ``--handoff-hold-ms`` and wrapped up from the desk: ``local`` calls dial node
b, ``moved`` calls dial node a, which has no agent and moves each caller to b. Per batch:
queue → answer (the caller's sales key sent → the desk's ``connected``, median and max)
and each node's CPU per call above its idle CPU (measured for 4 s before); the ratio of
the two batches' CPU per call is what moving a caller costs (a moved call's media passes
through both nodes).

    python bench/nodes.py           # 300 calls at 20/s per run; 20 + 20 handoff calls
    python bench/nodes.py --quick   # 40 calls at 10/s per run, 3 + 3 handoff calls held 1 s

Results: bench/results/nodes.json (quick: nodes_quick.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
# bench/ last (Python puts a script's folder first): its loopback.py is needed, but no file
# there may shadow the standard library
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH), str(BENCH)]

from loopback import last_stat, proc_cpu  # noqa: E402

from tests.cluster.rig import Deployment, kill, metric, run, sipp_calls, start_kamailio  # noqa: E402
from tests.support.peers import Baresip, Caller, Desktop  # noqa: E402

HOSTS = {"a": "127.0.0.2", "b": "127.0.0.3"}
SALES = "3"  # the main menu's key for the sales queue
IDLE_S = 4.0  # the nodes' idle CPU is measured over this long before the handoff batches (quick: 3)


async def calls_in(dep: Deployment, name: str) -> float:
    samples = await metric(dep.nodes[name], "callcenter_sip_ua_calls_in_total")
    return sum(samples.values())


async def one_run(tmp: Path, label: str, nodes: list[str], cluster_on: bool, calls: int, rate: float,
                  hold_ms: int) -> dict[str, Any]:  # fmt: skip
    work = tmp / label
    work.mkdir()
    dep = Deployment(work)
    await dep.setup()
    kam = None
    try:
        for name in nodes:
            await dep.start_node(name, HOSTS[name], cluster_on=cluster_on)
        kam = await start_kamailio(work, [dep.addrs[n] for n in nodes])
        rc, _ = await run(sipp_calls(kam, work, 2, rate=rate, hold_ms=hold_ms))  # warm-up: prompts rendered
        before = {n: (proc_cpu(dep.nodes[n].proc.pid), await calls_in(dep, n)) for n in nodes}
        cmd = sipp_calls(kam, work, calls, rate=rate, hold_ms=hold_ms)
        started = time.monotonic()
        rc, _ = await run(cmd)
        elapsed = time.monotonic() - started
        stat = last_stat(Path(cmd[cmd.index("-stf") + 1]))
        per_node = {}
        for n in nodes:
            cpu = proc_cpu(dep.nodes[n].proc.pid) - before[n][0]
            handled = await calls_in(dep, n) - before[n][1]
            per_call = round(1000 * cpu / handled, 2) if handled else None
            per_node[n] = {"calls": int(handled), "cpu_s": round(cpu, 3), "cpu_ms_per_call": per_call}
        result: dict[str, Any] = {
            "run": label, "nodes": len(nodes), "cluster": cluster_on, "sipp_rc": rc,
            "successful": int(stat.get("SuccessfulCall(C)", 0) or 0),
            "failed": int(stat.get("FailedCall(C)", 0) or 0), "elapsed_s": round(elapsed, 2),
            "per_node": per_node,
            "cpu_ms_per_call": round(1000 * sum(p["cpu_s"] for p in per_node.values())
                                     / max(1, sum(p["calls"] for p in per_node.values())), 2),
        }  # fmt: skip
        if len(nodes) == 2:
            result["failover"] = await failover(dep, kam, work, hold_ms)
        return result
    finally:
        if kam is not None:
            await kam.stop()
        await dep.teardown()


async def failover(dep: Deployment, kam: Any, work: Path, hold_ms: int) -> dict[str, Any]:
    """Kill node a; place single calls one after another until one succeeds."""
    kill(dep.nodes["a"])
    killed = time.monotonic()
    attempts = failed = 0
    while time.monotonic() - killed < 30:
        attempts += 1
        rc, _ = await run(sipp_calls(kam, work, 1, rate=1, hold_ms=hold_ms))
        if rc == 0:
            break
        failed += 1
    recovered = time.monotonic() - killed
    # After the first success, every call goes to the survivor.
    rc, _ = await run(sipp_calls(kam, work, 10, rate=10, hold_ms=hold_ms))
    return {"failover_s": round(recovered, 2), "attempts": attempts, "failed_before": failed,
            "hold_ms": hold_ms, "after_10_calls_rc": rc}  # fmt: skip


async def handoff_run(tmp: Path, calls: int, hold_ms: int) -> dict[str, Any]:
    """Sales calls answered by Carol on node b: dialling node b (local) or node a (moved)."""
    work = tmp / "handoff"
    work.mkdir()
    dep = Deployment(work)
    await dep.setup()
    kam = phone = carol = None
    caller = Caller()
    try:
        for name in ("a", "b"):
            await dep.start_node(name, HOSTS[name])
        kam = await start_kamailio(work, [dep.addrs["a"], dep.addrs["b"]])
        phone = Baresip(work / "baresip", "1003", "demo-1003", kam.sip)
        await phone.start()
        carol = Desktop(dep.nodes["b"].http, "1003", "demo-1003")
        await carol.login()
        await caller.start()
        assert (await carol.post("/api/agent/state", {"state": "available"})).status_code == 200
        await one_sales_call(caller, carol, dep.addrs["b"], hold_ms)  # warm-up: prompts rendered
        # Each node's CPU while idle (media clock, probes, leases, heartbeats), to subtract.
        before = {n: proc_cpu(dep.nodes[n].proc.pid) for n in HOSTS}
        idle_s = 3.0 if calls < 5 else IDLE_S
        await asyncio.sleep(idle_s)
        idle = {n: (proc_cpu(dep.nodes[n].proc.pid) - before[n]) / idle_s for n in HOSTS}
        idle_ms = {n: round(1000 * r, 2) for n, r in idle.items()}
        out: dict[str, Any] = {"calls": calls, "hold_ms": hold_ms, "idle_cpu_ms_per_s": idle_ms}
        for label, node in (("local", "b"), ("moved", "a")):
            before = {n: proc_cpu(dep.nodes[n].proc.pid) for n in HOSTS}
            started = time.monotonic()
            waits = [await one_sales_call(caller, carol, dep.addrs[node], hold_ms) for _ in range(calls)]
            elapsed = time.monotonic() - started
            cpu = {n: proc_cpu(dep.nodes[n].proc.pid) - before[n] - idle[n] * elapsed for n in HOSTS}
            waits.sort()
            out[label] = {
                "dialled_node": node,
                "queue_to_answer_ms": {"median": round(1000 * waits[len(waits) // 2], 1),
                                       "max": round(1000 * waits[-1], 1)},
                "cpu_ms_per_call": {n: round(1000 * c / calls, 2) for n, c in cpu.items()},
                "cpu_ms_per_call_total": round(1000 * sum(cpu.values()) / calls, 2),
            }  # fmt: skip
        out["moved_over_local_cpu"] = round(out["moved"]["cpu_ms_per_call_total"]
                                            / out["local"]["cpu_ms_per_call_total"], 2)  # fmt: skip
        return out
    finally:
        if carol is not None:
            await carol.close()
        await caller.stop()
        if phone is not None:
            await phone.stop()
        if kam is not None:
            await kam.stop()
        await dep.teardown()


async def one_sales_call(caller: Caller, desk: Desktop, node: tuple[str, int], hold_ms: int) -> float:
    """One call to the main line of ``node`` that picks sales and is answered by the desk's
    agent; returns the seconds from the sales key to the desk's ``connected``."""
    call = await caller.call("5000", node, ani="+441632960002")
    seen = len(desk.messages)
    sent = time.monotonic()
    call.media.send_dtmf(SALES)
    connected = await desk.wait(lambda m: m.get("type") == "connected", 60, start=seen)
    answered = time.monotonic() - sent
    await asyncio.sleep(hold_ms / 1000)  # the conversation
    await call.hangup()
    await desk.wait(lambda m: m.get("type") == "wrapup", 30, start=seen)
    r = await desk.post("/api/agent/wrapup", {"disposition": "sale", "contact_id": connected["contact_id"]})
    assert r.status_code == 200, r.text
    await desk.wait(lambda m: m.get("type") == "wrapup_done", 30, start=seen)
    return answered


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'run':<10} {'nodes':>5} {'ok':>5} {'failed':>6} {'cpu ms/call':>11}  "
          "per node (calls, cpu ms/call)")
    for r in (r for r in results if "per_node" in r):
        nodes = ", ".join(f"{n}: {p['calls']}, {p['cpu_ms_per_call']}" for n, p in r["per_node"].items())
        print(f"{r['run']:<10} {r['nodes']:>5} {r['successful']:>5} {r['failed']:>6} "
              f"{r['cpu_ms_per_call']:>11}  {nodes}")
    by = {r["run"]: r for r in results}
    if "memory" in by and "cluster-1" in by and by["memory"]["cpu_ms_per_call"]:
        ratio = by["cluster-1"]["cpu_ms_per_call"] / by["memory"]["cpu_ms_per_call"]
        print(f"per-call CPU, cluster node / in-memory node: {ratio:.2f}x (target <= 1.5)")
    for r in results:
        if "handoff" in r:
            h = r["handoff"]
            print(f"\nmoving callers ({h['calls']} calls per batch, held {h['hold_ms']} ms):")
            print(f"{'batch':<7} {'dialled':>7} {'queue->answer ms (median, max)':>31} "
                  f"{'cpu ms/call above idle, a':>25} {'b':>7} {'total':>7}")
            for label in ("local", "moved"):
                b = h[label]
                w = b["queue_to_answer_ms"]
                print(f"{label:<7} {b['dialled_node']:>7} {w['median']:>22}, {w['max']:>7} "
                      f"{b['cpu_ms_per_call']['a']:>25} {b['cpu_ms_per_call']['b']:>7} "
                      f"{b['cpu_ms_per_call_total']:>7}")
            print(f"CPU per call, moved / local: {h['moved_over_local_cpu']}x")
        if "failover" in r:
            f = r["failover"]
            print(f"failover: node a killed -> a new call succeeded after {f['failover_s']} s "
                  f"({f['attempts']} attempt(s), calls held {f['hold_ms']} ms); "
                  f"then 10 calls rc={f['after_10_calls_rc']}")


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as tmp:
        for label, nodes, on in (("memory", ["a"], False), ("cluster-1", ["a"], True),
                                 ("cluster-2", ["a", "b"], True)):  # fmt: skip
            if args.only and label not in args.only:
                continue
            results.append(await one_run(Path(tmp), label, nodes, on, args.calls, args.rate, args.hold_ms))
        if not args.only or "handoff" in args.only:
            results.append({"run": "handoff", "handoff": await handoff_run(Path(tmp), args.handoff_calls,
                                                                          args.handoff_hold_ms)})  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="40 calls at 10/s per run, 3 + 3 handoff calls (under a minute)")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--hold-ms", type=int, default=300)
    ap.add_argument("--handoff-calls", type=int, default=20, help="calls per batch of the handoff run")
    ap.add_argument("--handoff-hold-ms", type=int, default=2000)
    ap.add_argument("--only", nargs="*", choices=["memory", "cluster-1", "cluster-2", "handoff"],
                    help="run only these (default: all)")
    args = ap.parse_args(argv)
    if args.quick:
        args.calls, args.rate, args.handoff_calls, args.handoff_hold_ms = 40, 10.0, 3, 1000
    results = asyncio.run(main_async(args))
    print_table(results)
    name = "nodes_quick" if args.quick else "nodes"
    out = ROOT / "bench" / "results" / (f"{name}_{'_'.join(args.only)}.json" if args.only else f"{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "calls": args.calls, "rate": args.rate,
                               "results": results}, indent=2))  # fmt: skip
    print(f"written {out}")
    return 0 if all(r.get("failed", 0) == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
