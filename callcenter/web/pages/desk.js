// The agent desk: state, screen-pop, call controls and wrap-up, driven by the
// agent's WebSocket stream; actions go through the REST API. The server is the
// source of truth: the page only shows what the stream (or an API answer) says.
//
// An agent may hold several contacts at once (a call, emails, chats, faxes): the work
// list shows them all (GET /api/agent/contacts, fetched again on every contact message)
// with per-item Accept / Decline / End / Wrap-up. The call keeps its own panel (screen-pop,
// call controls, wrap-up form); any other channel's item opens the channel panel, drawn by
// that channel's script (desk_<channel>.js, loaded from /desk/channels.json), which
// registers itself with Desk.registerChannel(name, { render(item, el, api), onEvent(msg) }).

import {
  ApiError, LiveStream, api, clearSession, keepRenewed, duration, dateTime, el, label, loadSession, notify,
  setText, show, wireLogin,
} from "./common.js";

const TIER_BADGES = { vip: "VIP", gold: "Gold" }; // other tiers get no badge
const DRAFT_SAVE_MS = 300; // autosave of the wrap-up form after the agent stops typing this long
const CALLBACKS_REFRESH_MS = 15000; // the callback worklist is also fetched after every contact message

const desk = {
  session: null,
  stream: null,
  renewal: null, // stops the token renewal timer
  state: "offline",
  stateSince: Date.now(), // client clock: only differences are shown
  contactId: null,
  phase: "idle", // idle | ringing | connected | wrap_up | done | withdrawn | transferred
  onHold: false,
  waited: null, // { seconds, at } while the caller is still waiting (ringing)
  wrapDeadline: null, // client clock (ms) when wrap-up time runs out; null: no limit
  ringDeadline: null, // epoch ms when the offer goes back to routing (RONA), while ringing
  connectedAt: null, // epoch ms when the call was connected, for the call timer
  draftTimer: null,
  softphone: true, // false: no registered phone, so no call can reach this agent
  items: [], // the work list as last fetched: the agent's contacts, live then in wrap-up
  selected: null, // key of the work-list item shown in the channel panel
  listLoading: null, // the fetch in flight; listAgain: fetch once more after it
  listAgain: false,
  taskDraftTimer: null,
};

// Channel panels (desk_<channel>.js) register here; a channel without one gets a plain view.
const channelPanels = new Map();
window.Desk = {
  // Click-to-dial, also for other panels (the customer panel): { number } or { customer_id }.
  dial: (target) => dial(target),
  // For the call-controls script (desk_calls.js): POST with the desk's error notice, the
  // picker's choice, and the call as the desk sees it ("desk:call" events announce changes).
  post: (path, body) => call(path, body),
  get: (path) => api(path, { token: desk.session.token }),
  transferTarget: () => transferTarget(),
  get call() { return { contactId: desk.contactId, phase: desk.phase, onHold: desk.onHold }; },
  registerChannel(name, panel) {
    channelPanels.set(String(name), panel || {});
    if (selectedItem() && selectedItem().channel === name) renderChannelPanel();
  },
};

// ---------------------------------------------------------------- session

function start(session) {
  desk.session = session;
  show("login", false);
  show("desk", true);
  const who = document.getElementById("who");
  who.textContent = `Agent ${session.subject}`;
  who.hidden = false;
  desk.renewal = keepRenewed(session, () => signedOut("Your session has ended; please sign in again."));
  desk.stream = new LiveStream(session, {
    onMessage: onMessage,
    onStatus: (s) => {
      const link = document.getElementById("link");
      link.textContent = s;
      link.dataset.status = s;
    },
    onUnauthorized: () => signedOut("Your session has ended; please sign in again."),
  });
  desk.stream.start();
  loadToday();
}

function signedOut(message = "") {
  if (desk.renewal) desk.renewal();
  desk.renewal = null;
  if (desk.stream) desk.stream.stop();
  desk.stream = null;
  desk.session = null;
  clearSession();
  resetContact();
  desk.items = [];
  desk.selected = null;
  renderWorkList();
  show("desk", false);
  show("who", false);
  show("login", true);
  notify("login-error", message, "info");
  document.getElementById("login-username").focus();
}

async function call(path, body) {
  try {
    const answer = await api(path, { token: desk.session.token, method: "POST", body });
    const notice = document.getElementById("desk-notice");
    if (notice.dataset.kind === "error") notify("desk-notice", ""); // an earlier error is over
    return answer;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
    else notify("desk-notice", err instanceof ApiError ? err.message : "Cannot reach the server.", "error");
    return null;
  }
}

// ---------------------------------------------------------------- stream

