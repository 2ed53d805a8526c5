// The LINE sandbox's web chat: a tester plays one or several residents. Each action asks
// the sandbox to send the signed webhook LINE would (POST /_sandbox/line/users/{id}/send);
// the page polls what the bot delivered (.../messages) and what the resident did
// (.../events) and renders both, Flex bubbles and carousels included.
"use strict";

const CONTROL = "/_sandbox/line";
const POLL_MS = 800;
const PRESETS = [
  { title: "大洲市役所", address: "愛媛県大洲市大洲690-1", latitude: 33.5065, longitude: 132.5447 },
  { title: "大洲駅", address: "愛媛県大洲市中村", latitude: 33.508, longitude: 132.553 },
];
const MAP = { north: 33.525, south: 33.49, west: 132.525, east: 132.57 };
const STORED = "chargenet-line-sandbox-residents";

const $ = (id) => document.getElementById(id);
const chat = $("chat");
const quick = $("quick-replies");
const status = $("send-status");
const panel = $("location-panel");
const labels = new Map(); // webhookEventId -> what the resident saw themselves send
let residents = JSON.parse(localStorage.getItem(STORED) || "[]");
let current = new URLSearchParams(location.search).get("user") || residents[0]?.id || null;
let shown = "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function clock(moment) {
  return moment.toLocaleTimeString("ja-JP", { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit", hour12: false });
}

function newUserId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "U" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// -- sending --------------------------------------------------------------------------------

async function send(action, saw) {
  if (!current) return;
  status.dataset.ok = "";
  status.textContent = "送信中 / sending…";
  const resident = residents.find((r) => r.id === current);
  const body = { language: $("language").value, ...action };
  if (resident?.name) body.displayName = resident.name;
  try {
    const response = await fetch(`${CONTROL}/users/${current}/send`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json();
    const ok = response.ok && answer.status >= 200 && answer.status < 300;
    if (answer.webhookEventId && saw) labels.set(answer.webhookEventId, saw);
    status.dataset.ok = String(ok);
    status.dataset.status = String(answer.status ?? response.status);
    status.textContent = response.ok
      ? (answer.status ? `サーバー応答 / server answered ${answer.status}` : `サーバーに届きません / server unreachable: ${answer.error}`)
      : `失敗 / failed: ${JSON.stringify(answer.detail ?? answer)}`;
  } catch (error) {
    status.dataset.ok = "false";
    status.textContent = `失敗 / failed: ${error}`;
  }
  await refresh();
}

// What pressing an action does, as the LINE app would: a message action says its text, a
// postback calls back (showing displayText, if any), a location action opens the picker.
function act(action) {
  if (action.type === "message") return send({ type: "text", text: action.text ?? action.label });
  if (action.type === "postback") return send({ type: "postback", data: action.data }, action.displayText);
  if (action.type === "location") { openLocation(); return undefined; }
  if (action.type === "uri") { window.open(action.uri, "_blank", "noopener"); return undefined; }
  if (action.type === "datetimepicker") return send({ type: "postback", data: action.data });
  return undefined;
}

function actionButton(action, attrs = {}) {
  const label = action.label ?? action.displayText ?? action.text ?? action.type;
  const data = { "data-action-type": action.type, "data-label": label };
  if (action.type === "postback") data["data-postback"] = action.data;
  if (action.type === "uri") {
    return el("a", { ...attrs, ...data, href: action.uri, target: "_blank", rel: "noopener", text: label });
  }
  const button = el("button", { type: "button", ...attrs, ...data, text: label });
  button.addEventListener("click", () => act(action));
  return button;
}

// Faults the platform suffers on the bot's next sends, to watch the server retry.
const FAULTS = {
  500: { status: 500, count: 5 },
  429: { status: 429, count: 5, retry_after_s: 2 },
  delay: { delay_s: 15, count: 1 },
};

async function fault(body) {
  const response = await fetch(`${CONTROL}/faults`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  status.dataset.ok = String(response.ok);
  status.textContent = response.ok ? `障害を予約 / faults queued: ${answer.queued}` : `失敗 / failed: ${response.status}`;
}

// -- Flex -----------------------------------------------------------------------------------

const SIZES = { xxs: ".65rem", xs: ".72rem", sm: ".82rem", md: ".95rem", lg: "1.1rem", xl: "1.3rem", xxl: "1.5rem", "3xl": "1.8rem", "4xl": "2.1rem", "5xl": "2.5rem" };
const GAPS = { none: "0", xs: ".15rem", sm: ".3rem", md: ".5rem", lg: ".75rem", xl: "1rem", xxl: "1.3rem" };

function flexItem(node, parentLayout) {
  const style = {};
  if (node.flex !== undefined && parentLayout !== "vertical") style.flex = String(node.flex);
  if (node.margin) style.marginTop = GAPS[node.margin] ?? node.margin;
  if (node.flex === undefined && parentLayout !== "vertical" && node.type !== "box") style.flex = "1";
  return style;
}

function flexNode(node, parentLayout = "vertical") {
  const style = flexItem(node, parentLayout);
  switch (node.type) {
    case "box": {
      const box = el("div", { class: `flex-box ${node.layout}`, style: {
        ...style, gap: GAPS[node.spacing] ?? node.spacing, backgroundColor: node.backgroundColor,
        padding: GAPS[node.paddingAll] ?? node.paddingAll, borderRadius: node.cornerRadius,
      } }, ...(node.contents ?? []).map((c) => flexNode(c, node.layout)));
      if (node.action) { box.classList.add("tappable"); box.addEventListener("click", () => act(node.action)); }
      return box;
    }
    case "text": {
      const spans = node.contents?.length ? node.contents.map((s) => el("span", { text: s.text, style: { color: s.color, fontWeight: s.weight === "bold" ? "bold" : null } })) : [node.text];
      return el("div", { class: `flex-text${node.wrap ? " wrap" : ""}`, style: {
        ...style, fontSize: SIZES[node.size] ?? node.size, color: node.color,
        fontWeight: node.weight === "bold" ? "bold" : null, textAlign: node.align,
      } }, ...spans);
    }
    case "button":
      return actionButton(node.action, { class: `flex-button ${node.style ?? "link"}`, style: { ...style, backgroundColor: node.style === "primary" ? node.color : null } });
    case "separator":
      return el("hr", { class: "flex-separator", style });
    case "filler":
      return el("div", { class: "flex-filler", style: { flex: String(node.flex ?? 1) } });
    case "image":
    case "icon":
      return el("a", { class: `flex-${node.type}`, href: node.url, target: "_blank", rel: "noopener", style, text: `🖼 ${node.type}` });
    default:
      return el("div", { class: "flex-unknown", text: `[${node.type}]` });
  }
}

function bubble(node) {
  const parts = ["header", "hero", "body", "footer"].filter((p) => node[p]);
  return el("div", { class: `flex-bubble ${node.size ?? "mega"}` },
    ...parts.map((p) => el("div", { class: `flex-${p}` }, flexNode(node[p]))));
}

function flexContents(contents) {
  if (contents.type === "carousel") return el("div", { class: "flex-carousel" }, ...contents.contents.map(bubble));
  return bubble(contents);
}

// -- messages -------------------------------------------------------------------------------

function botMessage(message) {
  switch (message.type) {
    case "text":
      return el("div", { class: "message text", "data-type": "text", text: message.text });
    case "flex":
      return el("div", { class: "message flex", "data-type": "flex", title: message.altText }, flexContents(message.contents));
    case "template": {
      const t = message.template;
      const actions = t.actions ?? (t.columns ?? []).flatMap((c) => c.actions);
      return el("div", { class: "message text", "data-type": "template" },
        el("div", { text: [t.title, t.text].filter(Boolean).join("\n") || message.altText }),
        el("div", { class: "actions" }, ...actions.map((a) => actionButton(a))));
    }
    case "location":
      return el("div", { class: "message text", "data-type": "location" },
        `📍 ${message.title}\n${message.address}\n`,
        el("a", { href: `https://www.google.com/maps?q=${message.latitude},${message.longitude}`, target: "_blank", rel: "noopener", text: `${message.latitude}, ${message.longitude}` }));
    default:
      return el("div", { class: "message text", "data-type": message.type, text: `[${message.type}]` });
  }
}

function residentSaid(event) {
  const label = labels.get(event.webhookEventId);
  if (event.type === "message") {
    const m = event.message;
    if (m.type === "text") return m.text;
    if (m.type === "location") return `📍 ${m.title ?? ""} (${m.latitude.toFixed(4)}, ${m.longitude.toFixed(4)})`;
    return `[${m.type}]`;
  }
  if (event.type === "postback") return label ?? `[postback] ${event.postback.data}`;
  return event.type === "follow" ? "（友だち追加 / followed）" : "（ブロック / unfollowed）";
}

function timeline(deliveries, events) {
  const items = [
    ...events.map((e) => ({ at: e.timestamp, mine: true, event: e })),
    ...deliveries.map((d) => ({ at: Date.parse(d.at), mine: false, delivery: d })),
  ].sort((a, b) => a.at - b.at);
  const nodes = items.map((item) => {
    const at = el("time", { text: clock(new Date(item.at)) });
    if (item.mine) {
      const redelivered = item.event.deliveryContext?.isRedelivery ? " (redelivery)" : "";
      return el("div", { class: "row mine", "data-event": item.event.type },
        el("div", { class: "message text", text: residentSaid(item.event) + redelivered }), at);
    }
    return el("div", { class: "row bot", "data-via": item.delivery.via },
      el("div", { class: "messages" }, ...item.delivery.messages.map(botMessage)), at);
  });
  return { nodes, last: items[items.length - 1] };
}

function quickReplies(last) {
  if (!last || last.mine) return [];
  const messages = last.delivery.messages;
  const items = messages[messages.length - 1].quickReply?.items ?? [];
  return items.map((item, index) => actionButton(item.action, { "data-quick-reply": String(index) }));
}

// -- residents and polling ------------------------------------------------------------------

function renderResidents(known) {
  for (const r of known) {
    if (!residents.some((mine) => mine.id === r.userId)) residents.push({ id: r.userId, name: r.displayName });
  }
  if (current && !residents.some((r) => r.id === current)) residents.push({ id: current, name: current.slice(0, 8) });
  if (!current && residents.length) current = residents[0].id;
  localStorage.setItem(STORED, JSON.stringify(residents));
  $("residents").replaceChildren(...residents.map((r) => {
    const tab = el("button", { type: "button", "data-resident": r.id, "aria-pressed": String(r.id === current), text: r.name ?? r.id });
    tab.addEventListener("click", () => {
      current = r.id;
      shown = "";
      if (r.language) $("language").value = r.language;
      refresh();
    });
    return tab;
  }));
  const me = residents.find((r) => r.id === current);
  $("resident-title").textContent = me ? `${me.name} (${me.id})` : "住民を追加してください / add a resident";
  for (const id of ["follow", "unfollow", "redeliver", "send", "location", "sticker"]) $(id).disabled = !me;
}

async function refresh() {
  let known = [];
  let deliveries = [];
  let events = [];
  try {
    known = await (await fetch(`${CONTROL}/users`)).json();
    if (current) {
      [deliveries, events] = await Promise.all([
        fetch(`${CONTROL}/users/${current}/messages`).then((r) => r.json()),
        fetch(`${CONTROL}/users/${current}/events`).then((r) => r.json()),
      ]);
    }
  } catch {
    return;
  }
  renderResidents(known);
  const snapshot = JSON.stringify([current, deliveries, events, [...labels]]);
  if (snapshot === shown) return;
  shown = snapshot;
  const { nodes, last } = timeline(deliveries, events);
  chat.replaceChildren(...(nodes.length ? nodes : [el("p", { class: "empty", text: "まだメッセージはありません / no messages yet" })]));
  chat.scrollTop = chat.scrollHeight;
  quick.replaceChildren(...quickReplies(last));
}

// -- location picker ------------------------------------------------------------------------

function openLocation() {
  panel.hidden = false;
}

function pick(latitude, longitude) {
  $("latitude").value = latitude.toFixed(5);
  $("longitude").value = longitude.toFixed(5);
  const marker = $("map-marker");
  marker.hidden = false;
  marker.style.left = `${((longitude - MAP.west) / (MAP.east - MAP.west)) * 100}%`;
  marker.style.top = `${((MAP.north - latitude) / (MAP.north - MAP.south)) * 100}%`;
}

function setUpLocation() {
  const map = $("map");
  for (const preset of PRESETS) {
    const button = el("button", { type: "button", "data-location-preset": preset.title, text: `📍 ${preset.title}` });
    button.addEventListener("click", () => { panel.hidden = true; send({ type: "location", ...preset }); });
    $("location-presets").append(button);
    map.append(el("span", { class: "map-place", text: preset.title, style: {
      left: `${((preset.longitude - MAP.west) / (MAP.east - MAP.west)) * 100}%`,
      top: `${((MAP.north - preset.latitude) / (MAP.north - MAP.south)) * 100}%`,
    } }));
  }
  map.addEventListener("click", (event) => {
    const box = map.getBoundingClientRect();
    pick(MAP.north - ((event.clientY - box.top) / box.height) * (MAP.north - MAP.south),
         MAP.west + ((event.clientX - box.left) / box.width) * (MAP.east - MAP.west));
  });
  $("send-location").addEventListener("click", () => {
    const latitude = Number($("latitude").value);
    const longitude = Number($("longitude").value);
    if (!$("latitude").value || !Number.isFinite(latitude) || !Number.isFinite(longitude)) return;
    panel.hidden = true;
    send({ type: "location", latitude, longitude, title: "位置情報 / pinned location" });
  });
  $("close-location").addEventListener("click", () => { panel.hidden = true; });
  $("location").addEventListener("click", () => { panel.hidden = !panel.hidden; });
}

function setUp() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    send({ type: "text", text });
  });
  $("sticker").addEventListener("click", () => send({ type: "sticker" }));
  $("follow").addEventListener("click", () => send({ type: "follow" }));
  $("unfollow").addEventListener("click", () => send({ type: "unfollow" }));
  $("redeliver").addEventListener("click", () => send({ redeliver: true }));
  $("language").addEventListener("change", () => {
    const me = residents.find((r) => r.id === current);
    if (me) { me.language = $("language").value; localStorage.setItem(STORED, JSON.stringify(residents)); }
  });
  for (const button of document.querySelectorAll("[data-fault]")) {
    button.addEventListener("click", () => fault(FAULTS[button.dataset.fault]));
  }
  $("add-resident-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("add-resident-name").value.trim() || `住民 ${residents.length + 1}`;
    const resident = { id: newUserId(), name, language: $("language").value };
    residents.push(resident);
    current = resident.id;
    $("add-resident-name").value = "";
    shown = "";
    send({ type: "follow" }); // a new friend: the bot greets them
  });
  const me = residents.find((r) => r.id === current);
  if (me?.language) $("language").value = me.language;
  setUpLocation();
  refresh();
  setInterval(refresh, POLL_MS);
}

setUp();
