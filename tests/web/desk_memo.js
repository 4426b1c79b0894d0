// The test-only "memo" channel's desk panel (tests/web/test_multicontact*.py): shows the
// channel's view and posts a reply through the channel's own route, as a real channel's
// desk_<channel>.js does.
window.Desk.registerChannel("memo", {
  render(item, root, api) {
    root.append(api.el("p", { class: "memo-text" }, item.view.text || ""));
    const lines = api.el("ul", { class: "memo-lines" },
      ...(item.view.lines || []).map((l) => api.el("li", {}, l)));
    root.append(lines);
    if (item.phase === "connected") {
      root.append(api.el("button", { type: "button", class: "memo-reply",
        onclick: () => api.post(`/api/memo/${encodeURIComponent(item.contact_id)}/reply`, { text: "on it" }) },
        "Reply"));
    }
  },
  onEvent(msg) {
    if (msg.type === "contact_message" && msg.direction === "out") document.body.dataset.memoReplies = String(
      Number(document.body.dataset.memoReplies || "0") + 1);
  },
});
