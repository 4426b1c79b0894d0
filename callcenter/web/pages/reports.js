// The reports page: historical queue and agent reports (GET /api/reports/queues|agents),
// their charts and CSV downloads, and the what-if simulator (POST /api/reports/simulate).
// Supervisor login, the same session as the live board (sessionStorage).

import {
  ApiError, api, clearSession, duration, el, keepRenewed, loadSession, notify, show, wireLogin,
} from "./common.js";
import { lineChart } from "./charts.js";

const page = { session: null, renewal: null, targets: new Map(), last: null };

const DAY = 86_400;

function utcDay(offsetDays = 0) {
  return new Date(Date.now() + offsetDays * DAY * 1000).toISOString().slice(0, 10);
}

function pct(fraction) {
  return fraction === null || fraction === undefined ? "—" : `${(fraction * 100).toFixed(1)}%`;
}

function stamp(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ");
}

// ---------------------------------------------------------------- session

async function start(session) {
  page.session = session;
  page.renewal = keepRenewed(session, () => signedOut("Your session has ended; please sign in again."));
  show("login", false);
  show("reports", true);
  show("btn-logout", true);
  const who = document.getElementById("who");
  who.textContent = session.subject;
  who.hidden = false;
  await loadQueues();
  await showReport();
}

function signedOut(message = "") {
  if (page.renewal) page.renewal();
  page.renewal = null;
  page.session = null;
  clearSession();
  show("reports", false);
  show("who", false);
  show("btn-logout", false);
  show("login", true);
  notify("login-error", message, "info");
}

async function call(path, options = {}) {
  try {
    return await api(path, { token: page.session.token, ...options });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
    throw err;
  }
}

// Queue names and their service-level targets come from the live board's snapshot.
async function loadQueues() {
  const select = document.getElementById("f-queue");
  try {
    const snap = await call("/api/supervisor/snapshot");
    for (const q of snap.queues || []) {
      page.targets.set(q.queue, q.service_level_target);
      if (!select.querySelector(`option[value="${CSS.escape(q.queue)}"]`)) {
        select.append(el("option", { value: q.queue }, q.queue));
      }
    }
  } catch {
    // the report works without the picker's names
  }
}

// ---------------------------------------------------------------- reports

function query(extra = {}) {
  const f = document.getElementById("filter");
  const params = new URLSearchParams({ from: f.elements.from.value, to: f.elements.to.value, ...extra });
  if (f.elements.queue.value) params.append("queue", f.elements.queue.value);
  return params;
}

async function showReport() {
  const button = document.getElementById("btn-show");
  button.disabled = true;
  try {
    const interval = document.getElementById("f-interval").value;
    const [queues, agents] = await Promise.all([
      call(`/api/reports/queues?${query({ interval })}`),
      call(`/api/reports/agents?${query()}`),
    ]);
    page.last = queues;
    document.getElementById("sl-formula").textContent = queues.service_level_formula;
    document.getElementById("sl-threshold").textContent = String(queues.threshold_s);
    document.getElementById("sl-short").textContent = String(queues.short_abandon_s);
    renderQueues(queues);
    renderAgents(agents);
    renderStates(agents);
    notify("report-notice", queues.rows.length ? "" : "No contacts in this range.", "info");
    await drawCharts(queues);
  } catch (err) {
    if (page.session) notify("report-notice", err.message || "The report could not be loaded.", "error");
  } finally {
    button.disabled = false;
  }
}

function queueCells(r) {
  return [
    [r.offered, "num"], [r.answered, "num"], [`${r.abandoned} (${r.short_abandoned})`, "num"],
    [r.answered_within, "num"], [pct(r.service_level), "num"], [duration(r.asa_s), "num"],
    [duration(r.talk_s), "num"], [duration(r.hold_s), "num"], [duration(r.wrap_up_s), "num"],
    [duration(r.aht_s), "num"], [duration(r.longest_wait_s), "num"], [r.transfers, "num"],
    [r.callbacks, "num"], [r.self_served, "num"],
  ].map(([v, cls]) => el("td", { class: cls }, v));
}