// The channel a contact message is about: every contact message names it (null: gone).
function channelOf(msg) {
  if (msg.channel) return msg.channel;
  return msg.contact && msg.contact.channel ? msg.contact.channel : null;
}

function onMessage(msg) {
  document.dispatchEvent(new CustomEvent("desk:message", { detail: msg })); // add-ons: desk_call_audio.js
  const channel = channelOf(msg);
  document.dispatchEvent(new CustomEvent("desk:stream", { detail: msg })); // desk_calls.js: mute, consult
  if (msg.contact_id || msg.contact) refreshWorkList();
  if (channel && channel !== "voice") { // not the call: the work list and the channel's panel
    onTaskMessage(msg);
    return;
  }
  switch (msg.type) {
    case "snapshot":
      applyAgent(msg.agent);
      applySnapshotContact(msg.agent, msg.contact);
      refreshWorkList();
      break;
    case "agent_state":
      if (msg.agent_id === desk.session.subject) setState(msg.state, msg.reason, 0);
      break;
    case "agent_device":
      if (msg.agent_id === desk.session.subject) setPhone(msg.softphone);
      break;
    case "offer":
      onOffer(msg);
      break;
    case "offer_withdrawn":
      if (msg.contact_id === desk.contactId) {
        setPhase("withdrawn", "Offer withdrawn");
        notify("desk-notice", `The offer was withdrawn (${label(msg.reason)}).`, "info");
        show("controls", false);
      }
      break;
    case "connected":
      onConnected(msg.contact);
      break;
    case "hold":
      if (msg.contact_id === desk.contactId) setHold(msg.on_hold);
      break;
    case "transferred":
      if (msg.contact_id === desk.contactId) onTransferred(msg.target);
      break;
    case "wrapup":
      onWrapUp(msg.contact_id, msg.ended_by, msg.remaining_s, null, msg.dispositions);
      break;
    case "wrapup_done":
      onWrapUpDone(msg.contact_id, msg.timed_out);
      break;
    case "dialling":
      if (msg.contact && msg.contact.contact_id === desk.contactId) {
        setPhase("dialling", msg.contact.service === "outbound" ? `Calling ${msg.number}`
          : `Calling the customer back on ${msg.number} (attempt ${msg.attempt})`);
      }
      break;
    case "callback_result":
      if (msg.contact_id === desk.contactId && msg.result !== "answered") {
        setPhase("withdrawn", "Callback not answered");
        notify("desk-notice", `The customer did not answer the callback (${label(msg.result)}); ` +
          (msg.retry ? "it goes back to its place in the queue." : "no more attempts are left."), "info");
        show("controls", false);
      }
      break;
    default:
      break; // newer servers may send more; ignore what we do not know
  }
}

function applyAgent(agent) {
  if (!agent) return;
  if (agent.name) document.getElementById("who").textContent = `${agent.name} (${agent.agent_id})`;
  setState(agent.state, agent.reason, agent.in_state_s || 0);
  setPhone(agent.softphone !== false);
}

function setPhone(registered) {
  desk.softphone = registered;
  show("phone-warning", !registered && desk.state !== "offline");
}

function applySnapshotContact(agent, contact) {
  if (contact && contact.channel && contact.channel !== "voice") return; // the work list shows it
  if (agent && agent.wrap_up_contact_id) {
    if (contact && contact.contact_id === agent.wrap_up_contact_id && contact.ani !== undefined) {
      fillContact(contact);
    }
    const draft = agent.wrap_up || {};
    onWrapUp(agent.wrap_up_contact_id, null, draft.remaining_s, draft, agent.dispositions);
  } else if (contact && contact.contact_id && contact.phase !== "wrap_up") {
    fillContact(contact);
    if (contact.phase === "connected") onConnected(contact);
    else {
      setPhase("ringing", "Ringing");
      setRingDeadline(contact.ring_deadline);
    }
  }
}

// ---------------------------------------------------------------- state

function setState(state, reason, inStateSeconds) {
  desk.state = state;
  desk.stateSince = Date.now() - inStateSeconds * 1000;
  const badge = document.getElementById("state");
  badge.textContent = label(state);
  badge.dataset.state = state;
  document.getElementById("state-reason").textContent = reason ? `(${label(reason)})` : "";
  document.getElementById("btn-notready").disabled = state === "not_ready";
  setPhone(desk.softphone);
  enableButtons();
  tick();
}

// ---------------------------------------------------------------- contact

function resetContact() {
  desk.contactId = null;
  desk.transferredTo = null;
  desk.onHold = false;
  desk.waited = null;
  setPhase("idle", "");
  show("pop-body", false);
  show("pop-idle", true);
  show("controls", false);
  closeWrapUpForm();
}

