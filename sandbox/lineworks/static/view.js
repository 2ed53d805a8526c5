// The LINE WORKS sandbox's web view: each channel's and 1:1 talk's bot messages with their
// buttons; pressing one asks the sandbox to send the signed callback a crew member's press
// would (POST /_sandbox/lineworks/press), as the member picked at the top.
"use strict";

const CONTROL = "/_sandbox/lineworks";
const POLL_MS = 1000;
const talksBox = document.querySelector("[data-talks]");
const picker = document.querySelector("[data-user-picker]");
const otherUser = document.querySelector("[data-user-input]");
const status = document.querySelector("[data-press-status]");
let shown = "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function when(at) {
  const moment = new Date(at);
  const time = moment.toLocaleTimeString("ja-JP", { timeZone: "Asia/Tokyo", hour12: false });
  return el("time", { datetime: at, text: time });
}

function presser() {
  return otherUser.value.trim() || picker.value;
}

async function press(talk, body) {
  status.dataset.ok = "";
  status.textContent = "送信中 / sending…";
  const request = talk.channel ? { channelId: talk.id, userId: presser() } : { userId: talk.id };
  try {
    const response = await fetch(`${CONTROL}/press`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...request, ...body }),
    });
    const answer = await response.json();
    const ok = response.ok && answer.status >= 200 && answer.status < 300;
    status.dataset.ok = String(ok);
    status.dataset.status = String(answer.status ?? response.status);
    status.textContent = response.ok
      ? `${request.userId}: サーバー応答 / server answered ${answer.status}`
      : `失敗 / failed: ${answer.error ?? response.status}`;
  } catch (error) {
    status.dataset.ok = "false";
    status.textContent = `失敗 / failed: ${error}`;
  }
  await refresh();
}

function actionNode(talk, action, index) {
  const label = action.label ?? action.displayText ?? action.data ?? "";
  if (action.type === "uri") {
    return el("a", { href: action.uri, target: "_blank", rel: "noopener", "data-action": index,
                     "data-type": "uri", text: label });
  }
  const postback = action.type === "postback" ? action.data : action.postback;
  const button = el("button", { type: "button", "data-action": index, "data-type": action.type,
                                "data-label": label, text: label });
  if (action.type === "copy") {
    button.addEventListener("click", () => navigator.clipboard?.writeText(action.copyText));
  } else if (postback) {
    button.dataset.postback = postback;
    button.addEventListener("click", () => press(talk, { postback }));
  } else {
    button.addEventListener("click", () => press(talk, { text: action.text ?? label }));
  }
  return button;
}

function messageNode(talk, message, index) {
  const content = message.content;
  const text = content.text ?? content.contentText ?? content.altText ?? JSON.stringify(content);
  const node = el("article", { class: "message", "data-message": index, "data-type": content.type },
                  el("div", { text }), when(message.at));
  const actions = content.actions ?? [];
  if (actions.length) {
    node.append(el("div", { class: "actions" }, ...actions.map((a, i) => actionNode(talk, a, i))));
  }
  const quick = (content.quickReply?.items ?? []).map((item) => item.action);
  if (quick.length) {
    const start = actions.length;
    node.append(el("div", { class: "actions quick" },
                   ...quick.map((a, i) => actionNode(talk, a, start + i))));
  }
  return node;
}

function pressNode(entry) {
  const content = entry.callback.content;
  const said = content ? content.text : `postback ${entry.callback.data}`;
  return el("div", { class: "press", "data-press": entry.userId },
            el("div", { text: `${entry.userId}: ${said} (${entry.status})` }), when(entry.at));
}

function talkNode(talk, presses) {
  const key = talk.channel ? "data-channel" : "data-user-talk";
  const heading = talk.channel
    ? el("h2", {}, talk.title, " ", el("small", { text: talk.title === talk.id ? "" : talk.id }))
    : el("h2", {}, `1:1 ${talk.title}`, " ", el("small", { text: talk.id }));
  const items = [
    ...talk.messages.map((m, i) => ({ at: m.at, node: messageNode(talk, m, i) })),
    ...presses.map((p) => ({ at: p.at, node: pressNode(p) })),
  ].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  const timeline = el("div", { class: "timeline" },
                      ...(items.length ? items.map((i) => i.node)
                                       : [el("p", { class: "empty", text: "メッセージなし / no messages" })]));
  const input = el("input", { "data-say-input": "", placeholder: "メッセージ / message",
                              "aria-label": "message" });
  const say = el("form", { class: "say", "data-say": "" }, input,
                 el("button", { type: "submit", text: "送信 / send" }));
  say.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) press(talk, { text: input.value.trim() });
  });
  return el("section", { class: "talk", [key]: talk.id }, heading, timeline, say);
}

function fillPicker(crew, talks) {
  const ids = new Set([...Object.keys(crew), ...talks.users.map((u) => u.id)]);
  if (!ids.size) ids.add("crew-1");
  const wanted = [...ids].join("\n");
  if (picker.dataset.ids === wanted) return;
  const chosen = picker.value;
  picker.replaceChildren(...[...ids].map((id) => el("option", { value: id, text: crew[id] ? `${crew[id]} (${id})` : id })));
  picker.dataset.ids = wanted;
  if (ids.has(chosen)) picker.value = chosen;
}

async function refresh() {
  let talks;
  try {
    const response = await fetch(`${CONTROL}/talks`);
    talks = await response.json();
  } catch {
    return;
  }
  fillPicker(talks.crew, talks);
  const snapshot = JSON.stringify(talks);
  if (snapshot === shown) return;
  shown = snapshot;
  const focused = document.activeElement?.closest("[data-channel],[data-user-talk]");
  const focusKey = focused ? (focused.dataset.channel ?? `u:${focused.dataset.userTalk}`) : null;
  const draft = focused?.querySelector("[data-say-input]")?.value ?? "";
  const nodes = [
    ...talks.channels.map((c) => talkNode({ ...c, channel: true },
                                          talks.presses.filter((p) => p.channelId === c.id))),
    ...talks.users.map((u) => talkNode({ ...u, title: u.name, channel: false },
                                       talks.presses.filter((p) => !p.channelId && p.userId === u.id))),
  ];
  talksBox.replaceChildren(...nodes);
  for (const timeline of talksBox.querySelectorAll(".timeline")) timeline.scrollTop = timeline.scrollHeight;
  if (focusKey) {
    const again = focusKey.startsWith("u:")
      ? talksBox.querySelector(`[data-user-talk="${CSS.escape(focusKey.slice(2))}"]`)
      : talksBox.querySelector(`[data-channel="${CSS.escape(focusKey)}"]`);
    const input = again?.querySelector("[data-say-input]");
    if (input && draft) { input.value = draft; input.focus(); }
  }
}

refresh();
setInterval(refresh, POLL_MS);