function renderQueues(report) {
  const body = document.getElementById("queue-rows");
  body.replaceChildren(...report.rows.map((r) => el("tr", { dataset: { queue: r.queue, interval: r.interval_start } },
    el("td", {}, stamp(r.interval_start)), el("td", {}, r.queue || "(self-served)"), el("td", {}, r.channel),
    ...queueCells(r))));
  const foot = document.getElementById("queue-total");
  foot.replaceChildren(...(report.totals ? [el("tr", {}, el("td", { colspan: 3 }, "Total"), ...queueCells(report.totals))] : []));
}

function renderAgents(report) {
  document.getElementById("agent-rows").replaceChildren(...report.rows.map((r) => el("tr", { dataset: { agent: r.agent_id } },
    el("td", {}, r.agent_id), el("td", {}, r.channel), el("td", { class: "num" }, r.handled),
    el("td", { class: "num" }, duration(r.asa_s)), el("td", { class: "num" }, duration(r.talk_s)),
    el("td", { class: "num" }, duration(r.hold_s)), el("td", { class: "num" }, duration(r.wrap_up_s)),
    el("td", { class: "num" }, duration(r.aht_s)), el("td", { class: "num" }, pct(r.service_level)))));
}

function renderStates(report) {
  document.getElementById("occupancy-formula").textContent = report.occupancy_formula;
  const num = (v) => el("td", { class: "num" }, v);
  document.getElementById("state-rows").replaceChildren(...report.states.map((r) => el("tr", { dataset: { agent: r.agent_id } },
    el("td", {}, r.agent_id), num(duration(r.logged_in_s)), num(duration(r.available_s)), num(duration(r.reserved_s)),
    num(duration(r.busy_s)), num(duration(r.wrap_up_s)), num(duration(r.not_ready_s)), num(pct(r.occupancy)))));
  document.getElementById("reason-rows").replaceChildren(...report.reasons.map((r) => el("tr", {},
    el("td", {}, r.agent_id), el("td", {}, r.reason || "(none)"), num(duration(r.seconds)))));
}

// Sum the queue/channel rows of each interval; service level by the report's formula.
function perInterval(rows) {
  const by = new Map();
  for (const r of rows) {
    const t = by.get(r.interval_start) || { offered: 0, answered: 0, abandoned: 0, short: 0, within: 0 };
    t.offered += r.offered;
    t.answered += r.answered;
    t.abandoned += r.abandoned;
    t.short += r.short_abandoned;
    t.within += r.answered_within;
    by.set(r.interval_start, t);
  }
  const xs = [...by.keys()].sort((a, b) => a - b);
  const get = (k) => xs.map((x) => by.get(x)[k]);
  const sl = xs.map((x) => {
    const t = by.get(x);
    const denom = t.answered + t.abandoned - t.short;
    return denom ? (100 * t.within) / denom : null;
  });
  return { xs, offered: get("offered"), answered: get("answered"), abandoned: get("abandoned"), sl };
}

async function drawCharts(report) {
  const d = perInterval(report.rows);
  await lineChart(document.getElementById("chart-volume"), d.xs, [
    { label: "offered", values: d.offered }, { label: "answered", values: d.answered },
    { label: "abandoned", values: d.abandoned },
  ], { yLabel: "contacts" });
  const queue = document.getElementById("f-queue").value;
  const targets = queue ? [page.targets.get(queue)] : [...page.targets.values()];
  const known = targets.filter((t) => Number.isFinite(t));
  const target = known.length ? Math.max(...known) : null;
  const series = [{ label: "service level %", values: d.sl }];
  if (target !== null) series.push({ label: "target %", values: d.xs.map(() => target), dash: [6, 4], color: "#9a6700" });
  await lineChart(document.getElementById("chart-sl"), d.xs, series, { yLabel: "%", yRange: [0, 100] });
}

// CSV: the API answers with the file; fetched with the token, then saved from a blob.
async function downloadCsv(kind, table = "rows") {
  const params = kind === "queues" ? query({ interval: document.getElementById("f-interval").value }) : query();
  params.set("format", "csv");
  params.set("table", table);
  try {
    const r = await fetch(`/api/reports/${kind}?${params}`, { headers: { Authorization: `Bearer ${page.session.token}` } });
    if (!r.ok) throw new ApiError(r.status, (await r.json().catch(() => ({}))).detail || r.statusText);
    const name = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "")?.[1] || `${kind}.csv`;
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
    else notify("report-notice", `CSV download failed: ${err.message}`, "error");
  }
}

