/* The web chat widget: one script tag on any site.
 *
 *   <script src="https://contact.example.com/chat/widget.js" defer></script>
 *   optional attributes: data-open="true" (start opened), data-topic="billing" (preselect)
 *
 * Plain JavaScript, no build step, no library. Everything is drawn inside a shadow root
 * (the host page's styles do not leak in, ours do not leak out) and every text that comes
 * from the server, the agent or the customer is put in the page with textContent only: a
 * message can never become markup. The conversation runs over one WebSocket to the server
 * that served this script (/chat/ws); the protocol is described in docs/webchat.md.
 *
 * Resume: the session token and the last line seen are kept in sessionStorage; when the
 * socket drops the widget reconnects and the server replays what was said meanwhile. Lines
 * typed while disconnected wait in an outbox and are sent (once: each has a client id)
 * when the socket is back.
 */
(function () {
  "use strict";
  if (window.__ccChatWidget) return; // included twice: one widget
  window.__ccChatWidget = true;

  const script = document.currentScript || document.querySelector('script[src*="/chat/widget.js"]');
  const base = new URL(script ? script.src : "/chat/widget.js", location.href);
  const WS_URL = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/chat/ws";
  const CSS_URL = base.origin + "/chat/widget.css";
  const opts = script ? script.dataset : {};
  const KEY = "cc-chat:" + base.host; // sessionStorage: one chat per tab and server
  const TYPING_IDLE_MS = 3000;

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  function clock(ts) {
    const d = new Date(ts * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function fmtWait(s) {
    if (s === null || s === undefined) return "";
    if (s < 60) return "less than a minute";
    const m = Math.round(s / 60);
    return m === 1 ? "about 1 minute" : "about " + m + " minutes";
  }

  // ------------------------------------------------------------------ the widget's frame

  const host = el("div", { id: "cc-chat-widget" });
  const root = host.attachShadow({ mode: "open" });
  root.append(el("link", { rel: "stylesheet", href: CSS_URL }));
  const launcher = el("button", { id: "launcher", type: "button", "aria-expanded": "false", text: "Chat with us" });
  const title = el("span", { id: "title", text: "Chat" });
  const closeBtn = el("button", { id: "minimise", type: "button", "aria-label": "Minimise", text: "–" });
  const status = el("div", { id: "status", role: "status", "aria-live": "polite" });
  const notice = el("div", { id: "notice", role: "alert", hidden: "" });
  const body = el("div", { id: "body" });
  const panel = el("section", { id: "panel", hidden: "", "aria-label": "Chat" }, [
    el("header", {}, [title, closeBtn]), status, notice, body,
  ]);
  root.append(launcher, panel);

  function open(yes) {
    panel.hidden = !yes;
    launcher.hidden = yes;
    launcher.setAttribute("aria-expanded", String(yes));
    if (yes && !ws) connect();
  }
  launcher.addEventListener("click", () => open(true));
  closeBtn.addEventListener("click", () => open(false));

  function showNotice(text) {
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  // ------------------------------------------------------------------ state

  let ws = null;
  let welcome = null;
  let state = "connecting";
  let saved = {};
  try { saved = JSON.parse(sessionStorage.getItem(KEY) || "{}"); } catch (_e) { saved = {}; }
  let lastSeq = 0; // lines are replayed from the server on every (re)connect
  let outbox = []; // {client_id, text} not yet acknowledged
  let retry = 0;
  let typingTimer = null;
  let typingOn = false;
  let ended = false;
  const lines = el("ol", { id: "lines", "aria-live": "polite" });
  const typingEl = el("div", { id: "typing", hidden: "", text: "" });
  const queueEl = el("div", { id: "queue", hidden: "" });

  function store() {
    try { sessionStorage.setItem(KEY, JSON.stringify({ token: saved.token || "" })); } catch (_e) { /* private mode */ }
  }

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(msg)); return true; }
    return false;
  }

  function connect() {
    status.textContent = "Connecting…";
    ws = new WebSocket(WS_URL);
    ws.addEventListener("open", () => {
      retry = 0;
      lastSeq = 0;
      lines.replaceChildren(); // the server replays the whole conversation
      send({ type: "hello", token: saved.token || "", last_seq: 0 });
    });
    ws.addEventListener("message", (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_e) { return; }
      onMessage(msg);
    });
    ws.addEventListener("close", (e) => {
      ws = null;
      if (e.code === 1008 || (e.code === 1006 && !welcome && retry >= 2)) {
        // Refused (this site may not use the chat), or never reachable.
        state = "unavailable";
        status.textContent = "Chat is not available on this site.";
        body.replaceChildren();
        return;
      }
      if (ended && !saved.token) return;
      status.textContent = "Connection lost — reconnecting…";
      const delay = Math.min(10000, 500 * 2 ** retry++);
      setTimeout(() => { if (!ws) connect(); }, delay);
    });
  }

  // ------------------------------------------------------------------ server messages

  function onMessage(msg) {
    switch (msg.type) {
      case "welcome":
        welcome = msg;
        if (saved.token && saved.token !== msg.token) outbox = []; // a new chat: nothing to resend
        saved.token = msg.token;
        store();
        status.textContent = "";
        showNotice("");
        render(msg.state, msg);
        if (msg.agent) setAgent(msg.agent);
        flush();
        break;
      case "state":
        render(msg.state, welcome || {});
        break;
      case "line":
        addLine(msg);
        break;
      case "ack":
        outbox = outbox.filter((o) => o.client_id !== msg.client_id);
        drawPending();
        break;
      case "queue":
        queueEl.hidden = false;
        queueEl.dataset.position = msg.position === null ? "" : String(msg.position);
        queueEl.textContent = (msg.position ? "You are number " + msg.position + " in the queue. " : "Waiting for an agent. ")
          + (msg.wait_s !== null && msg.wait_s !== undefined ? "Estimated wait: " + fmtWait(msg.wait_s) + "." : "");
        break;
      case "agent":
        setAgent(msg.name);
        break;
      case "typing":
        typingEl.hidden = !msg.on;
        typingEl.textContent = msg.on ? (title.dataset.agent || "The agent") + " is typing…" : "";
        break;
      case "offline":
        render("offline", welcome || {}, msg.reason);
        break;
      case "offline_sent":
        saved.token = "";
        store();
        body.replaceChildren(el("p", { id: "offline-done", "data-interaction": msg.interaction_id,
          text: "Thank you — we have your message and will reply soon. Reference: " + msg.interaction_id }));
        break;
      case "transcript":
        notice.dataset.code = "transcript_" + msg.state;
        if (msg.state === "requested") showNotice("We will email the transcript to " + msg.to + " when the chat ends.");
        else if (msg.state === "pending") showNotice("The transcript is on its way to " + msg.to + ".");
        else showNotice("We could not email the transcript right now; your request is on record.");
        break;
      case "error":
        onError(msg);
        break;
      default:
        break;
    }
  }

  function onError(msg) {
    if (msg.for === "say" && msg.client_id) {
      const item = outbox.find((o) => o.client_id === msg.client_id);
      outbox = outbox.filter((o) => o.client_id !== msg.client_id);
      drawPending();
      const input = root.getElementById("input");
      if (item && input && !input.value) input.value = item.text; // nothing typed is lost
    }
    showNotice(msg.detail + (msg.retry_after ? " (try again in " + msg.retry_after + " s)" : ""));
    notice.dataset.code = msg.code;
  }

  function setAgent(name) {
    title.dataset.agent = name || "";
    title.textContent = name ? "Chat with " + name : "Chat";
  }

  function addLine(msg) {
    if (msg.seq <= lastSeq) return;
    lastSeq = msg.seq;
    const who = msg.from === "customer" ? "You" : msg.author || (msg.from === "bot" ? "Assistant" : "");
    const item = el("li", { class: "line " + msg.from, "data-seq": String(msg.seq), "data-from": msg.from }, [
      el("span", { class: "who", text: who }),
      el("time", { class: "when", text: clock(msg.ts), datetime: new Date(msg.ts * 1000).toISOString() }),
      el("p", { class: "text", text: msg.text }),
    ]);
    lines.append(item);
    if (msg.from === "agent") typingEl.hidden = true;
    lines.scrollTop = lines.scrollHeight;
  }

  function drawPending() {
    root.querySelectorAll(".line.pending").forEach((n) => n.remove());
    for (const o of outbox) {
      lines.append(el("li", { class: "line customer pending", "data-client-id": o.client_id }, [
        el("span", { class: "who", text: "You" }),
        el("span", { class: "when", text: "sending…" }),
        el("p", { class: "text", text: o.text }),
      ]));
    }
  }

  function flush() {
    for (const o of outbox) send({ type: "say", text: o.text, client_id: o.client_id });
  }

  // ------------------------------------------------------------------ views

  function field(id, label, input) {
    input.id = id;
    input.name = id.replace(/^(pre|off)-/, "");
    return el("label", { for: id }, [el("span", { text: label }), input]);
  }

  function topicSelect(id, topics, pick) {
    const select = el("select", {});
    for (const t of topics) {
      const o = el("option", { value: t.id, text: t.label + (t.open ? "" : " (message only)") });
      if (t.id === pick) o.selected = true;
      select.append(o);
    }
    return field(id, "Topic", select);
  }

  function prechatForm(w) {
    const form = el("form", { id: "prechat", novalidate: "" }, [
      el("p", { text: "Tell us who you are and we will connect you." }),
      field("pre-name", "Name", el("input", { required: "", maxlength: "100", autocomplete: "name" })),
      field("pre-email", "Email", el("input", { type: "email", maxlength: "254", autocomplete: "email" })),
      field("pre-phone", "or phone", el("input", { type: "tel", maxlength: "32", autocomplete: "tel" })),
      topicSelect("pre-topic", w.topics || [], opts.topic),
      el("button", { type: "submit", id: "pre-start", text: "Start chat" }),
    ]);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const data = Object.fromEntries(new FormData(form).entries());
      const topic = (w.topics || []).find((t) => t.id === data.topic);
      if (topic && !topic.open) { render("offline", w, topic.reason, data); return; }
      send({ type: "start", ...data });
    });
    return form;
  }

  function offlineForm(w, reason, prefill) {
    const p = prefill || {};
    const why = reason === "closed" ? "We are closed right now." : "No one is available to chat right now.";
    const message = el("textarea", { rows: "4", maxlength: "10000", required: "" });
    const form = el("form", { id: "offline", novalidate: "" }, [
      el("p", { id: "offline-why", text: why + " Leave us a message and we will get back to you." }),
      field("off-name", "Name", el("input", { required: "", maxlength: "100", value: p.name || "" })),
      field("off-email", "Email", el("input", { type: "email", maxlength: "254", value: p.email || "" })),
      field("off-phone", "or phone", el("input", { type: "tel", maxlength: "32", value: p.phone || "" })),
      topicSelect("off-topic", w.topics || [], p.topic || opts.topic),
      field("off-message", "Message", message),
      el("button", { type: "submit", id: "off-send", text: "Send message" }),
    ]);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      send({ type: "offline", ...Object.fromEntries(new FormData(form).entries()) });
    });
    return form;
  }

  function composer() {
    const input = el("textarea", { id: "input", rows: "2", maxlength: String((welcome && welcome.limits.message_chars) || 2000),
      placeholder: "Type your message…", "aria-label": "Message" });
    const sendBtn = el("button", { type: "submit", id: "send", text: "Send" });
    const form = el("form", { id: "composer" }, [input, sendBtn]);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      const item = { client_id: Math.random().toString(36).slice(2) + Date.now().toString(36), text };
      outbox.push(item);
      input.value = "";
      drawPending();
      send({ type: "say", text, client_id: item.client_id });
      stopTyping();
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
    });
    input.addEventListener("input", () => {
      if (state !== "connected") return;
      if (!typingOn) { typingOn = true; send({ type: "typing", on: true }); }
      clearTimeout(typingTimer);
      typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
    });
    return form;
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingOn) { typingOn = false; send({ type: "typing", on: false }); }
  }

  function faqButtons(w) {
    const box = el("div", { id: "faq" });
    for (const f of w.faq || []) {
      const b = el("button", { type: "button", class: "faq", "data-faq": f.id, text: f.question });
      b.addEventListener("click", () => send({ type: "ask", text: f.id }));
      box.append(b);
    }
    return box;
  }

  function endedView() {
    const email = el("input", { type: "email", id: "transcript-email", maxlength: "254", placeholder: "you@example.com" });
    const form = el("form", { id: "transcript" }, [
      el("label", { for: "transcript-email", text: "Email me the transcript" }), email,
      el("button", { type: "submit", id: "transcript-send", text: "Send" }),
    ]);
    form.addEventListener("submit", (e) => { e.preventDefault(); send({ type: "transcript", email: email.value }); });
    const again = el("button", { type: "button", id: "new-chat", text: "Start a new chat" });
    again.addEventListener("click", () => {
      saved.token = ""; store(); ended = false; outbox = [];
      if (ws) ws.close(); else connect();
    });
    return [form, again];
  }

  function render(next, w, reason, prefill) {
    state = next;
    panel.dataset.state = next;
    if (next !== "connected") typingEl.hidden = true;
    if (next !== "queued") queueEl.hidden = true;
    if (next === "new") {
      const anyOpen = (w.topics || []).some((t) => t.open);
      const first = (w.topics || []).find((t) => !t.open);
      body.replaceChildren(anyOpen ? prechatForm(w) : offlineForm(w, first ? first.reason : "closed"));
      return;
    }
    if (next === "offline") {
      body.replaceChildren(offlineForm(w, reason, prefill));
      return;
    }
    const end = el("button", { type: "button", id: "end", text: "End chat" });
    end.addEventListener("click", () => { send({ type: "end" }); });
    const actions = el("div", { id: "actions" });
    if (next === "selfservice") {
      const person = el("button", { type: "button", id: "talk-to-person", text: "Talk to a person" });
      person.addEventListener("click", () => send({ type: "agent" }));
      actions.append(person, end);
      body.replaceChildren(lines, faqButtons(w), composer(), actions);
    } else if (next === "queued" || next === "connected") {
      actions.append(end);
      body.replaceChildren(queueEl, lines, typingEl, composer(), actions);
    } else if (next === "ended") {
      ended = true;
      stopTyping();
      body.replaceChildren(lines, ...endedView());
    }
    drawPending();
    lines.scrollTop = lines.scrollHeight;
  }

  // ------------------------------------------------------------------ start

  function mount() {
    document.body.append(host);
    if (opts.open === "true" || saved.token) open(true);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
