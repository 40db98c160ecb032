// The session: the UI signs in with an API key (POST /api/session) and
// the server keeps the session in an HttpOnly, SameSite=Strict cookie
// that this page can neither read nor send anywhere else. The key is
// never stored in the browser: not in localStorage, sessionStorage nor
// a cookie the page sets. GET /api/session says which key is signed in
// and its scopes; the pages hide what the key may not do (the server
// refuses it anyway, with a 403 that names the missing scope), and a
// page the key may not use says so (with a form to call a function by
// name, for a key that may only invoke). It uses
// app.js's helpers, which exist by the time it runs.
"use strict";
const Session = (() => {
  // The scopes each scope includes: admin all of them, deploy read.
  const implied = { admin: ["admin", "deploy", "invoke", "read"], deploy: ["deploy", "read"], invoke: ["invoke"], read: ["read"] };
  let state = { authRequired: true, signedIn: false, keyId: "", name: "", scopes: [], functions: [] };

  // can says whether the signed-in key has scope, itself or through one
  // that implies it. A server without keys allows everything.
  function can(scope) {
    if (!state.authRequired) return true;
    return state.signedIn && (state.scopes || []).some(s => (implied[s] || [s]).includes(scope));
  }

  // load reads the session the cookie holds, if any.
  async function load() {
    state = await api.call("GET", "/api/session", undefined, { noSignIn: true });
    render();
    return state;
  }

  // render shows who is signed in, with what, and the links to the pages
  // the key may use.
  function render() {
    const who = $("#who"), out = $("#signout");
    const shown = state.authRequired && state.signedIn;
    who.hidden = out.hidden = !shown;
    if (shown) {
      const id = state.keyId === "bootstrap" ? "NIMBUS_API_KEY" : state.keyId;
      const fns = state.functions || [];
      who.replaceChildren(h("span", { class: "who-name" }, state.name || id),
        state.name && state.name !== id ? h("span", { class: "muted mono small" }, " " + id) : "",
        h("span", { class: "muted small", id: "who-scopes" }, " · " + ((state.scopes || []).join(", ") || "no scopes")),
        fns.length ? h("span", { class: "muted small" }, " · " + fns.join(", ")) : "");
      who.title = `Signed in as ${state.name || id} (${id})`;
    }
    document.querySelectorAll('[data-nav="keys"], [data-nav="secrets"], [data-nav="audit"]').forEach(a => { a.hidden = !can("admin"); });
  }

  let waiters = null;
  // signIn shows the sign-in dialog, saying why, until a key is accepted;
  // calls that met a 401 meanwhile wait for the same sign-in. A sign-in
  // with another key than the one before loads the page again: what it
  // shows and may do depends on the key.
  function signIn(why) {
    if (waiters) return new Promise(r => waiters.push(r));
    waiters = [];
    const before = state.signedIn ? state.keyId : "";
    const dlg = $("#keydialog"), keyIn = $("#apikey"), err = $("#keyerror"), btn = $("#keyform button[type=submit]");
    $("#keyreason").textContent = why || "";
    $("#keyreason").hidden = !why;
    err.textContent = ""; keyIn.value = "";
    if (live.source) live.source.close();
    return new Promise(resolve => {
      $("#keyform").onsubmit = async e => {
        e.preventDefault(); // the dialog stays open until the key is accepted
        err.textContent = "";
        btn.disabled = true;
        try {
          const s = await api.call("POST", "/api/session", { key: keyIn.value.trim() }, { noSignIn: true });
          keyIn.value = "";
          state = s;
          if (before && s.keyId !== before) { location.reload(); return; }
          dlg.close();
          render();
          connectEvents();
          const w = waiters; waiters = null;
          resolve(); w.forEach(r => r());
        } catch (ex) {
          err.textContent = ex.status === 401 ? "That key was not accepted." : ex.status === 429 ? "Too many failed sign-ins: " + ex.message : ex.message;
          keyIn.select();
        } finally { btn.disabled = false; }
      };
      dlg.oncancel = e => e.preventDefault(); // Esc would leave an empty page
      if (!dlg.open) dlg.showModal();
      keyIn.focus();
    });
  }

  // ended is a call's 401: the session expired or its key was revoked.
  const ended = () => signIn("Your session has ended. Sign in again to go on.");

  async function signOut() {
    try { await api.call("DELETE", "/api/session", undefined, { noSignIn: true }); }
    catch (e) { toast("Sign out failed: " + e.message); return; }
    location.hash = "#/";
    location.reload(); // nothing of the session stays in the page
  }

  // lacks is what a page shows in place of one the key may not use.
  function lacks(scope, what) {
    const id = state.keyId === "bootstrap" ? "NIMBUS_API_KEY" : state.keyId;
    return h("p", { class: "notice", id: "scope-notice", role: "status" },
      `This key (${state.name || id}) lacks the "${scope}" scope, which ${what} needs. It has: ${(state.scopes || []).join(", ") || "no scopes"}.`);
  }

  // notAllowed is the page of a route whose scope the key lacks; a key
  // that may invoke gets a form to call its functions by name.
  function notAllowed(scope, what) {
    const main = $("#main");
    main.replaceChildren(h("h1", {}, "Not available to this key"), lacks(scope, what));
    if (can("invoke") && !can("read")) main.append(invokeByName());
  }

  // invokeByName calls a function named by hand: what a key with the
  // invoke scope alone can do, as it may not list the functions.
  function invokeByName() {
    const globs = state.functions || [];
    const nameIn = h("input", { id: "invoke-name", class: "mono", autocomplete: "off", placeholder: globs.length ? globs[0] : "my-function" });
    const payload = Editor.create({ id: "payload", label: "Event (JSON)", value: "{}", indent: "  ", rows: 6 });
    const err = errorBox("invoke-error");
    const result = h("div", { id: "result", "aria-live": "polite" });
    const run = h("button", { type: "submit", class: "primary", id: "invoke" }, "Invoke");
    const form = h("form", { class: "panel", id: "invoke-form", novalidate: true },
      h("h2", {}, "Invoke a function"),
      globs.length ? h("p", { class: "muted" }, "This key may call: ", h("span", { class: "mono" }, globs.join(", "))) : null,
      h("label", { for: "invoke-name" }, "Function name"), nameIn,
      h("label", { for: "payload" }, "Event (JSON)"), payload.el, err,
      h("div", { class: "row" }, run), result);
    form.onsubmit = async e => {
      e.preventDefault();
      showError(err, null);
      const name = nameIn.value.trim();
      if (!name) { showError(err, "Name the function to call."); nameIn.focus(); return; }
      let event;
      try { event = JSON.parse(payload.value || "{}"); } catch (ex) { showError(err, "The event is not valid JSON: " + ex.message); return; }
      run.disabled = true;
      try { result.replaceChildren(executionView(await api.call("POST", "/api/executions/" + encodeURIComponent(name), JSON.stringify(event)))); }
      catch (ex) { showError(err, ex); } finally { run.disabled = false; }
    };
    return form;
  }

  return {
    can, load, signIn, ended, signOut, lacks, notAllowed, render,
    get keyId() { return state.keyId; },
    get needsSignIn() { return state.authRequired && !state.signedIn; },
  };
})();
