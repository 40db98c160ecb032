// JsonView: a JSON value as a collapsible tree (objects and arrays are
// <details>, so mouse and keyboard open and close them), with buttons to
// copy it as JSON and to open or close every level. Its text reads as
// JSON ("name": "Ada"), so what a user selects and copies by hand is too.
"use strict";
const JsonView = (() => {
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const OPEN_DEPTH = 2; // levels open at first
  const BIG = 200;      // larger arrays and objects start closed

  function scalar(v) {
    if (v === null) return el("span", "j-null", "null");
    switch (typeof v) {
      case "string": return el("span", "j-str", JSON.stringify(v));
      case "number": return el("span", "j-num", String(v));
      case "boolean": return el("span", "j-bool", String(v));
      default: return el("span", "j-null", JSON.stringify(v) ?? "undefined");
    }
  }
  // node renders v under key (a string, or null at the root, or a number
  // in an array, which shows no key).
  function node(key, v, depth, last) {
    const label = key === null || typeof key === "number" ? null : el("span", "j-key", JSON.stringify(key));
    const comma = last ? null : el("span", "j-punct", ",");
    if (v === null || typeof v !== "object") {
      const line = el("div", "j-line");
      if (label) line.append(label, ": ");
      line.append(scalar(v));
      if (comma) line.append(comma);
      return line;
    }
    const isArr = Array.isArray(v), entries = isArr ? v.map((x, i) => [i, x]) : Object.entries(v);
    const [open, close] = isArr ? ["[", "]"] : ["{", "}"];
    if (!entries.length) {
      const line = el("div", "j-line");
      if (label) line.append(label, ": ");
      line.append(el("span", "j-punct", open + close));
      if (comma) line.append(comma);
      return line;
    }
    const d = el("details", "j-node");
    d.open = depth < OPEN_DEPTH && entries.length <= BIG;
    const sum = el("summary");
    if (label) sum.append(label, ": ");
    sum.append(el("span", "j-punct", open), el("span", "j-count", ` ${entries.length} ${isArr ? (entries.length === 1 ? "item" : "items") : (entries.length === 1 ? "key" : "keys")} `));
    const body = el("div", "j-body");
    entries.forEach(([k, x], i) => body.append(node(k, x, depth + 1, i === entries.length - 1)));
    const end = el("div", "j-line", close);
    if (comma) end.append(comma);
    d.append(sum, body, end);
    return d;
  }

  async function copyText(text) {
    try { await navigator.clipboard.writeText(text); return true; } catch { /* not allowed: the old way */ }
    const ta = el("textarea"); ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
    document.body.append(ta); ta.select();
    const ok = document.execCommand("copy"); ta.remove();
    return ok;
  }

  // view returns {el}: the tree of value in an element of id (for its
  // text), under a toolbar named after label.
  function view(value, { id, label }) {
    const tree = el("div", "jsontree mono");
    if (id) tree.id = id;
    tree.append(node(null, value, 0, true));
    const status = el("span", "muted small j-status");
    status.setAttribute("role", "status");
    const btn = (text, aria, onclick) => { const b = el("button", "small", text); b.type = "button"; b.setAttribute("aria-label", aria); b.onclick = onclick; return b; };
    const copy = btn("Copy", `Copy ${label} as JSON`, async () => {
      const ok = await copyText(JSON.stringify(value, null, 2));
      status.textContent = ok ? "Copied" : "Copy failed: select the text instead";
      setTimeout(() => { status.textContent = ""; }, 2000);
    });
    copy.dataset.copy = id || "";
    const tools = el("div", "json-tools");
    tools.append(copy);
    if (value !== null && typeof value === "object") {
      tools.append(btn("Expand all", `Expand all of ${label}`, () => tree.querySelectorAll("details").forEach(d => { d.open = true; })),
        btn("Collapse all", `Collapse all of ${label}`, () => tree.querySelectorAll("details").forEach(d => { d.open = false; })));
    }
    tools.append(status);
    const wrap = el("div", "json-view");
    wrap.append(tools, tree);
    return wrap;
  }

  return { view, copyText };
})();