// The wrap-up form belongs to one contact (data-contact-id); it is emptied whenever it
// is closed, so nothing typed for one contact can reach another.
function closeWrapUpForm() {
  clearTimeout(desk.draftTimer);
  desk.draftTimer = null;
  desk.wrapDeadline = null;
  const form = document.getElementById("wrapup-form");
  form.reset();
  delete form.dataset.contactId;
  document.getElementById("wrapup-countdown").textContent = "";
  document.getElementById("wrapup-saved").textContent = "";
  show("wrapup", false);
}

const ON_A_CALL = new Set(["ringing", "dialling", "connected", "on_hold"]);
const CONNECTED = new Set(["connected", "on_hold"]);

// Each button is enabled only when the server would accept it in the current phase.
function enableButtons() {
  document.getElementById("btn-available").disabled = desk.state === "available" || ON_A_CALL.has(desk.phase);
  const connected = CONNECTED.has(desk.phase);
  for (const id of ["btn-hold", "btn-hangup", "transfer-submit"]) document.getElementById(id).disabled = !connected;
  for (const key of document.querySelectorAll("#keypad button")) key.disabled = !connected;
  document.getElementById("wrapup-submit").disabled = desk.phase !== "wrap_up";
  document.dispatchEvent(new CustomEvent("desk:call", { detail: { contactId: desk.contactId, phase: desk.phase } }));
}

function setPhase(phase, text) {
  desk.phase = phase;
  if (phase !== "ringing") setRingDeadline(null);
  if (!CONNECTED.has(phase)) {
    desk.connectedAt = null;
    document.getElementById("keypad-sent").textContent = ""; // digits belong to one call
  }
  document.getElementById("pop").dataset.phase = phase;
  const badge = document.getElementById("pop-phase");
  badge.textContent = text;
  badge.hidden = !text;
  enableButtons();
  tick();
}

// The offer's RONA deadline (epoch seconds from the server); the countdown is drawn from it.
function setRingDeadline(epochSeconds) {
  const countdown = document.getElementById("ring-countdown");
  desk.ringDeadline = epochSeconds ? epochSeconds * 1000 : null;
  if (desk.ringDeadline) countdown.dataset.deadline = String(epochSeconds);
  else delete countdown.dataset.deadline;
  countdown.hidden = !desk.ringDeadline;
}

// The transfer picker: every queue, the other agents with their state when it was loaded
// (at each offer and connect; the server checks the target again when the agent transfers).
async function loadTransferTargets() {
  if (!desk.session) return;
  let targets;
  try {
    targets = await api("/api/agent/transfer-targets", { token: desk.session.token });
  } catch {
    return; // the picker keeps what it had; a transfer is still checked by the server
  }
  const select = document.getElementById("transfer-target");
  const chosen = select.value;
  document.getElementById("transfer-queues").replaceChildren(
    ...targets.queues.map((q) => el("option", { value: `queue:${q}` }, q)));
  document.getElementById("transfer-agents").replaceChildren(...targets.agents.map((a) =>
    el("option", { value: `agent:${a.agent_id}`, "data-state": a.state, "data-phone": a.phone ? "yes" : "no" },
      `${a.name || a.agent_id} (${a.agent_id}) — ${label(a.state)}${a.reason ? ` (${label(a.reason)})` : ""}` +
      (a.phone ? "" : " · no phone"))));
  document.getElementById("transfer-target").dataset.consultNumbers = targets.numbers && targets.numbers.consult
    ? "yes" : "no";
  select.value = chosen;
  if (select.value !== chosen) select.value = "";
}

function transferTarget() {
  const choice = document.getElementById("transfer-target").value;
  if (choice !== "number") return choice;
  return `tel:${document.getElementById("transfer-number").value.trim()}`;
}

// Facts every contact message carries (offer, connected, snapshot).
function fillContact(contact) {
  desk.contactId = contact.contact_id;
  show("pop-idle", false);
  show("pop-body", true);
  setText("pop-ani", contact.ani);
  setText("pop-service", contact.service);
  setText("pop-queue", contact.queue);
  setText("pop-id", contact.contact_id);
  if (contact.customer !== undefined) fillCustomer(contact.customer, contact.customer ? contact.customer.tier : null);
  if (contact.ivr) fillIvr(contact.ivr);
  if (contact.recent !== undefined) fillRecent(contact.recent); // a snapshot carries the whole pop
  if (contact.routing !== undefined) setWhy(contact.why_you, contact.routing);
  desk.waited = contact.connected_at ? null : { seconds: contact.waited_s || 0, at: Date.now() };
  setText("pop-waited", duration(contact.waited_s));
}

