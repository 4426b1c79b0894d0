// The wallboard: one large tile per queue (waiting, callers in the IVR, longest wait,
// today's service level against its target, today's offered/answered/abandoned), coloured
// by the thresholds of server.yaml board.thresholds, and the alert banner listing every
// queue past one. supervisor.js owns the stream and calls update() on every queue or
// "today" push and every second. Before the first "today" figures (an older server) the
// tile shows routing's window figures instead.

import { duration, el, percent } from "./common.js";

const RANK = { ok: 0, warn: 1, alarm: 2 };
const worst = (...levels) => levels.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), "ok");

// Service level is bad when low, the longest wait when high; null (no contact yet) is fine.
function slLevel(sl, t) {
  if (sl === null || sl === undefined) return "ok";
  if (sl <= t.service_level_alarm) return "alarm";
  return sl <= t.service_level_warn ? "warn" : "ok";
}

function waitLevel(waitS, t) {
  if (waitS >= t.longest_wait_alarm_s) return "alarm";
  return waitS >= t.longest_wait_warn_s ? "warn" : "ok";
}

function figure(name, caption) {
  return el("div", { class: "figure" }, el("span", { class: `value t-${name}` }), el("span", { class: "caption" }, caption));
}

function tile(queue) {
  const box = document.getElementById("tiles");
  let node = box.querySelector(`.tile[data-queue="${CSS.escape(queue)}"]`);
  if (!node) {
    node = el("article", { class: "tile", dataset: { queue } },
      el("h2", {}, queue),
      el("div", { class: "big" }, figure("waiting", "waiting"), figure("ivr", "in IVR"),
        figure("longest", "longest wait"), figure("sl", "service level today")),
      el("p", { class: "counts t-counts" }));
    box.append(node);
  }
  return node;
}

// queues: [{ figures, longestS, today }] (longestS counted on the page, today: the queue's
// figures since midnight or null); thresholds from the snapshot.
export function update(queues, thresholds) {
  if (!thresholds) return;
  const alerts = [];
  for (const { figures: q, longestS, today } of queues) {
    const node = tile(q.queue);
    const slValue = today ? today.service_level : q.service_level;
    const sl = slLevel(slValue, thresholds);
    const wait = waitLevel(longestS ?? 0, thresholds);
    node.dataset.level = worst(sl, wait);
    const set = (name, text, level) => {
      const v = node.querySelector(`.t-${name}`);
      v.textContent = text;
      if (level) v.dataset.level = level;
    };
    set("waiting", String(q.waiting));
    set("ivr", today ? String(today.in_ivr) : "—");
    set("longest", longestS === null ? "—" : duration(longestS), wait);
    set("sl", `${percent(slValue)} / ${q.service_level_target}%`, sl);
    node.querySelector(".t-counts").textContent = today
      ? `today: offered ${today.offered} · answered ${today.answered} · abandoned ${today.abandoned}`
      : `offered ${q.offered} · answered ${q.answered} · abandoned ${q.abandoned} (last ${duration(q.window_s)})`;
    if (sl !== "ok") alerts.push([sl, `${q.queue}: service level ${percent(slValue)} (${sl} at ${
      sl === "alarm" ? thresholds.service_level_alarm : thresholds.service_level_warn}%)`]);
    if (wait !== "ok") alerts.push([wait, `${q.queue}: longest wait ${duration(longestS)} (${wait} at ${
      duration(wait === "alarm" ? thresholds.longest_wait_alarm_s : thresholds.longest_wait_warn_s)})`]);
  }
  const banner = document.getElementById("alerts");
  const text = alerts.map(([, t]) => t).join("\n");
  if (banner.dataset.text !== text) { // rewritten only on change: screen readers announce each change once
    banner.dataset.text = text;
    banner.replaceChildren(...alerts.map(([level, t]) => el("p", { dataset: { level } }, t)));
  }
  banner.dataset.level = worst("warn", ...alerts.map(([level]) => level));
  banner.hidden = alerts.length === 0;
}

// Wallboard mode: ?wallboard=1 or the toggle; the URL follows, so the big screen's bookmark works.
export function wireToggle() {
  const button = document.getElementById("btn-wallboard");
  const set = (on) => {
    document.body.dataset.wallboard = on ? "on" : "off";
    document.getElementById("wallboard").hidden = !on;
    button.setAttribute("aria-pressed", String(on));
    const url = new URL(window.location.href);
    if (on) url.searchParams.set("wallboard", "1");
    else url.searchParams.delete("wallboard");
    window.history.replaceState(null, "", url);
  };
  button.addEventListener("click", () => set(document.body.dataset.wallboard !== "on"));
  set(new URLSearchParams(window.location.search).get("wallboard") === "1");
}