// ---------------------------------------------------------------- what-if

function whatIfMode() {
  const synthetic = document.getElementById("w-mode").value === "synthetic";
  for (const node of document.querySelectorAll("#whatif .synthetic")) node.hidden = !synthetic;
  document.getElementById("w-help").hidden = synthetic;
  return synthetic;
}

async function runWhatIf() {
  const synthetic = whatIfMode();
  const number = (id) => (document.getElementById(id).value === "" ? null : Number(document.getElementById(id).value));
  const f = document.getElementById("filter");
  const body = synthetic
    ? { mode: "synthetic", arrivals_per_30min: number("w-arrivals"), aht_s: number("w-aht"),
        agents: number("w-agents"), patience_s: number("w-patience") }
    : { mode: "replay", from: f.elements.from.value, to: f.elements.to.value, interval_s: Number(f.elements.interval.value),
        queues: f.elements.queue.value ? [f.elements.queue.value] : [], agent_count: number("w-agents") };
  const button = document.getElementById("btn-whatif");
  button.disabled = true;
  notify("whatif-notice", "Simulating…", "info");
  try {
    const out = await call("/api/reports/simulate", { method: "POST", body });
    notify("whatif-notice", "");
    show("whatif-result", true);
    document.getElementById("w-sl").textContent = pct(out.service_level);
    document.getElementById("w-other-label").textContent = synthetic ? "Erlang C" : "Recorded";
    document.getElementById("w-other").textContent = pct(synthetic ? out.erlang_c_service_level : out.recorded_service_level);
    document.getElementById("w-contacts").textContent = String(out.contacts);
    const totals = synthetic ? out.totals : out.totals.simulated;
    document.getElementById("w-abandoned").textContent = String(totals.abandoned);
    await drawWhatIf(out, synthetic);
  } catch (err) {
    if (page.session) notify("whatif-notice", err.message || "The simulation failed.", "error");
  } finally {
    button.disabled = false;
  }
}

async function drawWhatIf(out, synthetic) {
  const box = document.getElementById("chart-whatif");
  if (synthetic) {
    const d = perInterval(out.intervals);
    await lineChart(box, d.xs, [{ label: "simulated SL %", values: d.sl },
      { label: "Erlang C SL %", values: d.xs.map(() => 100 * out.erlang_c_service_level), dash: [6, 4] }],
    { yLabel: "%", yRange: [0, 100] });
    return;
  }
  const side = (key) => perInterval(out.intervals.filter((r) => r[key]).map((r) => ({ interval_start: r.interval_start, ...r[key] })));
  const actual = side("actual");
  const sim = side("simulated");
  const xs = [...new Set([...actual.xs, ...sim.xs])].sort((a, b) => a - b);
  const at = (d) => xs.map((x) => { const i = d.xs.indexOf(x); return i < 0 ? null : d.sl[i]; });
  await lineChart(box, xs, [{ label: "recorded SL %", values: at(actual) }, { label: "simulated SL %", values: at(sim) }],
    { yLabel: "%", yRange: [0, 100] });
}

// ---------------------------------------------------------------- wiring

function wire() {
  const f = document.getElementById("filter");
  f.elements.from.value = utcDay();
  f.elements.to.value = utcDay();
  f.addEventListener("submit", (e) => {
    e.preventDefault();
    showReport();
  });
  document.getElementById("csv-queues").addEventListener("click", () => downloadCsv("queues"));
  document.getElementById("csv-agents").addEventListener("click", () => downloadCsv("agents"));
  document.getElementById("csv-states").addEventListener("click", () => downloadCsv("agents", "states"));
  document.getElementById("csv-reasons").addEventListener("click", () => downloadCsv("agents", "reasons"));
  document.getElementById("w-mode").addEventListener("change", whatIfMode);
  document.getElementById("whatif").addEventListener("submit", (e) => {
    e.preventDefault();
    runWhatIf();
  });
  whatIfMode();
  wireLogin(document.getElementById("login-form"), "supervisor", start);
  document.getElementById("btn-logout").addEventListener("click", async () => {
    try {
      await api("/api/logout", { token: page.session.token, method: "POST" });
    } catch {
      // signing out locally is what matters
    }
    signedOut("Signed out.");
  });
  const session = loadSession("supervisor");
  if (session) start(session);
}

wire();
