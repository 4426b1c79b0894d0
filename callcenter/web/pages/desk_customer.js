// The desk's customer panel: who the caller is, and the means to say so.
//
// Search customers (name, phone, email, account), link the current contact to one (an
// unknown caller's provisional customer and its history merge into it), edit the
// customer's phone numbers and email addresses, and see their recent interactions with
// the notes the privacy policy lets this agent read. API: callcenter/web/customers_api.py.
//
// Kept out of desk.js: the panel builds its own card (after the screen-pop) and its own
// stylesheet link, and follows the desk's current contact without touching desk.js:
//   - desk.js (or any script) may call window.DeskCustomer.show(contactId, customer), or
//     dispatch document event "desk:contact" with detail {contact_id, customer};
//   - otherwise it watches the screen-pop's interaction id (#pop-id) and finds the contact's
//     customer in the agent's work list (GET /api/agent/contacts).
// After a link it dispatches "desk:customer-linked" (cancelable) with detail {contact_id,
// customer, recent}: a listener that refreshes the screen-pop itself calls preventDefault();
// otherwise the panel writes the customer's name into the pop's #pop-name. Every value goes
// into textContent.

import { ApiError, api, dateTime, el, label, loadSession, notify } from "./common.js";

const panel = {
  contactId: null,
  customer: null, // the linked customer (not provisional), or null
  editing: [], // [{kind, value}] in the contact-point editor
};

function token() {
  const session = loadSession("agent");
  return session ? session.token : null;
}

function message(err) {
  if (err instanceof ApiError && err.status === 401) return "Your session has ended; please sign in again.";
  return err instanceof ApiError ? err.message : "Cannot reach the server.";
}

// ---------------------------------------------------------------- the card

function build() {
  const head = document.head;
  if (!document.querySelector('link[href="/pages/desk_customer.css"]')) {
    head.append(el("link", { rel: "stylesheet", href: "/pages/desk_customer.css" }));
  }
  const card = el("section", { id: "customer-panel", class: "card customer-panel", "aria-labelledby": "cp-title",
    hidden: true },
  el("h2", { id: "cp-title" }, "Customer"),
  el("p", {}, el("span", { id: "cp-name", class: "customer-name" }), " ",
    el("span", { id: "cp-id", class: "mono muted small" })),
  el("p", { id: "cp-notice", class: "notice", role: "status", hidden: true }),
  el("form", { id: "cp-search", class: "row cp-search", role: "search" },
    el("label", {}, "Find customer ",
      el("input", { id: "cp-q", name: "q", type: "search", maxlength: 128, required: true,
        placeholder: "name, phone, email or account", autocomplete: "off" })),
    el("button", { type: "submit" }, "Search")),
  el("ul", { id: "cp-results", class: "cp-results", "aria-label": "Customers found" }),
  el("div", { id: "cp-points-box", hidden: true },
    el("h3", {}, "Phone numbers and email addresses"),
    el("ul", { id: "cp-points", class: "cp-points" }),
    el("form", { id: "cp-add", class: "row" },
      el("select", { id: "cp-add-kind", "aria-label": "Kind" },
        el("option", { value: "phone" }, "Phone"), el("option", { value: "email" }, "Email")),
      el("input", { id: "cp-add-value", maxlength: 320, required: true, "aria-label": "Number or address",
        placeholder: "+441632960000 or name@example.com", autocomplete: "off" }),
      el("button", { type: "submit" }, "Add")),
    el("button", { id: "cp-save", type: "button", class: "primary", disabled: true }, "Save contact details")),
  el("div", { id: "cp-recent-box", hidden: true },
    el("h3", {}, "Recent interactions"),
    el("div", { class: "cp-scroll" },
      el("table", { class: "grid small" },
        el("thead", {}, el("tr", {}, ...["When", "Channel", "Queue", "Agent", "Outcome", "Notes"].map((h) =>
          el("th", {}, h)))),
        el("tbody", { id: "cp-recent" })))));
  const pop = document.getElementById("pop");
  if (pop) pop.after(card);
  else (document.getElementById("desk") || document.body).append(card);
  document.getElementById("cp-search").addEventListener("submit", search);
  document.getElementById("cp-add").addEventListener("submit", addPoint);
  document.getElementById("cp-save").addEventListener("click", savePoints);
}

function setCustomer(customer) {
  panel.customer = customer && !customer.provisional ? customer : null;
  const name = document.getElementById("cp-name");
  name.textContent = panel.customer ? (panel.customer.name || "(no name)") : "Unknown caller — not linked to a customer";
  document.getElementById("cp-id").textContent = panel.customer ? panel.customer.id : "";
  document.getElementById("customer-panel").dataset.linked = panel.customer ? "yes" : "no";
  // The screen-pop's customer carries no contact points; GET /api/customers/{id} fills them in.
  panel.editing = panel.customer ? (panel.customer.contact_points || [])
    .filter((p) => p.kind === "phone" || p.kind === "email").map((p) => ({ kind: p.kind, value: p.value })) : [];
  renderPoints(false);
  document.getElementById("cp-points-box").hidden = !panel.customer;
}

function renderPoints(changed) {
  const list = document.getElementById("cp-points");
  list.replaceChildren(...panel.editing.map((p, i) => el("li", { dataset: { kind: p.kind, value: p.value } },
    el("span", { class: "badge kind" }, label(p.kind)), " ", el("span", { class: "mono" }, p.value), " ",
    el("button", { type: "button", class: "quiet", "aria-label": `Remove ${p.value}`,
      onclick: () => { panel.editing.splice(i, 1); renderPoints(true); } }, "Remove"))));
  if (!panel.editing.length) list.append(el("li", { class: "muted" }, "None"));
  document.getElementById("cp-save").disabled = !changed;
}

