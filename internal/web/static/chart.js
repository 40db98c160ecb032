// Charts of the UI, drawn by the vendored uPlot (vendor/uplot): time
// charts whose x-axis is fixed to a window (zoom on drag, double-click
// back to the window), with a shared cursor, a tooltip of values with
// their units, a legend whose entries toggle their series (by mouse or
// keyboard), and sparklines. Colours are the theme's CSS variables, read
// at each draw so a theme change redraws in the new colours.
//
// Every chart made is in window.nimbusCharts (id → chart) so the browser
// tests can read what is drawn: chart.u is the uPlot instance, u.data[0]
// its x values (Unix seconds), u.scales.x its range.
"use strict";
const Chart = (() => {
  const css = name => getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim();
  const charts = window.nimbusCharts = {};
  // Charts of one sync key share their cursor, and so their zoom (uPlot
  // passes a drag on to them): one state per key.
  const groups = {};
  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 0 : 1) + "k";
    if (a >= 10 || v === 0) return String(Math.round(v));
    return v.toFixed(a >= 1 ? 1 : 2);
  }
  const withUnit = (v, unit) => v === null || v === undefined ? "–" : fmt(v) + (unit === "%" ? "%" : unit ? " " + unit : "");
  const clock = t => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  // tooltip follows the cursor with the time and each shown series' value
  // and unit at the point under it.
  function tooltipPlugin(units) {
    let tip;
    return {
      hooks: {
        init: u => {
          tip = document.createElement("div");
          tip.className = "chart-tip";
          tip.setAttribute("role", "status");
          tip.hidden = true;
          u.over.append(tip);
          u.over.addEventListener("mouseleave", () => { tip.hidden = true; });
        },
        setCursor: u => {
          const i = u.cursor.idx;
          if (i === null || i === undefined || u.cursor.left < 0) { tip.hidden = true; return; }
          const rows = [clock(u.data[0][i])];
          u.series.forEach((s, k) => { if (k && s.show) rows.push(`${s.label}: ${withUnit(u.data[k][i], units[k - 1])}`); });
          tip.replaceChildren(...rows.map((r, k) => { const d = document.createElement("div"); d.textContent = r; if (!k) d.className = "t"; return d; }));
          tip.hidden = false;
          const left = u.cursor.left, w = u.over.clientWidth;
          tip.style.left = (left > w / 2 ? left - tip.offsetWidth - 12 : left + 12) + "px";
          tip.style.top = Math.max(0, u.cursor.top - 10) + "px";
        },
      },
    };
  }

  // legendKeys makes the legend's entries (uPlot toggles a series on a
  // click) reachable and usable by keyboard, and says their state.
  // (Without live values the legend has no row for x: row i is series i+1.)
  function legendKeys(u) {
    u.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
      const k = i + 1, s = u.series[k];
      row.tabIndex = 0;
      row.setAttribute("role", "button");
      row.setAttribute("aria-pressed", String(s.show));
      row.setAttribute("aria-label", `Show ${s.label}`);
      row.addEventListener("keydown", e => {
        if (e.key !== "Enter" && e.key !== " ") return;
        e.preventDefault();
        u.setSeries(k, { show: !u.series[k].show });
      });
    });
  }

  // lonePoints are the indices of the values of series k with no value
  // on either side: drawn as dots, since no line reaches them.
  function lonePoints(u, k) {
    const d = u.data[k], out = [];
    for (let i = 0; i < d.length; i++) {
      if (d[i] !== null && d[i] !== undefined && (i === 0 || d[i - 1] == null) && (i === d.length - 1 || d[i + 1] == null)) out.push(i);
    }
    return out;
  }

  // time makes a chart in el (emptied) of series [{label, color (a theme
  // variable such as "c1"), unit}], x over [from, to] as set by range.
  // opts: id (for window.nimbusCharts), title (its accessible name),
  // height, sync (a key: charts with the same one share the cursor),
  // points (mark each point: for latency, whose lone points matter).
  function time(el, opts) {
    const units = opts.series.map(s => s.unit || "");
    let from = 0, to = 1;
    const group = opts.sync ? (groups[opts.sync] ||= { zoomed: false, charts: new Set() }) : { zoomed: false, charts: new Set() };
    const axis = unit => ({
      stroke: () => css("muted"),
      grid: { stroke: () => css("border"), width: 1 },
      ticks: { stroke: () => css("border"), width: 1 },
      // wide enough for its longest label (uPlot calls it again when they change)
      size: (u, values) => values && values.length ? Math.max(32, Math.max(...values.map(v => String(v).length)) * 8 + 18) : 44,
      values: (u, splits) => splits.map(v => withUnit(v, unit === "ms" ? "" : unit)),
    });
    const u = new uPlot({
      width: Math.max(200, el.clientWidth || 400),
      height: opts.height || 180,
      cursor: { sync: opts.sync ? { key: opts.sync } : undefined, drag: { x: true, y: false, setScale: true }, points: { size: 7 } },
      legend: { live: false },
      scales: { x: { time: true, auto: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{ ...axis(""), values: undefined, size: 30 }, axis(opts.unit)],
      series: [{ label: "time" }, ...opts.series.map(s => ({
        label: s.label,
        stroke: () => css(s.color),
        width: 2,
        spanGaps: false,
        // A value between gaps draws no line: it gets a dot, so a lone
        // point shows (with points, every point does).
        points: { show: true, size: 5, fill: () => css(s.color), filter: opts.points ? null : lonePoints },
      }))],
      hooks: {
        setSelect: [u => { if (u.select.width > 0) group.zoomed = true; }],
        setSeries: [(u, k) => {
          const row = k && u.root.querySelectorAll(".u-legend .u-series")[k - 1];
          if (row) row.setAttribute("aria-pressed", String(u.series[k].show));
        }],
      },
      plugins: [tooltipPlugin(units)],
    }, [[], ...opts.series.map(() => [])], el);
    // The x-axis is the window, unless zoomed (a double-click goes back).
    const fit = () => { if (!group.zoomed) u.setScale("x", { min: from, max: to }); };
    const unzoom = () => { group.zoomed = false; group.charts.forEach(c => c.fit()); };
    u.over.addEventListener("dblclick", unzoom);
    // The drawing is an image; its legend (controls) is beside it, not in it.
    const wrap = u.root.querySelector(".u-wrap");
    wrap.setAttribute("role", "img");
    wrap.setAttribute("aria-label", opts.title || "");
    legendKeys(u);
    const resize = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w > 0 && Math.abs(w - u.width) > 1) u.setSize({ width: w, height: u.height });
    });
    resize.observe(el);
    const chart = {
      u,
      // set draws data ([xs, ...ys], xs in seconds, null a gap) over [f, t].
      set(data, f, t) {
        from = f; to = t;
        u.setData(data, false);
        fit();
        if (group.zoomed) u.redraw(false);
      },
      fit, unzoom,
      get window() { return [from, to]; },
      redraw() { u.redraw(false, true); },
      destroy() {
        resize.disconnect(); u.destroy(); group.charts.delete(chart);
        if (!group.charts.size) group.zoomed = false;
        if (opts.id && charts[opts.id] === chart) delete charts[opts.id];
      },
    };
    group.charts.add(chart);
    if (opts.id) charts[opts.id] = chart;
    return chart;
  }

  // spark is a small chart without axes or cursor: calls and errors of a
  // function in the function list. data: [xs, ...ys] as for time.
  function spark(el, series, opts = {}) {
    const u = new uPlot({
      width: opts.width || 120, height: opts.height || 28,
      cursor: { show: false }, legend: { show: false }, select: { show: false },
      // a little room below zero and above the top, so neither line is cut
      scales: { x: { time: true, auto: false }, y: { range: (u, min, max) => { const m = max > 0 ? max : 1; return [-m * 0.1, m * 1.1]; } } },
      axes: [{ show: false }, { show: false }],
      series: [{}, ...series.map(s => ({ label: s.label, stroke: () => css(s.color), width: 1.5, points: { show: false } }))],
    }, [[], ...series.map(() => [])], el);
    u.root.setAttribute("aria-hidden", "true");
    const chart = {
      u,
      set(data, f, t) { u.setData(data, false); u.setScale("x", { min: f, max: t }); },
      destroy() { u.destroy(); if (opts.id && charts[opts.id] === chart) delete charts[opts.id]; },
    };
    if (opts.id) charts[opts.id] = chart;
    return chart;
  }

  // A theme change redraws every chart in its colours.
  new MutationObserver(() => Object.values(charts).forEach(c => c.u.redraw(false, true)))
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

  return { time, spark, fmt, withUnit };
})();
