// The live board's short history: waiting contacts and service level per queue over the
// last hours, from the samples the server keeps (GET /api/reports/live, one per
// server.reports.live_sample_s). Kept apart from supervisor.js, which owns the stream; this
// only needs the supervisor's session and a place on the board.

import { api, el, loadSession } from "./common.js";
import { lineChart } from "./charts.js";

const POLL_MS = 30_000;

function section() {
  let box = document.getElementById("live-charts");
  if (box) return box;
  box = el("section", { class: "card", id: "live-charts", "aria-labelledby": "live-charts-title" },
    el("h2", { id: "live-charts-title" }, "Last hours"),
    el("h3", {}, "Waiting"), el("div", { id: "chart-waiting", class: "chart" }),
    el("h3", {}, "Service level (%)"), el("div", { id: "chart-live-sl", class: "chart" }));
  const board = document.getElementById("board");
  board.insertBefore(box, board.querySelector("section"));
  return box;
}

async function refresh() {
  const session = loadSession("supervisor");
  const board = document.getElementById("board");
  if (!session || board.hidden) return;
  let live;
  try {
    live = await api("/api/reports/live", { token: session.token });
  } catch {
    return; // the board itself reports a lost session or server
  }
  section();
  const xs = live.samples.map((s) => s.ts);
  const names = [...new Set(live.samples.flatMap((s) => Object.keys(s.queues)))].sort();
  const series = (key) => names.map((q) => ({ label: q, values: live.samples.map((s) => s.queues[q]?.[key] ?? null) }));
  await lineChart(document.getElementById("chart-waiting"), xs, series("waiting"), { yLabel: "waiting", height: 160 });
  await lineChart(document.getElementById("chart-live-sl"), xs, series("service_level"),
    { yLabel: "%", yRange: [0, 100], height: 160 });
}

// The board appears when the supervisor signs in: draw then, and every POLL_MS.
new MutationObserver(refresh).observe(document.getElementById("board"), { attributes: true, attributeFilter: ["hidden"] });
setInterval(refresh, POLL_MS);
refresh();
