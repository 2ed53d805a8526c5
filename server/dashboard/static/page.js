// What both pages share: the crowding levels' words and a small element builder.
"use strict";

const LEVELS = {
  free: "空き / free", busy: "やや混雑 / busy", crowded: "混雑 / crowded", full: "満員・休止 / full or closed",
  no_chargers: "充電器なし / no chargers",
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// The pages' settings (server/dashboard/routes.py), read once and shared.
const pageConfig = fetch("/page-config.json").then((r) => r.json());

// Times as residents and operators read them: the stations' zone (the `timezone` setting,
// Japan time), 24-hour, whatever zone the browser or the server is set to. One formatter for
// every time the pages show or take; `stationTime.ready` settles once it knows the zone.
const stationTime = (() => {
  let parts = null;
  const ready = pageConfig.then((c) => {
    parts = new Intl.DateTimeFormat("en-GB", { timeZone: c.timezone, year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  });
  const wall = (at) => Object.fromEntries(parts.formatToParts(at).map((p) => [p.type, p.value]));
  // "13:30" (with seconds: "13:30:05"); "—" for no time.
  function clock(at, seconds) {
    if (at === null || at === undefined) return "—";
    const w = wall(new Date(at));
    return `${w.hour}:${w.minute}` + (seconds ? `:${w.second}` : "");
  }
  // "12/7" (month/day, as the LINE messages write it); "—" for no time.
  function day(at) {
    if (at === null || at === undefined) return "—";
    const w = wall(new Date(at));
    return `${+w.month}/${+w.day}`;
  }
  // "2026-12-07T13:30", a datetime-local input's value, in the zone.
  function inputValue(at) {
    const w = wall(at);
    return `${w.year}-${w.month}-${w.day}T${w.hour}:${w.minute}`;
  }
  // The instant a datetime-local value names in the zone (the zone's offset then, found by
  // formatting the guess: exact for Japan time, which has no summer time).
  function fromInput(value) {
    const guess = new Date(`${value}:00Z`);
    const w = wall(guess);
    const shown = Date.UTC(+w.year, +w.month - 1, +w.day, +w.hour, +w.minute, +w.second);
    return new Date(guess.getTime() - (shown - guess.getTime()));
  }
  return { ready, clock, day, inputValue, fromInput };
})();
