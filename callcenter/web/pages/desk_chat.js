// The desk's panels for web chats and web forms (channels "chat" and "webform").
//
// Plain script (loaded by desk.js from /desk/channels.json). The desk's work list is the
// tab strip: one item per chat, each with an unread count while it is not the one shown;
// selecting an item draws its panel here. An agent holds as many chats as their routing
// profile's web capacity allows, each with its own transcript, draft and typing indicator,
// kept in this module so a redraw of the work list loses nothing the agent typed.
//
// Every text from the customer (name, lines, form fields) goes in with textContent only.
(function () {
  "use strict";
  const TYPING_IDLE_MS = 3000;
  const chats = new Map(); // contact id -> view state

  // The contact whose panel is shown: the desk marks its work-list item.
  function selectedId() {
    const li = document.querySelector('.work-item[aria-current="true"]');
    return li ? li.dataset.contactId : null;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
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

  function clock(ts) {
    return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // A transcript line from the view ({seq, from, author, text, ts}) or a contact_message.
  function normalise(m) {
    if (m.type === "contact_message") {
      const meta = m.meta || {};
      return { key: m.message_id, seq: meta.seq || 0, from: meta.from || (m.direction === "in" ? "customer" : "agent"),
        name: meta.name || m.author || "", text: m.text || "", ts: m.ts, meta };
    }
    return { key: null, seq: m.seq, from: m.from, name: m.author || "", text: m.text, ts: m.ts, meta: m.meta || {} };
  }

  function view(id) {
    let v = chats.get(id);
    if (v) return v;
    v = { id, seqs: new Set(), keys: new Set(), unread: 0, typingTimer: null, typingOn: false, api: null, item: null };
    v.lines = el("ol", { class: "chat-lines", "aria-live": "polite" });
    v.typing = el("p", { class: "chat-typing muted", hidden: true }, "The customer is typing…");
    v.input = el("textarea", { class: "chat-input", rows: "3", maxlength: "8000", placeholder: "Reply…",
      "aria-label": "Reply" });
    v.canned = el("select", { class: "chat-canned", "aria-label": "Canned responses" });
    v.send = el("button", { type: "submit", class: "primary chat-send" }, "Send");
    v.form = el("form", { class: "chat-composer" }, v.input, el("div", { class: "chat-compose-row" }, v.canned, v.send));
    v.customer = el("div", { class: "chat-customer" });
    v.selfservice = el("div", { class: "chat-selfservice" });
    v.transfer = el("select", { class: "chat-transfer-target", "aria-label": "Transfer to" });
    v.transferBtn = el("button", { type: "button", class: "chat-transfer" }, "Transfer");
    v.endBtn = el("button", { type: "button", class: "danger chat-end" }, "End chat");
    v.status = el("p", { class: "chat-status muted" });
    v.root = el("div", { class: "chat-view", dataset: { contactId: id } },
      v.customer, v.selfservice, v.status, v.lines, v.typing, v.form,
      el("div", { class: "chat-actions" }, v.transfer, v.transferBtn, v.endBtn));
    v.form.addEventListener("submit", (e) => { e.preventDefault(); sendLine(v); });
    v.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendLine(v); }
    });
    v.input.addEventListener("input", () => typing(v));
    v.input.addEventListener("focusin", () => { v.focused = true; });
    v.canned.addEventListener("change", () => {
      const opt = v.canned.selectedOptions[0];
      if (opt && opt.value) {
        v.input.value = v.input.value ? v.input.value + " " + opt.dataset.text : opt.dataset.text;
        v.input.focus();
      }
      v.canned.value = "";
    });
    v.endBtn.addEventListener("click", async () => { stopTyping(v); if (v.api) await v.api.end(); });
    v.transferBtn.addEventListener("click", async () => {
      if (v.api && v.transfer.value) { stopTyping(v); await v.api.transfer(v.transfer.value); }
    });
    chats.set(id, v);
    return v;
  }

  function addLine(v, raw) {
    const m = normalise(raw);
    if (m.from === "request") { // the customer asked for the transcript by email
      if (m.key && v.keys.has(m.key)) return;
      if (m.key) v.keys.add(m.key);
      v.lines.append(el("li", { class: "chat-line system" }, `Transcript requested to ${m.meta.transcript_to || ""}`));
      return;
    }
    if (m.seq && v.seqs.has(m.seq)) return;
    if (m.seq) v.seqs.add(m.seq);
    const who = m.from === "customer" ? (m.name || "Customer") : m.from === "bot" ? "Assistant" : (m.name || "You");
    v.lines.append(el("li", { class: `chat-line ${m.from}`, dataset: { seq: String(m.seq || ""), from: m.from } },
      el("span", { class: "chat-who" }, who), " ",
      el("time", { class: "chat-when muted" }, clock(m.ts)),
      el("p", { class: "chat-text" }, m.text)));
    v.lines.scrollTop = v.lines.scrollHeight;
    if (m.from === "customer") v.typing.hidden = true;
    if (m.from === "customer" && (selectedId() !== v.id || document.hidden)) v.unread += 1;
  }

  async function sendLine(v) {
    const text = v.input.value.trim();
    if (!text || !v.api) return;
    v.send.disabled = true;
    try {
      const line = await v.api.post(`/api/chat/${encodeURIComponent(v.id)}/messages`, { text });
      v.input.value = "";
      addLine(v, line);
      v.typingOn = false;
      clearTimeout(v.typingTimer);
    } catch (err) {
      v.api.notify(`Not sent: ${err && err.message ? err.message : err}`, "error");
    } finally {
      v.send.disabled = false;
      v.input.focus();
    }
  }

  function typing(v) {
    if (!v.api || !v.item || v.item.phase !== "connected") return;
    if (!v.typingOn) {
      v.typingOn = true;
      v.api.post(`/api/chat/${encodeURIComponent(v.id)}/typing`, { on: true }).catch(() => {});
    }
    clearTimeout(v.typingTimer);
    v.typingTimer = setTimeout(() => stopTyping(v), TYPING_IDLE_MS);
  }

  function stopTyping(v) {
    clearTimeout(v.typingTimer);
    if (v.typingOn && v.api && v.item && v.item.phase === "connected") {
      v.api.post(`/api/chat/${encodeURIComponent(v.id)}/typing`, { on: false }).catch(() => {});
    }
    v.typingOn = false;
  }

  function fillCustomer(v, item) {
    const data = item.view || {};
    const pre = data.prechat || {};
    const c = item.customer || {};
    const dl = el("dl", { class: "chat-facts" });
    const fact = (k, val, cls) => { if (val) dl.append(el("dt", {}, k), el("dd", { class: cls }, val)); };
    fact("Name", pre.name || c.name, "chat-name");
    fact("Email", pre.email, "chat-email");
    fact("Phone", pre.phone, "chat-phone");
    fact("Topic", pre.topic, "chat-topic");
    fact("Customer", c.name ? `${c.name}${c.tier ? " (" + c.tier + ")" : ""}` : "New or unknown customer", "chat-crm");
    fact("Identity", data.verified ? "Verified (knew an order number)" : "Not verified", "chat-identity");
    if (item.why_you) fact("Why you", item.why_you, "chat-why");
    const recent = (item.recent || []).slice(0, 5);
    const history = recent.length ? el("ul", { class: "chat-recent" }, ...recent.map((r) =>
      el("li", {}, `${r.channel || ""} ${r.outcome || ""} ${r.disposition || ""}`.trim()))) : null;
    v.customer.replaceChildren(el("h3", {}, "Customer"), dl, history || "");
    const steps = data.selfservice || [];
    v.selfservice.replaceChildren(...(steps.length ? [el("h3", {}, "Self-service before the chat"),
      el("ol", { class: "chat-steps" }, ...steps.map((s) =>
        el("li", {}, el("q", {}, s.asked), " → ", el("span", {}, s.answered))))] : []));
  }

  function fillCanned(v, item) {
    const canned = (item.view && item.view.canned) || [];
    if (v.canned.options.length === canned.length + 1) return;
    v.canned.replaceChildren(el("option", { value: "" }, "Canned response…"),
      ...canned.map((c) => el("option", { value: c.id, dataset: { text: c.text } }, c.title)));
  }

  async function fillTransfer(v) {
    if (v.transferLoaded || !v.api) return;
    v.transferLoaded = true;
    try {
      const t = await v.api.get("/api/agent/transfer-targets");
      v.transfer.replaceChildren(el("option", { value: "" }, "Transfer to…"),
        ...(t.queues || []).map((q) => el("option", { value: `queue:${q}` }, `Queue ${q}`)),
        ...(t.agents || []).map((a) => el("option", { value: `agent:${a.agent_id}` }, `${a.name} (${a.state})`)));
    } catch {
      v.transferLoaded = false;
    }
  }

  function renderChat(item, host, api) {
    const v = view(item.contact_id);
    const hadFocus = v.focused && (document.activeElement === document.body || document.activeElement === null);
    v.api = api;
    v.item = item;
    v.unread = 0;
    const data = item.view || {};
    for (const line of data.transcript || []) addLine(v, line);
    v.unread = 0;
    fillCustomer(v, item);
    fillCanned(v, item);
    fillTransfer(v);
    const connected = item.phase === "connected";
    v.form.hidden = !connected;
    v.transfer.hidden = v.transferBtn.hidden = v.endBtn.hidden = !connected;
    v.status.textContent = item.phase === "offered" ? "Accept to start chatting."
      : item.phase === "wrap_up" ? "The chat has ended." : data.customer_connected === false && connected
        ? "The customer's connection dropped; they can come back." : "";
    if (!connected) v.typing.hidden = true;
    else if (data.customer_typing) v.typing.hidden = false;
    host.append(v.root);
    if (hadFocus && connected) v.input.focus();
    decorate();
  }

  function renderForm(item, host) {
    const data = item.view || {};
    const fields = data.fields || {};
    const extra = data.extra || {};
    const dl = el("dl", { class: "form-fields" });
    for (const [k, val] of Object.entries(fields)) dl.append(el("dt", {}, k), el("dd", { dataset: { field: k } }, val));
    const parts = [el("h3", {}, `Web form: ${data.form || ""}`), dl];
    if (Object.keys(extra).length) {
      const ex = el("dl", { class: "form-extra" });
      for (const [k, val] of Object.entries(extra)) ex.append(el("dt", {}, k), el("dd", {}, val));
      parts.push(el("p", { class: "notice", "data-kind": "warning" }, "Fields the form does not declare (kept as sent):"), ex);
    }
    host.append(el("div", { class: "webform-view", dataset: { contactId: item.contact_id } }, ...parts));
  }

  // Unread counts on the work list's items (the desk draws the list; we only add a badge).
  function decorate() {
    const current = selectedId();
    for (const li of document.querySelectorAll('.work-item[data-channel="chat"]')) {
      const v = chats.get(li.dataset.contactId);
      const n = v && li.dataset.contactId !== current ? v.unread : 0;
      let badge = li.querySelector(".chat-unread");
      if (!n) { if (badge) badge.remove(); continue; }
      if (!badge) {
        badge = el("span", { class: "badge chat-unread", "aria-label": "unread messages" });
        li.append(badge);
      }
      if (badge.textContent !== String(n)) badge.textContent = String(n);
      li.dataset.unread = String(n);
    }
  }

  function onEvent(msg) {
    if (msg.type === "contact_message" && msg.contact_id) {
      const v = view(msg.contact_id);
      addLine(v, msg);
    } else if (msg.type === "chat_typing" && msg.contact_id) {
      view(msg.contact_id).typing.hidden = !msg.on;
    }
    decorate();
  }

  function start() {
    const list = document.getElementById("worklist-items");
    if (list) new MutationObserver(() => decorate()).observe(list, { childList: true });
    const reg = window.Desk && window.Desk.registerChannel;
    if (!reg) return;
    window.Desk.registerChannel("chat", { render: renderChat, onEvent });
    window.Desk.registerChannel("webform", { render: (item, host) => renderForm(item, host), onEvent: () => {} });
  }
  start();
})();
