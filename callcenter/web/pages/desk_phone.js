// The desk's browser phone (docs/webrtc.md): a WebRTC softphone next to the work list.
// The supervisor page loads it too (docs/recording.md): there it is the phone monitoring
// rings (listen/whisper/barge), with Answer, Mute and Hang up but no call controls (HOSTS).
//
// Signalling is our own small JSON protocol on /api/phone/ws (no SIP library in the
// page): the page offers once when the agent picks "Browser phone"; the server answers
// (aiortc) and keeps the connection up between calls, and registers the agent's line once
// audio can flow. Calls ring here (the desk shows the screen-pop as for any phone);
// Answer/Decline/Hang up go over the socket; hold, transfer and the keypad use the same
// CTI endpoints as the desk (/api/agent/hold, /transfer, /dtmf), which act on the
// caller's leg. Mute stops sending the microphone. desk.js is not touched: the panel
// starts when #desk is shown (signed in) and stops when it is hidden (signed out).
//
// Caller-controlled text only ever goes through textContent (el()).

import { ApiError, api, el, loadSession } from "/pages/common.js";

// The page it serves: the desk (an agent's line, with the CTI controls) or the supervisor
// board (a supervisor's line for monitor calls). The mode key is per login (sessionStorage).
const HOSTS = {
  desk: { role: "agent", modeKey: "callcenter.phone.mode", cti: true, anchor: () => $("worklist") },
  board: { role: "supervisor", modeKey: "callcenter.phone.mode.supervisor", cti: false,
    anchor: () => $("board").querySelector("section.card") },
};
const HOST_ID = Object.keys(HOSTS).find((id) => document.getElementById(id)) || "desk";
const HOST = HOSTS[HOST_ID];
const MODE_KEY = HOST.modeKey; // "sip" | "browser"
const WS_PROTOCOL = "callcenter.bearer";
const PREFERRED = ["audio/PCMU", "audio/PCMA", "audio/opus"]; // G.711 first: no transcoding

const phone = {
  state: "off", // off | connecting | registered | unregistered | ringing | in_call
  ws: null,
  pc: null,
  stream: null,
  sender: null,
  muted: false,
  onHold: false,
  incoming: null,
  meter: null,
  audio: null,
  lastStats: null,
  statsWaiters: [],
};
// For tests and the curious: the phone's state and its RTP statistics.
window.DeskPhone = {
  get state() {
    return phone.state;
  },
  serverStats,
  async inboundAudio() {
    if (!phone.pc) return null;
    const report = await phone.pc.getStats();
    let found = null;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") found = s;
    });
    return found && { packetsReceived: found.packetsReceived, totalAudioEnergy: found.totalAudioEnergy || 0,
      audioLevel: found.audioLevel || 0 };
  },
};

function token() {
  const s = loadSession(HOST.role);
  return s ? s.token : null;
}

// ---------------------------------------------------------------- panel

function $(id) {
  return document.getElementById(id);
}

function buildPanel() {
  const keys = "123456789*0#".split("").map((k) => el("button", { type: "button", class: "key", "data-key": k }, k));
  const panel = el("section", { id: "phone-panel", class: "card phone-panel", "aria-labelledby": "phone-title" },
    el("h2", { id: "phone-title" }, "Phone"),
    el("div", { class: "phone-mode", role: "radiogroup", "aria-label": "Phone for this login" },
      el("label", {}, el("input", { type: "radio", name: "phone-mode", value: "sip", id: "phone-mode-sip" }), " SIP phone"),
      el("label", {}, el("input", { type: "radio", name: "phone-mode", value: "browser", id: "phone-mode-browser" }),
        " Browser phone")),
    el("div", { class: "phone-status" },
      el("span", { id: "phone-state", class: "badge", "data-state": "off" }, "SIP phone"),
      el("span", { id: "phone-detail", class: "muted" }, "")),
    el("div", { id: "phone-browser", class: "phone-browser", hidden: "" },
      el("label", {}, "Microphone ", el("select", { id: "phone-device", "aria-label": "Microphone" })),
      el("span", { class: "caption" }, "Mic"),
      el("meter", { id: "phone-mic", min: "0", max: "1", value: "0", "aria-label": "Microphone level" }),
      el("div", { id: "phone-ring", class: "phone-ring", hidden: "" },
        el("span", { id: "phone-caller", class: "customer-name" }),
        el("button", { id: "phone-answer", type: "button", class: "primary" }, "Answer"),
        el("button", { id: "phone-decline", type: "button" }, "Decline")),
      el("div", { id: "phone-call", class: "phone-call", hidden: "" },
        el("button", { id: "phone-mute", type: "button", "aria-pressed": "false" }, "Mute"),
        ...(HOST.cti ? [el("button", { id: "phone-hold", type: "button", "aria-pressed": "false" }, "Hold")] : []),
        el("button", { id: "phone-hangup", type: "button", class: "danger" }, "Hang up"),
        ...(HOST.cti ? [el("form", { id: "phone-transfer", class: "phone-transfer" },
          el("input", { id: "phone-transfer-target", placeholder: "queue:sales, agent:1002 or a number",
            "aria-label": "Transfer to" }),
          el("button", { type: "submit" }, "Transfer")),
        el("div", { id: "phone-keypad", class: "keypad", "aria-label": "Keypad" }, ...keys)] : [])),
      el("p", { id: "phone-notice", class: "notice", role: "status", hidden: "" })));
  const anchor = HOST.anchor();
  anchor.parentNode.insertBefore(panel, anchor);
  $("phone-mode-sip").addEventListener("change", () => setMode("sip"));
  $("phone-mode-browser").addEventListener("change", () => setMode("browser"));
  $("phone-answer").addEventListener("click", () => send({ type: "answer_call" }));
  $("phone-decline").addEventListener("click", () => send({ type: "decline" }));
  $("phone-hangup").addEventListener("click", () => send({ type: "hangup" }));
  $("phone-mute").addEventListener("click", () => setMuted(!phone.muted));
  $("phone-device").addEventListener("change", () => switchDevice($("phone-device").value));
  if (!HOST.cti) return; // the supervisor's monitor calls: hold, transfer and keypad do not apply
  $("phone-hold").addEventListener("click", toggleHold);
  $("phone-transfer").addEventListener("submit", (e) => {
    e.preventDefault();
    const target = $("phone-transfer-target").value.trim();
    if (target) cti("/api/agent/transfer", { target });
  });
  $("phone-keypad").addEventListener("click", (e) => {
    const key = e.target.dataset && e.target.dataset.key;
    if (key) cti("/api/agent/dtmf", { digits: key });
  });
}

