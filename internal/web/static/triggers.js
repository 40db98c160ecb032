// A function's triggers on its page: its URL, its async settings, queue
// and dead letters, and its schedules. It builds its DOM with h() and
// calls the API with api.call() from app.js (loaded after it; called only
// once the page runs).
"use strict";
const Triggers = (() => {
  // The server's defaults for a function without async settings
  // (fn.DefaultAsyncRetries, fn.MaxEventAgeSeconds, fn.DefaultRetryBackoff).
  const defaults = { maxRetries: 2, maxEventAgeSeconds: 21600, retryBackoff: "1m" };
  const secs = s => s < 60 ? Math.round(s) + " s" : s < 3600 ? (s / 60).toFixed(s % 60 ? 1 : 0) + " min" : s < 86400 ? (s / 3600).toFixed(s % 3600 ? 1 : 0) + " h" : (s / 86400).toFixed(1) + " days";
  // until is how far ahead t is: "in 5 min", "in 3.2 days".
  const until = t => { const s = (new Date(t) - Date.now()) / 1000; return s <= 0 ? "due now" : "in " + secs(s); };
  const when = (t, rel) => h("time", { datetime: t, title: new Date(t).toISOString() }, `${rel(t)} (${new Date(t).toLocaleString()})`);
  const dest = d => !d ? "none" : d.function ? ["function ", h("a", { href: "#/functions/" + encodeURIComponent(d.function) }, d.function)] : ["URL ", h("span", { class: "mono" }, d.url)];
  const dl = (id, pairs) => h("dl", { class: "facts", id }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  const dflt = (v, d, fmt = x => x) => v === undefined || v === null || v === 0 || v === "" ? [fmt(d), h("span", { class: "muted" }, " (default)")] : [fmt(v)];

  function urlView(f) {
    const u = f.url;
    if (!u || !u.enabled) {
      return h("div", { id: "trigger-url" }, h("h3", {}, "Function URL"),
        h("p", { class: "muted" }, "No URL. Set ", h("code", {}, `"url": {"enabled": true}`),
          " on the function through the API to call it over HTTP at ", h("span", { class: "mono" }, `${location.origin}/fn/${f.name}`), "."));
    }
    const full = `${location.origin}/fn/${f.name}`;
    const copy = h("button", { type: "button", id: "copy-url" }, "Copy");
    copy.onclick = async () => {
      try { await navigator.clipboard.writeText(full); toast("URL copied"); }
      catch { getSelection().selectAllChildren(link); toast("Press Ctrl+C to copy the selected URL"); }
    };
    const link = h("a", { href: full, id: "fn-url", class: "mono", target: "_blank", rel: "noopener" }, full);
    const cors = u.cors && u.cors.allowOrigins && u.cors.allowOrigins.length ? u.cors.allowOrigins.join(", ") : "none (no CORS headers)";
    return h("div", { id: "trigger-url" }, h("h3", {}, "Function URL"),
      h("p", { class: "inline" }, link, copy),
      dl("url-facts", [["Auth", (u.auth || "key") === "none" ? "none: anyone who can reach the server may call it" : "key: callers send the API key (Authorization: Bearer …)"],
        ["CORS origins", cors]]));
  }

  function asyncView(f) {
    const a = f.async || {};
    return h("div", { id: "trigger-async" }, h("h3", {}, "Async calls"),
      dl("async-settings", [
        ["Retries", a.maxRetries === undefined || a.maxRetries === null ? [String(defaults.maxRetries), h("span", { class: "muted" }, " (default)")] : String(a.maxRetries)],
        ["Max event age", dflt(a.maxEventAgeSeconds, defaults.maxEventAgeSeconds, secs)],
        ["Retry backoff", [...dflt(a.retryBackoff, defaults.retryBackoff), h("span", { class: "muted" }, ", doubled for each retry")]],
        ["On success", dest(a.onSuccess)], ["On failure", dest(a.onFailure)]]));
  }

  function schedulesView(f) {
    const list = f.schedules || [];
    const body = h("tbody", { id: "schedules" }, list.map(s => {
      const on = s.enabled === undefined || s.enabled === null || s.enabled;
      return h("tr", {}, h("td", {}, s.name), h("td", { class: "mono" }, s.cron ? s.cron : "every " + s.rate),
        h("td", {}, s.rate ? "–" : s.timezone || ["UTC", h("span", { class: "muted" }, " (default)")]),
        h("td", {}, on ? "yes" : h("span", { class: "muted" }, "no")), h("td", {}, s.catchUp === "latest" ? "latest" : "none"),
        h("td", { class: "next-run" }, on && s.nextRun ? when(s.nextRun, until) : "–"));
    }));
    if (!list.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No schedules.")));
    return h("div", { id: "trigger-schedules" }, h("h3", {}, "Schedules"),
      h("table", {}, h("caption", { class: "sr-only" }, "Schedules"),
        h("thead", {}, h("tr", {}, ["Name", "Cron or rate", "Timezone", "Enabled", "Catch-up", "Next run"].map(t => h("th", { scope: "col" }, t)))), body));
  }

  // panel is the Triggers section of function f. tick refreshes the queue
  // figures (and the dead letters when their count changes); onReplay is
  // told of each replayed call.
  function panel(f, { onReplay }) {
    const path = "/api/functions/" + encodeURIComponent(f.id);
    let shown = f;
    const err = errorBox("triggers-error");
    const settings = h("div", { class: "grid trigger-settings" });
    const kpi = (id, label) => h("div", { class: "kpi" }, h("div", { class: "label", id: id + "-label" }, label), h("div", { class: "value", id, "aria-labelledby": id + "-label" }, "–"));
    const queue = h("div", { class: "grid kpis", id: "async-queue" },
      kpi("q-queued", "Queued"), kpi("q-inflight", "In flight"), kpi("q-redelivered", "Redelivered"), kpi("q-oldest", "Oldest waiting"), kpi("q-dead", "Dead letters"));
    const letters = h("tbody", { id: "dead-letters" });
    const lettersTitle = h("h3", { tabindex: -1 }, "Dead letters");
    const clearAll = h("button", { type: "button", class: "danger", id: "delete-all-dead" }, "Delete all");
    const rows = new Map(); // executionId → {tr, detail}
    let deadCount = -1;

    function render() { settings.replaceChildren(urlView(shown), asyncView(shown), schedulesView(shown)); }

    async function act(btn, call) {
      showError(err, null);
      btn.disabled = true;
      try { await call(); } catch (e) { showError(err, e); } finally { btn.disabled = false; }
      await tick(true);
      if (!btn.isConnected) lettersTitle.focus(); // its row is gone: keep the keyboard near

    }

    function row(d) {
      const id = d.executionId, lp = `${path}/dead-letters/${encodeURIComponent(id)}`;
      const detail = h("tr", { class: "dl-detail", id: "dl-detail-" + id, hidden: true }, h("td", { colspan: 5 }, h("pre", { class: "dl-event" }, "Loading…")));
      const show = h("button", { type: "button", class: "expand", "aria-expanded": "false", "aria-controls": detail.id, "aria-label": "Show the event of " + id }, "Event");
      show.onclick = async () => {
        const open = show.getAttribute("aria-expanded") !== "true";
        show.setAttribute("aria-expanded", String(open)); detail.hidden = !open;
        if (!open || detail.dataset.loaded) return;
        try { const full = await api.call("GET", lp); detail.querySelector("pre").textContent = json(full.event); detail.dataset.loaded = "1"; }
        catch (e) { detail.querySelector("pre").textContent = e.message; }
      };
      const replay = Session.can("invoke") ? h("button", { type: "button", class: "replay", "aria-label": "Replay " + id }, "Replay") : null;
      if (replay) replay.onclick = () => act(replay, async () => {
        const a = await api.call("POST", lp + "/replay", {});
        toast(`Replayed: execution ${a.executionId} queued`);
        onReplay(a);
      });
      const del = Session.can("deploy") ? h("button", { type: "button", class: "danger delete", "aria-label": "Delete dead letter " + id }, "Delete") : null;
      if (del) del.onclick = () => act(del, () => api.call("DELETE", lp));
      const e = d.error ? `${d.error.type}: ${d.error.message}` : "–";
      const tr = h("tr", { "data-id": id },
        h("td", {}, when(d.deadAt, ago), h("div", { class: "muted small" }, "accepted ", when(d.acceptedAt, ago))),
        h("td", {}, d.reason, h("div", { class: "mono muted small" }, id.slice(-10))), h("td", {}, d.attempts),
        h("td", { class: "dl-error" }, e), h("td", { class: "actions" }, show, replay, del));
      return { tr, detail };
    }

    async function loadLetters() {
      const r = await api.call("GET", `${path}/dead-letters?limit=100`);
      const seen = new Set();
      const out = [];
      for (const d of r.deadLetters || []) {
        seen.add(d.executionId);
        if (!rows.has(d.executionId)) rows.set(d.executionId, row(d));
        const { tr, detail } = rows.get(d.executionId);
        out.push(tr, detail);
      }
      for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
      if (!out.length) out.push(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No dead letters.")));
      if (r.total > (r.deadLetters || []).length) out.push(h("tr", {}, h("td", { colspan: 5, class: "muted" }, `Showing the latest ${r.deadLetters.length} of ${r.total}.`)));
      letters.replaceChildren(...out);
      clearAll.hidden = !rows.size || !Session.can("deploy");
    }
    clearAll.onclick = () => {
      if (!confirm(`Delete all dead letters of ${f.name}? Their calls will not run.`)) return;
      act(clearAll, () => api.call("DELETE", path + "/dead-letters"));
    };

    // tick reads the queue figures; the dead letters too when their count
    // changed (or when force).
    async function tick(force) {
      try {
        const q = await api.call("GET", path + "/async");
        const set = (id, v) => { $("#" + id, queue).textContent = v; };
        set("q-queued", q.queued); set("q-inflight", q.inFlight); set("q-redelivered", q.redelivered);
        set("q-oldest", q.queued || q.inFlight ? secs(q.oldestAgeSeconds || 0) : "–"); set("q-dead", q.deadLetters);
        if (force || q.deadLetters !== deadCount) { deadCount = q.deadLetters; await loadLetters(); }
      } catch (e) {
        showError(err, e);
      }
      // The times to the next runs move on; a run that came reads the
      // function again for the next.
      if ((shown.schedules || []).some(s => s.nextRun && new Date(s.nextRun) <= Date.now())) {
        try { shown = await api.call("GET", path); } catch { /* keep what is shown */ }
      }
      settings.querySelectorAll(".next-run time").forEach(t => { t.firstChild.textContent = `${until(t.dateTime)} (${new Date(t.dateTime).toLocaleString()})`; });
      if (shown !== f) { f = shown; render(); }
    }

    render();
    const el = h("section", { class: "panel", id: "triggers", "aria-labelledby": "triggers-title" },
      h("h2", { id: "triggers-title" }, "Triggers"), settings,
      h("h3", {}, "Async queue ", h("span", { class: "muted small" }, "refreshed every 3 s")), queue,
      h("div", { class: "row spread" }, lettersTitle, clearAll),
      h("table", {}, h("caption", { class: "sr-only" }, "Dead letters"),
        h("thead", {}, h("tr", {}, ["Dead", "Reason", "Attempts", "Error", "Actions"].map(t => h("th", { scope: "col" }, t)))), letters), err);
    return { el, tick };
  }

  return { panel };
})();
