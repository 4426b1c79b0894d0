// The supervisor board: queues, agents and the latest routing decisions.
//
// Everything is live from the WebSocket, no polling: a snapshot on connect, then agent
// state and device changes, routing decisions, queue figures and today's figures (each
// pushed at most every 0.25 s after a change) as they happen. Times in state, the longest
// wait and occupancy move on the page between messages, from when the server said the
// current state or wait started. Rows are updated in place, never rebuilt, so a state
// change the supervisor is choosing is kept.
//
// "Today" (server-side, since the server's local midnight: callcenter/board_today.py):
// per queue offered/answered/abandoned, service level and callers in the IVR now; per
// agent handled, AHT, occupancy and the current contact. The other queue figures (ASA,
// AHT, abandon rate, "SL 15 min") are routing's sliding window.

import {
  ApiError, LiveStream, api, clearSession, keepRenewed, clock, duration, el, label, loadSession, notify, percent, show,
  wireLogin,
} from "./common.js";
import { update as updateWallboard, wireToggle } from "./supervisor_wallboard.js";

const AFTER_UNKNOWN_MS = 300; // an agent the page has not seen: fetch the snapshot once, coalesced
const MAX_DECISIONS = 25;

const board = {
  session: null,
  stream: null,
  renewal: null, // stops the token renewal timer
  agents: new Map(), // id → { view, since }
  contacts: new Map(), // contact_id → summary
  decisions: [],
  queues: new Map(), // queue → { figures, longestSince } (client clock: the oldest caller's start)
  thresholds: null, // server.yaml board.thresholds, from the snapshot: tile colours and alerts
  today: null, // { day_start, queues: {q: {...}}, agents: {a: {...}} } from the snapshot and "today" pushes
  skew: 0, // browser clock minus server clock (s), so a server "since" counts on with Date.now()
  refreshTimer: null,
};

// ---------------------------------------------------------------- session

function start(session) {
  board.session = session;
  show("login", false);
  show("board", true);
  show("btn-logout", true);
  show("btn-wallboard", true);
  const who = document.getElementById("who");
  who.textContent = session.subject;
  who.hidden = false;
  board.renewal = keepRenewed(session, () => signedOut("Your session has ended; please sign in again."));
  board.stream = new LiveStream(session, {
    onMessage,
    onStatus: (s) => {
      const link = document.getElementById("link");
      link.textContent = s;
      link.dataset.status = s;
    },
    onUnauthorized: () => signedOut("Your session has ended; please sign in again."),
  });
  board.stream.start();
}

function signedOut(message = "") {
  if (board.renewal) board.renewal();
  board.renewal = null;
  if (board.stream) board.stream.stop();
  clearTimeout(board.refreshTimer);
  board.stream = null;
  board.session = null;
  clearSession();
  show("board", false);
  show("who", false);
  show("btn-logout", false);
  show("btn-wallboard", false);
  show("alerts", false);
  show("login", true);
  notify("login-error", message, "info");
}

async function refresh() {
  if (!board.session) return;
  try {
    applySnapshot(await api("/api/supervisor/snapshot", { token: board.session.token }), false);
    notify("board-notice", "");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
    else notify("board-notice", "The board could not be refreshed; the live stream goes on.", "error");
  }
}

function refreshSoon() {
  clearTimeout(board.refreshTimer);
  board.refreshTimer = setTimeout(refresh, AFTER_UNKNOWN_MS);
}

// ---------------------------------------------------------------- stream

function onMessage(msg) {
  switch (msg.type) {
    case "snapshot":
      applySnapshot(msg, true);
      break;
    case "agent_state":
      onAgentState(msg);
      break;
    case "agent_device":
      onAgentDevice(msg);
      break;
    case "queues":
      for (const q of msg.queues || []) renderQueue(q);
      break;
    case "today":
      applyToday(msg);
      break;
    case "decision":
      addDecision(msg);
      break;
    default:
      break;
  }
}

function applySnapshot(snap, withDecisions) {
  board.contacts = new Map((snap.contacts || []).map((c) => [c.contact_id, c]));
  board.thresholds = snap.thresholds || board.thresholds;
  if (snap.today) setToday({ ...snap.today, ts: snap.ts });
  for (const q of snap.queues || []) renderQueue(q);
  for (const a of snap.agents || []) {
    board.agents.set(a.agent_id, { view: a, since: Date.now() - (a.in_state_s || 0) * 1000 });
    renderAgent(a.agent_id);
  }
  if (withDecisions) {
    board.decisions = (snap.assignments || []).slice(-MAX_DECISIONS).reverse();
    renderDecisions();
  }
  document.getElementById("updated").textContent = `updated ${clock(snap.ts)}`;
}

