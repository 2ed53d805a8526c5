// Priority for residents who depend on power (docs/operations.md), for a signed-in operator:
// the requests (counts, and each registration by its reference: never a LINE user id), grant
// at the desk by the reference a resident shows, revoke, and each municipality's hold-back.
// Loaded when the panel is shown (crew mode); the token goes in a header, never in a URL.
"use strict";

(() => {
  const panel = document.getElementById("priority");
  const note = (text) => { document.getElementById("priority-note").textContent = text; };
  const send = (method, path, body) => operator.call(method, `/api/v1/priority${path}`, body);
  const act = (label, action, run) => {
    const button = el("button", { type: "button", class: "act", "data-action": action }, label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await run(); await load(); } catch (error) { note(`${action}: ${error.message}`); }
      button.disabled = false;
    });
    return button;
  };

  function requestRow(r) {
    const status = r.granted ? `優先 / priority (${r.source})` : "申請中 / requested";
    const row = el("tr", { "data-reference": r.reference, "data-granted": String(r.granted) },
      el("td", {}, r.reference), el("td", {}, r.municipality), el("td", {}, r.need_requested || "—"),
      el("td", {}, status));
    const path = `/residents/${encodeURIComponent(r.reference)}`;
    row.append(el("td", {}, r.granted
      ? act("取消 / revoke", "revoke", () => send("DELETE", path))
      : act("確認済み・付与 / grant (checked)", "grant", () => send("PUT", path, { source: "desk" }))));
    return row;
  }

  function ruleRow(rule) {
    const share = el("input", { type: "number", min: "0", max: "1", step: "0.05", value: String(rule.hold_share),
                                "aria-label": `hold share ${rule.municipality}`, "data-field": "hold_share" });
    const lead = el("input", { type: "number", min: "0", step: "5", value: String(rule.release_before_min),
                               "aria-label": `release before ${rule.municipality}`, "data-field": "release_before_min" });
    const path = `/rules/${encodeURIComponent(rule.municipality)}`;
    return el("tr", { "data-municipality": rule.municipality }, el("td", {}, rule.municipality),
      el("td", {}, share), el("td", {}, lead),
      el("td", {}, act("保存 / save", "save-rule", () => send("PUT", path,
        { hold_share: Number(share.value), release_before_min: Number(lead.value) }))));
  }

  async function load() {
    const [requests, rules] = await Promise.all([send("GET", "/requests"), send("GET", "/rules")]);
    document.getElementById("priority-counts").replaceChildren(...requests.counts.map((c) =>
      el("li", { "data-municipality": c.municipality },
        `${c.municipality}: 申請 / requested ${c.requested} · 優先 / granted ${c.granted} · 未確認 / waiting ${c.waiting}`)));
    document.getElementById("priority-requests").replaceChildren(...requests.requests.map(requestRow));
    document.getElementById("priority-rules").replaceChildren(...rules.rules.map(ruleRow));
  }

  document.getElementById("priority-grant").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("priority-reference");
    try {
      await send("PUT", `/residents/${encodeURIComponent(input.value.trim())}`, { source: "desk" });
      input.value = "";
      await load();
    } catch (error) { note(`grant: ${error.message}`); }
  });
  let shown = false;  // load once each time the panel appears, not on every redraw
  new MutationObserver(() => {
    if (!panel.hidden && !shown) load().catch((error) => note(error.message));
    shown = !panel.hidden;
  }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
})();
