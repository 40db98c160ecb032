// The dashboard: KPIs of the last 15 minutes, its charts (seeded from
// the system's series, extended live) and a feed of the latest executions.
// It uses app.js's helpers, which exist by the time a route calls it.
"use strict";
async function dashboard() {
  const main = $("#main");
  const kpi = (id, label) => h("div", { class: "kpi" }, h("div", { class: "label", id: id + "-label" }, label), h("div", { class: "value", id, "aria-labelledby": id + "-label" }, "–"));
  const box = () => h("div", { class: "chart" });
  const bRate = box(), bLat = box(), bCold = box(), bHost = box();
  const feed = h("ul", { class: "feed", id: "feed", "aria-live": "polite" });
  main.replaceChildren(
    h("h1", {}, "Dashboard", h("span", { class: "muted", style: "font-size:.85rem;font-weight:400" }, "last 15 minutes")),
    h("div", { class: "grid kpis" },
      kpi("k-invocations", "Invocations"), kpi("k-rate", "Per second (1m)"), kpi("k-errors", "Error rate"),
      kpi("k-p50", "p50 latency"), kpi("k-p95", "p95 latency"), kpi("k-cold", "Cold starts"), kpi("k-instances", "Active instances")),
    h("div", { class: "grid two", style: "margin-top:1rem" },
      h("div", { class: "grid charts" },
        h("section", { class: "panel" }, h("h2", {}, "Invocations and errors per second"), bRate),
        h("section", { class: "panel" }, h("h2", {}, "Latency (ms)"), bLat),
        h("section", { class: "panel" }, h("h2", {}, "Cold starts and instances"), bCold),
        h("section", { class: "panel" }, h("h2", {}, "Host CPU and memory (%)"), bHost, h("p", { class: "muted small" }, "Sampled since this page opened."))),
      h("section", { class: "panel" }, h("h2", {}, "Latest executions"), feed)));

  // The last 15 minutes in 15 s steps: seeded from the system's series,
  // extended by the live stream between seeds.
  const win = Series.windows["15m"], series = Series.make(win.seconds, win.step);
  const chart = (el, id, title, unit, list, points) => { const c = Chart.time(el, { id, title, unit, series: list, sync: "dashboard", points }); cleanup.push(() => c.destroy()); return c; };
  const cRate = chart(bRate, "dash-rate", "Invocations and errors per second", "/s", [{ label: "invocations", color: "c1", unit: "/s" }, { label: "errors", color: "c2", unit: "/s" }]);
  const cLat = chart(bLat, "dash-latency", "Latency in milliseconds", "ms", [{ label: "p50", color: "c1", unit: "ms" }, { label: "p95", color: "c4", unit: "ms" }], true);
  const cCold = chart(bCold, "dash-cold", "Cold starts and instances", "", [{ label: "cold starts", color: "c2", unit: "" }, { label: "instances", color: "c3", unit: "" }]);
  const cHost = chart(bHost, "dash-host", "Host CPU and memory in percent", "%", [{ label: "CPU", color: "c1", unit: "%" }, { label: "memory", color: "c3", unit: "%" }], true);
  const shown = new Set();
  const addFeed = ev => {
    if (shown.has(ev.executionId)) return; // both live and in the seeded history
    shown.add(ev.executionId);
    const li = h("li", {}, badge(ev.status),
      h("a", { class: "name", href: `#/functions/${encodeURIComponent(ev.function || ev.functionId)}/executions/${ev.executionId}` }, ev.function || ev.functionId),
      h("span", { class: "muted" }, ms(ev.durationMs)), ev.coldStart ? h("span", { class: "muted", title: "cold start" }, "❄") : null);
    li.dataset.id = ev.executionId; // ids sort by start time: keep newest first
    const after = [...feed.children].find(x => x.dataset.id < ev.executionId);
    feed.insertBefore(li, after || null);
    while (feed.children.length > 50) { shown.delete(feed.lastChild.dataset.id); feed.lastChild.remove(); }
  };
  // s is GET /api/metrics/system (15 minutes) or a live "metrics"
  // snapshot (the last minute): only the figures that mean the same in both
  // are taken from snapshots.
  const setKPIs = (s, snapshot) => {
    if (!s) return;
    if (!snapshot) {
      $("#k-invocations").textContent = s.invocations ?? "–";
      $("#k-errors").textContent = s.invocations ? pct(s.errorRate) : "–";
      $("#k-p50").textContent = s.invocations ? ms(s.durationMs.p50) : "–";
      $("#k-p95").textContent = s.invocations ? ms(s.durationMs.p95) : "–";
      $("#k-cold").textContent = s.coldStarts ?? "–";
    }
    const rate = snapshot ? s.invocationsPerSecond : s.rates && s.rates["1m"];
    if (rate !== undefined) $("#k-rate").textContent = Chart.fmt(rate);
    if (s.instances && s.instances.active !== undefined) $("#k-instances").textContent = s.instances.active;
  };
  const draw = () => {
    const { from, to, rows } = series.rows(), st = series.step;
    cRate.set(Series.columns(rows, r => r.n / st, r => r.err / st), from, to);
    cLat.set(Series.columns(rows, r => r.p50, r => r.p95), from, to);
    cCold.set(Series.columns(rows, r => r.cold, r => r.instances), from, to);
    cHost.set(Series.columns(rows, r => r.cpu, r => r.mem), from, to);
  };
  const refresh = async () => {
    const askedAt = Series.clock.now();
    try {
      const s = await api.call("GET", `/api/metrics/system?window=15m&series=${win.step}s`);
      setKPIs(s);
      series.seed(s.series, askedAt);
      if (s.instances) series.sample("instances", s.instances.active || 0);
      if (s.host && s.host.cpu) series.sample("cpu", s.host.cpu.usedPercent);
      if (s.host && s.host.memory) series.sample("mem", s.host.memory.usedPercent);
      draw();
      // The first paint with data: what the performance test measures.
      if (!performance.getEntriesByName("nimbus:dashboard-data").length) performance.mark("nimbus:dashboard-data");
    } catch (e) { /* shown by the live indicator; keep the last figures */ }
  };
  cleanup.push(onLive((kind, ev) => {
    if (kind === "execution") {
      if (ev.status === "queued" || ev.status === "running") return; // an async call's stages: counted when it ends
      series.add(ev);
      addFeed(ev);
      const k = $("#k-invocations"); if (k && /^\d+$/.test(k.textContent)) k.textContent = Number(k.textContent) + 1;
    } else if (kind === "metrics") {
      setKPIs(ev, true);
      if (ev.instances) series.sample("instances", ev.instances.active || 0);
    }
  }));
  await refresh();
  // The latest executions, from history of each function, seed the feed.
  try {
    const { functions } = await api.call("GET", "/api/functions");
    const lists = await Promise.all((functions || []).slice(0, 20).map(f =>
      api.call("GET", `/api/executions/${f.id}/history?limit=10`).then(r => r.executions.map(e => ({ ...e, function: f.name }))).catch(() => [])));
    lists.flat().sort((a, b) => a.executionId < b.executionId ? -1 : 1).slice(-30).forEach(addFeed);
  } catch { /* empty feed */ }
  draw();
  every(1000, draw);
  every(5000, refresh);
}
