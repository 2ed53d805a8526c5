// The announcements page (docs/operations.md): an operator composes an announcement in Japanese
// with English for a municipality's districts, situations or shelters, previews it (counts per
// target and the message each language reads, never a resident), sends it, and follows each
// announcement's delivery counts. Times in the stations' zone through page.js's formatter.
"use strict";

(() => {
  const API = "/api/v1";
  const STAYS = { shelter: "避難所 / shelter", home: "自宅 / home", relatives: "親類・知人宅 / relatives", car: "車中 / car" };
  const $ = (id) => document.getElementById(id);
  let stations = [];

  const call = (method, path, body) => operator.call(method, API + path, body);

  function boxes(fieldset, name, values, labels) {
    const legend = fieldset.querySelector("legend");
    fieldset.replaceChildren(legend, ...values.map((v) => el("label", {},
      el("input", { type: "checkbox", name, value: v }), " ", labels ? labels[v] : v)));
  }
  const chosen = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);

  async function municipalityChanged() {
    const m = $("municipality").value;
    const listed = m ? await call("GET", `/districts?municipality=${encodeURIComponent(m)}`) : { districts: [] };
    boxes($("districts"), "district", listed.districts);
    const here = stations.filter((s) => s.municipality === m && !s.drill_id);
    boxes($("stations"), "station", here.map((s) => s.id),
          Object.fromEntries(here.map((s) => [s.id, `${s.name_ja} / ${s.name_en}`])));
  }

  function targets(a) {
    return [...a.districts, ...a.stays.map((s) => STAYS[s] || s), ...a.stations].join("、") + ` (${a.municipality})`
      + (a.drill_id ? ` 訓練 / DRILL ${a.drill_id}` : "");
  }

  function showPreview(p) {
    const a = p.announcement;
    const counts = el("ul", { class: "counts" });
    for (const [kind, label] of [["districts", "地区 / district"], ["stays", "いる場所 / stay"], ["stations", "避難所 / shelter"]]) {
      for (const [target, n] of Object.entries(p.per_target[kind])) {
        counts.append(el("li", { "data-target": `${kind}:${target}` }, `${label} ${STAYS[target] || target}: `, el("b", {}, String(n))));
      }
    }
    const send = el("button", { type: "button", id: "send" }, `送信 / send to ${p.recipients}`);
    send.addEventListener("click", async () => {
      send.disabled = true;
      try {
        await call("POST", `/announcements/${a.id}/send`);
        note(`送信しました / sent: #${a.id}`);
        $("preview-out").hidden = true;
        refresh();
      } catch (e) { send.disabled = false; note(`send: ${e.message}`); }
    });
    $("preview-out").replaceChildren(
      el("h2", {}, `プレビュー / preview #${a.id}`),
      el("p", { id: "recipients" }, "対象 / recipients: ", el("b", {}, String(p.recipients)),
        ` (日本語 ja ${p.languages.ja}, English ${p.languages.en}; LINE ${p.batches} batches;`
        + ` ブロック中 / blocked ${p.unfollowed}; 訓練不参加 / not in drills ${p.not_in_drill})`),
      counts,
      el("pre", { class: "message", lang: "ja", "data-language": "ja" }, p.messages.ja.text),
      el("pre", { class: "message", lang: "en", "data-language": "en" }, p.messages.en.text),
      p.announcement.sent_at ? null : send);
    $("preview-out").hidden = false;
  }

  async function refresh() {
    if (!operator.token()) return;
    const listed = await call("GET", "/announcements");
    $("list").querySelector("tbody").replaceChildren(...listed.announcements.map((a) => {
      const d = a.deliveries;
      return el("tr", { "data-announcement": String(a.id) },
        el("td", {}, String(a.id)), el("td", {}, when(a.created_at)), el("td", {}, when(a.sent_at)),
        el("td", {}, targets(a)), el("td", {}, a.text_ja, el("br"), a.text_en),
        ...["recipients", "batches", "sent", "failed", "pending"].map((k) => el("td", { "data-count": k }, String(d[k]))));
    }));
    if (listed.announcements.some((a) => a.sent_at && a.deliveries.pending)) setTimeout(refresh, 2000);
  }
  const when = (at) => (at ? `${stationTime.day(at)} ${stationTime.clock(at)}` : "—");

  // Signed in on the dashboard, signed in here: one token for the tab (`operator`, page.js).
  const session = operator.form(`${API}/announcements`, (signedIn) => {
    $("compose").hidden = !signedIn;
    if (signedIn) start().catch((e) => note(e.message));
  });
  const note = session.note;

  async function start() {
    stations = (await (await fetch(`${API}/stations`)).json()).stations;
    const names = [...new Set(stations.map((s) => s.municipality).filter(Boolean))].sort();
    const select = $("municipality");
    if (!select.options.length) {
      select.replaceChildren(...names.map((m) => el("option", { value: m }, m)));
      boxes($("stays"), "stay", Object.keys(STAYS), STAYS);
      await municipalityChanged();
    }
    await refresh();
  }

  $("municipality").addEventListener("change", () => municipalityChanged().catch((e) => note(e.message)));
  $("compose").addEventListener("submit", async (event) => {
    event.preventDefault();
    const drill = $("drill").value.trim();
    const body = { municipality: $("municipality").value, districts: chosen("district"), stays: chosen("stay"),
                   stations: chosen("station"), text_ja: $("text-ja").value, text_en: $("text-en").value,
                   drill_id: drill ? Number(drill) : null };
    try {
      showPreview(await call("POST", "/announcements", body));
      note("");
      refresh();
    } catch (e) { note(`preview: ${e.message}`); }
  });
  stationTime.ready.then(session.show);
})();