function notice(text, kind = "info") {
  const p = $("phone-notice");
  if (!p) return;
  p.textContent = text;
  p.dataset.kind = kind;
  p.hidden = !text;
}

function setState(state, detail = "") {
  phone.state = state;
  const badge = $("phone-state");
  const names = { off: "SIP phone", connecting: "Connecting…", registered: "Registered", unregistered: "Unregistered",
    ringing: "Ringing", in_call: phone.onHold ? "On hold" : "In call" };
  badge.textContent = names[state] || state;
  badge.dataset.state = state;
  $("phone-detail").textContent = detail;
  $("phone-ring").hidden = state !== "ringing";
  $("phone-call").hidden = state !== "in_call";
  document.dispatchEvent(new CustomEvent("desk:phone", { detail: { state } }));
}

async function cti(path, body) {
  try {
    return await api(path, { token: token(), method: "POST", body });
  } catch (err) {
    notice(err instanceof ApiError ? err.message : "Cannot reach the server.", "error");
    return null;
  }
}

async function toggleHold() {
  const r = await cti("/api/agent/hold", { on_hold: !phone.onHold });
  if (r) {
    phone.onHold = Boolean(r.on_hold);
    $("phone-hold").setAttribute("aria-pressed", String(phone.onHold));
    $("phone-hold").textContent = phone.onHold ? "Resume" : "Hold";
    setState(phone.state);
  }
}

function setMuted(on) {
  phone.muted = on;
  if (phone.stream) phone.stream.getAudioTracks().forEach((t) => (t.enabled = !on));
  $("phone-mute").setAttribute("aria-pressed", String(on));
  $("phone-mute").textContent = on ? "Unmute" : "Mute";
}

// ---------------------------------------------------------------- mode

function setMode(mode) {
  sessionStorage.setItem(MODE_KEY, mode);
  $("phone-mode-" + mode).checked = true;
  $("phone-browser").hidden = mode !== "browser";
  if (mode === "browser") startBrowserPhone();
  else stopBrowserPhone();
}

async function startBrowserPhone() {
  if (phone.ws) return;
  setState("connecting");
  notice("");
  try {
    const config = await api("/api/phone/config", { token: token() });
    phone.stream = await navigator.mediaDevices.getUserMedia({ audio: deviceConstraint($("phone-device").value) });
    await listDevices();
    startMeter(phone.stream);
    const pc = new RTCPeerConnection({ iceServers: config.ice_servers || [] });
    phone.pc = pc;
    const track = phone.stream.getAudioTracks()[0];
    const transceiver = pc.addTransceiver(track, { direction: "sendrecv", streams: [phone.stream] });
    phone.sender = transceiver.sender;
    preferG711(transceiver);
    pc.ontrack = (e) => {
      if (!phone.audio) {
        phone.audio = el("audio", { id: "phone-audio", autoplay: "" });
        $("phone-panel").appendChild(phone.audio);
      }
      phone.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") unregistered("media connection failed");
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    openSocket(pc.localDescription.sdp);
  } catch (err) {
    stopBrowserPhone();
    setState("unregistered", String(err && err.message ? err.message : err));
    notice("The browser phone could not start: " + (err && err.message ? err.message : err), "error");
  }
}

function preferG711(transceiver) {
  if (!transceiver.setCodecPreferences || !RTCRtpReceiver.getCapabilities) return;
  const codecs = RTCRtpReceiver.getCapabilities("audio").codecs;
  const rank = (c) => (PREFERRED.includes(c.mimeType) ? PREFERRED.indexOf(c.mimeType) : PREFERRED.length);
  transceiver.setCodecPreferences([...codecs].sort((a, b) => rank(a) - rank(b)));
}

function gathered(pc) {
  // No trickle: the server's aiortc takes one complete offer.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 5000); // a TURN server that never answers must not block the phone
  });
}

