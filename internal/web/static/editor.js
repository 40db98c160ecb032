// A light code editor: a textarea with line numbers, Tab/Shift-Tab
// indentation, auto-indent on Enter and bracket pairing. No dependencies.
"use strict";
const Editor = (() => {
  const pairs = { "(": ")", "[": "]", "{": "}", '"': '"', "'": "'" };
  // readOnly shows the text without letting it change.
  function create({ id, label, value = "", indent = "    ", rows = 18, readOnly = false }) {
    const wrap = document.createElement("div");
    wrap.className = "editor";
    const gutter = document.createElement("div");
    gutter.className = "gutter";
    gutter.setAttribute("aria-hidden", "true");
    const ta = document.createElement("textarea");
    ta.id = id; ta.rows = rows; ta.spellcheck = false; ta.value = value;
    ta.setAttribute("autocapitalize", "off"); ta.setAttribute("autocomplete", "off");
    ta.className = "mono";
    if (label) ta.setAttribute("aria-label", label);
    ta.readOnly = readOnly;
    wrap.append(gutter, ta);
    let marked = 0;
    const render = () => {
      const n = ta.value.split("\n").length;
      let s = "";
      for (let i = 1; i <= n; i++) s += (i === marked ? `<span class="hl">${i}</span>` : i) + "\n";
      gutter.innerHTML = s;
      gutter.scrollTop = ta.scrollTop;
    };
    const insert = (text, selStart, selEnd) => {
      const { selectionStart: a, selectionEnd: b } = ta;
      ta.setRangeText(text, a, b, "end");
      if (selStart !== undefined) ta.setSelectionRange(a + selStart, a + (selEnd ?? selStart));
      ta.dispatchEvent(new Event("input", { bubbles: true }));
    };
    ta.addEventListener("keydown", e => {
      if (ta.readOnly) return; // Tab moves on; nothing is typed
      const { selectionStart: a, selectionEnd: b, value: v } = ta;
      if (e.key === "Tab" && !e.ctrlKey && !e.altKey && !e.metaKey) {
        // Escape leaves the editor for keyboard users: Tab indents only
        // after the user typed in it; press Esc then Tab to move on.
        if (ta.dataset.escaped === "1") { ta.dataset.escaped = ""; return; }
        e.preventDefault();
        const lineStart = v.lastIndexOf("\n", a - 1) + 1;
        if (e.shiftKey) {
          const lead = v.slice(lineStart).match(/^ {1,4}|^\t/);
          if (lead) { ta.setRangeText("", lineStart, lineStart + lead[0].length, "preserve"); ta.dispatchEvent(new Event("input", { bubbles: true })); }
        } else if (a !== b && v.slice(a, b).includes("\n")) {
          const end = b;
          const block = v.slice(lineStart, end).replace(/^/gm, indent);
          ta.setRangeText(block, lineStart, end, "select");
          ta.dispatchEvent(new Event("input", { bubbles: true }));
        } else insert(indent);
      } else if (e.key === "Escape") {
        ta.dataset.escaped = "1";
      } else if (e.key === "Enter" && !e.shiftKey && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        const lineStart = v.lastIndexOf("\n", a - 1) + 1;
        let lead = v.slice(lineStart, a).match(/^[ \t]*/)[0];
        const before = v.slice(lineStart, a).trimEnd();
        if (/[:{[(]$/.test(before)) lead += indent;
        insert("\n" + lead);
      } else if (pairs[e.key] && a === b && !e.ctrlKey && !e.metaKey) {
        const next = v[a] || "";
        if ((e.key === '"' || e.key === "'") && next === e.key) { e.preventDefault(); ta.setSelectionRange(a + 1, a + 1); return; }
        if (/\w/.test(next) || ((e.key === '"' || e.key === "'") && /\w/.test(v[a - 1] || ""))) return;
        e.preventDefault();
        insert(e.key + pairs[e.key], 1);
      } else if ([")", "]", "}"].includes(e.key) && a === b && v[a] === e.key) {
        e.preventDefault(); ta.setSelectionRange(a + 1, a + 1);
      } else ta.dataset.escaped = "";
    });
    ta.addEventListener("input", () => { marked = 0; render(); });
    ta.addEventListener("scroll", () => { gutter.scrollTop = ta.scrollTop; });
    render();
    return {
      el: wrap, textarea: ta,
      get value() { return ta.value; },
      set value(s) { ta.value = s; render(); },
      mark(line) { marked = line || 0; render(); wrap.setAttribute("aria-invalid", line ? "true" : "false"); },
    };
  }
  return { create };
})();