function onAgentState(msg) {
  const entry = board.agents.get(msg.agent_id);
  if (!entry) {
    refreshSoon(); // an agent we have not seen: the snapshot has their details
    return;
  }
  entry.view = { ...entry.view, state: msg.state, reason: msg.reason };
  entry.since = Date.now();
  renderAgent(msg.agent_id);
}

function onAgentDevice(msg) {
  const entry = board.agents.get(msg.agent_id);
  if (!entry) return;
  entry.view = { ...entry.view, softphone: msg.softphone };
  renderAgent(msg.agent_id);
}

function setToday(today) {
  board.today = today;
  if (today.ts) board.skew = Date.now() / 1000 - today.ts;
}

function applyToday(msg) {
  setToday(msg);
  for (const tr of document.querySelectorAll("#queue-rows tr[data-queue]")) fillQueueToday(tr.dataset.queue, tr);
  for (const id of board.agents.keys()) renderAgent(id);
  refreshWallboard();
}

function queueToday(queue) {
  return (board.today && board.today.queues && board.today.queues[queue]) || null;
}

function agentToday(agentId) {
  return (board.today && board.today.agents && board.today.agents[agentId]) || null;
}

const WORKING = new Set(["reserved", "busy", "wrap_up"]);

// Occupancy today, counted on from the server's figures: the current state runs until now.
function occupancyNow(t) {
  if (!t) return null;
  const running = Math.max(0, Date.now() / 1000 - board.skew - t.since);
  const working = t.working_s + (WORKING.has(t.state) ? running : 0);
  const ready = working + t.available_s + (t.state === "available" ? running : 0);
  return ready > 0 ? (100 * working) / ready : null;
}

function addDecision(d) {
  board.decisions.unshift(d);
  board.decisions.length = Math.min(board.decisions.length, MAX_DECISIONS);
  renderDecisions();
}

// ---------------------------------------------------------------- rendering

function row(tbody, key, attr, build) {
  let tr = tbody.querySelector(`tr[data-${attr}="${CSS.escape(key)}"]`);
  if (!tr) {
    tr = build();
    tr.dataset[attr] = key;
    tbody.append(tr);
  }
  return tr;
}

function cell(tr, name) {
  return tr.querySelector(`.c-${name}`);
}

function renderQueue(q) {
  const tr = row(document.getElementById("queue-rows"), q.queue, "queue", () =>
    el("tr", {},
      el("th", { scope: "row", class: "c-name" }),
      ...["waiting", "ivr", "longest", "ewt", "sltoday", "today", "sl", "asa", "aht", "abandon", "staff"].map((n) =>
        el("td", { class: `num c-${n}` }))));
  cell(tr, "name").textContent = q.queue;
  cell(tr, "waiting").textContent = String(q.waiting);
  board.queues.set(q.queue, { figures: q, longestSince: q.waiting ? Date.now() - q.longest_wait_s * 1000 : null });
  tickQueue(q.queue, tr);
  fillQueueToday(q.queue, tr);
  refreshWallboard();
  cell(tr, "ewt").textContent = duration(q.ewt_s);
  const sl = cell(tr, "sl");
  sl.textContent = percent(q.service_level);
  sl.title = `target ${q.service_level_target}% in ${q.service_level_seconds}s`;
  sl.dataset.breach = q.service_level !== null && q.service_level < q.service_level_target ? "yes" : "no";
  cell(tr, "asa").textContent = duration(q.asa_s);
  cell(tr, "aht").textContent = duration(q.aht_s);
  cell(tr, "abandon").textContent = percent(q.abandon_rate);
  cell(tr, "staff").textContent = `${q.available}/${q.staffed}`;
  tr.dataset.waiting = q.waiting > 0 ? "yes" : "no";
}

function fillQueueToday(queue, tr) {
  const t = queueToday(queue);
  const entry = board.queues.get(queue);
  cell(tr, "ivr").textContent = t ? String(t.in_ivr) : "—";
  cell(tr, "today").textContent = t ? `${t.offered} / ${t.answered} / ${t.abandoned}` : "—";
  const sl = cell(tr, "sltoday");
  sl.textContent = t ? percent(t.service_level) : "—";
  const target = entry ? entry.figures.service_level_target : null;
  sl.dataset.breach = t && target !== null && t.service_level !== null && t.service_level < target ? "yes" : "no";
}

// The longest wait counts up between pushes: the oldest caller keeps waiting.
function tickQueue(queue, tr) {
  const { longestSince } = board.queues.get(queue);
  cell(tr, "longest").textContent = longestSince === null ? "—" : duration((Date.now() - longestSince) / 1000);
}

