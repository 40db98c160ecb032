// Series: executions counted in fixed steps over a window that ends now,
// as a chart draws them. Seeded (and re-seeded) from the metrics API's
// series (GET /api/metrics/...?series=<step>), and extended between seeds
// by the executions that end on the live stream (/api/events), which
// the next seed then counts itself.
//
// Times are Unix seconds on the server's clock: Series.clock.offset (ms)
// is the server's clock less the browser's, set from the live stream's
// snapshots, so a browser whose clock is off still puts calls at the
// time the server counted them.
"use strict";
const Series = (() => {
  const clock = { offset: 0, now: () => (Date.now() + clock.offset) / 1000 };

  // The window and step a chart of "15m", "1h", "6h" or "24h" shows:
  // about 60 points, steps the API accepts (whole seconds under 15
  // minutes, whole minutes above).
  const windows = {
    "15m": { seconds: 900, step: 15 },
    "1h": { seconds: 3600, step: 60 },
    "6h": { seconds: 21600, step: 360 },
    "24h": { seconds: 86400, step: 1440 },
  };

  // make returns the series of one scope (the system, or a function) over
  // a window of seconds in steps of step seconds.
  function make(seconds, step) {
    const seeded = new Map(); // bucket start → {n, err, cold, p50, p95} from the API
    let live = []; // [{end, n: 1, ok, cold, dur}] ended since the last seed was asked for
    const gauges = new Map(); // bucket start → {name: value}: the last sample in the bucket
    const bucketOf = t => Math.floor(t / step) * step;

    return {
      seconds, step,
      // seed takes the API's points, asked for at askedAt (server seconds):
      // live executions that ended before then are in them.
      seed(points, askedAt) {
        seeded.clear();
        for (const p of points || []) {
          const t = Math.round(new Date(p.start).getTime() / 1000);
          const ok = (p.byStatus || {}).success || 0;
          seeded.set(t, { n: p.invocations, err: p.invocations - ok, cold: p.coldStarts, p50: p.p50Ms, p95: p.p95Ms });
        }
        live = live.filter(e => e.end >= askedAt);
      },
      // add counts a finished execution from the live stream.
      add(ev) {
        if (ev.status === "queued" || ev.status === "running") return; // an async call's stages: counted when it ends
        const end = new Date(ev.startedAt).getTime() / 1000 + (ev.durationMs || 0) / 1000;
        live.push({ end, ok: ev.status === "success", cold: !!ev.coldStart, dur: ev.durationMs || 0 });
        if (live.length > 50000) live.splice(0, live.length - 50000); // no seed for a long while: keep memory bounded
      },
      // sample keeps a gauge's value (instances, host CPU) at time t.
      sample(name, value, t = clock.now()) {
        const b = bucketOf(t);
        if (!gauges.has(b)) gauges.set(b, {});
        gauges.get(b)[name] = value;
      },
      // rows are the window's buckets ending now, oldest first: {t, n, err,
      // cold, p50, p95 (null without calls), and the gauges (null unknown)}.
      rows(now = clock.now()) {
        const last = bucketOf(now), n = Math.ceil(seconds / step), first = last - (n - 1) * step;
        const extra = new Map();
        for (const e of live) {
          const b = bucketOf(e.end);
          if (b < first) continue;
          if (!extra.has(b)) extra.set(b, { n: 0, err: 0, cold: 0, durs: [] });
          const x = extra.get(b);
          x.n++; if (!e.ok) x.err++; if (e.cold) x.cold++; x.durs.push(e.dur);
        }
        for (const b of gauges.keys()) if (b < first) gauges.delete(b);
        const out = [];
        for (let t = first; t <= last; t += step) {
          const s = seeded.get(t) || { n: 0, err: 0, cold: 0 }, x = extra.get(t);
          const r = { t, n: s.n, err: s.err, cold: s.cold, p50: s.n ? s.p50 : null, p95: s.n ? s.p95 : null, ...gauges.get(t) };
          if (x) {
            r.n += x.n; r.err += x.err; r.cold += x.cold;
            if (x.n >= s.n) { // the live calls are most of the bucket: theirs
              const d = x.durs.sort((a, b) => a - b), q = p => d[Math.max(0, Math.ceil(d.length * p) - 1)];
              r.p50 = q(0.5); r.p95 = q(0.95);
            }
          }
          out.push(r);
        }
        return { from: now - seconds, to: now, rows: out };
      },
    };
  }

  // columns turns rows into uPlot data: x, then one column per getter.
  function columns(rows, ...getters) {
    return [rows.map(r => r.t), ...getters.map(g => rows.map(r => { const v = g(r); return v === undefined ? null : v; }))];
  }

  return { clock, windows, make, columns };
})();
