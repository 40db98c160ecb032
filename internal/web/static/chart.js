// Tiny dependency-free SVG charts: a multi-series line chart and a sparkline.
"use strict";
const Chart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function fmt(v) {
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
    if (v >= 10 || v === 0) return Math.round(v).toString();
    return v.toFixed(v >= 1 ? 1 : 2);
  }
  // line draws series [{name, color, points: [[t, v], ...]}] into svg.
  function line(svg, series, opts = {}) {
    const w = 600, h = 180, pl = 40, pr = 8, pt = 8, pb = 20;
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.replaceChildren();
    let tmin = Infinity, tmax = -Infinity, vmax = 0;
    for (const s of series) for (const [t, v] of s.points) {
      tmin = Math.min(tmin, t); tmax = Math.max(tmax, t); vmax = Math.max(vmax, v);
    }
    if (!isFinite(tmin)) { tmin = 0; tmax = 1; }
    if (tmax === tmin) tmax = tmin + 1;
    vmax = vmax > 0 ? vmax * 1.1 : 1;
    const x = t => pl + (t - tmin) / (tmax - tmin) * (w - pl - pr);
    const y = v => pt + (1 - v / vmax) * (h - pt - pb);
    for (let i = 0; i <= 3; i++) {
      const v = vmax * i / 3;
      svg.append(el("line", { x1: pl, x2: w - pr, y1: y(v), y2: y(v), stroke: "currentColor", "stroke-opacity": .12 }));
      const label = el("text", { x: pl - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "currentColor", "fill-opacity": .6 });
      label.textContent = fmt(v) + (opts.unit || "");
      svg.append(label);
    }
    for (const s of series) {
      if (!s.points.length) continue;
      const d = s.points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      svg.append(el("path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
      if (s.points.length < 40) { // sparse data: mark each point so a lone one shows
        for (const [t, v] of s.points) svg.append(el("ellipse", { cx: x(t), cy: y(v), rx: 3, ry: 3 * h / 180, fill: s.color }));
      }
    }
    const title = el("title", {});
    title.textContent = opts.title || "";
    svg.prepend(title);
  }
  function spark(svg, values, color) {
    const w = 110, h = 26;
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.replaceChildren();
    const max = Math.max(1, ...values);
    const d = values.map((v, i) => `${i ? "L" : "M"}${(i / Math.max(1, values.length - 1) * w).toFixed(1)},${(h - 2 - v / max * (h - 4)).toFixed(1)}`).join("");
    svg.append(el("path", { d, fill: "none", stroke: color, "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
  }
  return { line, spark, fmt };
})();
