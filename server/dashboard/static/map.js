// The stations on a map (vendored Leaflet): one circle per station in its card's crowding colour,
// ringed in black while it has open incidents (listed in its tooltip); a click shows its card.
// Without tiles (no network at a shelter) the circles still show on the plain background.
"use strict";

const stationMap = (() => {
  const markers = new Map(); // station id -> L.circleMarker
  let map = null, fitted = false;

  // The colours are the cards' own (style.css), read once from the CSS variables.
  const css = getComputedStyle(document.documentElement);
  const colour = (level) => css.getPropertyValue(level === "no_chargers" ? "--none" : `--${level}`).trim();

  // `config` is /page-config.json's, or a promise of it.
  async function start(node, config) {
    map = L.map(node).setView([33.84, 132.77], 9);
    try {
      config = await (config || fetch("/page-config.json").then((r) => r.json()));
      if (config.outlines_url) outlines(node, config.outlines_url); // under the markers, tiles or not
      if (!config.tile_url) return;
      const tiles = L.tileLayer(config.tile_url, { attribution: config.attribution, maxZoom: 18 });
      tiles.on("tileerror", () => { node.dataset.tiles = "unavailable"; });
      tiles.on("tileload", () => { node.dataset.tiles = "loaded"; });
      tiles.addTo(map);
    } catch (e) {
      node.dataset.tiles = "unavailable";
    }
  }

  async function outlines(node, url) {
    const reply = await fetch(url);
    if (!reply.ok) return;
    const drawn = L.geoJSON(await reply.json(), {
      interactive: false, style: { color: "#666", weight: 1, fill: true, fillColor: "#eee", fillOpacity: 0.4 },
    }).addTo(map);
    drawn.bringToBack();
    node.dataset.outlines = String(drawn.getLayers().length);
  }

  // Draw `stations` (the ones the filters let through); `cardFor(station)` makes its card.
  function draw(stations, cardFor) {
    if (!map) return;
    const seen = new Set();
    for (const s of stations) {
      seen.add(s.id);
      const level = s.availability.level;
      const style = { radius: 10, fillColor: colour(level), fillOpacity: 0.9,
                      color: s.open_incidents ? "#000" : "#fff", weight: s.open_incidents ? 4 : 2 };
      let marker = markers.get(s.id);
      if (!marker) {
        marker = L.circleMarker([s.latitude, s.longitude], style).addTo(map);
        markers.set(s.id, marker);
      }
      marker.setLatLng([s.latitude, s.longitude]).setStyle(style);
      if (cardFor) marker.bindPopup(() => cardFor(s), { maxWidth: 320, maxHeight: 260 });
      marker.bindTooltip(`${s.name_ja} / ${s.name_en}` + (s.open_incidents ? ` ⚠ ${s.open_incidents}` : ""));
      const path = marker.getElement();
      path.dataset.station = s.id;
      path.dataset.level = level;
      path.dataset.incidents = String(s.open_incidents);
    }
    for (const [id, marker] of markers) if (!seen.has(id)) { marker.remove(); markers.delete(id); }
    if (!fitted && markers.size) {
      map.fitBounds(L.featureGroup([...markers.values()]).getBounds(), { maxZoom: 14, padding: [20, 20] });
      fitted = true;
    }
  }

  return { start, draw };
})();
