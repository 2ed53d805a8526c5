// Residents' page: the open-data feed, nearest station first from the browser's location.
// The location is used here, in the browser, and never sent to the server.
"use strict";

let config = null, here = null, features = [];

// The booking's own walking model: the straight line times `detour`, at `walk_kmh`.
function walkMinutes(p) {
  const rad = Math.PI / 180, dLat = (p.latitude - here.latitude) * rad;
  const dLon = (p.longitude - here.longitude) * rad;
  const a = Math.sin(dLat / 2) ** 2
    + Math.cos(here.latitude * rad) * Math.cos(p.latitude * rad) * Math.sin(dLon / 2) ** 2;
  const km = 2 * 6371.0088 * Math.asin(Math.sqrt(a));
  return km * config.detour * 60 / config.walk_kmh;
}

function item(p) {
  const walk = here ? Math.round(walkMinutes(p)) : null;
  const next = stationTime.clock(p.next_free_window);
  return el("li", { class: `station level-${p.level}`, "data-station": p.id, "data-level": p.level },
    el("h2", {}, p.name_ja, el("small", {}, p.name_en)),
    el("span", { class: `badge level-${p.level}` }, LEVELS[p.level] || p.level),
    el("p", { class: "facts" },
      "今空き / free now: ", el("b", {}, String(p.free_now)), ` / ${p.healthy_ports}`, el("br"),
      "次の空き / next free: ", el("b", { class: "next-window" }, next),
      p.next_free_window ? ` (${p.next_free_places})` : "", el("br"),
      walk === null ? "" : el("span", { class: "walk", "data-minutes": String(walk) }, `徒歩 約${walk}分 / about ${walk} min walk`)));
}

function render() {
  const stations = features.map((f) => f.properties);
  if (here) stations.sort((a, b) => walkMinutes(a) - walkMinutes(b));
  document.getElementById("list").replaceChildren(...stations.map(item));
  stationMap.draw(stations.map((p) => ({ ...p, availability: { level: p.level }, open_incidents: 0 })),
    (s) => item(s));
}

async function refresh() {
  const reply = await fetch("/opendata/v1/stations.geojson"); // the browser revalidates its ETag
  if (!reply.ok) return;
  const feed = await reply.json();
  features = feed.features;
  render();
  document.getElementById("updated").textContent = `更新 / updated ${stationTime.clock(feed.updated_at)}`;
}

function locate() {
  const where = document.getElementById("where");
  if (!navigator.geolocation) { where.textContent = "位置情報が使えません / location unavailable"; return; }
  navigator.geolocation.getCurrentPosition((pos) => {
    here = { latitude: pos.coords.latitude, longitude: pos.coords.longitude };
    where.textContent = "近い順 / nearest first"; where.dataset.state = "open";
    render();
  }, () => { where.textContent = "位置情報なし: 一覧のまま / no location: unsorted"; }, { timeout: 15000 });
}

Promise.all([pageConfig, stationTime.ready]).then(([c]) => {
  config = c;
  document.getElementById("walk-note").textContent =
    `徒歩時間は直線距離×${c.detour}、時速${c.walk_kmh}km / walks: straight line × ${c.detour} at ${c.walk_kmh} km/h`;
  if (c.line_url) {
    const link = document.getElementById("line"), qr = document.getElementById("line-qr");
    link.href = c.line_url; link.hidden = false; qr.src = "/line-qr.svg"; qr.hidden = false;
  }
  stationMap.start(document.getElementById("map"), c);
  locate();
  refresh().catch(console.error);
  setInterval(() => refresh().catch(console.error), 30000);
});
