// Interaction search and the record view on the supervisor board (GET /api/interactions and
// /api/interactions/{id}). Kept apart from supervisor.js, which owns the stream: this needs
// only the supervisor's session. Every value goes into textContent (notes are raw text).

import { ApiError, api, clock, dateTime, duration, el, label, loadSession, notify } from "./common.js";

const FIELDS = [
  ["id", "Interaction"], ["channel", "Channel"], ["direction", "Direction"], ["customer_id", "Customer"],
  ["ani", "From number"], ["from_addr", "From"], ["service", "Service"], ["queue", "Queue"], ["agent_id", "Agent"],
  ["arrived_at", "Arrived", dateTime], ["ended_at", "Ended", dateTime], ["wait_s", "Waited", duration],
  ["talk_s", "Talk", duration], ["hold_s", "Hold", duration], ["outcome", "Outcome", label],
  ["disposition", "Disposition"], ["notes", "Notes"], ["subject", "Subject"],
];

function failed(err) {
  const why = err instanceof ApiError && err.status === 401 ? "Your session has ended; please sign in again." : err.message;
  notify("search-notice", why, "error");
}

async function search(event) {
  event.preventDefault();
  const session = loadSession("supervisor");
  if (!session) return;
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(event.target)) if (String(v).trim()) params.set(k, String(v).trim());
  let found;
  try {
    found = await api(`/api/interactions?${params}`, { token: session.token });
  } catch (err) {
    failed(err);
    return;
  }
  const rows = found.interactions.map((r) => {
    const tr = el("tr", { dataset: { id: r.id }, tabindex: 0 },
      el("td", {}, dateTime(r.arrived_at)), el("td", {}, r.channel), el("td", {}, r.queue || "—"),
      el("td", {}, r.agent_id || "—"), el("td", {}, label(r.outcome)), el("td", {}, r.disposition || "—"),
      el("td", { class: "mono" }, r.customer_id || "—"));
    const open = () => openRecord(r.id, tr);
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    return tr;
  });
  document.getElementById("search-rows").replaceChildren(...rows);
  notify("search-notice", rows.length ? `${rows.length} found` : "Nothing found.", "info");
}

function payloadText(payload) {
  const skip = new Set(["contact_id", "event_id", "ts", "type"]);
  return Object.entries(payload || {})
    .filter(([k, v]) => !skip.has(k) && v !== "" && v !== null && !(typeof v === "object" && !Object.keys(v).length))
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
}

async function openRecord(id, tr) {
  const session = loadSession("supervisor");
  if (!session) return;
  let found;
  try {
    found = await api(`/api/interactions/${encodeURIComponent(id)}`, { token: session.token });
  } catch (err) {
    failed(err);
    return;
  }
  for (const row of document.querySelectorAll("#search-rows tr")) row.setAttribute("aria-selected", String(row === tr));
  const { record, timeline } = found;
  document.getElementById("record-title").textContent = `Interaction ${record.id}`;
  document.getElementById("record-fields").replaceChildren(...FIELDS.flatMap(([key, name, format]) => {
    let value = record[key];
    if (key === "notes" && record.notes_redacted) value = "(not shown: privacy policy)";
    if (value === null || value === undefined || value === "") return [];
    return [el("dt", {}, name), el("dd", { dataset: { field: key } }, format ? format(value) : String(value))];
  }));
  document.getElementById("record-timeline").replaceChildren(...timeline.map((e) =>
    el("li", { dataset: { type: e.type } }, el("span", { class: "muted" }, clock(e.ts)), " ",
      el("span", { class: "badge kind" }, e.type), " ", el("span", { class: "mono" }, payloadText(e.payload)))));
  document.getElementById("record").hidden = false;
  document.dispatchEvent(new CustomEvent("supervisor:record", { detail: found })); // recordings: supervisor_monitor.js
}

document.getElementById("search-form").addEventListener("submit", search);
