// Call audio on the supervisor board (docs/recording.md): a "Calls in progress" card with
// Listen / Whisper / Barge / Stop on each connected call, and playback of a call's recordings
// in the interaction record view. A separate module so the board's own scripts stay as they are.
//
// Monitoring: POST /api/monitor makes the server call the supervisor's registered phone
// (agents.yaml supervisors: sip): a SIP phone, or this page's browser phone (desk_phone.js,
// which then answers by itself); once it answers, the mode buttons switch the mix
// (PUT /api/monitor/{id}) and Stop ends it (DELETE). The card is refreshed from
// GET /api/monitor/calls (connected calls with their sessions) every POLL_MS while the board
// is shown, and at once after each action; the board's own snapshot is left to its stream.
//
// Playback: an <audio> element cannot send the bearer token, so the page asks for a signed,
// short-lived link (POST /api/recordings/{id}/link) and the browser then fetches it with HTTP
// range requests (206), which is what lets the player seek. An expired link is renewed once
// when the player fails. Every value goes into textContent (el()).

import { ApiError, api, duration, el, label, loadSession, notify } from "./common.js";

const POLL_MS = 1500;
const MODES = [["listen", "Listen"], ["whisper", "Whisper"], ["barge", "Barge"]];
const DOING = { listen: "Listening", whisper: "Whispering to the agent", barge: "Barged in (three-way)" };

const state = { calls: [], sessions: [], timer: null, busy: false };

function session() {
  const s = loadSession("supervisor");
  const board = document.getElementById("board");
  return s && board && !board.hidden ? s : null;
}

function card() {
  let box = document.getElementById("live-calls");
  if (box) return box;
  box = el("section", { id: "live-calls", class: "card", "aria-labelledby": "live-calls-title" },
    el("h2", { id: "live-calls-title" }, "Calls in progress"),
    el("p", { class: "muted" }, "Listen: you hear both sides, nobody hears you. Whisper: only the agent hears you. " +
      "Barge: all three talk. Your phone rings first (your SIP phone, or the browser phone above)."),
    el("p", { id: "monitor-notice", class: "notice", role: "status", hidden: true }),
    el("table", { class: "grid", id: "live-call-table" },
      el("thead", {}, el("tr", {}, ...["Caller", "Queue", "Agent", "Talking", "Monitoring", ""].map((h) => el("th", {}, h)))),
      el("tbody", { id: "live-call-rows" })),
    el("p", { id: "live-calls-empty", class: "muted" }, "No connected calls."));
  const board = document.getElementById("board");
  const agents = document.getElementById("agents-title");
  const after = agents ? agents.closest("section") : null;
  board.insertBefore(box, after ? after.nextSibling : board.firstChild);
  return box;
}

async function refresh() {
  const s = session();
  if (!s) return;
  card();
  try {
    const calls = await api("/api/monitor/calls", { token: s.token });
    const before = new Map(state.sessions.filter((m) => m.supervisor === s.subject).map((m) => [m.id, m]));
    state.calls = calls;
    state.sessions = calls.map((c) => c.monitor).filter(Boolean);
    for (const [id, m] of before) {
      if (!state.sessions.some((x) => x.id === id)) gone(m);
    }
    render(s);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) notify("monitor-notice", `Calls: ${err.message}`, "error");
  }
}

// One of ours that is no longer listed: ended by the call, the phone, or never answered.
function gone(m) {
  const why = m.state === "calling" ? "your phone did not answer (or is not registered)" : "the session has ended";
  notify("monitor-notice", `Monitoring of the call with agent ${m.agent_id}: ${why}.`, m.state === "calling" ? "error" : "info");
}

// Rows are replaced only when what they show changes (the talking time is updated in
// place), so a button being clicked is not swapped under the pointer.
function render(s) {
  card();
  const tbody = document.getElementById("live-call-rows");
  const rows = state.calls.map((c) => {
    const fresh = callRow(s, c);
    const old = tbody.querySelector(`tr[data-contact="${CSS.escape(c.contact_id)}"]`);
    if (old && old.dataset.sig === fresh.dataset.sig) {
      old.querySelector(".c-talking").textContent = fresh.querySelector(".c-talking").textContent;
      return old;
    }
    return fresh;
  });
  tbody.replaceChildren(...rows);
  document.getElementById("live-calls-empty").hidden = rows.length > 0;
}

