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
