// The desk's panel for emails (channel "email").
//
// Plain script (loaded by desk.js from /desk/channels.json). Shows the whole thread of the
// selected email, oldest first — the customer's messages, our acknowledgements and replies
// with their send state ("not sent: no relay" when the server has no relay) — with the
// attachments (downloaded, never opened in the desk's page), and, once accepted: Reply (the
// customer's last message quoted unless unticked), Transfer to a queue and Close (the desk's
// End: the wrap-up form with a disposition follows). Accept and Decline are on the work list.
//
// Everything from the email (addresses, subject, text, file names) goes in with textContent
// only: HTML mail was already rendered to plain text by the server.
(function () {
  "use strict";
  const drafts = new Map(); // contact id -> reply text not sent yet (survives list redraws)
  const SESSION_KEY = "callcenter.session"; // common.js: the signed-in desk's token

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

  function when(ts) {
    return ts ? new Date(ts * 1000).toLocaleString() : "";
  }

  function size(n) {
    if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
    if (n >= 1024) return `${Math.round(n / 1024)} kB`;
    return `${n} B`;
  }

  const STATES = {
    pending: "sending…",
    sent: "sent",
    dead: "not sent: delivery failed",
    no_relay: "not sent: no relay",
  };

  function token() {
    try {
      return (JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null") || {}).token || null;
    } catch {
      return null;
    }
  }

  // An attachment is fetched with the agent's token and saved as a file: never shown inline.
  async function download(contactId, att, api) {
    try {
      const r = await fetch(`/api/email/${encodeURIComponent(contactId)}/attachments/${encodeURIComponent(att.sha256)}`,
        { headers: { Authorization: `Bearer ${token()}` } });
      if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
      const url = URL.createObjectURL(await r.blob());
      const a = el("a", { href: url, download: att.name || att.sha256 });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      api.notify(`Cannot download ${att.name}: ${err && err.message ? err.message : err}`, "error");
    }
  }

  function message(m, contactId, api) {
    const out = m.direction === "out";
    const who = out ? (m.kind === "ack" ? "Automatic acknowledgement" : `Reply${m.author ? ` by ${m.author}` : ""}`)
      : (m.from_display || m.from || "unknown sender");
    const head = el("header", { class: "email-head" },
      el("strong", { class: "email-from" }, who),
      " ",
      el("span", { class: "muted email-when" }, when(m.ts)));
    const parts = [head];
    if (m.subject) parts.push(el("div", { class: "email-subject" }, m.subject));
    if (out && m.state) {
      parts.push(el("div", { class: "email-state", dataset: { state: m.state } },
        STATES[m.state] || m.state, m.last_error && m.state !== "no_relay" ? ` (${m.last_error})` : ""));
    }
    if (m.junk) parts.push(el("div", { class: "email-flag" }, `Not routed: ${m.junk}`));
    if ((m.flags || []).length) parts.push(el("div", { class: "email-flags muted" }, `Flags: ${m.flags.join(", ")}`));
    parts.push(el("pre", { class: "email-text" }, m.text || ""));
    const atts = m.attachments || [];
    if (atts.length) {
      parts.push(el("ul", { class: "email-attachments" }, ...atts.map((a) => el("li", {},
        el("button", { type: "button", class: "email-attachment", onclick: () => download(contactId, a, api) },
          a.name || "attachment"),
        " ",
        el("span", { class: "muted" }, `${a.content_type || ""} ${size(a.size || 0)} sha256 ${String(a.sha256).slice(0, 12)}…`)))));
    }
    return el("li", { class: `email-message ${out ? "email-out" : "email-in"}`, dataset: { direction: m.direction } },
      ...parts);
  }

  async function transferTargets(select, api) {
    try {
      const t = await api.get("/api/agent/transfer-targets");
      select.replaceChildren(el("option", { value: "" }, "Transfer to queue…"),
        ...(t.queues || []).map((q) => el("option", { value: `queue:${q}` }, q)));
    } catch {
      // the select stays empty; the agent can still close the email
    }
  }

  function render(item, host, api) {
    const id = item.contact_id;
    const data = item.view || {};
    const c = item.customer || {};
    const connected = item.phase === "connected";
    const facts = el("dl", { class: "email-facts" });
    const fact = (k, v) => { if (v) facts.append(el("dt", {}, k), el("dd", {}, v)); };
    fact("Customer", c.name ? `${c.name} <${data.customer || ""}>` : data.customer || "unknown sender");
    if (item.tier) fact("Tier", item.tier);
    fact("Subject", data.subject || "(no subject)");
    fact("Case", data.thread_id);
    if (data.first_response_due) {
      const late = !data.first_response_at && Date.now() / 1000 > data.first_response_due;
      fact("First response due", `${when(data.first_response_due)}${late ? " (overdue)" : ""}`);
    }
    const thread = el("ol", { class: "email-thread", "aria-label": "Thread" },
      ...(data.thread || []).map((m) => message(m, id, api)));
    const status = el("p", { class: "email-status muted" },
      item.phase === "offered" ? "Accept to reply." : item.phase === "wrap_up" ? "Closed: choose a disposition." : "");
    if (data.relay === false) {
      status.append(el("span", { class: "email-no-relay" },
        " No mail relay is configured: replies are kept on the record, not sent."));
    }
    const parts = [facts, thread, status];
    if (connected) {
      const input = el("textarea", { class: "email-reply-text", rows: "6", maxlength: "100000",
        "aria-label": "Reply", placeholder: "Write your reply…" });
      input.value = drafts.get(id) || "";
      input.addEventListener("input", () => drafts.set(id, input.value));
      const quote = el("input", { type: "checkbox", class: "email-quote", checked: true });
      const send = el("button", { type: "submit", class: "primary email-send" }, "Send reply");
      const form = el("form", { class: "email-reply" }, input,
        el("label", { class: "email-quote-label" }, quote, " Quote the customer's last message"), send);
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        send.disabled = true;
        try {
          const sent = await api.post(`/api/email/${encodeURIComponent(id)}/reply`, { text, quote: quote.checked });
          drafts.delete(id);
          input.value = "";
          api.notify(sent.state === "no_relay" ? "Reply kept on the record: not sent (no relay)." : "Reply queued for sending.",
            sent.state === "no_relay" ? "info" : "info");
          await api.refresh();
        } catch (err) {
          api.notify(`Reply not saved: ${err && err.message ? err.message : err}`, "error");
        } finally {
          send.disabled = false;
        }
      });
      const target = el("select", { class: "email-transfer-target", "aria-label": "Transfer to" });
      transferTargets(target, api);
      const actions = el("div", { class: "email-actions" }, target,
        el("button", { type: "button", class: "email-transfer",
          onclick: async () => { if (target.value) await api.transfer(target.value); } }, "Transfer"),
        el("button", { type: "button", class: "danger email-close", onclick: () => api.end() }, "Close"));
      parts.push(form, actions);
    }
    host.append(el("div", { class: "email-view", dataset: { contactId: id } }, ...parts));
  }

  function onEvent() {
    // contact messages redraw the work list (desk.js), which renders this panel again
  }

  window.Desk.registerChannel("email", { render, onEvent });
})();