function fillCustomer(customer, tier) {
  setText("pop-name", customer && customer.name ? customer.name : "Unknown caller");
  const badge = document.getElementById("pop-tier");
  const text = TIER_BADGES[String(tier || "").toLowerCase()];
  badge.hidden = !text;
  badge.textContent = text || "";
  badge.dataset.tier = text ? String(tier).toLowerCase() : "";
}

// "Why you": the server's plain sentence, with routing's technical line under it.
function setWhy(sentence, routing) {
  setText("pop-why", sentence || routing);
  setText("pop-routing", sentence ? routing : "");
}

function fillIvr(ivr) {
  const path = Array.isArray(ivr.path) ? ivr.path : [];
  const titles = Array.isArray(ivr.titles) && ivr.titles.length === path.length ? ivr.titles : path;
  setText("pop-ivr-path", titles.length ? titles.join(" → ") : "");
  document.getElementById("pop-ivr-path").dataset.steps = path.join(" ");
  const data = document.getElementById("pop-ivr-data");
  data.replaceChildren();
  for (const [k, v] of Object.entries(ivr.data || {})) {
    data.append(el("dt", {}, label(k)), el("dd", {}, v === null ? "—" : String(v)));
  }
}

function fillRecent(recent) {
  const body = document.getElementById("pop-recent");
  body.replaceChildren();
  if (!recent || recent.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No earlier interactions")));
    return;
  }
  for (const r of recent) {
    body.append(
      el("tr", {},
        el("td", {}, dateTime(r.arrived_at)),
        el("td", {}, label(r.channel)),
        el("td", {}, r.queue || "—"),
        el("td", {}, r.agent_id || "—"),
        el("td", {}, [label(r.outcome), r.disposition ? ` · ${r.disposition}` : ""].join(""))),
    );
  }
}

function onOffer(msg) {
  resetContact();
  notify("desk-notice", "");
  fillContact({ ...msg.contact, customer: msg.customer, ivr: msg.ivr });
  fillCustomer(msg.customer, msg.tier);
  fillRecent(msg.recent);
  setWhy(msg.why_you, msg.routing);
  const callback = msg.contact && msg.contact.callback_number;
  const outbound = msg.contact && msg.contact.service === "outbound";
  setPhase("ringing", outbound ? `Call to ${callback} — answer on your phone, then we dial`
    : callback ? `Callback to ${callback} — answer on your phone, then we dial`
      : "Ringing — answer on your phone");
  setRingDeadline(msg.contact && msg.contact.ring_deadline);
  loadTransferTargets(); // fresh agent states for a transfer during this call
}

function onConnected(contact) {
  if (contact && contact.contact_id !== desk.contactId) fillContact(contact);
  else if (contact) {
    desk.waited = null;
    setText("pop-waited", duration(contact.waited_s));
  }
  setPhase("connected", "Connected");
  desk.connectedAt = contact && contact.connected_at ? contact.connected_at * 1000 : Date.now();
  setHold(Boolean(contact && contact.on_hold));
  loadTransferTargets();
  show("wrapup", false);
  show("controls", true);
}

function setHold(onHold) {
  desk.onHold = onHold;
  document.getElementById("btn-hold").textContent = onHold ? "Unhold" : "Hold";
  const status = document.getElementById("call-status");
  status.textContent = onHold ? "On hold" : "Connected";
  status.dataset.hold = onHold ? "yes" : "no";
  if (desk.phase === "connected" || desk.phase === "on_hold") setPhase(onHold ? "on_hold" : "connected",
    onHold ? "On hold" : "Connected");
}

// "queue:sales" → "the sales queue", "agent:1002" → "agent 1002", "sip:+4420…@host" → "+4420…"
function transferLabel(target) {
  const [kind, ...rest] = String(target).split(":");
  const value = rest.join(":");
  if (kind === "queue") return `the ${value} queue`;
  if (kind === "agent") return `agent ${value}`;
  return value.replace(/@.*$/, "") || String(target);
}

// The wrap-up of the agent's part follows (a "wrapup" message, ended by "transfer").
function onTransferred(target) {
  show("controls", false);
  desk.transferredTo = transferLabel(target);
  setPhase("transferred", `Transferred to ${desk.transferredTo}`);
}

// The choices come from the server (queues.yaml `dispositions` of the contact's queue).
function setDispositions(dispositions) {
  const select = document.getElementById("wrapup-disposition");
  select.replaceChildren(el("option", { value: "" }, "Choose…"),
    ...(dispositions || []).map((d) => el("option", { value: d }, label(d))));
}

