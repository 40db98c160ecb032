// A function's code in the UI: the multi-file editor of code the API
// shows inline, the read-only listing of code it does not, archives in
// and out, and the dependency build. It builds its DOM with h() from
// app.js (loaded after it; called only once the page runs).
"use strict";
const Code = (() => {
  const size = n => n < 1024 ? n + " B" : n < 1 << 20 ? (n / 1024).toFixed(1) + " KiB" : (n / (1 << 20)).toFixed(1) + " MiB";
  const octal = m => "0" + (m & 0o777).toString(8);
  // The largest stored zip read in the browser to tell text from binary.
  const maxZipRead = 4 << 20;

  // ---------- the tree ----------

  // nest turns paths into directories and files, sorted, directories first.
  function nest(paths) {
    const root = { dirs: new Map(), files: [] };
    for (const p of paths) {
      const parts = p.split("/");
      let n = root;
      for (const d of parts.slice(0, -1)) {
        if (!n.dirs.has(d)) n.dirs.set(d, { dirs: new Map(), files: [] });
        n = n.dirs.get(d);
      }
      n.files.push({ name: parts[parts.length - 1], path: p });
    }
    return root;
  }

  // treeList renders paths as nested lists; item(path, name) makes each
  // file's button.
  function treeList(paths, item, attrs = {}) {
    const render = (node, a) => h("ul", a,
      [...node.dirs.keys()].sort().map(d => h("li", { class: "dir" }, h("span", { class: "dirname" }, d + "/"), render(node.dirs.get(d), {}))),
      node.files.sort((x, y) => x.name < y.name ? -1 : 1).map(f => h("li", {}, item(f.path, f.name))));
    return render(nest(paths), { class: "tree", ...attrs });
  }

  // select marks the button of path as the current file of a tree.
  function markCurrent(tree, path) {
    tree.querySelectorAll("button[data-path]").forEach(b => {
      if (b.dataset.path === path) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    });
  }

  // checkPath says what is wrong with a new file path, or "".
  function checkPath(p, taken) {
    if (!p) return "Give the file a path, such as lib/util.py.";
    if (p.startsWith("/") || p.endsWith("/") || p.split("/").some(e => e === "" || e === "." || e === ".."))
      return `"${p}" is not a clean relative path.`;
    if (taken.has(p)) return `There is already a file "${p}".`;
    for (const q of taken) {
      if (q.startsWith(p + "/")) return `"${p}" is a directory here.`;
      if (p.startsWith(q + "/")) return `"${q}" is a file, not a directory.`;
    }
    return "";
  }

  // indentOf is the indentation the editor inserts in a file.
  const indentOf = p => /\.(js|mjs|cjs|ts|json|ya?ml)$/.test(p) ? "  " : "    ";

  // ---------- editing inline code ----------

  // editor edits a files map: a tree of its files beside one editor per
  // file (each keeps its unsaved text when another is shown), with files
  // added, renamed and deleted. files() is the map to send. first is the
  // file shown first (else the first by path). readOnly shows the files
  // to read, without the controls that change them.
  function editor({ files, first = null, onChange = () => { }, readOnly = false }) {
    let saved = { ...files };
    const entries = new Map(); // path → { ed, pane } for files whose editor exists; else the text
    let texts = new Map(Object.entries(files));
    let current = null, seq = 0;
    const treeBox = h("div", { class: "tree-box" });
    const editors = h("div", { class: "editors" });
    const err = h("p", { class: "error", id: "file-error", role: "alert" });
    const pathIn = h("input", { id: "file-path", class: "mono", autocomplete: "off", spellcheck: "false" });
    const renameBtn = h("button", { type: "button", id: "rename-file" }, "Rename");
    const deleteBtn = h("button", { type: "button", id: "delete-file", class: "danger" }, "Delete file");
    const newIn = h("input", { id: "new-file", class: "mono", autocomplete: "off", spellcheck: "false", placeholder: "lib/util.py" });
    const addBtn = h("button", { type: "button", id: "add-file" }, "Add file");
    const editorLabel = h("label", { id: "editor-label" });
    const empty = h("p", { class: "empty", hidden: true }, "No files. Add one to save the code.");

    const text = p => entries.has(p) ? entries.get(p).ed.value : texts.get(p);
    const paths = () => [...new Set([...texts.keys(), ...entries.keys()])];
    const changed = p => !(p in saved) || text(p) !== saved[p];
    const dirty = () => { const ps = paths(); return ps.length !== Object.keys(saved).length || ps.some(changed); };

    function renderTree() {
      const tree = treeList(paths(), (p, name) => h("button", { type: "button", "data-path": p, title: p, onclick: () => select(p, true) },
        name, h("span", { class: "modified", title: "modified", hidden: !changed(p) }, " •", h("span", { class: "sr-only" }, " (modified)"))),
      { id: "file-tree", "aria-label": "Files" });
      treeBox.replaceChildren(tree);
      markCurrent(tree, current);
      empty.hidden = paths().length > 0;
    }
    function ensure(p) {
      if (entries.has(p)) return entries.get(p);
      const id = "code-" + ++seq;
      const ed = Editor.create({ id, label: p, value: texts.get(p) ?? "", indent: indentOf(p), readOnly });
      ed.textarea.dataset.path = p;
      ed.textarea.addEventListener("input", () => {
        const b = treeBox.querySelector(`button[data-path="${CSS.escape(ed.textarea.dataset.path)}"] .modified`);
        if (b) b.hidden = !changed(ed.textarea.dataset.path);
        onChange();
      });
      const entry = { ed, pane: ed.el };
      entry.pane.hidden = true;
      editors.append(entry.pane);
      entries.set(p, entry);
      texts.delete(p);
      return entry;
    }
    function select(p, focus) {
      if (p === null || !paths().includes(p)) p = paths().sort()[0] ?? null;
      current = p;
      for (const [q, e] of entries) e.pane.hidden = q !== p;
      err.textContent = "";
      const has = p !== null;
      [pathIn, renameBtn, deleteBtn].forEach(x => x.disabled = !has);
      pathIn.value = has ? p : "";
      editorLabel.hidden = !has;
      if (has) {
        const e = ensure(p);
        e.pane.hidden = false;
        editorLabel.htmlFor = e.ed.textarea.id;
        editorLabel.replaceChildren(h("span", { class: "mono" }, p), h("span", { class: "muted" }, readOnly ? " — read-only: this key lacks the deploy scope" : " — Tab indents; Esc then Tab leaves the editor"));
        if (focus) e.ed.textarea.focus();
      }
      markCurrent(treeBox, p);
    }
    function add() {
      const p = newIn.value.trim();
      const why = checkPath(p, new Set(paths()));
      if (why) { err.textContent = why; newIn.setAttribute("aria-invalid", "true"); newIn.focus(); return; }
      newIn.removeAttribute("aria-invalid"); newIn.value = "";
      texts.set(p, "");
      renderTree(); select(p, true); onChange();
    }
    function rename() {
      const to = pathIn.value.trim(), from = current;
      if (from === null || to === from) return;
      const others = new Set(paths()); others.delete(from);
      const why = checkPath(to, others);
      if (why) { err.textContent = why; pathIn.setAttribute("aria-invalid", "true"); pathIn.focus(); return; }
      pathIn.removeAttribute("aria-invalid");
      const e = ensure(from);
      entries.delete(from); entries.set(to, e);
      e.ed.textarea.dataset.path = to; e.ed.textarea.setAttribute("aria-label", to);
      current = to;
      renderTree(); select(to); onChange();
    }
    function remove() {
      const p = current;
      if (p === null) return;
      if (entries.has(p)) { entries.get(p).pane.remove(); entries.delete(p); }
      texts.delete(p);
      current = null;
      renderTree(); select(null); onChange();
      (treeBox.querySelector("button[aria-current]") || newIn).focus();
    }
    renameBtn.onclick = rename;
    deleteBtn.onclick = remove;
    addBtn.onclick = add;
    pathIn.onkeydown = e => { if (e.key === "Enter") { e.preventDefault(); rename(); } };
    newIn.onkeydown = e => { if (e.key === "Enter") { e.preventDefault(); add(); } };

    const el = h("div", { class: "files" },
      h("div", { class: "tree-pane" }, treeBox, empty, readOnly ? null : [
        h("label", { for: "new-file" }, "New file path"),
        h("div", { class: "inline" }, newIn, addBtn)]),
      h("div", { class: "editor-pane" }, readOnly ? null : [
        h("label", { for: "file-path" }, "Path of this file"),
        h("div", { class: "inline" }, pathIn, renameBtn, deleteBtn)],
        err, editorLabel, editors));

    // reset shows files as saved: the editors start again from them.
    function reset(next) {
      saved = { ...next };
      texts = new Map(Object.entries(next));
      for (const e of entries.values()) e.pane.remove();
      entries.clear();
      const keep = current;
      renderTree(); select(keep); onChange();
    }
    renderTree(); select(first);
    return {
      el,
      files() { const out = {}; for (const p of paths().sort()) out[p] = text(p); return out; },
      dirty, reset,
      get current() { return current; },
      select,
      // markError selects the file a server message names ("main.py line
      // 3: …") and marks its line; it reports whether it found one.
      markError(message) {
        for (const e of entries.values()) e.ed.mark(0);
        const m = /(?:^|\s)(\S+?) line (\d+)/.exec(message || "");
        if (!m || !paths().includes(m[1])) return false;
        select(m[1]);
        const e = ensure(m[1]);
        e.ed.mark(Number(m[2])); e.ed.textarea.focus();
        return true;
      },
      focus() { if (current !== null) ensure(current).ed.textarea.focus(); else newIn.focus(); },
    };
  }

  // ---------- code not shown inline ----------

  // whyNotInline says why the API does not show the code as a files map.
  function whyNotInline(info) {
    if (info.unpackedSize > 1 << 20) return `it is larger than 1 MiB (${size(info.unpackedSize)})`;
    if (info.files.length > 200) return `it has more than 200 files (${info.files.length})`;
    if (info.files.some(f => f.link)) return "it holds symbolic links";
    if (info.files.some(f => f.mode & 0o111)) return "it holds executable files";
    return "it holds files that are not UTF-8 text";
  }

  // readZip reads a zip's stored and deflated entries: path → bytes.
  async function readZip(buf) {
    const v = new DataView(buf), u8 = new Uint8Array(buf);
    let end = -1;
    for (let i = buf.byteLength - 22; i >= Math.max(0, buf.byteLength - 22 - 0xffff); i--) {
      if (v.getUint32(i, true) === 0x06054b50) { end = i; break; }
    }
    if (end < 0) throw new Error("not a zip");
    const names = new TextDecoder();
    const out = new Map();
    let p = v.getUint32(end + 16, true);
    for (let n = v.getUint16(end + 10, true); n > 0; n--) {
      if (v.getUint32(p, true) !== 0x02014b50) throw new Error("bad zip directory");
      const method = v.getUint16(p + 10, true), csize = v.getUint32(p + 20, true);
      const nlen = v.getUint16(p + 28, true), rest = v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
      const local = v.getUint32(p + 42, true);
      const name = names.decode(u8.subarray(p + 46, p + 46 + nlen));
      p += 46 + nlen + rest;
      const start = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
      const data = u8.subarray(start, start + csize);
      if (method === 0) out.set(name, data);
      else if (method === 8) {
        const s = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
        out.set(name, new Uint8Array(await new Response(s).arrayBuffer()));
      }
    }
    return out;
  }

  // kindOf names what a file is: a link, an executable, text or binary
  // (from its bytes, when read), or "" when unknown.
  function kindOf(fi, bytes) {
    if (fi.link) return "symlink";
    if (fi.mode & 0o111) return "executable";
    if (!bytes) return "";
    try { new TextDecoder("utf-8", { fatal: true }).decode(bytes); return "text"; } catch { return "binary"; }
  }

  // listing shows code the API does not inline: every file with its size
  // and mode, read-only; text files can be read. load() fetches the
  // stored zip, to tell text from binary.
  function listing({ info, load }) {
    const byPath = new Map(info.files.map(f => [f.path, f]));
    let contents = null; // path → bytes, once read
    const detail = h("div", { class: "file-detail", id: "file-detail", "aria-live": "polite" });
    const treeBox = h("div", { class: "tree-box" });
    const meta = fi => {
      const kind = kindOf(fi, contents && contents.get(fi.path));
      return [kind, fi.link ? "→ " + fi.link : size(fi.size), fi.link ? "" : octal(fi.mode)].filter(Boolean).join(" · ");
    };
    let current = null;
    function renderTree() {
      const tree = treeList([...byPath.keys()], (p, name) => h("button", { type: "button", "data-path": p, title: p, onclick: () => select(p) },
        name, h("span", { class: "meta" }, " " + meta(byPath.get(p)))), { id: "file-tree", "aria-label": "Files" });
      treeBox.replaceChildren(tree);
      markCurrent(tree, current);
    }
    function select(p) {
      current = p;
      markCurrent(treeBox, p);
      const fi = byPath.get(p);
      const bytes = contents && contents.get(p);
      const kind = kindOf(fi, bytes);
      const facts = [kind ? kind[0].toUpperCase() + kind.slice(1) + (kind === "symlink" ? " to " + fi.link : " file") : "File",
        fi.link ? "" : fi.size + " bytes", "mode " + octal(fi.mode)].filter(Boolean).join(" · ");
      detail.replaceChildren(h("h3", { class: "mono" }, p), h("p", { class: "muted", id: "file-facts" }, facts),
        fi.sha256 ? h("p", { class: "muted mono small" }, "sha256 " + fi.sha256) : null,
        kind === "text" ? h("pre", { id: "file-content", tabindex: 0, "aria-label": "Contents of " + p }, new TextDecoder().decode(bytes.subarray(0, 256 << 10))) : null);
    }
    renderTree();
    if (info.size <= maxZipRead && info.files.length < 0xffff) {
      load().then(readZip).then(m => { contents = m; renderTree(); if (current) select(current); })
        .catch(() => { /* sizes and modes stay; kinds stay unknown */ });
    }
    return h("div", { class: "files" },
      h("div", { class: "tree-pane" }, treeBox),
      h("div", { class: "editor-pane" },
        h("p", { class: "notice", id: "not-inline" }, `This code is read-only here: ${whyNotInline(info)}. Download it, change it and upload it again.`),
        h("p", { class: "muted" }, `${info.files.length} file${info.files.length === 1 ? "" : "s"}, ${size(info.unpackedSize)} (${size(info.size)} zipped)`),
        detail));
  }

  // ---------- archives ----------

  // archiveType is the media type of an archive file, from its first
  // bytes or else its name; null when it is neither zip nor tar(.gz).
  async function archiveType(file) {
    const head = new Uint8Array(await file.slice(0, 262).arrayBuffer());
    if (head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5)) return "application/zip";
    if (head[0] === 0x1f && head[1] === 0x8b) return "application/gzip";
    if (String.fromCharCode(...head.subarray(257, 262)) === "ustar") return "application/x-tar";
    const name = file.name.toLowerCase();
    if (name.endsWith(".zip")) return "application/zip";
    if (name.endsWith(".tar.gz") || name.endsWith(".tgz")) return "application/gzip";
    if (name.endsWith(".tar")) return "application/x-tar";
    return null;
  }
  const archiveAccept = ".zip,.tar.gz,.tgz,.tar,application/zip,application/gzip,application/x-tar";

  // ---------- the build ----------

  // buildView shows a function's dependency build: its state as a badge,
  // its error and its log (open when it failed), with lines appended
  // while it runs.
  function buildView() {
    const state = h("span", { class: "badge", id: "build-state" });
    const facts = h("span", { class: "muted", id: "build-facts" });
    const error = h("p", { class: "error", id: "build-error" });
    const log = h("pre", { id: "build-log", tabindex: 0 });
    const details = h("details", { id: "build-log-box" }, h("summary", {}, "Build log"), log);
    const el = h("div", { class: "build", id: "build", "aria-live": "polite" },
      h("p", {}, h("span", { class: "muted" }, "Dependencies "), state, " ", facts), error, details);
    let running = false;
    const setState = s => { state.textContent = s; state.className = "badge b-" + s; };
    return {
      el,
      get running() { return running; },
      // show renders a buildStatus as GET /api/functions/{id} gives it;
      // code is the SHA-256 of the function's code, which a failed build
      // of other code left serving.
      show(st, code) {
        running = false;
        el.hidden = !st;
        if (!st) return;
        setState(st.state);
        const when = st.finishedAt ? "finished " + ago(st.finishedAt) : st.startedAt ? "started " + ago(st.startedAt) : "";
        const serving = st.state !== "failed" ? "" : st.codeSha256 && code && st.codeSha256 !== code
          ? "the code that built before still serves" : "it cannot run until code that builds is saved";
        facts.textContent = [st.layer ? `layer ${st.layer.slice(0, 12)}${st.cached ? " (cached)" : ""}` : st.state === "ready" ? "none declared" : "", when, serving].filter(Boolean).join(" · ");
        error.textContent = st.error || "";
        log.textContent = st.log || "(no output)";
        details.hidden = !st.log && st.state !== "failed";
        details.open = st.state === "failed";
      },
      // event applies a live "build" event: a state change or a line.
      event(ev) {
        if (ev.state === "building") {
          if (!running) { running = true; log.textContent = ""; error.textContent = ""; facts.textContent = "running"; }
          el.hidden = false; details.hidden = false; details.open = true;
          setState("building");
          if (ev.line !== undefined && ev.line !== "") log.append(ev.line + "\n");
          log.scrollTop = log.scrollHeight;
        } else {
          running = false;
          setState(ev.state);
          if (ev.state === "failed" && ev.line) error.textContent = ev.line;
        }
      },
    };
  }

  return { editor, listing, readZip, archiveType, archiveAccept, buildView, size };
})();