function callRow(s, c) {
  const m = c.monitor;
  const mine = m && m.supervisor === s.subject;
  const talking = c.connected_at ? duration(Date.now() / 1000 - c.connected_at) : "—";
  let status = "—";
  if (m && !mine) status = `${label(m.mode)} by ${m.supervisor}`;
  else if (m && m.state === "calling") status = `Calling your phone (${label(m.mode)})…`;
  else if (m) status = DOING[m.mode] || m.mode;
  const buttons = MODES.map(([mode, name]) => el("button", {
    type: "button", class: `c-${mode}`, "aria-pressed": String(Boolean(mine && m.mode === mode)),
    disabled: Boolean(m && !mine) || state.busy,
    onclick: () => (mine ? switchMode(s, m, mode) : startMonitor(s, c, mode)),
  }, name));
  const stop = el("button", { type: "button", class: "c-stop", disabled: !mine || state.busy,
    onclick: () => stopMonitor(s, m) }, "Stop");
  const sig = JSON.stringify([c.ani, c.queue, c.agent_id, m, state.busy]);
  return el("tr", { dataset: { contact: c.contact_id, mode: mine ? m.mode : "", monitor: mine ? m.state : "", sig } },
    el("td", { class: "mono" }, c.ani || "anonymous"), el("td", {}, c.queue || "—"), el("td", {}, c.agent_id),
    el("td", { class: "num c-talking" }, talking), el("td", { class: "c-status" }, status),
    el("td", {}, el("div", { class: "controls" }, ...buttons, stop)));
}

async function act(s, path, method, body, done) {
  state.busy = true;
  try {
    await api(path, { token: s.token, method, body });
    notify("monitor-notice", done, "ok");
  } catch (err) {
    notify("monitor-notice", err.message, "error");
  } finally {
    state.busy = false;
    await refresh();
  }
}

function startMonitor(s, c, mode) {
  return act(s, "/api/monitor", "POST", { contact_id: c.contact_id, mode },
    `Calling your phone to ${mode} on agent ${c.agent_id}'s call.`);
}

function switchMode(s, m, mode) {
  return act(s, `/api/monitor/${encodeURIComponent(m.id)}`, "PUT", { mode }, `${DOING[mode]}.`);
}

function stopMonitor(s, m) {
  return act(s, `/api/monitor/${encodeURIComponent(m.id)}`, "DELETE", undefined, "Monitoring stopped.");
}

async function poll() {
  await refresh();
  state.timer = setTimeout(poll, POLL_MS);
}

// ---------------------------------------------------------------- playback

function recordingsBox() {
  let box = document.getElementById("record-recordings");
  if (!box) {
    box = el("section", { id: "record-recordings", class: "recordings", "aria-labelledby": "record-recordings-title" },
      el("h4", { id: "record-recordings-title" }, "Recordings"), el("ul", { class: "recording-list" }));
    document.getElementById("record-timeline").after(box);
  }
  return box;
}

function spans(list) {
  return (list || []).map(([a, b]) => `${a.toFixed(1)}–${b.toFixed(1)} s`).join(", ");
}

async function link(att) {
  const s = loadSession("supervisor");
  return api(`/api/recordings/${encodeURIComponent(att.id)}/link`, { token: s.token, method: "POST" });
}

function player(att) {
  const audio = el("audio", { controls: true, preload: "metadata", class: "recording-player", dataset: { recording: att.id } });
  const note = el("p", { class: "notice", role: "status", hidden: true });
  let renewed = false;
  const load = async () => {
    try {
      audio.src = (await link(att)).url;
      note.hidden = true;
    } catch (err) {
      fail(note, err.message);
    }
  };
  audio.addEventListener("error", async () => {
    if (renewed) {
      fail(note, "This recording cannot be played (expired link, or purged).");
      return;
    }
    renewed = true; // a link lives a few minutes: fetch a fresh one once and carry on where it was
    const at = audio.currentTime;
    await load();
    audio.currentTime = at;
  });
  load();
  const facts = [`${duration(att.duration_s)}`, `${Math.round(att.size / 1024)} KB ${att.format}`,
    "customer left, agent right"];
  if (att.paused && att.paused.length) facts.push(`paused (silent): ${spans(att.paused)}`);
  if (att.hold && att.hold.length) facts.push(`on hold: ${spans(att.hold)}`);
  return el("li", { dataset: { recording: att.id } }, audio, el("p", { class: "muted" }, facts.join(" · ")), note);
}

function fail(node, text) {
  node.textContent = text;
  node.dataset.kind = "error";
  node.hidden = false;
}

function showRecordings(found) {
  const recs = ((found && found.record && found.record.attachments) || []).filter((a) => a.kind === "call_recording");
  const box = recordingsBox();
  box.hidden = recs.length === 0;
  box.querySelector(".recording-list").replaceChildren(...recs.map(player));
}

document.addEventListener("supervisor:record", (e) => showRecordings(e.detail));
poll();