function onWrapUp(contactId, endedBy, remainingS = null, draft = null, dispositions = []) {
  const form = document.getElementById("wrapup-form");
  if (form.dataset.contactId !== contactId) {
    closeWrapUpForm();
    setDispositions(dispositions);
    form.dataset.contactId = contactId;
    if (draft) { // a reload during wrap-up: what was saved comes back
      form.elements.disposition.value = draft.disposition || "";
      form.elements.notes.value = draft.notes || "";
    }
  }
  desk.wrapDeadline = remainingS === null || remainingS === undefined ? null : Date.now() + remainingS * 1000;
  if (contactId !== desk.contactId) {
    resetContact();
    desk.contactId = contactId;
    show("pop-idle", false);
    show("pop-body", true);
    setText("pop-id", contactId);
  }
  show("controls", false);
  const why = endedBy === "transfer" && desk.transferredTo ? `transferred to ${desk.transferredTo}`
    : endedBy ? `ended by ${endedBy}` : "";
  setPhase("wrap_up", why ? `Wrap-up (${why})` : "Wrap-up");
  show("wrapup", true);
  tick();
  document.getElementById("wrapup-disposition").focus();
}

// The agent's own figures since midnight, from the records (GET /api/agent/today); loaded
// on sign-in and after each wrap-up, when the records have a new contact.
async function loadToday() {
  if (!desk.session) return;
  let today;
  try {
    today = await api("/api/agent/today", { token: desk.session.token });
  } catch {
    return; // the card keeps what it had
  }
  setText("today-handled", today.handled);
  setText("today-aht", today.aht_s === null ? "—" : duration(today.aht_s));
  for (const state of ["available", "busy", "wrap_up", "not_ready"]) {
    setText(`today-${state}`, today.states ? duration(today.states[`${state}_s`]) : "—");
  }
}

function onWrapUpDone(contactId, timedOut) {
  const form = document.getElementById("wrapup-form");
  loadToday();
  if (form.dataset.contactId !== contactId) return;
  closeWrapUpForm();
  if (timedOut) {
    setPhase("done", "Wrap-up time ended");
    notify("desk-notice", `Wrap-up time ran out: what you typed was saved on interaction ${contactId}.`, "info");
  }
}

// Autosave: the server keeps the draft of this contact's wrap-up, and uses it if time runs out.
function scheduleDraftSave() {
  clearTimeout(desk.draftTimer);
  // In the last seconds of wrap-up time every keystroke is saved at once: the timeout takes the draft.
  const closing = desk.wrapDeadline !== null && desk.wrapDeadline - Date.now() < 2000;
  desk.draftTimer = setTimeout(saveDraft, closing ? 0 : DRAFT_SAVE_MS);
}

async function saveDraft() {
  desk.draftTimer = null;
  const form = document.getElementById("wrapup-form");
  const contactId = form.dataset.contactId;
  if (!contactId || !desk.session) return;
  const body = { contact_id: contactId, disposition: form.elements.disposition.value,
                 notes: form.elements.notes.value };
  try {
    await api("/api/agent/wrapup/draft", { token: desk.session.token, method: "PUT", body });
    if (form.dataset.contactId === contactId) document.getElementById("wrapup-saved").textContent = "Draft saved";
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
    // 409: the wrap-up has just ended; its wrapup_done message tells the agent.
  }
}

// ---------------------------------------------------------------- work list and channel panels

const ITEM_PHASES = { offered: "Offered", dialling: "Dialling", connected: "Connected", wrap_up: "Wrap-up" };

function itemKey(item) {
  return `${item.contact_id}|${item.phase === "wrap_up" ? "wrap_up" : "live"}`;
}

function selectedItem() {
  return desk.items.find((i) => itemKey(i) === desk.selected) || null;
}

// One fetch at a time; messages arriving meanwhile cost one more fetch, not one each.
function refreshWorkList() {
  if (!desk.session) return Promise.resolve();
  loadCallbacks();
  if (desk.listLoading) {
    desk.listAgain = true;
    return desk.listLoading;
  }
  desk.listLoading = (async () => {
    try {
      const answer = await api("/api/agent/contacts", { token: desk.session.token });
      desk.items = answer.contacts || [];
      renderWorkList();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
    } finally {
      desk.listLoading = null;
      if (desk.listAgain) {
        desk.listAgain = false;
        refreshWorkList();
      }
    }
  })();
  return desk.listLoading;
}

function itemTitle(item) {
  const customer = item.customer && item.customer.name ? item.customer.name : "";
  return customer || item.ani || "Unknown customer";
}

function renderWorkList() {
  const list = document.getElementById("worklist-items");
  show("worklist-empty", desk.items.length === 0);
  list.replaceChildren(...desk.items.map(workItem));
  if (desk.selected && !selectedItem()) { // the selected contact is over: its panel closes
    const wrapKey = desk.selected.replace(/\|live$/, "|wrap_up");
    desk.selected = desk.items.some((i) => itemKey(i) === wrapKey) ? wrapKey : null;
  }
  renderChannelPanel();
  tick();
}