function refreshWallboard() {
  updateWallboard([...board.queues.values()].map(({ figures, longestSince }) => ({
    figures,
    longestS: longestSince === null ? null : (Date.now() - longestSince) / 1000,
    today: queueToday(figures.queue),
  })), board.thresholds);
}

function agentRow(agentId) {
  const select = el("select", { class: "c-target", "aria-label": `New state for agent ${agentId}` },
    el("option", { value: "available" }, "Available"),
    el("option", { value: "not_ready" }, "Not ready"),
    el("option", { value: "offline" }, "Log out"));
  const reason = el("input", { class: "c-reason-in", placeholder: "reason", maxlength: 64, size: 8,
    "aria-label": `Reason for agent ${agentId}` });
  const button = el("button", { type: "button", class: "c-apply" }, "Set");
  button.addEventListener("click", () => forceState(agentId, select.value, reason.value.trim(), button));
  const pick = el("input", { type: "checkbox", class: "c-pick", "aria-label": `Select agent ${agentId}` });
  pick.addEventListener("change", bulkCount);
  return el("tr", {},
    el("td", {}, pick),
    el("th", { scope: "row", class: "c-agent" }),
    el("td", {}, el("span", { class: "badge state c-state" }), " ", el("span", { class: "muted c-reason" })),
    el("td", { class: "num timer c-time" }),
    el("td", { class: "c-contact" }),
    el("td", { class: "num c-handled" }),
    el("td", { class: "num c-aht" }),
    el("td", { class: "num c-occupancy" }),
    el("td", {}, el("div", { class: "controls" }, select, reason, button)));
}

function renderAgent(agentId) {
  const { view } = board.agents.get(agentId);
  const tr = row(document.getElementById("agent-rows"), agentId, "agent", () => agentRow(agentId));
  cell(tr, "agent").textContent = view.name ? `${view.name} (${agentId})` : agentId;
  const badge = cell(tr, "state");
  const noPhone = view.softphone === false && view.state !== "offline";
  // Without a registered phone an Available agent takes no calls (and routing does not count them).
  badge.textContent = noPhone && view.state === "available" ? "Available — no phone" : label(view.state);
  badge.dataset.state = view.state;
  badge.dataset.phone = noPhone ? "none" : "ok";
  badge.title = noPhone ? "No registered phone: no calls can reach this agent" : "";
  tr.dataset.state = view.state;
  cell(tr, "reason").textContent = view.reason ? `(${label(view.reason)})` : "";
  const today = agentToday(agentId);
  cell(tr, "contact").textContent = today ? todayContactText(today.contact) : contactText(view);
  cell(tr, "handled").textContent = today ? String(today.handled) : "—";
  cell(tr, "aht").textContent = duration(today ? today.aht_s : null);
  tickAgent(agentId, tr);
}

function contactText(view) {
  if (view.contact_id) {
    const c = board.contacts.get(view.contact_id);
    return c ? [c.ani || "anonymous", c.queue, label(c.phase)].filter(Boolean).join(" · ") : view.contact_id;
  }
  return view.wrap_up_contact_id ? "Wrap-up" : "—";
}

// The contact an agent holds now, from today's figures (pushed whenever it changes).
function todayContactText(c) {
  if (!c) return "—";
  if (c.phase === "wrap_up") return "Wrap-up";
  return [c.ani || "anonymous", c.queue, label(c.phase)].filter(Boolean).join(" · ");
}

function tickAgent(agentId, tr) {
  cell(tr, "time").textContent = duration((Date.now() - board.agents.get(agentId).since) / 1000);
  cell(tr, "occupancy").textContent = percent(occupancyNow(agentToday(agentId)));
}

function decisionText(d) {
  return [d.kind, label(d.kind), d.queue, d.task_id, d.agent_id, d.explanation].filter(Boolean).join(" ").toLowerCase();
}

// The filter lists offer what the log holds (and keep a chosen value that scrolled out).
function fillFilter(id, values, name = String) {
  const select = document.getElementById(id);
  const chosen = select.value;
  const all = [...new Set([...values.filter(Boolean), chosen].filter(Boolean))].sort();
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join("\n") === all.join("\n")) return;
  select.replaceChildren(el("option", { value: "" }, "any"), ...all.map((v) => el("option", { value: v }, name(v))));
  select.value = chosen;
}

