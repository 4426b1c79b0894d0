"""Simulator benchmark: simulated contacts per second through the real Router.

Workloads (both through routing.simulation.simulate, the same code as the what-if
simulator; every routing decision is the production Router's):

1. ``single skill``: a 200-agent center on one queue, Poisson arrivals at 85 %
   occupancy (AHT 300 s exponential → ~49,000 contacts a day), no abandons; the
   simulated service level is printed beside Erlang C's.
2. ``skills mix``: the same 200 agents spread over 4 queues (each agent has 2 of
   the 4 skills, levels 1-10, most-skilled on one queue), 70 % voice / 30 % web chat
   (web capacity 2), exponential patience (mean 120 s), 10 s wrap-up.

``--days`` simulated days each (default 30, a month: ~1.5 M contacts per workload);
``--quick`` runs 2 days (< 1 minute). Single process, single thread: the machine has
2 cores shared with other work.

    python bench/simulate.py            # a month, writes bench/results/simulate.json
    python bench/simulate.py --quick    # 2 days, bench/results/simulate_quick.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from routing import AgentConfig, build_config  # noqa: E402
from routing.erlang import erlang_c_report  # noqa: E402
from routing.simulation import Arrival, StaffedAgent, simulate, synthetic_arrivals, synthetic_config  # noqa: E402

AGENTS = 200
AHT = 300.0
OCCUPANCY = 0.85
DAY = 86_400.0


def single_skill(days: float, seed: int) -> tuple[list[Arrival], Any, list[StaffedAgent], dict[str, Any]]:
    per_30 = OCCUPANCY * AGENTS / AHT * 1800
    config, staff = synthetic_config(AGENTS)
    arrivals = synthetic_arrivals(per_30, 1800, days * DAY, AHT, seed=seed)
    erlang = erlang_c_report(per_30, 1800, AHT, AGENTS, 20).service_level
    return arrivals, config, staff, {"erlang_c_service_level": erlang}


def skills_mix(days: float, seed: int) -> tuple[list[Arrival], Any, list[StaffedAgent], dict[str, Any]]:
    rng = random.Random(seed)
    skills = ["billing", "tech", "sales", "claims"]
    queues = {s: {"required_skills": {s: 1}, "wrap_up_s": 10} for s in skills}
    queues["tech"]["strategy"] = "most_skilled"
    config = build_config({"skills": {s: {} for s in skills}}, {"queues": queues})
    staff = [
        StaffedAgent(
            AgentConfig(
                id=f"a{k:03d}",
                skills={s: rng.randint(1, 10) for s in rng.sample(skills, 2)},
                capacity={"voice": 1, "web": 2},
            )
        )
        for k in range(AGENTS)
    ]
    rate = OCCUPANCY * AGENTS / (AHT + 10)
    arrivals, t = [], rng.expovariate(rate)
    while t < days * DAY:
        arrivals.append(
            Arrival(
                at=t,
                queue=rng.choice(skills),
                handle_s=rng.expovariate(1 / AHT),
                channel="voice" if rng.random() < 0.7 else "web",
                priority=rng.choice([0, 0, 0, 1]),
                patience_s=rng.expovariate(1 / 120),
            )
        )
        t += rng.expovariate(rate)
    return arrivals, config, staff, {}


def run(name: str, build: Any, days: float, seed: int) -> dict[str, Any]:
    arrivals, config, staff, extra = build(days, seed)
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = simulate(arrivals, config, staff, interval_s=1800, threshold_s=20, start=0.0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    totals = result.totals
    return {
        "workload": name,
        "days": days,
        "contacts": len(arrivals),
        "wall_s": wall,
        "cpu_s": cpu,
        "contacts_per_s": len(arrivals) / wall,
        "contacts_per_cpu_s": len(arrivals) / cpu,
        "service_level": totals["service_level"],
        "abandoned": totals["abandoned"],
        "asa_s": totals["asa_s"],
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 simulated days, under a minute")
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    days = args.days or (2.0 if args.quick else 30.0)
    rows = [
        run("single skill", single_skill, days, args.seed),
        run("skills mix", skills_mix, days, args.seed),
    ]
    print(f"{'workload':<14} {'days':>5} {'contacts':>10} {'wall s':>7} {'contacts/s':>11} {'per CPU s':>10} "
          f"{'SL sim':>7} {'SL Erlang C':>12}")  # fmt: skip
    for r in rows:
        erlang = r.get("erlang_c_service_level")
        print(
            f"{r['workload']:<14} {r['days']:>5g} {r['contacts']:>10,} {r['wall_s']:>7.1f} "
            f"{r['contacts_per_s']:>11,.0f} {r['contacts_per_cpu_s']:>10,.0f} {r['service_level']:>7.3f} "
            f"{'' if erlang is None else format(erlang, '.3f'):>12}"
        )
    results = {
        "benchmark": "simulate",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "target_contacts_per_s": 50_000,
        "runs": rows,
    }
    out = ROOT / "bench" / "results" / ("simulate_quick.json" if args.quick else "simulate.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
