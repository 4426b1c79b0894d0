// The desk's call controls beyond hold and blind transfer: Mute, and Consult (warm transfer)
// with Complete / Conference / Cancel. The server does the work (callcenter/channels/
// voice_consult.py, mute at the server for any phone); this script only sends the clicks and
// shows what the stream says ("mute" and "consult" messages). desk.js tells it about the
// call ("desk:call" after every phase change, "desk:stream" for each message) and lends it
// Desk.post (errors go to the desk's notice) and Desk.transferTarget (the picker's choice).
// Text is set with textContent only.

import { notify } from "./common.js";

const calls = {
  contactId: null,
  muted: false,
  consult: null, // { target, label, state: calling | talking | conference } while one runs
};
const CONNECTED = new Set(["connected", "on_hold"]);
const byId = (id) => document.getElementById(id);
const contactPath = (action) => `/api/contacts/${encodeURIComponent(calls.contactId)}/${action}`;

function connected() {
  const desk = window.Desk && window.Desk.call;
  return Boolean(desk && CONNECTED.has(desk.phase) && desk.contactId === calls.contactId);
}

// Enabled only when the server would accept the click now.
function render() {
  const live = connected();
  const c = calls.consult;
  byId("btn-mute").disabled = !live;
  byId("btn-mute").textContent = calls.muted ? "Unmute" : "Mute";
  byId("btn-mute").setAttribute("aria-pressed", calls.muted ? "true" : "false");
  byId("mute-status").hidden = !(live && calls.muted);
  byId("consult-submit").disabled = !live || c !== null;
  byId("consult").hidden = !(live && c);
  if (c) {
    // The customer is held by the consultation: Hold and a blind transfer wait until it is over.
    byId("btn-hold").disabled = true;
    byId("transfer-submit").disabled = true;
    const status = byId("consult-status");
    status.dataset.state = c.state;
    status.textContent = c.state === "calling" ? `Calling ${c.label}…`
      : c.state === "talking" ? `Talking to ${c.label} — the caller is on hold`
        : `Conference with the caller and ${c.label}`;
    byId("consult-complete").disabled = !["talking", "conference"].includes(c.state);
    byId("consult-complete").textContent = c.state === "conference" ? "Leave conference" : "Complete transfer";
    byId("consult-conference").disabled = c.state !== "talking";
    byId("consult-cancel").disabled = false;
    byId("consult-cancel").textContent = c.state === "conference" ? `Drop ${c.label}` : "Cancel";
  }
}

function onCall(detail) {
  if (detail.contactId !== calls.contactId) {
    calls.contactId = detail.contactId;
    calls.muted = false;
    calls.consult = null;
    if (detail.contactId && CONNECTED.has(detail.phase)) restore(detail.contactId);
  }
  render();
}

// A reload mid-call: the consultation and the mute as the server has them.
async function restore(contactId) {
  try {
    const r = await window.Desk.get(`/api/contacts/${encodeURIComponent(contactId)}/consult`);
    if (calls.contactId !== contactId) return;
    calls.muted = Boolean(r.muted);
    calls.consult = r.consult && r.consult.state !== "over" ? r.consult : null;
  } catch {
    return; // nothing to restore (the call ended meanwhile)
  }
  render();
}

function onStream(msg) {
  if (msg.contact_id !== calls.contactId) return;
  if (msg.type === "mute") {
    calls.muted = Boolean(msg.muted);
  } else if (msg.type === "consult") {
    if (msg.state === "over") {
      calls.consult = null;
      if (msg.reason) notify("desk-notice", `Consultation over: ${msg.reason}.`, "info");
    } else {
      calls.consult = { target: msg.target, label: msg.label, state: msg.state };
    }
  } else {
    return;
  }
  render();
}

async function consult() {
  const target = window.Desk.transferTarget();
  if (!target || target === "tel:") {
    notify("desk-notice", "Choose a queue or an agent, or type a number, to consult.", "error");
    return;
  }
  const r = await window.Desk.post(contactPath("consult"), { target });
  if (r && !calls.consult) calls.consult = { target: r.target, label: r.label, state: r.state };
  render();
}

function wire() {
  byId("btn-mute").addEventListener("click", async () => {
    const r = await window.Desk.post(contactPath("mute"), { muted: !calls.muted });
    if (r) calls.muted = r.muted;
    render();
  });
  byId("consult-submit").addEventListener("click", consult);
  byId("consult-complete").addEventListener("click", () => window.Desk.post(contactPath("consult/complete")));
  byId("consult-conference").addEventListener("click", () => window.Desk.post(contactPath("consult/conference")));
  byId("consult-cancel").addEventListener("click", () => window.Desk.post(contactPath("consult/cancel")));
  document.addEventListener("desk:call", (e) => onCall(e.detail || {}));
  document.addEventListener("desk:stream", (e) => onStream(e.detail || {}));
}

wire();