function renderDecisions() {
  const list = document.getElementById("decisions");
  fillFilter("decision-queue", board.decisions.map((d) => d.queue));
  fillFilter("decision-agent", board.decisions.map((d) => d.agent_id));
  fillFilter("decision-kind", board.decisions.map((d) => d.kind), label);
  const queue = document.getElementById("decision-queue").value;
  const agent = document.getElementById("decision-agent").value;
  const kind = document.getElementById("decision-kind").value;
  const words = document.getElementById("decision-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = board.decisions.filter((d) => (!queue || d.queue === queue) && (!agent || d.agent_id === agent) &&
    (!kind || d.kind === kind) && words.every((w) => decisionText(d).includes(w)));
  document.getElementById("decision-count").textContent = `(${shown.length} of ${board.decisions.length})`;
  list.replaceChildren(...shown.map((d) =>
    el("li", { dataset: { kind: d.kind, task: d.task_id || "" } },
      el("span", { class: "muted" }, clock(d.ts)), " ",
      el("span", { class: "badge kind" }, label(d.kind)), " ",
      el("span", { class: "mono" }, d.queue || ""), " ",
      el("span", { class: "mono muted", title: d.task_id || "" }, d.task_id ? `#${d.task_id.slice(0, 8)}` : ""),
      d.agent_id ? el("span", {}, ` → agent ${d.agent_id}`) : null,
      el("p", { class: "explanation" }, d.explanation || ""))));
  if (shown.length === 0) list.append(el("li", { class: "muted" }, board.decisions.length ? "None match." : "No decisions yet."));
}

// Returns why the change was refused, or "" when it was made (the bulk change names refusals).
async function forceState(agentId, state, reason, button) {
  if (button) button.disabled = true;
  try {
    const view = await api(`/api/supervisor/agents/${encodeURIComponent(agentId)}/state`,
      { token: board.session.token, method: "POST", body: { state, reason } });
    const entry = board.agents.get(agentId);
    if (entry && entry.view.state !== view.state) entry.since = Date.now() - (view.in_state_s || 0) * 1000;
    board.agents.set(agentId, { view, since: entry ? entry.since : Date.now() });
    renderAgent(agentId);
    notify("board-notice", "");
    return "";
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
    else notify("board-notice", `Agent ${agentId}: ${err.message}`, "error");
    return err.message;
  } finally {
    if (button) button.disabled = false;
  }
}

function picked() {
  return [...document.querySelectorAll("#agent-rows tr[data-agent]")].filter((tr) => tr.querySelector(".c-pick").checked);
}

function bulkCount() {
  const n = picked().length;
  document.getElementById("bulk-count").textContent = `${n} selected`;
  document.getElementById("bulk-apply").disabled = n === 0;
}

// One request per agent through the same supervisor state API; the refused ones are named.
async function bulkChange(event) {
  event.preventDefault();
  const state = document.getElementById("bulk-state").value;
  const reason = document.getElementById("bulk-reason").value.trim();
  const button = document.getElementById("bulk-apply");
  button.disabled = true;
  const refused = [];
  for (const tr of picked()) {
    if (!board.session) return;
    const why = await forceState(tr.dataset.agent, state, reason, null);
    if (why) refused.push(`${tr.dataset.agent} (${why})`);
    else tr.querySelector(".c-pick").checked = false;
  }
  if (refused.length) notify("board-notice", `Not changed: agent ${refused.join(", ")}`, "error");
  else notify("board-notice", `${label(state)}: done`, "ok");
  document.getElementById("select-all").checked = false;
  bulkCount();
}

// ---------------------------------------------------------------- wiring

function wire() {
  wireLogin(document.getElementById("login-form"), "supervisor", start);
  document.getElementById("btn-logout").addEventListener("click", async () => {
    try {
      await api("/api/logout", { token: board.session.token, method: "POST" });
    } catch {
      // signing out locally is what matters
    }
    signedOut("Signed out.");
  });
  document.getElementById("bulk").addEventListener("submit", bulkChange);
  document.getElementById("select-all").addEventListener("change", (e) => {
    for (const box of document.querySelectorAll("#agent-rows .c-pick")) box.checked = e.target.checked;
    bulkCount();
  });
  document.getElementById("decision-filter").addEventListener("input", renderDecisions);
  for (const id of ["decision-queue", "decision-agent", "decision-kind"]) {
    document.getElementById(id).addEventListener("change", renderDecisions);
  }
  wireToggle();
  setInterval(() => {
    for (const tr of document.querySelectorAll("#agent-rows tr[data-agent]")) tickAgent(tr.dataset.agent, tr);
    for (const tr of document.querySelectorAll("#queue-rows tr[data-queue]")) tickQueue(tr.dataset.queue, tr);
    refreshWallboard(); // the longest wait counts up: a threshold can be crossed between pushes
  }, 1000);
  renderDecisions();
  const session = loadSession("supervisor");
  if (session) start(session);
}

wire();