function renderRecent(recent) {
  const body = document.getElementById("cp-recent");
  document.getElementById("cp-recent-box").hidden = false;
  body.replaceChildren(...(recent || []).map((r) => el("tr", { dataset: { id: r.id } },
    el("td", {}, dateTime(r.arrived_at)), el("td", {}, label(r.channel)), el("td", {}, r.queue || "—"),
    el("td", {}, r.agent_id || "—"),
    el("td", {}, [label(r.outcome), r.disposition ? ` · ${r.disposition}` : ""].join("")),
    el("td", { class: "cp-notes" }, r.notes_redacted ? "(not shown: privacy policy)" : (r.notes || "—")))));
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No earlier interactions")));
}

// ---------------------------------------------------------------- following the contact

async function show(contactId, customer) {
  if (!contactId) {
    panel.contactId = null;
    document.getElementById("customer-panel").hidden = true;
    return;
  }
  const fresh = contactId !== panel.contactId;
  panel.contactId = contactId;
  document.getElementById("customer-panel").hidden = false;
  document.getElementById("customer-panel").dataset.contact = contactId;
  if (fresh) {
    document.getElementById("cp-results").replaceChildren();
    document.getElementById("cp-recent-box").hidden = true;
    notify("cp-notice", "");
  }
  if (customer !== undefined) setCustomer(customer);
  else if (fresh) setCustomer(null);
  if (panel.customer && fresh) await loadCustomer(panel.customer.id);
}

async function loadCustomer(customerId) {
  try {
    const found = await api(`/api/customers/${encodeURIComponent(customerId)}`, { token: token() });
    setCustomer(found.customer);
    renderRecent(found.recent);
  } catch (err) {
    notify("cp-notice", message(err), "error");
  }
}

// The screen-pop's interaction id changed: ask the server whose contact it is.
async function followPop() {
  const body = document.getElementById("pop-body");
  const id = (document.getElementById("pop-id") || {}).textContent || "";
  const contactId = body && !body.hidden && id && id !== "—" ? id.trim() : null;
  if (contactId === panel.contactId) return;
  if (!contactId || !token()) {
    await show(null);
    return;
  }
  let customer;
  try {
    const list = await api("/api/agent/contacts", { token: token() });
    const item = (list.contacts || []).find((c) => c.contact_id === contactId);
    if (item) customer = item.customer;
  } catch {
    // the server is unreachable for a moment: the panel still serves the interaction shown
  }
  await show(contactId, customer);
}

// ---------------------------------------------------------------- actions

async function search(event) {
  event.preventDefault();
  const q = document.getElementById("cp-q").value.trim();
  if (!q) return;
  let found;
  try {
    found = await api(`/api/customers/search?q=${encodeURIComponent(q)}`, { token: token() });
  } catch (err) {
    notify("cp-notice", message(err), "error");
    return;
  }
  const list = document.getElementById("cp-results");
  list.replaceChildren(...found.customers.map((c) => el("li", { dataset: { customer: c.id } },
    el("span", { class: "customer-name" }, c.name || "(no name)"), " ",
    c.attributes && c.attributes.account ? el("span", { class: "muted" }, `account ${c.attributes.account} `) : null,
    el("span", { class: "mono muted small" }, c.contact_points.map((p) => p.value).join(", ")), " ",
    el("button", { type: "button", class: "primary", onclick: () => link(c) }, "This is the caller"))));
  notify("cp-notice", found.customers.length ? "" : `No customer matches “${q}”.`, "info");
}

async function link(customer) {
  if (!panel.contactId) return;
  let linked;
  try {
    linked = await api(`/api/interactions/${encodeURIComponent(panel.contactId)}/customer`,
      { token: token(), method: "POST", body: { customer_id: customer.id } });
  } catch (err) {
    notify("cp-notice", message(err), "error");
    return;
  }
  setCustomer(linked.customer);
  renderRecent(linked.recent);
  document.getElementById("cp-results").replaceChildren();
  notify("cp-notice", `Linked to ${linked.customer.name || linked.customer.id}.`, "ok");
  const linkedEvent = new CustomEvent("desk:customer-linked", { detail: linked, cancelable: true });
  const popName = document.getElementById("pop-name");
  const shown = (document.getElementById("pop-id") || {}).textContent === linked.contact_id;
  if (document.dispatchEvent(linkedEvent) && popName && shown) {
    popName.textContent = linked.customer.name || linked.customer.id;
  }
}

function addPoint(event) {
  event.preventDefault();
  const kind = document.getElementById("cp-add-kind").value;
  const input = document.getElementById("cp-add-value");
  const value = input.value.trim();
  if (!value) return;
  panel.editing.push({ kind, value });
  input.value = "";
  renderPoints(true);
}

async function savePoints() {
  if (!panel.customer) return;
  const button = document.getElementById("cp-save");
  button.disabled = true;
  try {
    const saved = await api(`/api/customers/${encodeURIComponent(panel.customer.id)}/contact-points`,
      { token: token(), method: "PUT", body: { points: panel.editing } });
    setCustomer(saved.customer);
    notify("cp-notice", "Contact details saved.", "ok");
  } catch (err) {
    notify("cp-notice", message(err), "error"); // the edits stay in the list to correct
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- wiring

build();
window.DeskCustomer = { show };
document.addEventListener("desk:contact", (e) => show(e.detail && e.detail.contact_id, e.detail && e.detail.customer));
const popId = document.getElementById("pop-id");
const popBody = document.getElementById("pop-body");
const watcher = new MutationObserver(() => { followPop(); });
if (popId) watcher.observe(popId, { childList: true, characterData: true, subtree: true });
if (popBody) watcher.observe(popBody, { attributes: true, attributeFilter: ["hidden"] });
followPop();
