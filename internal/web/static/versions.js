// A function's versions and aliases in the UI: the draft published, the
// versions with what changed from the one before, aliases created, moved
// and rolled back; the qualifier a call names (invoke, history filter);
// and an execution replayed against another version. It builds its DOM
// with h() and calls the API with api.call() from app.js (loaded after
// it; called only once the page runs).
"use strict";
const Versions = (() => {
  const LATEST = "$LATEST";
  const enc = encodeURIComponent;
  // share is a weight as a percentage: 0.9 → "90%", 0.125 → "12.5%".
  const share = w => Math.round(w * 1000) / 10 + "%";
  const when = t => h("time", { datetime: t, title: new Date(t).toLocaleString() }, ago(t));
  // label is how a version or $LATEST is named: "v8", "$LATEST".
  const label = v => v === LATEST || v === 0 || v === "0" ? LATEST : "v" + v;

  // routes is where an alias sends calls: "8 (90%) · 7 (10%)", or "8".
  function routes(a) {
    const extra = Object.entries(a.additionalVersionWeights || {});
    if (!extra.length) return String(a.version);
    const rest = 1 - extra.reduce((s, [, w]) => s + w, 0);
    return [[a.version, rest], ...extra].map(([v, w]) => `${v} (${share(w)})`).join(" · ");
  }

  // rolloutNote says where an alias's rollout stands: the step it is at
  // while it runs, how it ended otherwise (and why, when it went back).
  function rolloutNote(r) {
    if (!r || !r.state) return null;
    const steps = r.steps || [];
    const text = r.state === "running"
      ? `Rolling out v${r.to}: step ${r.step + 1} of ${steps.length} (${share(steps[r.step] || 0)}, every ${r.interval}, at most ${share(r.maxErrorRate)} errors)`
      : `Rollout of v${r.to} ${r.state}` + (r.reason ? `: ${r.reason}` : "");
    return h("div", { class: "rollout muted small", "data-state": r.state }, text);
  }

  // ---------- what changed between two versions ----------

  const configFields = ["runtime", "handler", "memory", "timeout", "driver"];
  // configChanges lists the settings that differ from a to b; of env,
  // only the names of the variables (their values may be secrets).
  function configChanges(a, b) {
    const out = [];
    const shown = v => v === undefined || v === null || v === "" ? "–" : String(v);
    for (const k of configFields) if (shown(a[k]) !== shown(b[k])) out.push(`${k}: ${shown(a[k])} → ${shown(b[k])}`);
    const ea = a.env || {}, eb = b.env || {};
    const added = Object.keys(eb).filter(k => !(k in ea)).sort();
    const removed = Object.keys(ea).filter(k => !(k in eb)).sort();
    // A value or a secret's reference ({"secret": "name"}).
    const changed = Object.keys(eb).filter(k => k in ea && JSON.stringify(ea[k]) !== JSON.stringify(eb[k])).sort();
    if (added.length) out.push("env added: " + added.join(", "));
    if (removed.length) out.push("env removed: " + removed.join(", "));
    if (changed.length) out.push("env changed: " + changed.join(", "));
    return out;
  }

  // fileChanges compares the files of two versions' code by their hashes.
  function fileChanges(a, b) {
    const files = v => new Map(((v.codeInfo || {}).files || []).map(f => [f.path, f.sha256]));
    const fa = files(a), fb = files(b);
    const out = [];
    for (const [p, s] of fb) if (!fa.has(p)) out.push(["added", p]); else if (fa.get(p) !== s) out.push(["changed", p]);
    for (const p of fa.keys()) if (!fb.has(p)) out.push(["removed", p]);
    return out.sort((x, y) => x[1] < y[1] ? -1 : 1);
  }

  function diffView(prev, v) {
    const cfg = configChanges(prev, v), files = fileChanges(prev, v);
    return h("div", { class: "version-changes" },
      h("p", { class: "muted small" }, `From v${prev.version} to v${v.version}`),
      h("h4", {}, "Configuration"),
      cfg.length ? h("ul", { class: "config-changes" }, cfg.map(c => h("li", {}, c))) : h("p", { class: "muted" }, "No change."),
      h("h4", {}, "Code files"),
      files.length ? h("ul", { class: "file-changes" }, files.map(([kind, p]) => h("li", { class: "f-" + kind }, h("span", { class: "badge" }, kind), " ", h("span", { class: "mono" }, p))))
        : h("p", { class: "muted" }, "No change."));
  }

  // ---------- qualifiers ----------

  // fillQualifiers puts $LATEST, each version and each alias in sel,
  // keeping its choice when it is still there.
  function fillQualifiers(sel, versions, aliases) {
    const was = sel.value;
    sel.replaceChildren(h("option", { value: LATEST }, LATEST + " (draft)"),
      versions.length ? h("optgroup", { label: "Versions" }, versions.slice().reverse().map(v =>
        h("option", { value: String(v.version) }, "v" + v.version + (v.description ? " – " + v.description : "")))) : null,
      aliases.length ? h("optgroup", { label: "Aliases" }, aliases.map(a => h("option", { value: a.name }, `${a.name} → ${routes(a)}`))) : null);
    if ([...sel.options].some(o => o.value === was)) sel.value = was;
  }

  // ---------- the panel ----------

  // panel is the Versions section of function f; onLoad is told of the
  // versions and aliases each time they are read.
  // Publishing, deleting and aliases are the deploy scope's: without it
  // the panel only lists.
  function panel(f, { onLoad = () => { } } = {}) {
    const path = "/api/functions/" + enc(f.id);
    const deploy = Session.can("deploy");
    let versions = [], aliases = [];
    const openDiffs = new Set(); // versions whose changes are shown, kept across reloads
    const openHistories = new Set();
    const err = errorBox("versions-error");
    const title = h("h2", { id: "versions-title", tabindex: -1 }, "Versions and aliases");

    const descIn = h("input", { id: "publish-description", autocomplete: "off", placeholder: "what changed (optional)" });
    const publishBtn = h("button", { type: "button", class: "primary", id: "publish" }, "Publish");
    const publishStatus = h("span", { id: "publish-status", role: "status", class: "muted" });
    const vBody = h("tbody", { id: "versions" });
    const aBody = h("tbody", { id: "aliases" });

    // act runs call from btn, shows its error, and reads everything
    // again; the keyboard stays on btn's successor when it is redrawn.
    async function act(btn, call, explain = e => e) {
      showError(err, null);
      btn.disabled = true;
      try { await call(); } catch (e) { showError(err, explain(e)); } finally { btn.disabled = false; }
      try { await load(); } catch (e) { showError(err, e); }
      if (!btn.isConnected) { const again = btn.id && document.getElementById(btn.id); (again || title).focus(); }
    }

    publishBtn.onclick = () => act(publishBtn, async () => {
      publishStatus.textContent = "";
      const d = descIn.value.trim();
      const r = await api.call("POST", path + "/versions", d ? { description: d } : {}, { status: true });
      publishStatus.textContent = r.status === 201 ? `version ${r.data.version} published` : `unchanged: version ${r.data.version}`;
      if (r.status === 201) descIn.value = "";
    });

    function versionRows(v, prev) {
      const n = v.version;
      const detail = h("tr", { class: "version-diff", id: "version-diff-" + n, hidden: !openDiffs.has(n) },
        h("td", { colspan: 5 }, prev ? diffView(prev, v) : null));
      let toggle = h("span", { class: "muted small" }, "first version");
      if (prev) {
        toggle = h("button", { type: "button", class: "diff-toggle", id: "diff-toggle-" + n, "aria-expanded": String(openDiffs.has(n)), "aria-controls": detail.id,
          "aria-label": `Diff of v${n} vs v${prev.version}` }, "Diff vs previous");
        toggle.onclick = () => {
          const open = toggle.getAttribute("aria-expanded") !== "true";
          toggle.setAttribute("aria-expanded", String(open)); detail.hidden = !open;
          if (open) openDiffs.add(n); else openDiffs.delete(n);
        };
      }
      const del = h("button", { type: "button", class: "danger delete", id: "delete-version-" + n, "aria-label": `Delete version ${n}` }, "Delete");
      del.onclick = () => {
        if (!confirm(`Delete version ${n} of ${f.name}? Calls naming it will fail.`)) return;
        act(del, () => api.call("DELETE", `${path}/versions/${n}`));
      };
      const sha = (v.codeInfo && v.codeInfo.sha256) || "";
      const tr = h("tr", { "data-version": n },
        h("th", { scope: "row" }, "v" + n), h("td", { class: "description" }, v.description || h("span", { class: "muted" }, "–")),
        h("td", {}, v.publishedAt ? when(v.publishedAt) : "–"), h("td", { class: "mono sha", title: sha }, sha ? sha.slice(0, 12) : "–"),
        h("td", { class: "actions" }, toggle, deploy ? del : null));
      return [tr, detail];
    }

    function aliasRow(a) {
      const moves = (a.history || []).slice().reverse();
      const hist = h("details", { class: "alias-history", open: openHistories.has(a.name) },
        h("summary", {}, `History (${moves.length})`),
        h("ol", {}, moves.map(m => h("li", {}, when(m.at), ` · ${m.reason} → `, routes(m)))));
      hist.addEventListener("toggle", () => { if (hist.open) openHistories.add(a.name); else openHistories.delete(a.name); });
      const move = h("button", { type: "button", class: "move", "aria-label": `Move ${a.name}` }, "Move");
      move.onclick = () => { fill(a); versionSel.focus(); };
      const rollback = h("button", { type: "button", class: "rollback", id: "rollback-" + a.name, "aria-label": `Roll back ${a.name}` }, "Rollback");
      rollback.onclick = () => act(rollback, async () => {
        const b = await api.call("POST", `${path}/aliases/${enc(a.name)}/rollback`, {});
        toast(`${a.name} rolled back to ${routes(b)}`);
      });
      const del = h("button", { type: "button", class: "danger delete", "aria-label": `Delete alias ${a.name}` }, "Delete");
      del.onclick = () => {
        if (!confirm(`Delete alias ${a.name} of ${f.name}? Calls naming it will fail.`)) return;
        act(del, () => api.call("DELETE", `${path}/aliases/${enc(a.name)}`));
      };
      return h("tr", { "data-alias": a.name },
        h("th", { scope: "row" }, a.name, a.description ? h("div", { class: "muted small" }, a.description) : null),
        h("td", { class: "routes" }, routes(a), rolloutNote(a.rollout)), h("td", {}, hist), h("td", { class: "actions" }, deploy ? [move, rollback, del] : null));
    }

    // The form that creates an alias, or moves the one it names.
    const nameIn = h("input", { id: "alias-name", autocomplete: "off", list: "alias-names", placeholder: "live", class: "mono" });
    const names = h("datalist", { id: "alias-names" });
    const versionSel = h("select", { id: "alias-version" });
    const secondSel = h("select", { id: "alias-second" });
    const weightIn = h("input", { id: "alias-weight", type: "number", min: 1, max: 99, step: 1, placeholder: "10", disabled: true });
    const saveAlias = h("button", { type: "submit", class: "primary", id: "save-alias" }, "Create alias");
    const field = (id, text, input) => h("div", {}, h("label", { for: id }, text), input);
    const aliasForm = h("form", { id: "alias-form", novalidate: true, "aria-labelledby": "alias-form-title" },
      h("h3", { id: "alias-form-title" }, "Create or move an alias"),
      h("div", { class: "fields" }, field("alias-name", "Alias name", nameIn), field("alias-version", "Version", versionSel),
        field("alias-second", "Second version (optional)", secondSel), field("alias-weight", "Its share of calls (%)", weightIn)),
      names, h("div", { class: "row" }, saveAlias));
    const existing = name => aliases.find(a => a.name === name);
    const formMode = () => { saveAlias.textContent = existing(nameIn.value.trim()) ? "Move alias" : "Create alias"; };
    nameIn.oninput = formMode;
    secondSel.onchange = () => { weightIn.disabled = !secondSel.value; if (secondSel.value && !weightIn.value) weightIn.value = 10; };
    function fill(a) {
      nameIn.value = a.name;
      versionSel.value = String(a.version);
      const [second, w] = Object.entries(a.additionalVersionWeights || {})[0] || ["", 0];
      secondSel.value = second; weightIn.value = second ? Math.round(w * 1000) / 10 : "";
      weightIn.disabled = !second;
      formMode();
    }
    aliasForm.onsubmit = e => {
      e.preventDefault();
      showError(err, null);
      [nameIn, weightIn, secondSel].forEach(i => i.removeAttribute("aria-invalid"));
      const bad = (input, msg) => { showError(err, msg); input.setAttribute("aria-invalid", "true"); input.focus(); };
      const name = nameIn.value.trim();
      if (!name) return bad(nameIn, "Give the alias a name, such as live.");
      if (!versionSel.value) return bad(versionSel, "Publish a version first: an alias names one.");
      const body = { version: Number(versionSel.value), additionalVersionWeights: {} };
      if (secondSel.value) {
        const w = Number(weightIn.value);
        if (secondSel.value === versionSel.value) return bad(secondSel, "The second version must differ from the first.");
        if (!(w > 0 && w < 100)) return bad(weightIn, "The second version's share is a percentage between 1 and 99.");
        body.additionalVersionWeights[secondSel.value] = w / 100;
      }
      const a = existing(name);
      act(saveAlias, async () => {
        if (a) {
          await api.call("PUT", `${path}/aliases/${enc(name)}`, body, { headers: { "If-Match": `"${a.revision}"` } });
          toast(`${name} moved to ${routes(body)}`);
        } else {
          await api.call("POST", `${path}/aliases`, { name, ...body });
          toast(`${name} created: ${routes(body)}`);
        }
      }, e => e.status === 412 ? `${name} was changed elsewhere meanwhile; it is shown again below. Check it and move it again.` : e);
    };

    function render() {
      const rows = [];
      versions.forEach((v, i) => rows.unshift(...versionRows(v, versions[i - 1])));
      if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No versions yet: publish the draft to make version 1.")));
      vBody.replaceChildren(...rows);
      aBody.replaceChildren(...(aliases.length ? aliases.map(aliasRow) : [h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No aliases."))]));
      const vOpts = () => versions.slice().reverse().map(v => h("option", { value: String(v.version) }, "v" + v.version));
      const keep = [versionSel.value, secondSel.value];
      versionSel.replaceChildren(...vOpts());
      secondSel.replaceChildren(h("option", { value: "" }, "none"), ...vOpts());
      if (keep[0] && versions.some(v => String(v.version) === keep[0])) versionSel.value = keep[0];
      if (versions.some(v => String(v.version) === keep[1])) secondSel.value = keep[1];
      weightIn.disabled = !secondSel.value;
      names.replaceChildren(...aliases.map(a => h("option", { value: a.name })));
      formMode();
    }

    // load reads the versions and aliases; it redraws only when they
    // changed, so a refresh every few seconds keeps the keyboard in place.
    let read = "";
    async function load() {
      const [v, a] = await Promise.all([api.call("GET", path + "/versions"), api.call("GET", path + "/aliases")]);
      const now = JSON.stringify([v, a]);
      if (now === read) return;
      read = now;
      versions = v.versions || []; aliases = a.aliases || [];
      render();
      onLoad({ versions, aliases });
    }

    const el = h("section", { class: "panel", id: "versions-panel", "aria-labelledby": "versions-title" }, title,
      deploy ? h("div", { class: "row publish" }, h("label", { for: "publish-description", class: "inline-label" }, "Publish the draft as a new version"),
        descIn, publishBtn, publishStatus) : null,
      err,
      h("table", {}, h("caption", { class: "sr-only" }, "Versions"),
        h("thead", {}, h("tr", {}, ["Version", "Description", "Published", "Code", "Actions"].map(t => h("th", { scope: "col" }, t)))), vBody),
      h("h3", {}, "Aliases"),
      h("table", {}, h("caption", { class: "sr-only" }, "Aliases"),
        h("thead", {}, h("tr", {}, ["Alias", "Sends calls to", "History", "Actions"].map(t => h("th", { scope: "col" }, t)))), aBody),
      deploy ? aliasForm : null);
    return { el, load };
  }

  // ---------- replay ----------

  // compare shows a replay beside its original, and what differs.
  function compare(name, { execution: b, original: a, diff: d }) {
    const side = (id, heading, ex, version, dur) => h("div", { class: "side", id },
      h("h3", {}, heading),
      h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", { class: "status" }, badge(ex.status)),
        h("dt", {}, "Version"), h("dd", { class: "version" }, label(version)),
        h("dt", {}, "Duration"), h("dd", {}, ms(dur)),
        h("dt", {}, "Execution"), h("dd", { class: "mono small" }, h("a", { href: `#/functions/${enc(name)}/executions/${enc(ex.executionId)}` }, ex.executionId))),
      ex.error ? h("pre", { class: "s-error" }, `${ex.error.type}: ${ex.error.message}`) : h("pre", { class: "side-result" }, json(ex.result)));
    const v = d.versions || [], t = d.durationMs || [];
    const changes = [];
    if (d.status) changes.push(h("li", {}, h("span", { class: "mono" }, "status"), `: ${d.status[0]} → ${d.status[1]}`));
    const shown = x => x === undefined ? "(absent)" : JSON.stringify(x);
    for (const c of d.result || []) changes.push(h("li", {}, h("span", { class: "mono" }, c.path || "(the whole result)"), `: ${shown(c.before)} → ${shown(c.after)}`));
    return h("div", {},
      h("div", { class: "grid compare" }, side("replay-original", "Original", a, v[0], t[0]), side("replay-new", "Replay", b, v[1], t[1])),
      h("h3", {}, "Differences"),
      d.same ? h("p", { id: "replay-same" }, "Same status and result.") : h("ul", { id: "replay-changes" }, changes));
  }

  // replayPanel runs execution ex of function name again, against a
  // version or alias chosen, and compares the two runs.
  function replayPanel(name, ex) {
    const path = "/api/functions/" + enc(name);
    const sel = h("select", { id: "replay-qualifier" });
    fillQualifiers(sel, [], []);
    Promise.all([api.call("GET", path + "/versions"), api.call("GET", path + "/aliases")])
      .then(([v, a]) => fillQualifiers(sel, v.versions || [], a.aliases || [])).catch(() => { /* $LATEST only */ });
    const btn = h("button", { type: "button", class: "primary", id: "replay" }, "Replay");
    const err = errorBox("replay-error");
    const out = h("div", { id: "replay-result", "aria-live": "polite" });
    btn.onclick = async () => {
      showError(err, null);
      btn.disabled = true; btn.textContent = "Replaying…";
      try {
        const q = sel.value === LATEST ? "" : "?qualifier=" + enc(sel.value);
        out.replaceChildren(compare(name, await api.call("POST", `/api/executions/${enc(name)}/${enc(ex.executionId)}/replay${q}`, {})));
      } catch (e) { showError(err, e); } finally { btn.disabled = false; btn.textContent = "Replay"; }
    };
    return h("section", { class: "panel", id: "replay-panel", "aria-labelledby": "replay-title" },
      h("h2", { id: "replay-title" }, "Replay"),
      h("p", { class: "muted" }, "Run this execution's event again and compare the two runs."),
      h("div", { class: "row" }, h("label", { for: "replay-qualifier", class: "inline-label" }, "Against"), sel, btn), err, out);
  }

  return { panel, fillQualifiers, replayPanel, LATEST };
})();
