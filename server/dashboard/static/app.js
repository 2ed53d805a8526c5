// The dashboard: stations from the API, re-read in place when the server says they changed.
"use strict";

const API = "/api/v1";
const STATUS = {
  available: "空 free", charging: "充電 charging", finishing: "完了 done", unavailable: "停止 off",
  faulted: "故障 fault", offline: "通信断 offline", reserved: "予約 booked",
};
const container = document.getElementById("stations");
const details = new Map(); // station id -> detail JSON

function card(station) {
  const a = station.availability;
  const detail = details.get(station.id);
  const ports = el("ul", { class: "ports" });
  const incidents = el("ul", { class: "incidents" });
  if (detail) {
    // Each battery's ports under its name: a station with two batteries has two port 1s.
    for (const b of detail.batteries) {
      ports.append(el("li", { class: "battery-name" }, b.name));
      for (const p of b.ports) {
        ports.append(el("li", { class: "port", "data-status": p.status, "data-port": `${b.unit}/${p.port}`,
                                title: `${b.name} port ${p.port}: ${p.status}` }, `${p.port} ${STATUS[p.status] || p.status}`));
      }
    }
    for (const i of detail.incidents) incidents.append(incidentItem(i));
  }
  const resets = el("p", { class: "resets" });
  if (detail && operator.token()) {
    for (const b of detail.batteries) {
      if (b.alarms.length || b.ports.some((p) => p.reported_status === "faulted")) resets.append(batteryReset(b));
    }
  }
  // A drill's twin (its name says 【訓練】 too): everything on it is the drill's, not real.
  const drill = station.drill_id ? { "data-drill": String(station.drill_id) } : {};
  return el("article", { class: `station level-${a.level}`, id: `station-${station.id}`, "data-level": a.level, ...drill },
    el("h2", {}, station.name_ja, el("small", {}, station.name_en)),
    station.drill_id ? el("span", { class: "badge drill" }, `訓練 / DRILL ${station.drill_id}`) : null,
    el("span", { class: `badge level-${a.level}` }, LEVELS[a.level]),
    el("p", { class: "facts" },
      "今空き / free now: ", el("b", { class: "free-now" }, String(a.free_now)), ` / ${a.healthy_ports}`,
      el("br"), "次の空き枠 / next free window: ", el("b", { class: "next-window" }, stationTime.clock(a.next_free_window))),
    ports, resets, incidents);
}

// Crew mode: with an operator's token (`operator`, page.js) incidents can be acknowledged and
// resolved from the card, and a battery's latched alarms reset (a fixed port shows faulted
// until then); the server's event stream then redraws it.
function incidentItem(i) {
  const item = el("li", { "data-incident": String(i.id), "data-state": i.state },
    `${i.kind}${i.place ? " " + i.place : ""} (${i.state})`);
  if (operator.token()) {
    if (i.state === "open") item.append(" ", incidentAction(i.id, "acknowledge", "確認 / acknowledge"));
    item.append(" ", incidentAction(i.id, "resolve", "解決 / resolve"));
    if (i.alarm_reset) {
      item.append(" ", incidentAction(i.id, "resolve", "解決・アラーム解除 / resolve + reset alarms",
                                      { reset_alarms: true }));
    }
  }
  return item;
}

function incidentAction(id, verb, label, body) {
  return crewAction(`${API}/incidents/${id}/${verb}`, body ? "resolve-reset" : verb, label, body);
}

function batteryReset(b) {
  const path = `${API}/batteries/${encodeURIComponent(b.gw_id)}/${encodeURIComponent(b.unit)}/reset-alarms`;
  const button = crewAction(path, "reset-alarms", `アラーム解除 / reset alarms ${b.unit}`);
  button.dataset.unit = b.unit;
  return button;
}

function crewAction(url, action, label, body) {
  const button = el("button", { type: "button", class: "act", "data-action": action }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    const headers = { Authorization: `Bearer ${operator.token()}` };
    if (body) headers["Content-Type"] = "application/json";
    const reply = await fetch(url, { method: "POST", headers, body: body ? JSON.stringify(body) : undefined });
    if (reply.status === 401) return crew.signOut("トークンが違います / wrong token");
    if (!reply.ok) { button.disabled = false; crew.note(`${action}: ${reply.status}`); return; }
    if (action === "reset-alarms") crew.note(`アラーム解除を送信 / reset sent: ${button.dataset.unit}`);
    schedule(null);
  });
  return button;
}

