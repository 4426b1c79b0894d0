// Shared by the desk and supervisor pages: session, REST calls, the live stream,
// DOM building and formatting. Plain ES module, no dependencies.
//
// Caller-controlled text (customer names, IVR data, notes) is only ever set
// through textContent (see el()), never innerHTML, so it cannot become markup.

const SESSION_KEY = "callcenter.session";

export function loadSession(role) {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return s && s.role === role && s.token ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// JSON request to the CTI API; throws ApiError with the server's `detail`.
export async function api(path, { token, method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (!r.ok) {
    let detail = data && data.detail !== undefined ? data.detail : r.statusText;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; "); // pydantic errors
    throw new ApiError(r.status, String(detail));
  }
  return data;
}

export async function login(username, password) {
  return api("/api/login", { method: "POST", body: { username, password } });
}

// Python's json module writes Infinity/NaN (e.g. an estimated wait with nobody
// staffed), which JSON.parse refuses. Read them as null — outside string literals
// only — rather than drop the whole frame; anything else unparsable is ignored.
const STRING_OR_NONFINITE = /"(?:[^"\\]|\\.)*"|-?\bInfinity\b|\bNaN\b/g;

export function parseFrame(text) {
  try {
    return JSON.parse(text);
  } catch {
    try {
      return JSON.parse(text.replace(STRING_OR_NONFINITE, (m) => (m.startsWith('"') ? m : "null")));
    } catch {
      return null;
    }
  }
}

// Access tokens live minutes (`expires_in`): renew at two thirds of that, in place,
// so every reader of session.token (REST calls, the stream's next connect) has the
// current one. A refused renewal (logged out, session over) calls onEnded.
function renewAt(expiresIn) {
  return Date.now() + Math.max(5, expiresIn) * 667;
}

export function keepRenewed(session, onEnded) {
  let timer = null;
  const schedule = () => {
    timer = setTimeout(renew, Math.max(0, (session.renew_at || 0) - Date.now()));
  };
  const renew = async () => {
    try {
      const r = await api("/api/refresh", { token: session.token, method: "POST" });
      session.token = r.token;
      session.renew_at = renewAt(r.expires_in);
      saveSession(session);
      schedule();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onEnded();
      else timer = setTimeout(renew, 5000); // server unreachable: try again soon
    }
  };
  schedule();
  return () => clearTimeout(timer);
}

// The live stream. The server sends a fresh `snapshot` first on every connect,
// so reconnecting after a drop needs no extra REST call. The token goes in the
// Sec-WebSocket-Protocol header (never in the URL, which servers log). Close
// code 4401 means the token is no longer valid: the page goes back to its login form.
export class LiveStream {
  constructor(session, { onMessage, onStatus, onUnauthorized }) {
    this.session = session;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onUnauthorized = onUnauthorized;
    this.ws = null;
    this.stopped = false;
    this.retryMs = 500;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`, ["callcenter.bearer", this.session.token]);
    this.ws = ws;
    this.onStatus("connecting");
    ws.onopen = () => {
      this.retryMs = 500;
      this.onStatus("live");
    };
    ws.onmessage = (e) => {
      const msg = parseFrame(e.data);
      if (msg !== null) this.onMessage(msg);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (e.code === 4401) {
        this.stopped = true;
        this.onStatus("offline");
        this.onUnauthorized();
        return;
      }
      this.onStatus("reconnecting");
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    };
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.ws = null;
    this.onStatus("offline");
  }
}

// Build an element: el("td", { class: "x", dataset: { agent: "1003" } }, "text", childNode)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function setText(id, text) {
  document.getElementById(id).textContent = text === undefined || text === null || text === "" ? "—" : String(text);
}

export function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

// 75 → "1:15", 3725 → "1:02:05"; null/NaN/Infinity → "—"
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function percent(value) {
  return value === null || value === undefined || !Number.isFinite(value) ? "—" : `${value.toFixed(1)}%`;
}

export function clock(ts) {
  if (!ts) return "—";
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(value) {
  if (!value) return "—";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

// "not_ready" → "Not ready"
export function label(state) {
  if (!state) return "—";
  const s = String(state).replaceAll("_", " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// A status line for errors and confirmations, announced to screen readers.
export function notify(id, text, kind = "info") {
  const node = document.getElementById(id);
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = !text;
}

// Login form wiring shared by both pages; `expectedRole` refuses the wrong kind of account.
export function wireLogin(form, expectedRole, onSession) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    notify("login-error", "");
    try {
      const r = await login(String(data.get("username")), String(data.get("password")));
      if (r.role !== expectedRole) {
        // Signing in also signs an agent in to routing: undo that, best effort.
        api("/api/logout", { token: r.token, method: "POST" }).catch(() => {});
        notify("login-error", `This page is for ${expectedRole}s; you signed in as ${r.role}.`, "error");
        return;
      }
      const session = { token: r.token, role: r.role, subject: r.subject, renew_at: renewAt(r.expires_in) };
      saveSession(session);
      form.reset();
      onSession(session);
    } catch (err) {
      notify("login-error", err instanceof ApiError ? err.message : "Cannot reach the server.", "error");
    } finally {
      button.disabled = false;
    }
  });
}
