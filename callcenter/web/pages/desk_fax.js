// The desk's panel for received faxes (channel "fax").
//
// Plain script (loaded by desk.js from /desk/channels.json). It shows the fax's first
// page (PNG), the document's facts from T.30 (pages, resolution, speed, ECM, the sender's
// station id, and whether it arrived whole), links to the PDF and the TIFF as received,
// a customer search to link the fax to a customer, and Accept / Close.
//
// The images are fetched with the agent's token (an <img src> could not carry it) and
// shown from a data: URL. Text from the fax (the station id) goes in with textContent only.
(function () {
  "use strict";
  const pages = new Map(); // contact id -> page 1 as a data: URL, dropped when the fax leaves

  // The desk's panel api fetches JSON only; images come as blobs with the session's token
  // (common.js keeps the session in sessionStorage under this key).
  async function fetchBlob(path) {
    const session = JSON.parse(sessionStorage.getItem("callcenter.session") || "null");
    const token = session && session.token;
    const r = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    return r.blob();
  }

  function facts(view, el) {
    const rows = [
      ["Pages", String(view.pages)],
      ["Sender id (TSI)", view.tsi || "—"],
      ["Resolution", `${view.resolution} dpi`],
      ["Speed", view.bit_rate ? `${view.bit_rate} bit/s` : "—"],
      ["Error correction", view.ecm ? "yes" : "no"],
      ["Line", view.transport === "t38" ? "T.38" : "G.711 audio"],
      ["Result", view.ok ? "complete" : `incomplete: ${view.reason}`],
    ];
    return el("dl", { class: "fax-facts" }, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  // A data: URL, which the pages' Content-Security-Policy allows for images (blob: it does not).
  function dataUrl(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  async function showPage(item, img) {
    const id = item.contact_id;
    let url = pages.get(id);
    if (!url) {
      url = await dataUrl(await fetchBlob(item.view.page1));
      pages.set(id, url);
    }
    img.src = url;
  }

  async function download(path, name) {
    const url = URL.createObjectURL(await fetchBlob(path));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function linkForm(item, api) {
    const el = api.el;
    const results = el("ul", { class: "fax-customers" });
    const q = el("input", { type: "search", placeholder: "Name, phone, email, account", "aria-label": "Find customer" });
    async function search(e) {
      e.preventDefault();
      if (!q.value.trim()) return;
      try {
        const found = await api.get(`/api/customers/search?q=${encodeURIComponent(q.value.trim())}`);
        results.replaceChildren(...found.customers.map((c) => el("li", {},
          el("span", { class: "customer-name" }, c.name || "(no name)"), " ",
          el("button", { type: "button", onclick: () => link(c) }, "Link this fax"))));
        if (!found.customers.length) api.notify(`No customer matches “${q.value.trim()}”.`);
      } catch (err) {
        api.notify(err.message || String(err), "error");
      }
    }
    async function link(c) {
      try {
        const linked = await api.post(`/api/interactions/${encodeURIComponent(item.contact_id)}/customer`,
          { customer_id: c.id });
        results.replaceChildren();
        api.notify(`Fax linked to ${linked.customer.name || linked.customer.id}.`, "ok");
        document.dispatchEvent(new CustomEvent("desk:customer-linked", { detail: linked }));
        api.refresh();
      } catch (err) {
        api.notify(err.message || String(err), "error");
      }
    }
    return el("form", { class: "fax-link", onsubmit: search },
      el("label", {}, "Customer ", q), " ", el("button", { type: "submit" }, "Find"), results);
  }

  function render(item, body, api) {
    const el = api.el;
    const view = item.view || {};
    document.dispatchEvent(new CustomEvent("desk:contact",
      { detail: { contact_id: item.contact_id, customer: item.customer || null } }));
    const customer = item.customer && item.customer.name ? item.customer.name : "no customer linked";
    const parts = [el("p", { class: "fax-customer" }, `From ${item.ani || view.tsi || "an unknown number"} — ${customer}`)];
    if (!view.ok) {
      parts.push(el("p", { class: "notice", "data-kind": "error" },
        `Partial fax: ${view.reason} (T.30 code ${view.t30_code}). The pages that arrived are kept.`));
    }
    parts.push(facts(view, el));
    if (view.page1) {
      const img = el("img", { class: "fax-page", alt: "Page 1 of the fax", width: "432" });
      parts.push(el("figure", {}, img, el("figcaption", { class: "muted" }, `Page 1 of ${view.pages}`)));
      showPage(item, img).catch((err) => api.notify(`Page image: ${err.message || err}`, "error"));
    }
    const buttons = [];
    if (view.pdf) buttons.push(el("button", { type: "button", onclick: () => download(view.pdf, `fax-${item.contact_id}.pdf`) }, "PDF"));
    if (view.tiff) buttons.push(el("button", { type: "button", onclick: () => download(view.tiff, `fax-${item.contact_id}.tif`) }, "TIFF"));
    if (item.phase === "offered") buttons.push(el("button", { type: "button", class: "primary", onclick: api.accept }, "Accept"));
    if (item.phase === "connected") {
      parts.push(linkForm(item, api));
      buttons.push(el("button", { type: "button", class: "primary", onclick: api.end }, "Close fax"));
    }
    parts.push(el("p", { class: "fax-actions" }, ...buttons));
    body.append(...parts);
  }

  function onEvent(msg) {
    if (msg.type === "contact_ended" || msg.type === "wrapup_done") {
      pages.delete(msg.contact_id);
    }
  }

  window.Desk.registerChannel("fax", { render, onEvent });
})();
