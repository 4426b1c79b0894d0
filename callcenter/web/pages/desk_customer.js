// The desk's customer panel: who the caller is, and the means to say so.
//
// Search customers (name, phone, email, account), link the current contact to one (an
// unknown caller's provisional customer and its history merge into it), edit the
// customer's phone numbers and email addresses, and see their recent interactions with
// the notes the privacy policy lets this agent read. API: callcenter/web/customers_api.py.
//
// Click-to-dial from a customer: with no contact in hand, each of the customer's numbers
// has a Call button (POST /api/agent/dial through window.Desk.dial: the agent's phone rings,
// then the customer is dialled). After a contact ends the panel keeps that customer ("Last
// customer": the agent handled them, so the policy lets them read and call them back); where
// the policy is `lookup: any` the search is there while idle too, to find anyone to call.
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
  customer: null, // the linked customer (not provisional), or null; kept after the contact ends
  policyLoaded: false,
  lookup: "current", // server.yaml privacy.agent.lookup, from GET /api/agent/me: "any" = search while idle
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
    el("form", { id: "cp-add", class: "row cp-edit" },
      el("select", { id: "cp-add-kind", "aria-label": "Kind" },
        el("option", { value: "phone" }, "Phone"), el("option", { value: "email" }, "Email")),
      el("input", { id: "cp-add-value", maxlength: 320, required: true, "aria-label": "Number or address",
        placeholder: "+441632960000 or name@example.com", autocomplete: "off" }),
      el("button", { type: "submit" }, "Add")),
    el("button", { id: "cp-save", type: "button", class: "primary cp-edit", disabled: true }, "Save contact details")),
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
  // Editing is for the customer of the contact in hand; calling is for when there is none.
  const editing = Boolean(panel.contactId);
  list.replaceChildren(...panel.editing.map((p, i) => el("li", { dataset: { kind: p.kind, value: p.value } },
    el("span", { class: "badge kind" }, label(p.kind)), " ", el("span", { class: "mono" }, p.value), " ",
    editing ? el("button", { type: "button", class: "quiet", "aria-label": `Remove ${p.value}`,
      onclick: () => { panel.editing.splice(i, 1); renderPoints(true); } }, "Remove") : null,
    !editing && p.kind === "phone" ? el("button", { type: "button", class: "primary cp-call",
      "aria-label": `Call ${p.value}`, onclick: () => callOut({ number: p.value }) }, "Call") : null)));
  if (!panel.editing.length) list.append(el("li", { class: "muted" }, "None"));
  for (const node of document.querySelectorAll("#customer-panel .cp-edit")) node.hidden = !editing;
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
  const card = document.getElementById("customer-panel");
  if (!contactId) {
    // No contact: the last customer stays (to call back), or an empty panel to search from.
    panel.contactId = null;
    card.dataset.contact = "";
    document.getElementById("cp-title").textContent = panel.customer ? "Last customer" : "Customers";
    document.getElementById("cp-search").hidden = panel.lookup !== "any";
    document.getElementById("cp-results").replaceChildren();
    if (!panel.customer) document.getElementById("cp-name").textContent = "Find a customer to call";
    renderPoints(false);
    card.hidden = !panel.customer && panel.lookup !== "any";
    return;
  }
  const fresh = contactId !== panel.contactId;
  panel.contactId = contactId;
  card.hidden = false;
  card.dataset.contact = contactId;
  document.getElementById("cp-title").textContent = "Customer";
  document.getElementById("cp-search").hidden = false;
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
    panel.contactId ? el("button", { type: "button", class: "primary", onclick: () => link(c) }, "This is the caller")
      : el("button", { type: "button", onclick: () => open(c) }, "Open"))));
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

// Idle: a customer found by search becomes the panel's customer, with their numbers to call.
async function open(customer) {
  document.getElementById("cp-results").replaceChildren();
  await loadCustomer(customer.id);
  document.getElementById("cp-title").textContent = "Customer";
  renderPoints(false);
}

async function callOut(target) {
  if (!window.Desk || panel.contactId) return;
  await window.Desk.dial(target); // the desk says "answer your phone" or why not
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

// The policy decides whether the idle panel may search (an agent's lookup: current or any).
async function loadPolicy() {
  if (panel.policyLoaded || !token()) return;
  try {
    const me = await api("/api/agent/me", { token: token() });
    panel.lookup = me.customer_lookup || "current";
    panel.policyLoaded = true;
  } catch {
    return; // not signed in yet (or a supervisor): the panel stays as it is
  }
  if (!panel.contactId) await show(null);
}

build();
window.DeskCustomer = { show };
// "desk:call" comes once the desk is signed in and on every change of the call's phase: a
// call wrapped up ("done") leaves its screen-pop on view, but no contact in hand.
document.addEventListener("desk:call", async (e) => {
  await loadPolicy();
  const detail = e.detail || {};
  if (detail.phase === "done" && detail.contactId && detail.contactId === panel.contactId) await show(null);
});
loadPolicy();
document.addEventListener("desk:contact", (e) => show(e.detail && e.detail.contact_id, e.detail && e.detail.customer));
const popId = document.getElementById("pop-id");
const popBody = document.getElementById("pop-body");
const watcher = new MutationObserver(() => { followPop(); });
if (popId) watcher.observe(popId, { childList: true, characterData: true, subtree: true });
if (popBody) watcher.observe(popBody, { attributes: true, attributeFilter: ["hidden"] });
followPop();