function workItem(item) {
  const key = itemKey(item);
  const offered = item.phase === "offered";
  const select = () => {
    desk.selected = key;
    renderWorkList();
  };
  const timer = el("span", { class: "work-timer muted timer" });
  const deadline = offered ? item.offer_deadline : item.phase === "wrap_up" ? item.wrap_up_deadline : null;
  if (deadline) timer.dataset.deadline = String(deadline);
  if (offered) timer.dataset.kind = "offer";
  return el("li", {
    class: "work-item",
    "aria-current": key === desk.selected ? "true" : "false",
    dataset: { contactId: item.contact_id, channel: item.channel, phase: item.phase },
  },
  el("button", { type: "button", class: "work-select", onclick: select },
    el("span", { class: "work-channel" }, label(item.channel)),
    el("span", { class: "work-name" }, itemTitle(item)),
    " ",
    el("span", { class: "badge phase work-phase" }, ITEM_PHASES[item.phase] || label(item.phase))),
  timer,
  offered && item.desk_accept ? el("button", { type: "button", class: "primary work-accept",
    // A call: the phone is asked to answer itself (auto-answer headers; phones without it ring on)
    onclick: () => contactAction(item, "accept") }, item.channel === "voice" ? "Answer" : "Accept") : null,
  offered ? el("button", { type: "button", class: "work-decline",
    onclick: () => contactAction(item, "decline") }, "Decline") : null,
  item.phase === "connected" ? el("button", { type: "button", class: "danger work-end",
    onclick: () => contactAction(item, "end") }, item.channel === "voice" ? "Hang up" : "End") : null,
  item.phase === "wrap_up" && item.channel !== "voice" ? el("button", { type: "button", class: "work-wrapup",
    onclick: select }, "Wrap-up") : null);
}

async function contactAction(item, action, body) {
  const r = await call(`/api/contacts/${encodeURIComponent(item.contact_id)}/${action}`, body);
  if (r && action === "accept") desk.selected = `${item.contact_id}|live`;
  await refreshWorkList();
  return r;
}

// What a channel panel may use: the agent's authenticated API and this contact's actions.
function panelApi(item) {
  const token = () => (desk.session ? desk.session.token : null);
  const id = encodeURIComponent(item.contact_id);
  return {
    get: (path) => api(path, { token: token() }),
    post: (path, body) => api(path, { token: token(), method: "POST", body }),
    put: (path, body) => api(path, { token: token(), method: "PUT", body }),
    accept: () => contactAction(item, "accept"),
    decline: () => contactAction(item, "decline"),
    end: () => contactAction(item, "end"),
    transfer: (target) => contactAction(item, "transfer", { target }),
    refresh: refreshWorkList,
    contactUrl: (suffix = "") => `/api/contacts/${id}${suffix}`,
    el,
    label,
    notify: (text, kind = "info") => notify("desk-notice", text, kind),
  };
}

function renderChannelPanel() {
  const item = selectedItem();
  const panel = document.getElementById("channel-panel");
  if (!item || item.channel === "voice") {
    panel.hidden = true;
    delete panel.dataset.contactId;
    closeTaskWrapUp();
    return;
  }
  panel.hidden = false;
  panel.dataset.contactId = item.contact_id;
  panel.dataset.channel = item.channel;
  panel.dataset.phase = item.phase;
  setText("channel-panel-title", `${label(item.channel)} ${item.contact_id}`);
  setText("channel-panel-name", itemTitle(item));
  setText("channel-panel-phase", ITEM_PHASES[item.phase] || label(item.phase));
  document.getElementById("channel-panel-why").textContent = item.why_you || "";
  const body = document.getElementById("channel-panel-body");
  body.replaceChildren();
  const channel = channelPanels.get(item.channel);
  try {
    if (channel && typeof channel.render === "function") channel.render(item, body, panelApi(item));
    else body.append(el("p", { class: "muted" }, `No panel for ${label(item.channel)} contacts on this desk.`));
  } catch (err) {
    body.replaceChildren(el("p", { class: "notice", "data-kind": "error" },
      `The ${label(item.channel)} panel failed: ${err && err.message ? err.message : err}`));
  }
  if (item.phase === "wrap_up") openTaskWrapUp(item);
  else closeTaskWrapUp();
}

