// What the pages share: the crowding levels' words, a small element builder, the stations' time
// formatter and the operator's sign-in.
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

// An operator's token, kept for this tab only (sessionStorage, never in a URL), shared by every
// page and panel that acts: the dashboard's crew mode, reports, priority, announcements.
const operator = (() => {
  const KEY = "chargenet-admin-token";
  const token = () => sessionStorage.getItem(KEY);
  const $ = (id) => document.getElementById(id);
  // An API call as the operator: the JSON answer, or an Error saying the status, the field
  // to fix (a 422's) and the server's message.
  async function call(method, path, body) {
    const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const found = await reply.json().catch(() => ({}));
    if (!reply.ok) {
      const error = found.error || {};
      throw new Error(`${reply.status} ${error.field ? error.field + ": " : ""}${error.message || ""}`.trim());
    }
    return found;
  }
  // The page's sign-in form (#crew with #token, #sign-in, #sign-out, #crew-note): a token is
  // kept once `probe`, a path it must be allowed to read, accepts it; `changed(signedIn)` shows
  // or hides what only operators see, after every sign-in and sign-out and on `show()`.
  function form(probe, changed, welcome = "") {
    const note = (text) => { $("crew-note").textContent = text; };
    function show() {
      const signedIn = Boolean(token());
      $("token").hidden = $("sign-in").hidden = signedIn;
      $("sign-out").hidden = !signedIn;
      changed(signedIn);
    }
    function signOut(text) {
      sessionStorage.removeItem(KEY);
      note(text || "");
      show();
    }
    $("crew").addEventListener("submit", async (event) => {
      event.preventDefault();
      const candidate = $("token").value.trim();
      $("token").value = "";
      const reply = await fetch(probe, { headers: { Authorization: `Bearer ${candidate}`, Accept: "application/json" } });
      if (!reply.ok) return signOut(reply.status === 401 ? "トークンが違います / wrong token" : String(reply.status));
      sessionStorage.setItem(KEY, candidate);
      note(welcome);
      show();
    });
    $("sign-out").addEventListener("click", () => signOut());
    return { note, show, signOut };
  }
  return { token, call, form };
})();
