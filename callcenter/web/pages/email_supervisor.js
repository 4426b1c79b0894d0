// The supervisor board's email card: per queue, emails waiting, offered, with an agent, the
// oldest wait, and first responses due within the hour or overdue (GET /api/email/queues).
//
// A bounded refresh, not the stream: supervisor.js owns the board's WebSocket, and "due" and
// "overdue" change with the clock, not with an event, so the card would need a timer anyway.
// Fetched every EVERY_MS while the board is shown; between fetches the oldest wait counts on
// from when the server said it started. Built like chat_supervisor.js (same helpers).
import { api, duration, el, loadSession } from "./common.js";

const EVERY_MS = 3000;
const since = new Map(); // queue → browser time (ms) the oldest waiting email arrived, or null

function card() {
  let box = document.getElementById("email-channel");
  if (box) return box;
  box = el("section", { id: "email-channel", class: "card", "aria-labelledby": "email-channel-title" },
    el("h2", { id: "email-channel-title" }, "Email"),
    el("table", { id: "email-queues", class: "grid" }, el("thead", {}, el("tr", {},
      el("th", {}, "Queue"),
      ...["Waiting", "Oldest wait", "Offered", "With an agent"].map((h) => el("th", { class: "num" }, h)),
      el("th", { class: "num", title: "first responses due within the hour" }, "Reply due < 1 h"),
      el("th", { class: "num", title: "first responses past their due time" }, "Reply overdue"))),
    el("tbody", {})));
  const board = document.getElementById("board");
  board.insertBefore(box, board.querySelector("#decisions-box"));
  return box;
}

function tick(tr) {
  const start = since.get(tr.dataset.queue);
  tr.querySelector(".oldest").textContent = start ? duration((Date.now() - start) / 1000) : "—";
}

function fill(queues) {
  const box = card();
  since.clear();
  box.querySelector("#email-queues tbody").replaceChildren(...queues.map((q) => {
    since.set(q.queue, q.waiting ? Date.now() - q.oldest_wait_s * 1000 : null);
    const tr = el("tr", { dataset: { queue: q.queue } }, el("td", {}, q.queue),
      el("td", { class: "num waiting" }, String(q.waiting)), el("td", { class: "num oldest" }),
      el("td", { class: "num offered" }, String(q.offered)), el("td", { class: "num with-agent" }, String(q.with_agent)),
      el("td", { class: "num due" }, String(q.due_within_hour)),
      // common.css: a breached figure in the board's "bad" colour
      el("td", { class: "num overdue", dataset: { breach: q.overdue ? "yes" : "no" } }, String(q.overdue)));
    tick(tr);
    return tr;
  }));
}

async function poll() {
  const session = loadSession("supervisor");
  const board = document.getElementById("board");
  if (session && board && !board.hidden) {
    try {
      fill(await api("/api/email/queues", { token: session.token }));
    } catch {
      // no email channel on this server (404), or signed out: the card stays as it was
    }
  }
  setTimeout(poll, EVERY_MS);
}
poll();
setInterval(() => document.querySelectorAll("#email-queues tbody tr").forEach(tick), 1000);
