// TestEvents: the saved test events of a function on its page, as the
// Lambda console has them: pick one to load it into the event editor
// ("invoke with…"), save the editor's event under a name, delete one.
// They are stored with the function (PUT /api/functions/{id}
// {"testEvents": [...]}), read again before each change so that a save
// never drops an event saved elsewhere meanwhile.
"use strict";
const TestEvents = (() => {
  // panel returns {el} for function f, loading events into editor (its
  // .value) and running run() for "Invoke with".
  function panel(f, { editor, run, onSaved }) {
    const path = "/api/functions/" + encodeURIComponent(f.id);
    let events = f.testEvents || [];
    const pick = h("select", { id: "test-event", "aria-label": "Saved test event" });
    const nameIn = h("input", { id: "test-event-name", placeholder: "name", autocomplete: "off", maxlength: 64, "aria-label": "Name to save the event as" });
    const save = h("button", { type: "button", id: "save-test-event" }, "Save event");
    const del = h("button", { type: "button", id: "delete-test-event", disabled: true }, "Delete");
    const invokeWith = h("button", { type: "button", id: "invoke-with", disabled: true }, "Invoke with it");
    const err = errorBox("test-event-error");
    const fill = () => {
      const was = pick.value;
      pick.replaceChildren(h("option", { value: "" }, events.length ? "Saved events…" : "No saved events"),
        ...events.map(e => h("option", { value: e.name }, e.name)));
      pick.value = events.some(e => e.name === was) ? was : "";
      del.disabled = invokeWith.disabled = !pick.value;
    };
    const chosen = () => events.find(e => e.name === pick.value);
    const load = () => { const e = chosen(); if (e) { editor.value = JSON.stringify(e.event, null, 2); nameIn.value = e.name; } };
    pick.onchange = () => { showError(err, null); del.disabled = invokeWith.disabled = !pick.value; load(); };
    invokeWith.onclick = () => { load(); run(); };
    // change applies edit to the stored list and stores it.
    const change = async (edit, done) => {
      showError(err, null); nameIn.removeAttribute("aria-invalid");
      try {
        const g = await api.call("GET", path);
        const next = edit((g.testEvents || []).slice());
        const saved = await api.call("PUT", path, { testEvents: next });
        events = saved.testEvents || [];
        fill(); toast(done);
        if (onSaved) onSaved(saved);
      } catch (ex) {
        showError(err, ex);
        if (ex.field && ex.field.startsWith("testEvents")) { nameIn.setAttribute("aria-invalid", "true"); nameIn.focus(); }
      }
    };
    save.onclick = () => {
      const name = nameIn.value.trim();
      if (!name) { showError(err, "Give the event a name to save it under."); nameIn.setAttribute("aria-invalid", "true"); nameIn.focus(); return; }
      let event;
      try { event = JSON.parse(editor.value || "{}"); } catch (e) { showError(err, "The event is not valid JSON: " + e.message); return; }
      change(list => {
        const i = list.findIndex(e => e.name === name);
        if (i >= 0) list[i] = { name, event }; else list.push({ name, event });
        return list;
      }, `Saved test event ${name}`).then(() => { if (events.some(e => e.name === name)) { pick.value = name; del.disabled = invokeWith.disabled = false; } });
    };
    del.onclick = () => {
      const name = pick.value;
      if (!name || !confirm(`Delete the test event ${name}?`)) return;
      change(list => list.filter(e => e.name !== name), `Deleted test event ${name}`);
    };
    fill();
    // Saving and deleting change the function: the deploy scope's.
    const deploy = Session.can("deploy");
    const el = h("div", { class: "test-events", id: "test-events" },
      h("div", { class: "row" }, pick, invokeWith, deploy ? del : null),
      deploy ? h("div", { class: "row" }, nameIn, save) : null, err);
    return { el };
  }
  return { panel };
})();
