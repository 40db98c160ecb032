// Nimbus UI: a small single-page app over the public HTTP API.
"use strict";

// ---------- API client ----------
// It sends no key: the session cookie (session.js) goes with each call
// by itself, as it does with the event stream's.
const api = {
  // call sends body as JSON, or as it is when it is a Blob (of media type
  // opts.type) or a FormData, with opts.headers besides; opts.binary
  // answers an ArrayBuffer; opts.status answers {status, data}, for
  // calls whose 200 and 201 mean different things. A 401 asks to sign in
  // again and then retries the call, unless opts.noSignIn.
  async call(method, path, body, opts = {}) {
    const headers = { ...opts.headers };
    let payload;
    if (body instanceof Blob || body instanceof FormData) {
      payload = body;
      if (opts.type) headers["Content-Type"] = opts.type;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = typeof body === "string" ? body : JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    } catch (e) {
      throw new ApiError(0, "network", "Cannot reach the Nimbus server: " + e.message);
    }
    if (resp.status === 401 && !opts.noSignIn) {
      await Session.ended(); // a sign-in with another key loads the page again
      return this.call(method, path, body, opts);
    }
    if (resp.status === 204) return opts.status ? { status: 204, data: null } : null;
    if (opts.binary && resp.ok) return resp.arrayBuffer();
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!resp.ok) {
      const e = data && data.error;
      throw new ApiError(resp.status, e ? e.code : "http", e ? e.message : `HTTP ${resp.status}: ${text.slice(0, 200)}`, e && e.field);
    }
    return opts.status ? { status: resp.status, data } : data;
  },
};
class ApiError extends Error {
  constructor(status, code, message, field) { super(message); this.status = status; this.code = code; this.field = field; }
}

// ---------- helpers ----------
const $ = (sel, root = document) => root.querySelector(sel);
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}
const badge = st => h("span", { class: "badge s-" + st }, st);
const ms = v => v === undefined || v === null ? "–" : v < 1 ? v.toFixed(2) + " ms" : v < 100 ? v.toFixed(1) + " ms" : Math.round(v) + " ms";
const ago = t => { const s = (Date.now() - new Date(t)) / 1000; return s < 60 ? Math.max(0, Math.round(s)) + "s ago" : s < 3600 ? Math.round(s / 60) + "m ago" : s < 86400 ? Math.round(s / 3600) + "h ago" : new Date(t).toLocaleString(); };
const pct = v => (v * 100).toFixed(v > 0 && v < 0.1 ? 1 : 0) + "%";
const json = v => JSON.stringify(v, null, 2);
function errorBox(id) { return h("p", { class: "error", id, role: "alert" }); }
function showError(box, err) { box.textContent = err ? (err.message || String(err)) : ""; }
function toast(msg) {
  const t = h("div", { class: "toast", role: "status" }, msg);
  document.body.append(t); setTimeout(() => t.remove(), 3000);
}

// ---------- live events ----------
const live = { source: null, listeners: new Set(), snapshot: null };
function connectEvents() {
  if (live.source) live.source.close();
  live.source = null;
  const mark = (on, text) => { $("#live").classList.toggle("on", on); $("#live-text").textContent = text; };
  if (!Session.can("read")) { mark(false, "off"); return; } // the stream needs the read scope
  // The session cookie authenticates the stream (EventSource sends no
  // header of ours), never a key in its URL.
  const es = new EventSource("/api/events");
  live.source = es;
  es.onopen = () => mark(true, "live");
  es.onerror = () => mark(false, "reconnecting");
  es.addEventListener("execution", e => { const ev = JSON.parse(e.data); live.listeners.forEach(f => f("execution", ev)); });
  es.addEventListener("build", e => { const ev = JSON.parse(e.data); live.listeners.forEach(f => f("build", ev)); });
  es.addEventListener("metrics", e => {
    live.snapshot = JSON.parse(e.data);
    if (live.snapshot.time) Series.clock.offset = Date.parse(live.snapshot.time) - Date.now();
    live.listeners.forEach(f => f("metrics", live.snapshot));
  });
}
function onLive(f) { live.listeners.add(f); return () => live.listeners.delete(f); }