// The wrap-up form of the selected non-call contact; like the call's, bound to one contact.
function openTaskWrapUp(item) {
  const form = document.getElementById("task-wrapup-form");
  if (form.dataset.contactId !== item.contact_id) {
    closeTaskWrapUp();
    form.dataset.contactId = item.contact_id;
    document.getElementById("task-wrapup-disposition").replaceChildren(el("option", { value: "" }, "Choose…"),
      ...(item.dispositions || []).map((d) => el("option", { value: d }, label(d))));
    const draft = item.wrap_up || {};
    form.elements.disposition.value = draft.disposition || "";
    form.elements.notes.value = draft.notes || "";
  }
  form.hidden = false;
}

function closeTaskWrapUp() {
  clearTimeout(desk.taskDraftTimer);
  desk.taskDraftTimer = null;
  const form = document.getElementById("task-wrapup-form");
  form.reset();
  delete form.dataset.contactId;
  document.getElementById("task-wrapup-saved").textContent = "";
  form.hidden = true;
}

async function saveTaskDraft() {
  desk.taskDraftTimer = null;
  const form = document.getElementById("task-wrapup-form");
  const contactId = form.dataset.contactId;
  if (!contactId || !desk.session) return;
  const body = { disposition: form.elements.disposition.value, notes: form.elements.notes.value };
  try {
    await api(`/api/contacts/${encodeURIComponent(contactId)}/wrapup/draft`,
      { token: desk.session.token, method: "PUT", body });
    if (form.dataset.contactId === contactId) document.getElementById("task-wrapup-saved").textContent = "Draft saved";
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signedOut("Your session has ended; please sign in again.");
  }
}

function onTaskMessage(msg) {
  const channel = channelPanels.get(channelOf(msg));
  if (channel && typeof channel.onEvent === "function") {
    try {
      channel.onEvent(msg);
    } catch (err) {
      console.warn("channel panel onEvent failed", err);
    }
  }
  if (msg.type === "offer") {
    notify("desk-notice", `New ${label(channelOf(msg))} contact offered.`, "info");
    if (!selectedItem()) desk.selected = `${msg.contact.contact_id}|live`; // shown once the list has it
  }
}

// The callback worklist: requests waiting in the agent's queues; Take offers one to this agent
// now (their phone rings, then the customer is dialled) and makes them Available.
async function loadCallbacks() {
  if (!desk.session) return;
  let answer;
  try {
    answer = await api("/api/agent/callbacks", { token: desk.session.token });
  } catch {
    return; // the list keeps what it had
  }
  const items = answer.callbacks || [];
  show("callbacks-empty", items.length === 0);
  document.getElementById("callback-items").replaceChildren(...items.map((cb) => el("li", {
    class: "work-item callback-item", dataset: { contactId: cb.contact_id } },
  el("span", { class: "work-select" },
    el("span", { class: "work-name" }, cb.customer || cb.number || "Unknown customer"),
    " ", el("span", { class: "muted" }, `${cb.number || ""} · ${cb.queue} · waiting ${duration(cb.waited_s)}`
      + (cb.attempts ? ` · ${cb.attempts} attempt(s)` : ""))),
  el("button", { type: "button", class: "primary callback-take", onclick: async () => {
    const r = await call(`/api/agent/callbacks/${encodeURIComponent(cb.contact_id)}/take`);
    if (r) notify("desk-notice", "Callback taken: answer your phone, then the customer is dialled.", "ok");
    loadCallbacks();
  } }, "Take"))));
}

// Click-to-dial: the agent's phone rings first; once they answer, the server dials the customer.
async function dial(target) {
  const r = await call("/api/agent/dial", target);
  if (r) notify("desk-notice", `Answer your phone: then ${r.number} is dialled.`, "ok");
  return r;
}

// Channel panels: the scripts of the channels the server runs (each registers with window.Desk).
async function loadChannelScripts() {
  let answer;
  try {
    answer = await api("/desk/channels.json");
  } catch {
    return; // the desk works without them: items show a plain view
  }
  for (const channel of answer.channels || []) {
    if (document.querySelector(`script[data-channel="${CSS.escape(channel.name)}"]`)) continue;
    document.head.append(el("script", { src: channel.script, dataset: { channel: channel.name } }));
  }
}

// ---------------------------------------------------------------- timers

