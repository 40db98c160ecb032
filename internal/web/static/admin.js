// The admin pages: API keys (created, their secret shown once, revoked),
// secrets (created, their value replaced, deleted; a value is sent, never
// read back or shown) and the audit log. Each needs the admin scope. They
// use app.js's helpers, which exist by the time a route calls them.
"use strict";
const Admin = (() => {
  const when = t => t ? h("time", { datetime: t, title: new Date(t).toLocaleString() }, ago(t)) : "–";
  const list = xs => xs && xs.length ? xs.join(", ") : null;
  const field = (id, label, input, help) => h("div", {}, h("label", { for: id }, label), input, help ? h("small", { class: "muted" }, help) : null);
  const tableOf = (id, caption, heads, body) => h("table", { id }, h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, heads.map(t => h("th", { scope: "col" }, t)))), body);

  // ---------- keys ----------
  const scopeNames = [["admin", "admin: everything, keys and secrets too"], ["deploy", "deploy: create and change functions (and read)"],
    ["invoke", "invoke: call functions"], ["read", "read: lists, history, metrics"]];

  async function keysPage() {
    const main = $("#main");
    const err = errorBox("keys-error");
    const body = h("tbody", { id: "keys" });
    const created = h("div", { id: "new-key-box" });

    async function load() {
      const { keys } = await api.call("GET", "/api/keys");
      body.replaceChildren(...(keys || []).map(k => {
        const revoke = h("button", { type: "button", class: "danger", "data-key": k.id, "aria-label": `Revoke ${k.name || k.id}` }, "Revoke");
        revoke.onclick = async () => {
          const own = k.id === Session.keyId ? " It is the key of this session, which ends with it." : "";
          if (!confirm(`Revoke ${k.name || k.id} (${k.id})? Calls with it will be refused from now on.${own}`)) return;
          showError(err, null);
          revoke.disabled = true;
          try { await api.call("DELETE", "/api/keys/" + encodeURIComponent(k.id)); toast(`${k.id} revoked`); await load(); }
          catch (e) { showError(err, e); revoke.disabled = false; }
        };
        const expired = k.expiresAt && new Date(k.expiresAt) <= Date.now();
        return h("tr", { "data-id": k.id },
          h("td", { class: "mono" }, k.id, k.id === Session.keyId ? h("span", { class: "muted small" }, " (this session)") : null),
          h("td", {}, k.name), h("td", { class: "scopes" }, list(k.scopes) || "–"),
          h("td", { class: "mono" }, list(k.functions) || h("span", { class: "muted" }, "all")),
          h("td", {}, k.expiresAt ? [when(k.expiresAt), expired ? h("span", { class: "s-error" }, " expired") : null] : h("span", { class: "muted" }, "never")),
          h("td", {}, k.rateLimit ? `${k.rateLimit}/s` : h("span", { class: "muted" }, "none")),
          h("td", {}, when(k.createdAt)), h("td", { class: "mono" }, k.createdBy || "–"),
          h("td", { class: "actions" }, revoke));
      }));
      if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 9, class: "empty" }, "No keys yet.")));
    }

    // The form that makes a key.
    const nameIn = h("input", { id: "key-name", autocomplete: "off", placeholder: "ci-deployer", required: true });
    const boxes = scopeNames.map(([s, text]) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "scope", value: s, id: "scope-" + s }), " ", text));
    const fnsIn = h("input", { id: "key-functions", class: "mono", autocomplete: "off", placeholder: "orders-*, billing" });
    const expiresIn = h("input", { id: "key-expires", type: "datetime-local" });
    const rateIn = h("input", { id: "key-rate", type: "number", min: 0, step: "any", placeholder: "no limit" });
    const formErr = errorBox("key-form-error");
    const submit = h("button", { type: "submit", class: "primary", id: "create-key" }, "Create key");
    const form = h("form", { class: "panel", id: "key-form", novalidate: true, "aria-labelledby": "key-form-title" },
      h("h2", { id: "key-form-title" }, "New key"),
      h("div", { class: "fields" }, field("key-name", "Name", nameIn), field("key-functions", "Functions (name globs, comma-separated)", fnsIn, "empty: every function"),
        field("key-expires", "Expires", expiresIn, "empty: never"), field("key-rate", "Rate limit (calls per second)", rateIn)),
      h("fieldset", { class: "scopes" }, h("legend", {}, "Scopes"), boxes),
      formErr, h("div", { class: "row" }, submit));
    form.onsubmit = async e => {
      e.preventDefault();
      showError(formErr, null);
      nameIn.removeAttribute("aria-invalid");
      const scopes = [...form.querySelectorAll('input[name="scope"]:checked')].map(i => i.value);
      if (!nameIn.value.trim()) { showError(formErr, "Give the key a name, to know it by in lists and the audit log."); nameIn.setAttribute("aria-invalid", "true"); nameIn.focus(); return; }
      if (!scopes.length) { showError(formErr, "Choose at least one scope."); boxes[0].querySelector("input").focus(); return; }
      const req = { name: nameIn.value.trim(), scopes, functions: fnsIn.value.split(",").map(s => s.trim()).filter(Boolean) };
      if (expiresIn.value) req.expiresAt = new Date(expiresIn.value).toISOString();
      if (rateIn.value) req.rateLimit = Number(rateIn.value);
      submit.disabled = true;
      try {
        const k = await api.call("POST", "/api/keys", req);
        form.reset();
        showOnce(k);
        await load();
      } catch (ex) {
        showError(formErr, ex);
        const target = { name: nameIn, functions: fnsIn, expiresAt: expiresIn, rateLimit: rateIn }[ex.field];
        if (target) { target.setAttribute("aria-invalid", "true"); target.focus(); }
      } finally { submit.disabled = false; }
    };

    // showOnce shows a new key's secret, the only time it is: Done takes
    // it out of the page (and so does leaving the page).
    function showOnce(k) {
      const secret = h("code", { id: "new-key-secret", class: "secret" }, k.secret);
      const copy = h("button", { type: "button", id: "copy-key" }, "Copy");
      copy.onclick = async () => {
        try { await navigator.clipboard.writeText(secret.textContent); toast("Key copied"); }
        catch { getSelection().selectAllChildren(secret); toast("Press Ctrl+C to copy the selected key"); }
      };
      const done = h("button", { type: "button", class: "primary", id: "key-done" }, "Done");
      done.onclick = () => { created.replaceChildren(); nameIn.focus(); };
      const box = h("section", { class: "panel once", id: "new-key", "aria-labelledby": "new-key-title" },
        h("h2", { id: "new-key-title", tabindex: -1 }, `Key ${k.name} created: `, h("span", { class: "mono" }, k.id)),
        h("p", { class: "notice", id: "new-key-note" }, "Copy the key now: this is the only time it is shown. Nimbus keeps only a hash of it; a lost key cannot be shown again, only revoked and replaced."),
        h("div", { class: "inline copy-box" }, secret, copy),
        h("div", { class: "row" }, done));
      created.replaceChildren(box);
      box.querySelector("h2").focus();
    }

    main.replaceChildren(h("h1", {}, "API keys"), created,
      h("section", { class: "panel" }, err,
        tableOf("keys-table", "API keys", ["ID", "Name", "Scopes", "Functions", "Expires", "Rate limit", "Created", "Created by", "Actions"], body)),
      form);
    await load();
  }

  // ---------- secrets ----------
  async function secretsPage() {
    const main = $("#main");
    const err = errorBox("secrets-error");
    const body = h("tbody", { id: "secrets" });
    let secrets = [];

    async function load() {
      secrets = (await api.call("GET", "/api/secrets")).secrets || [];
      body.replaceChildren(...secrets.map(s => {
        const change = h("button", { type: "button", class: "change", "aria-label": `Change value of ${s.name}` }, "Change value");
        change.onclick = () => edit(s);
        const del = h("button", { type: "button", class: "danger delete", "aria-label": `Delete ${s.name}` }, "Delete");
        del.onclick = async () => {
          if (!confirm(`Delete the secret ${s.name}? This cannot be undone.`)) return;
          showError(err, null);
          del.disabled = true;
          // A secret that functions use is not deleted (409): the message names them.
          try { await api.call("DELETE", "/api/secrets/" + encodeURIComponent(s.name)); toast(`${s.name} deleted`); await load(); }
          catch (e) { showError(err, e.status === 409 ? `Not deleted: ${e.message}. Remove it from their environment first.` : e); del.disabled = false; }
        };
        return h("tr", { "data-name": s.name },
          h("td", { class: "mono" }, s.name), h("td", {}, s.description || h("span", { class: "muted" }, "–")),
          h("td", {}, s.version), h("td", {}, when(s.updatedAt || s.createdAt)),
          h("td", { class: "used-by" }, s.usedBy && s.usedBy.length ? s.usedBy.map((n, i) => [i ? ", " : "", h("a", { href: "#/functions/" + encodeURIComponent(n) }, n)]) : h("span", { class: "muted" }, "none")),
          h("td", { class: "actions" }, change, del));
      }));
      if (!secrets.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No secrets yet.")));
    }

    // One form creates a secret, or changes the value of the one it names.
    let editing = null;
    const title = h("h2", { id: "secret-form-title", tabindex: -1 }, "New secret");
    const nameIn = h("input", { id: "secret-name", class: "mono", autocomplete: "off", placeholder: "db-password" });
    const valueIn = h("input", { id: "secret-value", type: "password", autocomplete: "new-password", class: "mono" });
    const descIn = h("input", { id: "secret-description", autocomplete: "off", placeholder: "what it is for (optional)" });
    const formErr = errorBox("secret-form-error");
    const submit = h("button", { type: "submit", class: "primary", id: "save-secret" }, "Create secret");
    const cancel = h("button", { type: "button", id: "cancel-secret", hidden: true }, "Cancel");
    const form = h("form", { class: "panel", id: "secret-form", novalidate: true, "aria-labelledby": "secret-form-title" }, title,
      h("div", { class: "fields" }, field("secret-name", "Name", nameIn), field("secret-value", "Value", valueIn, "sent once; never shown or read back"),
        field("secret-description", "Description", descIn)),
      formErr, h("div", { class: "row" }, submit, cancel));
    function edit(s) {
      editing = s;
      title.textContent = s ? `Change the value of ${s.name}` : "New secret";
      nameIn.value = s ? s.name : ""; nameIn.disabled = !!s;
      descIn.value = s ? s.description || "" : "";
      valueIn.value = "";
      submit.textContent = s ? "Save new value" : "Create secret";
      cancel.hidden = !s;
      showError(formErr, null);
      (s ? valueIn : nameIn).focus();
    }
    cancel.onclick = () => edit(null);
    form.onsubmit = async e => {
      e.preventDefault();
      showError(formErr, null);
      [nameIn, valueIn].forEach(i => i.removeAttribute("aria-invalid"));
      const bad = (input, msg) => { showError(formErr, msg); input.setAttribute("aria-invalid", "true"); input.focus(); };
      const name = nameIn.value.trim();
      if (!name) return bad(nameIn, "Give the secret a name: functions refer to it by it.");
      if (!valueIn.value) return bad(valueIn, "Type the secret's value.");
      submit.disabled = true;
      try {
        const req = { value: valueIn.value, description: descIn.value.trim() };
        if (editing) await api.call("PUT", "/api/secrets/" + encodeURIComponent(name), req);
        else await api.call("POST", "/api/secrets", { name, ...req });
        toast(editing ? `${name}: new value saved` : `Secret ${name} created`);
        edit(null);
        await load();
      } catch (ex) {
        showError(formErr, ex);
        if (ex.field === "name" || ex.code === "conflict") { nameIn.setAttribute("aria-invalid", "true"); nameIn.focus(); }
        else if (ex.field === "value") { valueIn.setAttribute("aria-invalid", "true"); valueIn.focus(); }
      } finally { valueIn.value = ""; submit.disabled = false; }
    };

    main.replaceChildren(h("h1", {}, "Secrets"),
      h("p", { class: "muted" }, "A function's environment variable can name a secret (", h("code", {}, '{"secret": "name"}'),
        "); the server puts its value in the environment when the function runs. Values are never shown."),
      h("section", { class: "panel" }, err,
        tableOf("secrets-table", "Secrets", ["Name", "Description", "Version", "Updated", "Used by", "Actions"], body)),
      form);
    await load();
  }

  // ---------- audit ----------
  // The audit log, newest first: who (which key, from where) did what to
  // what, with hashes of the target before and after.
  async function auditPage() {
    const main = $("#main");
    const err = errorBox("audit-error");
    const body = h("tbody", { id: "audit" });
    const more = h("button", { type: "button", id: "audit-more", hidden: true }, "Load more");
    const input = (id, label, attrs = {}) => h("input", { id, "aria-label": label, autocomplete: "off", ...attrs });
    const keyIn = input("audit-key", "Key id", { class: "mono", placeholder: "key id" });
    const actionIn = input("audit-action", "Action", { placeholder: "action (function.update, key…)" });
    const targetIn = input("audit-target", "Target", { placeholder: "target" });
    const sinceIn = input("audit-since", "Since", { type: "datetime-local", step: 1 });
    const short = s => s ? h("span", { class: "mono", title: s }, s.slice(0, 8)) : h("span", { class: "muted" }, "–");
    let next = "", seq = 0;

    async function load(append) {
      const q = new URLSearchParams({ limit: 50 });
      for (const [k, i] of [["keyId", keyIn], ["action", actionIn], ["target", targetIn]]) if (i.value.trim()) q.set(k, i.value.trim());
      if (sinceIn.value) q.set("since", new Date(sinceIn.value).toISOString());
      if (append && next) q.set("before", next);
      const mine = ++seq;
      showError(err, null);
      let r;
      try { r = await api.call("GET", "/api/audit?" + q); } catch (e) { showError(err, e); return; }
      if (mine !== seq) return; // a newer filter answered first
      if (!append) body.replaceChildren();
      for (const a of r.entries || []) {
        body.append(h("tr", { "data-id": a.id },
          h("td", {}, h("time", { datetime: a.time, title: a.time }, new Date(a.time).toLocaleString())),
          h("td", { class: "mono" }, a.keyId), h("td", { class: "mono small" }, a.source || "–"),
          h("td", { class: "mono" }, a.action), h("td", { class: "mono" }, a.target || "–"),
          h("td", {}, short(a.before), " → ", short(a.after))));
      }
      if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No entries match.")));
      next = r.next || ""; more.hidden = !next;
    }
    let typing;
    [keyIn, actionIn, targetIn].forEach(i => { i.oninput = () => { clearTimeout(typing); typing = setTimeout(() => load(), 300); }; });
    cleanup.push(() => clearTimeout(typing));
    sinceIn.onchange = () => load();
    more.onclick = () => load(true);
    main.replaceChildren(h("h1", {}, "Audit log"),
      h("section", { class: "panel" },
        h("div", { class: "row audit-filters", style: "margin:0 0 .6rem" }, keyIn, actionIn, targetIn,
          h("label", { for: "audit-since", class: "inline-label" }, "since"), sinceIn),
        err,
        tableOf("audit-table", "Audit log, newest first", ["Time", "Key", "Source", "Action", "Target", "State before → after"], body),
        h("div", { class: "row" }, more)));
    await load();
  }

  return { keysPage, secretsPage, auditPage };
})();