// ---------- router ----------
let cleanup = [];
// Each route names the scope its page needs and what the page is, for
// the notice shown to a key without it.
const routes = [
  [/^#?\/?$/, dashboard, "dashboard", "read", "the dashboard"],
  [/^#\/functions\/?$/, functionsPage, "functions", "read", "the list of functions"],
  [/^#\/new$/, fn => editPage(null), "functions", "deploy", "creating a function"],
  [/^#\/functions\/([^/]+)\/edit$/, editPage, "functions", "deploy", "changing a function's settings"],
  [/^#\/functions\/([^/]+)\/executions\/([^/]+)$/, executionPage, "functions", "read", "an execution"],
  [/^#\/functions\/([^/]+)$/, detailPage, "functions", "read", "a function's page"],
  [/^#\/keys$/, Admin.keysPage, "keys", "admin", "the Keys page"],
  [/^#\/secrets$/, Admin.secretsPage, "secrets", "admin", "the Secrets page"],
  [/^#\/audit$/, Admin.auditPage, "audit", "admin", "the audit log"],
];
async function route() {
  cleanup.forEach(f => f()); cleanup = [];
  const hash = location.hash || "#/";
  const main = $("#main");
  for (const [re, view, nav, scope, what] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    document.querySelectorAll("[data-nav]").forEach(a => a.classList.toggle("active", a.dataset.nav === nav));
    main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    try {
      if (!Session.can(scope)) Session.notAllowed(scope, what);
      else await view(...m.slice(1).map(decodeURIComponent));
    } catch (e) {
      // A 403 names the scope the key lacks: the server's word, shown as it is.
      main.replaceChildren(h("h1", {}, e.status === 403 ? "Not allowed" : "Something went wrong"), h("p", { class: "error", role: "alert" }, e.message),
        h("p", {}, h("a", { href: "#/functions" }, "Back to functions")));
    }
    main.focus({ preventScroll: true });
    return;
  }
  main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Go to the dashboard")));
}
function every(msInterval, f) { const t = setInterval(f, msInterval); cleanup.push(() => clearInterval(t)); }

// ---------- functions list ----------
// Every function with its last hour: a sparkline of calls and errors
// (one call for all, GET /api/metrics/functions), p95, error rate,
// instances and last call; the columns sort on a click of their heading.
async function functionsPage() {
  const main = $("#main");
  const [{ functions }, all] = await Promise.all([api.call("GET", "/api/functions"),
    api.call("GET", "/api/metrics/functions?window=1h&series=5m").catch(() => ({ functions: [] }))]);
  const byId = new Map((all.functions || []).map(m => [m.functionId, m]));
  const rows = functions.map(f => ({ f, m: byId.get(f.id), last: null }));
  const body = h("tbody");
  const cols = [
    ["Name", r => r.f.name], ["Runtime", r => r.f.runtime], ["Driver", r => r.f.driver], ["Version", r => r.f.revision],
    ["Last call", r => r.last || 0], ["Calls (1h)", r => r.m ? r.m.invocations : 0],
    ["Error rate", r => r.m && r.m.invocations ? r.m.errorRate : -1], ["p95", r => r.m && r.m.invocations ? r.m.durationMs.p95 : -1],
    ["Instances", r => r.m ? r.m.instances.active : 0], ["Calls and errors (1h)", null],
  ];
  let sortBy = 0, asc = true;
  const heads = cols.map(([label, key], i) => key
    ? h("th", { scope: "col", "aria-sort": i === sortBy ? "ascending" : "none" },
      h("button", { type: "button", class: "sort", "data-col": i, onclick: () => { asc = sortBy === i ? !asc : true; sortBy = i; render(); } }, label))
    : h("th", { scope: "col" }, label));
  const table = h("table", { id: "functions" }, h("caption", { class: "sr-only" }, "Functions, sortable by each column"), h("thead", {}, h("tr", {}, heads)), body);
  const deploy = Session.can("deploy");
  main.replaceChildren(
    h("h1", {}, "Functions", deploy ? h("a", { class: "button primary", href: "#/new" }, "New function") : null),
    h("section", { class: "panel" }, functions.length ? table : h("p", { class: "empty" }, "No functions yet.", deploy ? [" ", h("a", { href: "#/new" }, "Create one from a template.")] : null)));
  const now = Series.clock.now();
  for (const r of rows) {
    const href = "#/functions/" + encodeURIComponent(r.f.name);
    const m = r.m, ran = m && m.invocations > 0;
    const sparkBox = h("div", { class: "spark" });
    r.lastCell = h("td", { class: "muted last-call" }, "–");
    r.tr = h("tr", { "data-name": r.f.name },
      h("td", {}, h("a", { href }, r.f.name)), h("td", {}, r.f.runtime), h("td", {}, r.f.driver), h("td", {}, "r" + r.f.revision),
      r.lastCell, h("td", { class: "calls" }, m ? m.invocations : "–"), h("td", { class: "error-rate" }, ran ? pct(m.errorRate) : "–"),
      h("td", { class: "p95" }, ran ? ms(m.durationMs.p95) : "–"), h("td", { class: "instances" }, m ? m.instances.active : "–"),
      h("td", { "aria-label": m ? `${m.invocations} calls, ${m.byStatus ? m.invocations - (m.byStatus.success || 0) : 0} errors in the last hour` : "no data" }, sparkBox));
    body.append(r.tr);
    if (m && m.series) {
      const sp = Chart.spark(sparkBox, [{ label: "calls", color: "c1" }, { label: "errors", color: "c2" }], { id: "spark-" + r.f.name });
      cleanup.push(() => sp.destroy());
      const pts = m.series.map(p => ({ t: new Date(p.start).getTime() / 1000, n: p.invocations, err: p.invocations - ((p.byStatus || {}).success || 0) }));
      sp.set(Series.columns(pts, p => p.n, p => p.err), now - 3600, now);
    }
    // The last call: the newest execution of each (history is per function).
    api.call("GET", `/api/executions/${r.f.id}/history?limit=1`).then(hs => {
      const ex = hs.executions[0];
      if (!ex) return;
      r.last = new Date(ex.startedAt).getTime();
      r.lastCell.textContent = ago(ex.startedAt);
      r.lastCell.title = new Date(ex.startedAt).toLocaleString();
      if (cols[sortBy][0] === "Last call") render();
    }).catch(() => { });
  }
  function render() {
    const key = cols[sortBy][1];
    rows.sort((a, b) => { const x = key(a), y = key(b); const c = typeof x === "string" ? x.localeCompare(y) : x - y; return asc ? c : -c; });
    heads.forEach((th, i) => { if (cols[i][1]) th.setAttribute("aria-sort", i === sortBy ? (asc ? "ascending" : "descending") : "none"); });
    body.append(...rows.map(r => r.tr)); // moves them: their charts stay
  }
  render();
}

// ---------- templates ----------
const templates = {
  "python-hello": { runtime: "python", label: "Python: hello world", code: `def handler(event, context):\n    name = event.get("name", "world")\n    print(f"saying hello to {name}")\n    return {"message": f"Hello, {name}!"}\n`, event: { name: "Ada" } },
  "python-json": { runtime: "python", label: "Python: JSON transform", code: `def handler(event, context):\n    items = event.get("items", [])\n    total = sum(i["price"] * i.get("qty", 1) for i in items)\n    return {"count": len(items), "total": round(total, 2),\n            "names": sorted(i["name"] for i in items)}\n`, event: { items: [{ name: "tea", price: 3.5, qty: 2 }, { name: "cake", price: 4 }] } },
  "python-http": { runtime: "python", label: "Python: HTTP-style handler", code: `import json\n\ndef handler(event, context):\n    # API Gateway-style event in, HTTP-style response out.\n    params = event.get("queryStringParameters") or {}\n    body = {"path": event.get("path", "/"), "hello": params.get("who", "world"),\n            "requestId": context.aws_request_id}\n    return {"statusCode": 200, "headers": {"content-type": "application/json"},\n            "body": json.dumps(body)}\n`, event: { path: "/greet", queryStringParameters: { who: "Ada" } } },
  "node-hello": { runtime: "nodejs", label: "Node.js: hello world", code: `exports.handler = async (event, context) => {\n  const name = event.name || "world";\n  console.log("saying hello to", name);\n  return { message: \`Hello, \${name}!\` };\n};\n`, event: { name: "Ada" } },
  "node-json": { runtime: "nodejs", label: "Node.js: JSON transform", code: `exports.handler = async (event) => {\n  const items = event.items || [];\n  const total = items.reduce((s, i) => s + i.price * (i.qty || 1), 0);\n  return { count: items.length, total: Math.round(total * 100) / 100,\n           names: items.map(i => i.name).sort() };\n};\n`, event: { items: [{ name: "tea", price: 3.5, qty: 2 }, { name: "cake", price: 4 }] } },
  // Go, on the provided runtime: Nimbus builds the module at create
  // (its dependencies through the server's Go module proxy) into the
  // bootstrap the Runtime API runs. The same files as `nimbus init --runtime go`.
  "go-hello": { runtime: "provided", label: "Go: hello world (aws-lambda-go)", files: {
    "go.mod": "module hello\n\ngo 1.26\n\nrequire github.com/aws/aws-lambda-go v1.55.1\n",
    "go.sum": "github.com/aws/aws-lambda-go v1.55.1 h1:We2cCp4BwqqH/JW+bEEo1FhgG71rslvjfi4y7KmlrR0=\ngithub.com/aws/aws-lambda-go v1.55.1/go.mod h1:V+NzkHNR6vBC8C1PDloqSLE+7jYWFiPvJJFiCiTm8nE=\n",
    "main.go": `package main\n\nimport (\n\t"context"\n\t"fmt"\n\n\t"github.com/aws/aws-lambda-go/lambda"\n)\n\ntype event struct {\n\tName string \`json:"name"\`\n}\n\nfunc handler(ctx context.Context, e event) (map[string]string, error) {\n\tname := e.Name\n\tif name == "" {\n\t\tname = "world"\n\t}\n\tfmt.Println("saying hello to", name)\n\treturn map[string]string{"message": "Hello, " + name + "!"}, nil\n}\n\nfunc main() { lambda.Start(handler) }\n`,
  }, event: { name: "Ada" } },
  "node-http": { runtime: "nodejs", label: "Node.js: HTTP-style handler", code: `exports.handler = async (event, context) => {\n  const params = event.queryStringParameters || {};\n  return {\n    statusCode: 200,\n    headers: { "content-type": "application/json" },\n    body: JSON.stringify({ path: event.path || "/", hello: params.who || "world",\n                           requestId: context.awsRequestId }),\n  };\n};\n`, event: { path: "/greet", queryStringParameters: { who: "Ada" } } },
};

// ---------- create / edit ----------
// A new function gets its settings and its code here: files (from a
// template) or an archive. An existing one gets its settings only: its
// code is edited on its page.
async function editPage(name) {
  const main = $("#main");
  const existing = name ? await api.call("GET", "/api/functions/" + encodeURIComponent(name)) : null;
  let drivers = { sandbox: { available: true } };
  try { drivers = (await api.call("GET", "/api/system")).drivers || drivers; } catch { /* default */ }
  // The runtimes, their names and default handlers come from the server's runtime table.
  const runtimes = await api.call("GET", "/api/runtimes");
  const runtimeOf = rt => runtimes.find(r => r.name === rt) || {};
  const defaultHandler = rt => runtimeOf(rt).defaultHandler || "";
  // A template's file is the module of the runtime's default handler.
  const templateFiles = id => {
    const t = templates[id], hd = defaultHandler(t.runtime) || "main.handler";
    if (t.files) return { ...t.files };
    return { [hd.slice(0, hd.lastIndexOf(".")) + (runtimeOf(t.runtime).extension || "")]: t.code };
  };
  const f = existing || { name: "", runtime: templates["python-hello"].runtime, handler: "", env: {}, timeout: 0, memory: 0, driver: "sandbox", maxInstances: 0 };
  const code = existing ? null : Code.editor({ files: templateFiles("python-hello") });
  const field = (id, label, input, help) => h("div", {}, h("label", { for: id }, label), input, help ? h("small", { class: "muted" }, help) : null);
  const nameIn = h("input", { id: "name", value: f.name, required: true, autocomplete: "off", placeholder: "my-function", pattern: "[a-z0-9]([a-z0-9-]*[a-z0-9])?" });
  const rtIn = h("select", { id: "runtime" }, runtimes.map(r => h("option", { value: r.name }, r.label + (r.available ? "" : " (unavailable)"))));
  rtIn.value = f.runtime;
  const handlerIn = h("input", { id: "handler", value: f.handler || "", placeholder: defaultHandler(f.runtime) });
  const driverIn = h("select", { id: "driver" }, Object.entries(drivers).map(([d, s]) => h("option", { value: d }, d + (s.available ? "" : " (unavailable)"))));
  driverIn.value = f.driver;
  const timeoutIn = h("input", { id: "timeout", type: "number", min: 1, value: f.timeout || "", placeholder: "server default" });
  const memoryIn = h("input", { id: "memory", type: "number", min: 16, value: f.memory || "", placeholder: "server default" });
  const maxIn = h("input", { id: "maxInstances", type: "number", min: 1, value: f.maxInstances || "", placeholder: "10" });
  const minIn = h("input", { id: "minInstances", type: "number", min: 0, value: f.minInstances || "", placeholder: "0" });
  const concIn = h("input", { id: "concurrency", type: "number", min: 1, value: f.concurrency || "", placeholder: "1" });
  const keepIn = h("input", { id: "keepAlive", type: "number", min: 0, value: f.keepAlive || "", placeholder: "adaptive" });
  // A variable is a value or a secret's reference, {"secret": "name"}:
  // the server puts the secret's value in the environment when it runs;
  // the UI shows its name only, and never reads a value.
  const envRows = h("div", { class: "kv", id: "env" });
  const envItems = [];
  const secrets = Session.can("admin") ? await api.call("GET", "/api/secrets").then(r => r.secrets || []).catch(() => null) : null;
  const addEnv = (k = "", v = "") => {
    const kIn = h("input", { "aria-label": "Variable name", value: k, placeholder: "NAME", class: "mono" });
    const ref = v && typeof v === "object" ? v.secret || "" : null;
    let cell, value;
    if (ref === null) {
      cell = h("input", { "aria-label": "Variable value", value: v, placeholder: "value", class: "mono" });
      value = () => cell.value;
    } else {
      // From the secrets list when the key may read it, else by name.
      const pick = secrets
        ? h("select", { class: "mono secret-pick", "aria-label": "Secret of the variable" }, h("option", { value: "" }, "choose a secret"),
          [...new Set([...secrets.map(x => x.name), ...(ref ? [ref] : [])])].map(n => h("option", { value: n }, n)))
        : h("input", { class: "mono secret-pick", "aria-label": "Secret of the variable", placeholder: "secret name", autocomplete: "off" });
      pick.value = ref;
      cell = h("span", { class: "secret-ref" }, h("span", { "aria-hidden": "true" }, "🔒"), " secret: ", pick);
      value = () => ({ secret: pick.value.trim() });
    }
    const item = { kIn, value };
    const rm = h("button", { type: "button", "aria-label": "Remove variable", onclick: () => { kIn.remove(); cell.remove(); rm.remove(); envItems.splice(envItems.indexOf(item), 1); } }, "✕");
    envItems.push(item);
    envRows.append(kIn, cell, rm);
  };
  Object.entries(f.env || {}).forEach(([k, v]) => addEnv(k, v));
  const tmpl = existing ? null : h("select", { id: "template" },
    Object.entries(templates).map(([id, t]) => h("option", { value: id }, t.label)));
  if (tmpl) tmpl.onchange = () => { const t = templates[tmpl.value]; rtIn.value = t.runtime; code.reset(templateFiles(tmpl.value)); handlerIn.placeholder = defaultHandler(t.runtime); };
  rtIn.onchange = () => { handlerIn.placeholder = defaultHandler(rtIn.value); };
  // A new function's code may come as an archive instead of the files.
  const archiveIn = existing ? null : h("input", { id: "create-archive", type: "file", accept: Code.archiveAccept });
  const archiveNote = h("p", { class: "notice", id: "create-archive-note", hidden: true }, "The archive is the code: the files above are not sent.");
  const clearArchive = h("button", { type: "button", id: "clear-archive", hidden: true }, "Use the files instead");
  const onArchive = () => {
    const chosen = !!archiveIn.files.length;
    code.el.inert = chosen; code.el.classList.toggle("off", chosen);
    archiveNote.hidden = clearArchive.hidden = !chosen;
  };
  if (archiveIn) {
    archiveIn.onchange = onArchive;
    clearArchive.onclick = () => { archiveIn.value = ""; onArchive(); archiveIn.focus(); };
  }
  const building = Code.buildView();
  building.el.hidden = true;
  const err = errorBox("form-error");
  const save = h("button", { type: "submit", class: "primary" }, existing ? "Save" : "Create function");
  const form = h("form", { novalidate: true },
    h("section", { class: "panel" },
      tmpl ? field("template", "Start from a template", tmpl) : null,
      h("div", { class: "fields" }, field("name", "Name", nameIn), field("runtime", "Runtime", rtIn), field("handler", "Handler", handlerIn),
        field("driver", "Isolation driver", driverIn)),
      code ? [h("h2", { class: "sub" }, "Code"), code.el,
        h("div", { class: "row" }, h("label", { for: "create-archive", class: "inline-label" }, "Or upload an archive (.zip, .tar.gz)"), archiveIn, clearArchive),
        archiveNote]
        : h("p", { class: "muted" }, "The code is edited on ", h("a", { href: "#/functions/" + encodeURIComponent(name) }, "the function's page"), "."),
      h("div", { class: "fields" }, field("timeout", "Timeout (ms)", timeoutIn), field("memory", "Memory (MB)", memoryIn), field("maxInstances", "Max instances", maxIn)),
      h("div", { class: "fields" }, field("minInstances", "Min instances (kept warm)", minIn), field("concurrency", "Calls per instance", concIn),
        field("keepAlive", "Keep-alive (ms)", keepIn, "empty: the server's, adaptive by default")),
      h("label", {}, "Environment variables"), envRows,
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => addEnv() }, "Add variable"),
        h("button", { type: "button", id: "add-secret-env", onclick: () => addEnv("", { secret: "" }) }, "Add secret reference"),
        secrets && !secrets.length ? h("span", { class: "muted small" }, "No secrets yet: ", h("a", { href: "#/secrets" }, "create one"), ".") : null),
      err, building.el,
      h("div", { class: "row" }, save, h("a", { class: "button", href: existing ? "#/functions/" + encodeURIComponent(name) : "#/functions" }, "Cancel"))));
  // A create builds the new function's dependencies before it answers:
  // its lines come on the live stream, under its name.
  let creating = "";
  cleanup.push(onLive((kind, ev) => { if (kind === "build" && creating && ev.function === creating) building.event(ev); }));
  form.onsubmit = async e => {
    e.preventDefault();
    [nameIn, rtIn, handlerIn, timeoutIn, memoryIn, maxIn, minIn, concIn, keepIn, archiveIn].forEach(i => i && i.removeAttribute("aria-invalid"));
    if (code) code.markError("");
    showError(err, null);
    const env = {};
    for (const { kIn, value } of envItems) if (kIn.value.trim()) env[kIn.value.trim()] = value();
    const unnamed = Object.entries(env).find(([, v]) => typeof v === "object" && !v.secret);
    if (unnamed) { showError(err, `Choose the secret of ${unnamed[0]}.`); return; }
    const body = { name: nameIn.value.trim(), runtime: rtIn.value, env, driver: driverIn.value };
    if (handlerIn.value.trim()) body.handler = handlerIn.value.trim();
    else if (existing) body.handler = defaultHandler(rtIn.value);
    for (const [k, i] of [["timeout", timeoutIn], ["memory", memoryIn], ["maxInstances", maxIn], ["minInstances", minIn], ["concurrency", concIn], ["keepAlive", keepIn]]) if (i.value) body[k] = Number(i.value);
    let send = body;
    if (!existing && archiveIn.files.length) {
      const file = archiveIn.files[0], type = await Code.archiveType(file);
      if (!type) { showError(err, `${file.name} is not a zip or tar.gz archive.`); archiveIn.setAttribute("aria-invalid", "true"); archiveIn.focus(); return; }
      send = new FormData();
      send.append("function", new Blob([JSON.stringify(body)], { type: "application/json" }));
      send.append("archive", file.slice(0, file.size, type), file.name);
    } else if (!existing) {
      body.files = code.files();
      if (!Object.keys(body.files).length) { showError(err, "The function has no files: add one, or upload an archive."); code.focus(); return; }
    }
    save.disabled = true;
    creating = existing ? "" : body.name;
    try {
      const saved = existing ? await api.call("PUT", "/api/functions/" + encodeURIComponent(existing.id), send) : await api.call("POST", "/api/functions", send);
      (saved.warnings || []).forEach(toast);
      location.hash = "#/functions/" + encodeURIComponent(saved.name);
    } catch (ex) {
      showError(err, ex);
      const target = { name: nameIn, runtime: rtIn, handler: handlerIn, timeout: timeoutIn, memory: memoryIn, maxInstances: maxIn, minInstances: minIn, concurrency: concIn, keepAlive: keepIn, archive: archiveIn }[ex.field];
      if (code && (ex.field === "code" || ex.field === "files")) { if (!code.markError(ex.message)) code.focus(); }
      else if (target) { target.setAttribute("aria-invalid", "true"); target.focus(); }
      else if (ex.code === "conflict") { nameIn.setAttribute("aria-invalid", "true"); nameIn.focus(); }
    } finally { save.disabled = false; creating = ""; }
  };
  main.replaceChildren(h("h1", {}, existing ? `Settings of ${existing.name}` : "New function"), form);
  (existing ? handlerIn : nameIn).focus();
}

// ---------- function detail ----------
async function detailPage(name) {
  const main = $("#main");
  const f = await api.call("GET", "/api/functions/" + encodeURIComponent(name));
  const tmplEvent = Object.values(templates).find(t => t.runtime === f.runtime && Object.values(f.files || {}).includes(t.code));
  const payload = Editor.create({ id: "payload", label: "Event (JSON)", value: json(tmplEvent ? tmplEvent.event : {}), indent: "  ", rows: 8 });
  const invokeErr = errorBox("invoke-error");
  const result = h("div", { id: "result", "aria-live": "polite" });
  const run = h("button", { type: "button", class: "primary", id: "invoke" }, "Invoke");
  const asyncIn = h("input", { type: "checkbox", id: "invoke-async" });
  const qualifierSel = h("select", { id: "invoke-qualifier" });
  Versions.fillQualifiers(qualifierSel, [], []);
  run.onclick = async () => {
    showError(invokeErr, null); payload.mark(0);
    let event;
    try { event = JSON.parse(payload.value || "{}"); } catch (e) {
      showError(invokeErr, "The event is not valid JSON: " + e.message);
      const m = e.message.match(/line (\d+)/); payload.mark(m ? Number(m[1]) : 1); payload.textarea.focus(); return;
    }
    run.disabled = true;
    const target = "/api/executions/" + encodeURIComponent(f.id) +
      (qualifierSel.value === Versions.LATEST ? "" : "?qualifier=" + encodeURIComponent(qualifierSel.value));
    try {
      if (asyncIn.checked) {
        // Queued: the call runs later, its outcome comes to the history.
        const a = await api.call("POST", target, JSON.stringify(event), { headers: { "X-Nimbus-Invocation-Type": "Event" } });
        result.replaceChildren(h("p", { id: "async-accepted" }, badge(a.status || "queued"), " Accepted (202): execution ",
          h("a", { class: "mono", href: `#/functions/${encodeURIComponent(f.name)}/executions/${a.executionId}` }, a.executionId),
          a.duplicate ? " (a duplicate of a call already made)" : "", ". Its outcome comes to the history below."));
        loadHistory(); triggers.tick();
        return;
      }
      const ex = await api.call("POST", target, JSON.stringify(event));
      result.replaceChildren(executionView(ex));
      loadHistory(); loadMetrics();
    } catch (e) { showError(invokeErr, e); } finally { run.disabled = false; }
  };
  payload.textarea.addEventListener("keydown", e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run.click(); } });
  const tests = TestEvents.panel(f, { editor: payload, run: () => run.click() });

  const filter = h("select", { id: "status-filter", "aria-label": "Filter by status" }, h("option", { value: "" }, "All statuses"),
    ["queued", "running", "success", "error", "timeout", "oom", "crashed", "rejected"].map(s => h("option", { value: s }, s)));
  const versionFilter = h("select", { id: "version-filter", "aria-label": "Filter by version" });
  // fillVersionFilter offers $LATEST and each version, keeping the choice.
  const fillVersionFilter = versions => {
    const was = versionFilter.value;
    versionFilter.replaceChildren(h("option", { value: "" }, "All versions"), h("option", { value: Versions.LATEST }, Versions.LATEST),
      ...versions.slice().reverse().map(v => h("option", { value: String(v.version) }, "v" + v.version)));
    if ([...versionFilter.options].some(o => o.value === was)) versionFilter.value = was;
  };
  fillVersionFilter([]);
  const histBody = h("tbody", { id: "history" });
  const more = h("button", { type: "button", id: "more" }, "Older");
  // Log search: text (logs, error type and message), a time range.
  const textIn = h("input", { type: "search", id: "history-q", placeholder: "Search logs and errors", "aria-label": "Search logs and errors", autocomplete: "off" });
  const sinceIn = h("input", { type: "datetime-local", id: "history-since", step: 1, "aria-label": "Started from" });
  const untilIn = h("input", { type: "datetime-local", id: "history-until", step: 1, "aria-label": "Started before" });
  const histNote = h("p", { class: "muted small", id: "history-note", role: "status" });
  const firstMatch = (logs, q) => {
    const lines = (logs || "").split("\n").filter(Boolean);
    const hit = q ? lines.find(l => l.toLowerCase().includes(q.toLowerCase())) : lines[lines.length - 1];
    return hit ? (hit.length > 120 ? hit.slice(0, 117) + "…" : hit) : "";
  };
  let cursor = "", loading = null, again = false;
  // loadHistory reads the first page again (or the next, append); calls
  // that come while one runs are folded into one more.
  async function loadHistory(append) {
    if (loading && !append) { again = true; return loading; }
    const run = async () => {
      const q = new URLSearchParams({ limit: 20 });
      if (filter.value) q.set("status", filter.value);
      if (versionFilter.value) q.set("version", versionFilter.value);
      const text = textIn.value.trim();
      if (text) q.set("q", text);
      if (sinceIn.value) q.set("since", new Date(sinceIn.value).toISOString());
      if (untilIn.value) q.set("until", new Date(untilIn.value).toISOString());
      if (append && cursor) q.set("before", cursor);
      const r = await api.call("GET", `/api/executions/${f.id}/history?${q}`);
      if (!append) histBody.replaceChildren();
      for (const ex of r.executions) {
        const href = `#/functions/${encodeURIComponent(f.name)}/executions/${ex.executionId}`;
        const line = ex.error && text && `${ex.error.type}: ${ex.error.message}`.toLowerCase().includes(text.toLowerCase()) ? `${ex.error.type}: ${ex.error.message}` : firstMatch(ex.logs, text);
        histBody.append(h("tr", { class: "clickable", onclick: e => { if (!e.target.closest("a")) location.hash = href; } },
          h("td", {}, badge(ex.status)), h("td", { class: "mono" }, h("a", { href }, ex.executionId.slice(-10))),
          h("td", { title: new Date(ex.startedAt).toLocaleString() }, ago(ex.startedAt)), h("td", {}, ex.status === "queued" ? "–" : ms(ex.durationMs)), h("td", {}, ex.status === "queued" ? "–" : ex.coldStart ? "cold" : "warm"),
          h("td", { class: "trigger" }, triggerName(ex.trigger), ex.attempt ? h("span", { class: "muted" }, ` · try ${ex.attempt}`) : null), h("td", {}, versionName(ex)),
          h("td", { class: "mono small log-match" }, line)));
      }
      const filtered = text || sinceIn.value || untilIn.value || filter.value || versionFilter.value;
      if (!histBody.children.length) histBody.append(h("tr", {}, h("td", { colspan: 8, class: "empty" }, filtered ? "No executions match." : "No executions yet.")));
      cursor = r.nextBefore || ""; more.hidden = !cursor;
      histNote.textContent = r.scanLimit && !cursor ? `A text search looks through the newest ${r.scanLimit.toLocaleString()} executions in the range; set "Started before" to search older ones.` : "";
    };
    if (append) return run();
    loading = (async () => {
      try { do { again = false; await run(); } while (again); } finally { loading = null; }
    })();
    return loading;
  }
  filter.onchange = versionFilter.onchange = sinceIn.onchange = untilIn.onchange = () => loadHistory();
  let typing;
  textIn.oninput = () => { clearTimeout(typing); typing = setTimeout(() => loadHistory(), 300); };
  more.onclick = () => loadHistory(true);

  // The figures and charts of a window (15m, 1h, 6h or 24h; 1h first):
  // seeded from the function's series, extended by its live executions,
  // the x-axis fixed to the window.
  const stats = h("div", { class: "grid kpis", id: "fn-kpis" });
  const windowSel = h("select", { id: "fn-window", "aria-label": "Chart window" },
    Object.keys(Series.windows).map(w => h("option", { value: w }, "last " + w)));
  windowSel.value = "1h";
  const bCount = h("div", { class: "chart" }), bLat = h("div", { class: "chart" });
  const perStep = h("span", { id: "fn-step" });
  const cCount = Chart.time(bCount, { id: "fn-count", title: "Invocations and errors per step", sync: "function", series: [{ label: "invocations", color: "c1", unit: "calls" }, { label: "errors", color: "c2", unit: "calls" }] });
  const cLat = Chart.time(bLat, { id: "fn-latency", title: "Latency in milliseconds", unit: "ms", sync: "function", points: true, series: [{ label: "p50", color: "c1", unit: "ms" }, { label: "p95", color: "c4", unit: "ms" }] });
  cleanup.push(() => { cCount.destroy(); cLat.destroy(); });
  let fseries = null;
  const drawCharts = () => {
    if (!fseries) return;
    const { from, to, rows } = fseries.rows();
    cCount.set(Series.columns(rows, r => r.n, r => r.err), from, to);
    cLat.set(Series.columns(rows, r => r.p50, r => r.p95), from, to);
  };
  const stepName = s => s % 60 ? s + " s" : s === 60 ? "minute" : s / 60 + " minutes";
  async function loadMetrics() {
    const w = windowSel.value, { seconds, step } = Series.windows[w];
    if (!fseries || fseries.seconds !== seconds) fseries = Series.make(seconds, step);
    const s = fseries, askedAt = Series.clock.now();
    const m = await api.call("GET", `/api/metrics/functions/${f.id}?window=${w}&series=${step}s`).catch(() => null);
    if (!m || s !== fseries) return; // the window changed meanwhile
    s.seed(m.series, askedAt);
    perStep.textContent = stepName(step);
    const k = (label, v) => h("div", { class: "kpi" }, h("div", { class: "label" }, label), h("div", { class: "value" }, v));
    const ran = m.invocations > 0;
    stats.replaceChildren(k(`Invocations (${w})`, m.invocations), k("Error rate", ran ? pct(m.errorRate) : "–"), k("p50", ran ? ms(m.durationMs.p50) : "–"),
      k("p95", ran ? ms(m.durationMs.p95) : "–"), k("Cold starts", m.coldStarts), k("Instances", m.instances ? `${m.instances.busy || 0} busy / ${m.instances.idle || 0} idle` : "–"),
      k("Peak memory", m.peakMemoryKiB && m.peakMemoryKiB.samples ? (m.peakMemoryKiB.peak / 1024).toFixed(1) + " MB" : "–"));
    drawCharts();
  }
  windowSel.onchange = () => { cCount.unzoom(); loadMetrics(); };
  const code = codePanel(f);
  cleanup.push(code.close);
  const triggers = Triggers.panel(f, { onReplay: () => loadHistory() });
  const versionPanel = Versions.panel(f, {
    onLoad: ({ versions, aliases }) => { Versions.fillQualifiers(qualifierSel, versions, aliases); fillVersionFilter(versions); },
  });
  const deploy = Session.can("deploy"), invoke = Session.can("invoke");
  const del = deploy ? h("button", { type: "button", class: "danger", id: "delete" }, "Delete") : null;
  if (del) del.onclick = async () => {
    if (!confirm(`Delete ${f.name} and all its executions? This cannot be undone.`)) return;
    try { await api.call("DELETE", "/api/functions/" + encodeURIComponent(f.id)); toast(`${f.name} deleted`); location.hash = "#/functions"; }
    catch (e) { showError(invokeErr, e); }
  };
  main.replaceChildren(
    h("h1", {}, f.name, code.summary,
      deploy ? h("a", { class: "button", href: `#/functions/${encodeURIComponent(f.name)}/edit` }, "Settings") : null, del),
    code.facts,
    h("p", { class: "muted", id: "scaling" }, scaling(f)),
    stats,
    code.el,
    versionPanel.el,
    h("div", { class: "grid two", style: "margin-top:1rem" },
      invoke ? h("section", { class: "panel" }, h("h2", {}, "Invoke"), tests.el, h("label", { for: "payload" }, "Event (JSON) — Ctrl+Enter to run"), payload.el, invokeErr,
        h("div", { class: "row" }, h("label", { for: "invoke-qualifier", class: "inline-label" }, "Version or alias"), qualifierSel, run, asyncIn, h("label", { for: "invoke-async", class: "inline-label" }, "Async (queue it, answer 202 at once)")), result)
        : h("section", { class: "panel", id: "invoke-off" }, h("h2", {}, "Invoke"), Session.lacks("invoke", "calling the function")),
      h("div", {},
        h("div", { class: "row", style: "margin:0 0 .6rem" }, h("label", { for: "fn-window", class: "inline-label" }, "Charts over"), windowSel),
        h("section", { class: "panel" }, h("h2", {}, "Invocations and errors per ", perStep), bCount),
        h("section", { class: "panel" }, h("h2", {}, "Latency (ms)"), bLat))),
    triggers.el,
    h("section", { class: "panel" }, h("h2", {}, "History"), h("div", { class: "row history-filters", style: "margin:0 0 .6rem" }, filter, versionFilter, textIn,
        h("label", { for: "history-since", class: "inline-label" }, "from"), sinceIn, h("label", { for: "history-until", class: "inline-label" }, "before"), untilIn),
      histNote,
      h("table", {}, h("thead", {}, h("tr", {}, ["Status", "Execution", "Started", "Duration", "Start", "Trigger", "Version", "Logs"].map(t => h("th", { scope: "col" }, t)))), histBody),
      h("div", { class: "row" }, more)));
  await Promise.all([loadHistory(), loadMetrics(), triggers.tick(), versionPanel.load().catch(e => showError($("#versions-error"), e))]);
  let histTimer = null;
  cleanup.push(() => clearTimeout(histTimer));
  cleanup.push(onLive((kind, ev) => {
    if (kind === "execution" && ev.functionId === f.id) {
      if (fseries) fseries.add(ev);
      // At most one reload of the history a second, however busy.
      if (!histTimer) histTimer = setTimeout(() => { histTimer = null; loadHistory(); }, 1000);
    }
  }));
  every(1000, drawCharts);
  every(10000, loadMetrics);
  every(3000, () => triggers.tick());
  every(5000, () => versionPanel.load().catch(() => { /* keep what is shown */ }));
}

// codePanel is the code of function f on its page: its files edited in
// place when the API shows them inline, else listed; an archive up or
// down; and its dependency build, followed live on the function's own
// event stream. summary and facts are the header's lines that change
// with a new version. Without the deploy scope the code is read-only.
function codePanel(f) {
  const path = "/api/functions/" + encodeURIComponent(f.id);
  const deploy = Session.can("deploy");
  let shown = f, editor = null;
  const summary = h("span", { class: "badge muted", id: "fn-summary" });
  const facts = h("p", { class: "muted", id: "fn-facts" });
  const build = Code.buildView();
  const err = errorBox("code-error");
  const body = h("div", { id: "code-body" });
  const saveBtn = h("button", { type: "button", class: "primary", id: "save-code", disabled: true }, "Save code");
  const revertBtn = h("button", { type: "button", id: "revert-code", disabled: true }, "Discard changes");
  const editRow = h("div", { class: "row" }, saveBtn, revertBtn, h("span", { class: "muted small" }, "Ctrl+S saves"));
  const download = h("a", { class: "button", id: "download-code", href: path + "/code", download: f.name + ".zip" }, "Download code (.zip)");
  const archiveIn = h("input", { id: "archive", type: "file", accept: Code.archiveAccept });
  const handlerIn = h("input", { id: "archive-handler", class: "mono", autocomplete: "off" });
  const uploadBtn = h("button", { type: "button", id: "upload", disabled: true }, "Upload archive");
  const dirtyChanged = () => { const d = !!editor && editor.dirty(); saveBtn.disabled = revertBtn.disabled = !d; };

  // show renders g, a function as the API answers: the header always,
  // the build when it is no older than the one shown, the code when it
  // changed and holds no unsaved edits (or when force).
  function show(g, force) {
    const codeChanged = !shown.codeInfo || !g.codeInfo || shown.codeInfo.sha256 !== g.codeInfo.sha256;
    shown = g;
    summary.textContent = `${g.runtime} · ${g.driver} · revision ${g.revision}`;
    facts.textContent = `Handler ${g.handler} · timeout ${g.timeout} ms · memory ${g.memory} MB · up to ${g.maxInstances} instances`;
    handlerIn.placeholder = g.handler;
    if (!build.running) build.show(g.buildStatus, g.codeInfo && g.codeInfo.sha256);
    if (!force && !codeChanged) return;
    if (!force && editor && editor.dirty()) { showError(err, "The code was changed elsewhere; saving your edits replaces it."); return; }
    if (g.files) {
      // The handler's module first: "main.handler" → main.py.
      const mod = g.handler.slice(0, g.handler.lastIndexOf("."));
      const first = Object.keys(g.files).find(p => p.replace(/\.[^./]*$/, "") === mod);
      editor = Code.editor({ files: g.files, first, onChange: dirtyChanged, readOnly: !deploy });
      body.replaceChildren(editor.el, deploy ? editRow : null);
    } else {
      editor = null;
      const info = g.codeInfo || { files: [], size: 0, unpackedSize: 0 };
      body.replaceChildren(Code.listing({ info, load: () => api.call("GET", path + "/code", undefined, { binary: true }) }));
    }
    dirtyChanged();
  }
  const startedOf = g => g.buildStatus && g.buildStatus.startedAt ? new Date(g.buildStatus.startedAt).getTime() : 0;
  // refresh reads the function again, keeping what is shown when the
  // answer is older than it.
  async function refresh() {
    const g = await api.call("GET", path);
    if (g.revision > shown.revision || (g.revision === shown.revision && startedOf(g) >= startedOf(shown))) show(g);
    return g;
  }

  async function save() {
    if (!editor) return;
    showError(err, null); editor.markError("");
    const files = editor.files();
    if (!Object.keys(files).length) { showError(err, "The code has no files: add one before saving."); editor.focus(); return; }
    saveBtn.disabled = true; saveBtn.textContent = "Saving…";
    const was = shown.revision;
    try {
      const g = await api.call("PUT", path, { files });
      (g.warnings || []).forEach(toast);
      build.show(g.buildStatus, g.codeInfo && g.codeInfo.sha256);
      show(g, true);
      toast(g.revision > was ? `Saved: revision ${g.revision}` : "Saved: nothing changed");
    } catch (ex) {
      if (ex.code === "build_failed") {
        showError(err, "Not saved: the build of its dependencies failed, and the code that ran before still serves. " + ex.message);
        refresh().catch(() => { });
      } else {
        showError(err, ex);
        if (ex.field === "code" || ex.field === "files") editor.markError(ex.message);
      }
    } finally { saveBtn.textContent = "Save code"; dirtyChanged(); }
  }
  saveBtn.onclick = save;
  revertBtn.onclick = () => { showError(err, null); show(shown, true); };

  async function upload() {
    showError(err, null);
    const file = archiveIn.files[0];
    if (!file) return;
    const type = await Code.archiveType(file);
    if (!type) { showError(err, `${file.name} is not a zip or tar.gz archive.`); archiveIn.setAttribute("aria-invalid", "true"); archiveIn.focus(); return; }
    if (editor && editor.dirty() && !confirm("The archive replaces the code, and your unsaved edits with it. Upload it?")) return;
    archiveIn.removeAttribute("aria-invalid");
    const hd = handlerIn.value.trim();
    uploadBtn.disabled = true; uploadBtn.textContent = "Uploading…";
    try {
      const g = await api.call("PUT", path + "/code" + (hd ? "?handler=" + encodeURIComponent(hd) : ""), file, { type });
      (g.warnings || []).forEach(toast);
      build.show(g.buildStatus, g.codeInfo && g.codeInfo.sha256);
      show(g, true);
      archiveIn.value = ""; handlerIn.value = "";
      toast(`Uploaded ${file.name}: revision ${g.revision}`);
    } catch (ex) {
      showError(err, ex.code === "build_failed" ? "Not uploaded: the build of its dependencies failed, and the code that ran before still serves. " + ex.message : ex);
      if (ex.code === "build_failed") refresh().catch(() => { });
      else if (ex.field === "handler") { handlerIn.setAttribute("aria-invalid", "true"); handlerIn.focus(); }
    } finally { uploadBtn.textContent = "Upload archive"; uploadBtn.disabled = !archiveIn.files.length; }
  }
  archiveIn.onchange = () => { uploadBtn.disabled = !archiveIn.files.length; archiveIn.removeAttribute("aria-invalid"); };
  uploadBtn.onclick = upload;
  // The download goes through fetch: an ended session asks to sign in
  // again, and an error shows here rather than as a downloaded file.
  download.onclick = async e => {
    e.preventDefault();
    try {
      const buf = await api.call("GET", path + "/code", undefined, { binary: true });
      const url = URL.createObjectURL(new Blob([buf], { type: "application/zip" }));
      const a = h("a", { href: url, download: f.name + ".zip" });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (ex) { showError(err, ex); }
  };

  // The function's own stream: its build's lines as it runs. A build
  // that ends is read back in full (a save's own answer has it too).
  const events = new EventSource("/api/events?function=" + encodeURIComponent(f.id));
  events.onopen = () => { el.dataset.live = "true"; };
  events.onerror = () => { delete el.dataset.live; };
  events.addEventListener("build", async e => {
    const ev = JSON.parse(e.data);
    const before = startedOf(shown);
    build.event(ev);
    if (ev.state === "building") return;
    // The new status is stored just after the event: read until it is.
    for (const wait of [100, 500, 1500, 4000]) {
      await new Promise(r => setTimeout(r, wait));
      const g = await refresh().catch(() => null);
      if (!g || startedOf(g) !== before) return;
    }
  });

  const el = h("section", { class: "panel", id: "code", "aria-labelledby": "code-title" },
    h("h2", { id: "code-title" }, "Code"),
    build.el, body, err,
    h("div", { class: "row transfer" }, download, deploy ? [
      h("label", { for: "archive", class: "inline-label" }, "Upload archive (.zip, .tar.gz)"), archiveIn,
      h("label", { for: "archive-handler", class: "inline-label" }, "with handler (optional)"), handlerIn, uploadBtn] : null));
  el.addEventListener("keydown", e => { if (e.key === "s" && (e.ctrlKey || e.metaKey) && editor && deploy) { e.preventDefault(); save(); } });
  show(f, true);
  return { el, summary, facts, close: () => events.close() };
}

// scaling describes a function's scaling settings and the keep-alive in force.
function scaling(f) {
  const dur = ms => ms >= 60000 ? (ms / 60000).toFixed(ms % 60000 ? 1 : 0) + " min" : (ms / 1000).toFixed(ms % 1000 ? 1 : 0) + " s";
  const k = f.keepAliveNow;
  let keep = "";
  if (k) keep = k.prewarmMs > 0
    ? ` · idle: released at once, one prewarmed after ${dur(k.prewarmMs)} for ${dur(k.keepAliveMs)} (${k.source})`
    : ` · idle instances kept ${dur(k.keepAliveMs)} (${k.source})`;
  return `At least ${f.minInstances || 0} warm · ${f.concurrency || 1} call${(f.concurrency || 1) > 1 ? "s" : ""} per instance` + keep;
}

// triggerName is how an execution came in, as the history shows it.
const triggerName = t => ({ "": "API", http: "function URL", async: "async", schedule: "schedule", destination: "destination" })[t || ""] || t;

function executionView(ex) {
  return h("div", { class: "execution" },
    h("p", {}, badge(ex.status), " ", h("span", { id: "exec-duration" }, ms(ex.durationMs)), " · ", ex.coldStart ? `cold start (init ${ms(ex.initDurationMs)})` : "warm",
      ex.peakMemoryKiB ? ` · ${(ex.peakMemoryKiB / 1024).toFixed(1)} MB peak` : "", ex.trigger ? ` · via ${triggerName(ex.trigger)}` : "", ex.attempt ? ` · try ${ex.attempt}` : "",
      " · ", h("span", { id: "exec-version" }, versionName(ex)), " · ", h("span", { class: "mono muted" }, ex.executionId)),
    ex.error ? [h("h3", {}, "Error"), h("p", { class: "s-error", id: "exec-error-summary" }, `${ex.error.type}: ${ex.error.message}`),
      JsonView.view(ex.error, { id: "exec-error", label: "the error" }),
      ex.error.stack ? h("details", {}, h("summary", {}, "Stack trace"), h("pre", { id: "exec-stack" }, ex.error.stack)) : null] : null,
    ex.status === "success" ? [h("h3", {}, "Result"), JsonView.view(ex.result, { id: "exec-result", label: "the result" })] : null,
    h("h3", {}, "Logs"), Logs.view(ex));
}

async function executionPage(name, id) {
  const main = $("#main");
  const ex = await api.call("GET", `/api/executions/${encodeURIComponent(name)}/${encodeURIComponent(id)}`);
  main.replaceChildren(h("h1", {}, h("a", { href: "#/functions/" + encodeURIComponent(name) }, name), " › execution"),
    h("section", { class: "panel" }, h("p", { class: "muted" }, `Started ${new Date(ex.startedAt).toLocaleString()}` + (ex.queueMs ? ` · queued ${ms(ex.queueMs)}` : "")),
      h("h3", {}, "Event"), JsonView.view(ex.event, { id: "exec-event", label: "the event" }), executionView(ex)),
    Session.can("invoke") ? Versions.replayPanel(name, ex) : null);
}

// ---------- theme and start ----------
function applyTheme(t) { document.documentElement.dataset.theme = t; localStorage.setItem("nimbus.theme", t); }
applyTheme(localStorage.getItem("nimbus.theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
$("#theme").onclick = () => applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
$("#signout").onclick = () => Session.signOut();
// start reads the session first: what the pages show depends on the key.
async function start() {
  try { await Session.load(); } catch (e) { /* the page says it: the server is not there */ }
  if (Session.needsSignIn) await Session.signIn("");
  window.addEventListener("hashchange", route);
  connectEvents();
  route();
}
start();

// versionName is the version an execution ran: a published number, or
// $LATEST (the draft).
function versionName(ex) {
  return ex.version ? "v" + ex.version : "$LATEST";
}