function openSocket(offerSdp) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:"; // WSS whenever the desk is on HTTPS
  const ws = new WebSocket(`${scheme}//${location.host}/api/phone/ws`, [WS_PROTOCOL, token()]);
  phone.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "offer", sdp: offerSdp }));
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => {
    if (phone.ws !== ws) return;
    phone.ws = null;
    const why = { 4401: HOST.cti ? "not signed in" : "not signed in, or no SIP account (agents.yaml supervisors: sip)" };
    unregistered(why[e.code] || "connection to the server closed");
  };
}

function send(message) {
  if (phone.ws && phone.ws.readyState === WebSocket.OPEN) phone.ws.send(JSON.stringify(message));
}

async function onMessage(msg) {
  switch (msg.type) {
    case "answer":
      await phone.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
      break;
    case "registered":
      setState("registered", msg.codec ? `audio ${msg.codec}` : "");
      break;
    case "unregistered":
      unregistered(msg.reason || "");
      break;
    case "incoming":
      phone.incoming = msg;
      $("phone-caller").textContent = msg.display && msg.display !== msg.from ? `${msg.display} (${msg.from})` : msg.from || "Unknown caller";
      setState("ringing", msg.queue ? `queue ${msg.queue}` : "");
      break;
    case "call":
      if (msg.state === "connected") {
        phone.onHold = false;
        setMuted(false);
        if (HOST.cti) $("phone-hold").textContent = "Hold";
        setState("in_call", msg.from || "");
      } else if (phone.state === "ringing" || phone.state === "in_call") {
        phone.incoming = null;
        setState("registered", msg.reason ? `last call: ${msg.reason}` : "");
      }
      break;
    case "stats":
      phone.lastStats = msg;
      phone.statsWaiters.splice(0).forEach((resolve) => resolve(msg));
      break;
    case "replaced":
      notice("The browser phone was opened in another window.", "error");
      break;
    case "error":
      notice(msg.reason || "phone error", "error");
      break;
  }
}

function serverStats() {
  if (!phone.ws) return Promise.resolve(null);
  return new Promise((resolve) => {
    phone.statsWaiters.push(resolve);
    send({ type: "stats" });
  });
}

function unregistered(reason) {
  stopBrowserPhone();
  if (sessionStorage.getItem(MODE_KEY) === "browser") setState("unregistered", reason);
}

function stopBrowserPhone() {
  const ws = phone.ws;
  phone.ws = null;
  if (ws) ws.close();
  if (phone.pc) phone.pc.close();
  phone.pc = null;
  phone.sender = null;
  if (phone.stream) phone.stream.getTracks().forEach((t) => t.stop());
  phone.stream = null;
  stopMeter();
  setState("off");
}

// ---------------------------------------------------------------- devices and level

function deviceConstraint(id) {
  return id ? { deviceId: { exact: id } } : true;
}

async function listDevices() {
  const select = $("phone-device");
  const current = select.value;
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  select.replaceChildren(...devices.map((d, i) => el("option", { value: d.deviceId }, d.label || `Microphone ${i + 1}`)));
  if (current) select.value = current;
}

async function switchDevice(id) {
  if (!phone.sender) return;
  const stream = await navigator.mediaDevices.getUserMedia({ audio: deviceConstraint(id) });
  const track = stream.getAudioTracks()[0];
  track.enabled = !phone.muted;
  await phone.sender.replaceTrack(track);
  if (phone.stream) phone.stream.getTracks().forEach((t) => t.stop());
  phone.stream = stream;
  startMeter(stream);
}

function startMeter(stream) {
  stopMeter();
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    $("phone-mic").value = Math.min(1, Math.sqrt(sum / data.length) * 4);
  }, 100);
  phone.meter = { ctx, timer };
}

function stopMeter() {
  if (!phone.meter) return;
  clearInterval(phone.meter.timer);
  phone.meter.ctx.close();
  phone.meter = null;
  const m = $("phone-mic");
  if (m) m.value = 0;
}

// ---------------------------------------------------------------- life with the desk

function deskShown() {
  if (!$("phone-panel")) buildPanel();
  setMode(sessionStorage.getItem(MODE_KEY) === "browser" ? "browser" : "sip");
}

function deskHidden() {
  stopBrowserPhone();
  sessionStorage.removeItem(MODE_KEY); // the choice is per login
}

function watchDesk() {
  const desk = $(HOST_ID);
  let shown = false;
  const check = () => {
    const now = !desk.hidden;
    if (now === shown) return;
    shown = now;
    if (now) deskShown();
    else deskHidden();
  };
  new MutationObserver(check).observe(desk, { attributes: true, attributeFilter: ["hidden"] });
  check();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watchDesk);
else watchDesk();