const crew = operator.form(`${API}/incidents?state=open`, (signedIn) => {
  document.getElementById("report").hidden = !signedIn;
  document.getElementById("priority").hidden = !signedIn;
  render();
}, "対応モード / crew mode");

async function fetchJSON(path) {
  const reply = await fetch(API + path, { headers: { Accept: "application/json" } });
  if (!reply.ok) throw new Error(`${path}: ${reply.status}`);
  return reply.json();
}

let stations = [];
async function refresh(only) {
  const list = await fetchJSON("/stations?drills=true");
  stations = list.stations;
  const wanted = only && only.length ? only : stations.map((s) => s.id);
  await Promise.all(wanted.map(async (id) => {
    try { details.set(id, await fetchJSON(`/stations/${encodeURIComponent(id)}`)); } catch (e) { /* gone */ }
  }));
  render();
  document.getElementById("updated").textContent = `更新 / updated ${stationTime.clock(new Date(), true)}`;
}

// The filters: a municipality and a counterpart group, chosen from those the stations have.
const filters = { municipality: document.getElementById("filter-municipality"),
                  group: document.getElementById("filter-group") };
function fillFilter(select, values) {
  const chosen = select.value;
  const wanted = ["", ...[...new Set(values.filter(Boolean))].sort()];
  if ([...select.options].map((o) => o.value).join("\n") === wanted.join("\n")) return;
  select.replaceChildren(...wanted.map((v) => el("option", { value: v }, v || select.dataset.all)));
  select.value = wanted.includes(chosen) ? chosen : "";
}
const shown = (s) => (!filters.municipality.value || s.municipality === filters.municipality.value)
  && (!filters.group.value || s.counterpart_group === filters.group.value);
for (const select of Object.values(filters)) select.addEventListener("change", () => render());

function render() {
  fillFilter(filters.municipality, stations.map((s) => s.municipality));
  fillFilter(filters.group, stations.map((s) => s.counterpart_group));
  const visible = stations.filter(shown);
  stationMap.draw(visible, (s) => { const c = card(s); c.removeAttribute("id"); return c; }); // ids stay the list's
  const seen = new Set();
  for (const s of visible) {
    seen.add(`station-${s.id}`);
    const fresh = card(s);
    const old = document.getElementById(fresh.id);
    if (old) old.replaceWith(fresh); else container.append(fresh);
  }
  for (const node of [...container.children]) if (!seen.has(node.id)) node.remove();
}

// Changes arrive in bursts; re-read at most every 300 ms, only the stations named since.
let pendingAll = false, timer = null;
const pendingIds = new Set();
function schedule(ids) {
  if (ids === null) pendingAll = true; else ids.forEach((id) => pendingIds.add(id));
  if (timer !== null) return;
  timer = setTimeout(() => {
    const only = pendingAll ? null : [...pendingIds];
    pendingAll = false; pendingIds.clear(); timer = null;
    refresh(only).catch(console.error);
  }, 300);
}

function listen() {
  const live = document.getElementById("live");
  const source = new EventSource(API + "/events");
  source.addEventListener("open", () => { live.dataset.state = "open"; live.textContent = "ライブ / live"; schedule(null); });
  source.addEventListener("error", () => { live.dataset.state = "closed"; live.textContent = "再接続中 / reconnecting"; });
  for (const kind of ["change", "booking", "incident", "registry"]) {
    source.addEventListener(kind, (event) => {
      const data = JSON.parse(event.data);
      schedule(data.stations && data.stations.length && kind !== "registry" ? data.stations : null);
    });
  }
}

stationMap.start(document.getElementById("map"), pageConfig);
stationTime.ready.then(() => {
  crew.show();
  refresh(null).catch(console.error);
  listen();
  setInterval(() => schedule(null), 30000); // a safety net: the picture is never older than this
});