function tick() {
  document.getElementById("state-time").textContent = duration((Date.now() - desk.stateSince) / 1000);
  if (desk.waited) setText("pop-waited", duration(desk.waited.seconds + (Date.now() - desk.waited.at) / 1000));
  const ring = document.getElementById("ring-countdown");
  const ringLeft = desk.ringDeadline === null ? null : Math.max(0, Math.ceil((desk.ringDeadline - Date.now()) / 1000));
  ring.textContent = ringLeft === null ? "" : `Answer within ${ringLeft} s`;
  if (ringLeft === null) delete ring.dataset.seconds;
  else ring.dataset.seconds = String(ringLeft);
  document.getElementById("call-time").textContent = desk.connectedAt === null ? ""
    : `On the call ${duration((Date.now() - desk.connectedAt) / 1000)}`;
  const countdown = document.getElementById("wrapup-countdown");
  countdown.textContent = desk.wrapDeadline === null ? ""
    : `Wrap-up ends in ${duration((desk.wrapDeadline - Date.now()) / 1000)}`;
  for (const t of document.querySelectorAll(".work-timer[data-deadline]")) {
    const left = Number(t.dataset.deadline) - Date.now() / 1000;
    t.textContent = t.dataset.kind === "offer" ? `Accept within ${Math.max(0, Math.ceil(left))} s`
      : `Wrap-up ends in ${duration(left)}`;
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  wireLogin(document.getElementById("login-form"), "agent", start);

  document.getElementById("btn-available").addEventListener("click", async () => {
    const r = await call("/api/agent/state", { state: "available" });
    if (r) setState(r.state, r.reason, r.in_state_s || 0);
  });
  document.getElementById("btn-notready").addEventListener("click", async () => {
    const reason = document.getElementById("notready-reason").value;
    const r = await call("/api/agent/state", { state: "not_ready", reason });
    if (r) setState(r.state, r.reason, r.in_state_s || 0);
  });
  document.getElementById("btn-logout").addEventListener("click", async () => {
    const r = await call("/api/logout");
    if (r) signedOut("Signed out.");
  });
  document.getElementById("btn-hold").addEventListener("click", async () => {
    const r = await call("/api/agent/hold", { on_hold: !desk.onHold });
    if (r) setHold(r.on_hold);
  });
  document.getElementById("btn-hangup").addEventListener("click", () => call("/api/agent/hangup"));
  // Each key is sent as it is pressed (an IVR at the far end listens digit by digit), one
  // request after the other so quick presses arrive in the order they were made.
  let keys = Promise.resolve();
  document.getElementById("keypad").addEventListener("click", (e) => {
    const digit = e.target instanceof HTMLButtonElement ? e.target.dataset.digit : undefined;
    if (!digit) return;
    keys = keys.then(async () => {
      const r = await call("/api/agent/dtmf", { digits: digit });
      if (r) document.getElementById("keypad-sent").textContent += digit;
    });
  });
  document.getElementById("transfer-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await call("/api/agent/transfer", { target: transferTarget() });
    if (r) {
      e.target.reset();
      show("transfer-number-label", false);
    }
  });
  document.getElementById("transfer-target").addEventListener("change", (e) => {
    const number = e.target.value === "number";
    show("transfer-number-label", number);
    document.getElementById("transfer-number").required = number;
  });
  document.getElementById("wrapup-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const data = new FormData(form);
    const disposition = String(data.get("disposition"));
    const contactId = form.dataset.contactId;
    const r = await call("/api/agent/wrapup", { disposition, notes: String(data.get("notes") || ""),
                                                contact_id: contactId });
    if (!r) return;
    closeWrapUpForm();
    setPhase("done", `Done · ${label(disposition)}`);
    notify("desk-notice", "Wrap-up saved.", "ok");
  });

  const wrapForm = document.getElementById("wrapup-form");
  wrapForm.addEventListener("input", scheduleDraftSave);
  wrapForm.addEventListener("change", scheduleDraftSave);

  const taskForm = document.getElementById("task-wrapup-form");
  const scheduleTaskDraft = () => {
    clearTimeout(desk.taskDraftTimer);
    desk.taskDraftTimer = setTimeout(saveTaskDraft, DRAFT_SAVE_MS);
  };
  taskForm.addEventListener("input", scheduleTaskDraft);
  taskForm.addEventListener("change", scheduleTaskDraft);
  taskForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const contactId = taskForm.dataset.contactId;
    if (!contactId) return;
    clearTimeout(desk.taskDraftTimer);
    const body = { disposition: taskForm.elements.disposition.value, notes: taskForm.elements.notes.value };
    const r = await call(`/api/contacts/${encodeURIComponent(contactId)}/wrapup`, body);
    if (!r) return;
    closeTaskWrapUp();
    notify("desk-notice", "Wrap-up saved.", "ok");
    await refreshWorkList();
  });
  loadChannelScripts();
  document.getElementById("callbacks-refresh").addEventListener("click", loadCallbacks);
  document.getElementById("dial-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await dial({ number: document.getElementById("dial-number").value.trim() })) e.target.reset();
  });
  setInterval(loadCallbacks, CALLBACKS_REFRESH_MS);

  setInterval(tick, 1000);
  resetContact();
  const session = loadSession("agent");
  if (session) start(session);
}

wire();
