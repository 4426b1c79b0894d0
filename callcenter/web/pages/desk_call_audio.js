// The desk's call audio line (docs/recording.md), under the call status:
//   - a badge when a supervisor is whispering to the agent or has barged in (and listening,
//     when the server is configured to say so: recording.yaml monitor_show_listen), from the
//     stream's {"type": "monitor"} messages;
//   - the call's recording: its state, "Record" where the policy is on_demand, and the PCI
//     "Pause recording" / "Resume recording" (GET/POST /api/contacts/{id}/recording); a
//     change made by someone else (a supervisor through the API, the IVR) arrives live as the
//     stream's {"type": "recording"} message, which carries the same body.
// desk.js hands every stream message over as a "desk:message" event; nothing else is shared.
// Text only through textContent (el()).

import { ApiError, api, el, loadSession } from "/pages/common.js";

const MONITOR_TEXT = {
  listen: (who) => `Supervisor ${who} is listening`,
  whisper: (who) => `Supervisor ${who} is whispering to you`,
  barge: (who) => `Supervisor ${who} has joined the call`,
};

// streamed: a {"type": "recording"} message came for this call, newer than an answer in flight
const audio = { contactId: null, recording: null, streamed: false };

function box() {
  let node = document.getElementById("call-audio");
  if (!node) {
    node = el("p", { id: "call-audio", class: "controls call-audio", hidden: true },
      el("span", { id: "monitor-status", class: "badge monitor", role: "status", hidden: true }),
      el("span", { id: "recording-status", class: "badge recording" }),
      el("button", { type: "button", id: "btn-record", hidden: true, onclick: () => act("start") }, "Record"),
      el("button", { type: "button", id: "btn-record-pause", hidden: true,
        onclick: () => act(audio.recording && audio.recording.paused ? "resume" : "pause") }, "Pause recording"),
      el("span", { id: "recording-error", class: "notice", role: "alert", hidden: true }));
    document.getElementById("call-status").closest("p").after(node);
  }
  return node;
}

function showMonitor(msg) {
  const badge = box().querySelector("#monitor-status");
  const on = Boolean(msg && msg.mode && msg.contact_id === audio.contactId && MONITOR_TEXT[msg.mode]);
  badge.textContent = on ? MONITOR_TEXT[msg.mode](msg.supervisor) : "";
  badge.dataset.mode = on ? msg.mode : "";
  badge.hidden = !on;
}

// rec: GET/POST /api/contacts/{id}/recording; null (or policy "never" and not recording): nothing shown
function showRecording(rec, error = "") {
  if (rec && !rec.recording && rec.policy === "never") rec = null;
  audio.recording = rec;
  const node = box();
  const status = node.querySelector("#recording-status");
  status.hidden = rec === null;
  status.textContent = !rec ? "" : !rec.recording ? "Not recorded" : rec.paused ? "Recording paused" : "Recording";
  status.dataset.recording = !rec ? "" : !rec.recording ? "no" : rec.paused ? "paused" : "yes";
  node.querySelector("#btn-record").hidden = !rec || rec.recording;
  const pause = node.querySelector("#btn-record-pause");
  pause.hidden = !rec || !rec.recording;
  pause.textContent = rec && rec.paused ? "Resume recording" : "Pause recording";
  const err = node.querySelector("#recording-error");
  err.textContent = error;
  err.hidden = !error;
}

async function act(action) {
  const session = loadSession("agent");
  if (!session || !audio.contactId) return;
  const path = `/api/contacts/${encodeURIComponent(audio.contactId)}/recording`;
  try {
    showRecording(await api(path, { token: session.token, method: "POST", body: { action } }));
  } catch (err) {
    showRecording(audio.recording, err.message);
  }
}

async function onCall(contactId) {
  audio.contactId = contactId;
  audio.streamed = false;
  box().hidden = false;
  showMonitor(null);
  const session = loadSession("agent");
  try {
    const rec = await api(`/api/contacts/${encodeURIComponent(contactId)}/recording`, { token: session.token });
    if (audio.contactId === contactId && !audio.streamed) showRecording(rec);
  } catch (err) {
    // 404: the call ended meanwhile (the line goes with the next message)
    showRecording(null, err instanceof ApiError && err.status === 404 ? "" : err.message);
  }
}

function offCall() {
  audio.contactId = null;
  showMonitor(null);
  showRecording(null);
  box().hidden = true;
}

function onMessage(msg) {
  const contact = msg.contact || null;
  switch (msg.type) {
    case "connected":
      if (contact && contact.channel === "voice") onCall(contact.contact_id);
      break;
    case "snapshot":
      if (contact && contact.channel === "voice" && contact.phase === "connected") onCall(contact.contact_id);
      else offCall();
      break;
    case "monitor":
      showMonitor(msg);
      break;
    case "recording":
      if (msg.contact_id && msg.contact_id === audio.contactId) {
        audio.streamed = true;
        showRecording(msg);
      }
      break;
    case "wrapup":
    case "transferred":
    case "offer_withdrawn":
      if (msg.contact_id === audio.contactId) offCall();
      break;
    default:
      break;
  }
}

document.addEventListener("desk:message", (e) => onMessage(e.detail || {}));
