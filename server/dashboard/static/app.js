// The dashboard: stations from the API, re-read in place when the server says they changed.
"use strict";

const API = "/api/v1";
const LEVELS = {
  free: "空き / free", busy: "やや混雑 / busy", crowded: "混雑 / crowded", full: "満員・休止 / full or closed",
};
const STATUS = {
  available: "空 free", charging: "充電 charging", finishing: "完了 full", unavailable: "停止 off",
  faulted: "故障 fault", offline: "通信断 offline", reserved: "予約 booked",
};
const container = document.getElementById("stations");
const details = new Map(); // station id -> detail JSON

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "—";
}

function card(station) {
  const a = station.availability;
  const detail = details.get(station.id);
  const ports = el("ul", { class: "ports" });
  const incidents = el("ul", { class: "incidents" });
  if (detail) {
    for (const b of detail.batteries) for (const p of b.ports) {
      ports.append(el("li", { class: "port", "data-status": p.status, "data-port": `${b.unit}/${p.port}`,
                              title: `${b.unit} port ${p.port}: ${p.status}` }, `${p.port} ${STATUS[p.status] || p.status}`));
    }
    for (const i of detail.incidents) incidents.append(el("li", {}, `${i.kind}${i.port ? " port " + i.port : ""} (${i.state})`));
  }
  return el("article", { class: `station level-${a.level}`, id: `station-${station.id}`, "data-level": a.level },
    el("h2", {}, station.name_ja, el("small", {}, station.name_en)),
    el("span", { class: `badge level-${a.level}` }, LEVELS[a.level]),
    el("p", { class: "facts" },
      "今空き / free now: ", el("b", { class: "free-now" }, String(a.free_now)), ` / ${a.healthy_ports}`,
      el("br"), "次の空き枠 / next free window: ", el("b", { class: "next-window" }, time(a.next_free_window))),
    ports, incidents);
}

async function fetchJSON(path) {
  const reply = await fetch(API + path, { headers: { Accept: "application/json" } });
  if (!reply.ok) throw new Error(`${path}: ${reply.status}`);
  return reply.json();
}

let stations = [];
async function refresh(only) {
  const list = await fetchJSON("/stations");
  stations = list.stations;
  const wanted = only && only.length ? only : stations.map((s) => s.id);
  await Promise.all(wanted.map(async (id) => {
    try { details.set(id, await fetchJSON(`/stations/${encodeURIComponent(id)}`)); } catch (e) { /* gone */ }
  }));
  render();
  document.getElementById("updated").textContent = `更新 / updated ${new Date().toLocaleTimeString()}`;
}

function render() {
  const seen = new Set();
  for (const s of stations) {
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

refresh(null).catch(console.error);
listen();
setInterval(() => schedule(null), 30000); // a safety net: the picture is never older than this
