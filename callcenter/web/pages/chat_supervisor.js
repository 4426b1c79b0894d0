// The supervisor board's web channel card: chats and forms waiting per queue, and each agent's
// concurrent web load against their capacity (GET /api/web/supervisor, every few seconds while
// the board is shown). A separate module so the board's own scripts stay as they are.
import { api, el, loadSession } from "./common.js";

const EVERY_MS = 3000;

function card() {
  let box = document.getElementById("web-channel");
  if (box) return box;
  box = el("section", { id: "web-channel", class: "card", "aria-labelledby": "web-channel-title" },
    el("h2", { id: "web-channel-title" }, "Web chat and forms"),
    el("table", { id: "web-queues" }, el("thead", {}, el("tr", {},
      ...["Queue", "Chats waiting", "Forms waiting", "Longest wait", "Staffed", "Free"].map((h) => el("th", {}, h)))),
    el("tbody", {})),
    el("table", { id: "web-agents" }, el("thead", {}, el("tr", {},
      ...["Agent", "State", "Web load", "Contacts"].map((h) => el("th", {}, h)))), el("tbody", {})),
    el("p", { id: "web-sessions", class: "muted" }));
  const board = document.getElementById("board");
  board.insertBefore(box, board.querySelector("#decisions-box"));
  return box;
}

function fill(data) {
  const box = card();
  box.querySelector("#web-queues tbody").replaceChildren(...data.queues.map((q) =>
    el("tr", { dataset: { queue: q.queue } }, el("td", {}, q.queue), el("td", { class: "chats" }, String(q.chats_waiting)),
      el("td", { class: "forms" }, String(q.forms_waiting)), el("td", {}, `${Math.round(q.longest_wait_s)} s`),
      el("td", {}, String(q.staffed)), el("td", {}, String(q.available)))));
  box.querySelector("#web-agents tbody").replaceChildren(...data.agents.map((a) =>
    el("tr", { dataset: { agent: a.agent_id } }, el("td", {}, a.name), el("td", {}, a.state),
      el("td", { class: "web-load" }, `${a.web_load} / ${a.web_capacity}`), el("td", {}, String(a.contacts.length)))));
  box.querySelector("#web-sessions").textContent =
    `${data.sessions.open} open chat sessions, ${data.sessions.connected} customers connected`;
}

async function poll() {
  const session = loadSession("supervisor");
  const board = document.getElementById("board");
  if (session && board && !board.hidden) {
    try {
      fill(await api("/api/web/supervisor", { token: session.token }));
    } catch {
      // not on this server (no webchat.yaml), or signed out: the card stays as it was
    }
  }
  setTimeout(poll, EVERY_MS);
}
poll();
