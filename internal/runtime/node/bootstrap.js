'use strict';
// Nimbus worker shim for Node.js handlers.
//
// Run as `node bootstrap.js` with fd 3 = request pipe (read) and fd 4 =
// response pipe (write). Frames are a 4-byte big-endian length followed by
// that much JSON. See internal/runtime/protocol.go for the protocol.

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const { pathToFileURL, fileURLToPath } = require('url');

const REQ_FD = 3;
const RESP_FD = 4;
const DEFAULT_LOG_LIMIT = 64 << 10;
const DEFAULT_RESULT_LIMIT = 6 << 20;

// ---------------------------------------------------------------------------
// Pipes

// Node has no fcntl() to set FD_CLOEXEC on an fd it inherited (Node 20
// happens to set it on startup, but that is not promised). Reopening the
// pipe through /proc gives a new descriptor, which libuv opens with
// O_CLOEXEC, on a file description of our own (so blocking or not as we
// choose, whatever the server did to its own); then the inherited one is
// closed. Opening a FIFO blocks while its other end has nobody, so probe
// with O_NONBLOCK first. Sockets, ttys and systems without /proc keep the
// inherited descriptor.
function reopen(fd, flags) {
  const { O_NONBLOCK } = fs.constants;
  for (const dir of ['/proc/self/fd/', '/dev/fd/']) {
    let nfd;
    try {
      nfd = fs.openSync(dir + fd, flags | O_NONBLOCK);
      if (!(flags & O_NONBLOCK)) {
        const blocking = fs.openSync(dir + fd, flags);
        fs.closeSync(nfd);
        nfd = blocking;
      }
    } catch {
      if (nfd !== undefined) fs.closeSync(nfd);
      continue;
    }
    fs.closeSync(fd);
    return nfd;
  }
  return fd;
}

let respFd = RESP_FD;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

// writeAll writes buf to the response pipe, coping with partial writes and
// EAGAIN (if the descriptor is non-blocking).
function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(respFd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') {
        Atomics.wait(sleepCell, 0, 0, 1);
        continue;
      }
      if (e.code === 'EINTR') continue;
      if (e.code === 'EPIPE') process.exit(1); // the server went away
      throw e;
    }
  }
}

// sendFrame writes the JSON text s as one frame.
function sendFrame(s) {
  const n = Buffer.byteLength(s);
  const buf = Buffer.allocUnsafe(4 + n);
  buf.writeUInt32BE(n, 0);
  buf.write(s, 4, n, 'utf8');
  writeAll(buf);
}

// ---------------------------------------------------------------------------
// Log capture

// A call's logs carry when each of their first MAX_LOG_TIMES lines began:
// milliseconds since the call began, in "logTimes".
const MAX_LOG_TIMES = 2000;

class Logs {
  constructor(limit) {
    this.parts = [];
    this.left = limit;
    this.truncated = false;
    this.times = [];
    this.t0 = performance.now();
    this.bol = true; // the next character kept begins a line
  }

  add(s) {
    const n = this.parts.length;
    this.keep(s);
    if (this.parts.length > n) this.time(this.parts[this.parts.length - 1]);
  }

  time(kept) {
    const times = this.times;
    if (!kept.length || times.length >= MAX_LOG_TIMES) return;
    const ms = Math.floor(performance.now() - this.t0);
    if (this.bol) times.push(ms);
    for (let i = kept.indexOf('\n'); i >= 0 && i < kept.length - 1 && times.length < MAX_LOG_TIMES; i = kept.indexOf('\n', i + 1)) {
      times.push(ms);
    }
    this.bol = kept[kept.length - 1] === '\n';
  }

  keep(s) {
    const left = this.left;
    if (left <= 0) {
      if (s.length) this.truncated = true;
      return;
    }
    const n = Buffer.byteLength(s);
    if (n <= left) {
      this.parts.push(s);
      this.left = left - n;
      return;
    }
    const b = Buffer.from(s, 'utf8');
    let cut = left;
    while (cut > 0 && (b[cut] & 0xc0) === 0x80) cut--; // whole characters only
    this.parts.push(b.toString('utf8', 0, cut));
    this.left = 0;
    this.truncated = true;
  }

  text() {
    return this.parts.join('');
  }
}

// A streamed call's output goes out in log frames at each newline, or once
// this many characters of a line are waiting.
const STREAM_CHUNK = 4096;

// StreamedLogs are the logs of a call whose request asked for them as
// they come (streamLogs): what is kept is also sent in log frames, until
// close() sends what is left, before the result.
class StreamedLogs extends Logs {
  constructor(limit, id) {
    super(limit);
    this.head = '{"type":"log","id":' + JSON.stringify(id) + ',"data":';
    this.pending = '';
    this.closed = false;
  }

  add(s) {
    const n = this.parts.length;
    super.add(s);
    if (this.parts.length === n || this.closed) return;
    const kept = this.parts[n];
    this.pending += kept;
    if (this.pending.length >= STREAM_CHUNK || kept.includes('\n')) this.flush(false);
  }

  flush(final) {
    let text = this.pending;
    if (!final && text.length < STREAM_CHUNK) {
      const i = text.lastIndexOf('\n') + 1;
      text = text.slice(0, i);
    }
    this.pending = this.pending.slice(text.length);
    if (text) sendFrame(this.head + JSON.stringify(text) + '}');
  }

  close() {
    if (this.closed) return;
    this.flush(true);
    this.closed = true;
  }
}

// The Logs being filled, or null to pass output through. With one
// invocation at a time it is a variable; with several (init.concurrency > 1)
// each runs in its own async context, which names its Logs.
let capture = null;
let als = null; // AsyncLocalStorage when invocations overlap

function captureOf() {
  // Outside every invocation's context (loading the handler) the variable
  // holds what is being filled.
  return (als !== null && als.getStore()) || capture;
}

function chunkString(chunk, encoding) {
  if (typeof chunk === 'string') {
    if (!encoding || encoding === 'utf8' || encoding === 'utf-8' || !Buffer.isEncoding(encoding)) return chunk;
    return Buffer.from(chunk, encoding).toString('utf8');
  }
  if (chunk instanceof Uint8Array) {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  }
  return String(chunk);
}

function hookStream(stream, consoleErrorHandler) {
  const realWrite = stream.write;
  stream.write = function write(chunk, encoding, cb) {
    const logs = captureOf();
    if (logs === null) return realWrite.apply(this, arguments);
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (logs.left > 0) {
      logs.add(chunkString(chunk, encoding));
    } else if (chunk && chunk.length) {
      logs.truncated = true;
    }
    // The console passes its own error handler on every call: it only
    // matters on errors, which a captured write never has. Calling it would
    // queue a tick per line.
    if (typeof cb === 'function' && cb !== consoleErrorHandler) process.nextTick(cb);
    return true;
  };
}

hookStream(process.stdout, console._stdoutErrorHandler);
hookStream(process.stderr, console._stderrErrorHandler);

// ---------------------------------------------------------------------------
// Errors

function isError(e) {
  return e instanceof Error || util.types.isNativeError(e);
}

function str(x) {
  try {
    return String(x);
  } catch {
    return Object.prototype.toString.call(x);
  }
}

// stackOf returns e's stack without the frames of this shim and below.
function stackOf(e) {
  const stack = e.stack;
  if (typeof stack !== 'string') return '';
  const i = stack.indexOf(__filename);
  if (i < 0) return stack;
  const nl = stack.lastIndexOf('\n', i);
  return nl < 0 ? stack : stack.slice(0, nl);
}

function errorOf(e) {
  if (isError(e)) {
    const out = { type: str(e.name || 'Error'), message: str(e.message) };
    const stack = stackOf(e);
    if (stack) out.stack = stack;
    return out;
  }
  return { type: 'Error', message: str(e) };
}

function describe(e) {
  if (isError(e)) return typeof e.stack === 'string' && e.stack ? e.stack : `${e.name}: ${e.message}`;
  return str(e);
}

// ---------------------------------------------------------------------------
// Loading

class LoadError extends Error {
  constructor(err) {
    super(err.message);
    this.err = err;
  }
}

function fileExists(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function dirExists(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

// packageType returns the "type" of the package.json nearest to file,
// looking no higher than root.
function packageType(file, root) {
  let dir = path.dirname(file);
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
      return pkg && pkg.type === 'module' ? 'module' : 'commonjs';
    } catch (e) {
      if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') return 'commonjs';
    }
    if (dir === root || dir === path.dirname(dir)) return 'commonjs';
    dir = path.dirname(dir);
  }
}

function isNotFound(e) {
  return !!e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND');
}

async function importESM(file) {
  return import(pathToFileURL(file).href);
}

let loadingFile = ''; // the handler's module file, once found

async function loadModule(taskDir, modPath) {
  const base = path.resolve(taskDir, modPath);
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = base + ext;
    if (!fileExists(file)) continue;
    loadingFile = file;
    if (ext === '.mjs' || (ext === '.js' && packageType(file, taskDir) === 'module')) {
      return importESM(file);
    }
    try {
      return require(file);
    } catch (e) {
      if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
        return importESM(file);
      }
      throw e;
    }
  }
  // No such file: maybe a directory with an index.js; or else the error
  // says what is missing.
  return require(base);
}

// syntaxWhere returns " (file line N)" for a SyntaxError thrown loading
// the handler's module. Node puts the place in the stack for CommonJS; for an
// ES module it does not, so ask `node --check` (a failed load only).
function syntaxWhere(e, taskDir) {
  const re = /^(.+):(\d+)$/m;
  let m = re.exec(String(e.stack || '').split('\n')[0]);
  if (!m && loadingFile) {
    try {
      const r = require('child_process').spawnSync(process.execPath, ['--check', loadingFile], {
        encoding: 'utf8',
        timeout: 5000,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      m = re.exec(String(r.stderr || '').split('\n')[0]);
    } catch {}
  }
  if (!m) return '';
  let file = m[1];
  if (file.startsWith('file:')) {
    try {
      file = fileURLToPath(file);
    } catch {}
  }
  const rel = path.relative(taskDir, file);
  if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) file = rel;
  return ` (${file} line ${m[2]})`;
}

function loadError(e, modPath, taskDir) {
  if (e instanceof LoadError) return e.err;
  if (isError(e) && e.name === 'SyntaxError') {
    return {
      type: 'Runtime.UserCodeSyntaxError',
      message: `Syntax error in module '${modPath}': ${e.message}${syntaxWhere(e, taskDir)}`,
      stack: stackOf(e),
    };
  }
  if (isNotFound(e)) {
    return {
      type: 'Runtime.ImportModuleError',
      message: `Unable to import module '${modPath}': ${str(e.message).split('\n')[0]}`,
      stack: stackOf(e),
    };
  }
  return errorOf(e);
}

// addLayers puts each layer's Node directories on NODE_PATH, in order and
// before what NODE_PATH held: <l>/nodejs/node<major>/node_modules, then
// <l>/nodejs/node_modules, where they exist. A worker may start before it
// knows its function, so the module paths are computed again here. (ES
// modules do not search NODE_PATH: import a layer's package from CommonJS
// or by its path, as in Lambda.)
function addLayers(layers) {
  if (!Array.isArray(layers) || layers.length === 0) return;
  const major = process.versions.node.split('.')[0];
  const dirs = [];
  for (const l of layers) {
    for (const d of [path.join(String(l), 'nodejs', 'node' + major, 'node_modules'), path.join(String(l), 'nodejs', 'node_modules')]) {
      if (dirExists(d)) dirs.push(d);
    }
  }
  if (dirs.length === 0) return;
  const old = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);
  process.env.NODE_PATH = dirs.concat(old).join(path.delimiter);
  require('module').Module._initPaths();
}

async function loadHandler(init) {
  const handler = init.handler || '';
  const taskDir = path.resolve(init.taskDir || process.cwd());
  try {
    // A worker started before it knew its function may have its code
    // mounted over the directory it started in.
    process.chdir(taskDir);
  } catch {}
  addLayers(init.layers);
  // "lib/app.handler": module lib/app, function handler. After the last
  // slash, the first dot separates the module from the function path.
  const slash = handler.lastIndexOf('/');
  const dot = handler.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === handler.length - 1) {
    throw new LoadError({
      type: 'Runtime.MalformedHandlerName',
      message: `Bad handler '${handler}': want module.function, e.g. index.handler`,
    });
  }
  const modPath = handler.slice(0, dot);
  const fnPath = handler.slice(dot + 1);
  let mod;
  try {
    mod = await loadModule(taskDir, modPath);
  } catch (e) {
    throw new LoadError(loadError(e, modPath, taskDir));
  }
  let fn = resolvePath(mod, fnPath);
  if (fn === undefined && mod && mod.default && typeof mod.default === 'object') {
    fn = resolvePath(mod.default, fnPath); // CommonJS loaded through import()
  }
  if (fn === undefined || fn === null) {
    throw new LoadError({
      type: 'Runtime.HandlerNotFound',
      message: `Handler '${fnPath}' is not exported by module '${modPath}' (handler '${handler}')`,
    });
  }
  if (typeof fn !== 'function') {
    throw new LoadError({
      type: 'Runtime.HandlerNotFound',
      message: `Handler '${fnPath}' of module '${modPath}' is not a function: it is a ${typeof fn}`,
    });
  }
  return fn;
}

function resolvePath(obj, p) {
  let v = obj;
  for (const k of p.split('.')) {
    if (v === null || v === undefined) return undefined;
    v = v[k];
  }
  return v;
}

// ---------------------------------------------------------------------------
// Results

function hasNonFinite(value) {
  let bad = false;
  JSON.stringify(value, (k, v) => {
    if (typeof v === 'number' && !Number.isFinite(v)) bad = true;
    return v;
  });
  return bad;
}

// serialize returns the result's JSON text or throws a MarshalError.
function serialize(result) {
  let s;
  try {
    s = JSON.stringify(result);
  } catch (e) {
    throw marshalError(isError(e) ? e.message : str(e));
  }
  if (s === undefined) return 'null';
  // JSON.stringify writes NaN and Infinity as null: look closer only then.
  if (s.includes('null') && hasNonFinite(result)) {
    throw marshalError('it contains NaN or Infinity');
  }
  return s;
}

function marshalError(why) {
  const e = new Error(`Unable to marshal response: the result is not JSON serializable: ${why}`);
  e.nimbus = { type: 'Runtime.MarshalError', message: e.message };
  return e;
}

// process.resourceUsage().maxRSS is getrusage's ru_maxrss, which outlives
// execve: Linux carries the peak of the image it replaced into it, and a
// worker forked by a Go server (clone with CLONE_VM) starts with the
// server's own peak. inheritedRss is that value when it is above the
// worker's own peak at start; below it, VmHWM is read instead (some µs, so
// only then).
let inheritedRss = 0;
let statusFd = -1;
const statusBuf = Buffer.allocUnsafe(4096);

function vmHwmKiB() {
  try {
    if (statusFd < 0) statusFd = fs.openSync('/proc/self/status', 'r');
    const n = fs.readSync(statusFd, statusBuf, 0, statusBuf.length, 0);
    const s = statusBuf.toString('latin1', 0, n);
    const i = s.indexOf('VmHWM:');
    return i < 0 ? 0 : parseInt(s.slice(i + 6), 10) || 0;
  } catch {
    return 0;
  }
}

function initRss() {
  const r = process.resourceUsage().maxRSS;
  const own = vmHwmKiB();
  if (own && r > own) inheritedRss = r;
}

// maxRssKiB is the worker's peak resident set size so far, KiB.
function maxRssKiB() {
  const r = process.resourceUsage().maxRSS;
  if (r > inheritedRss) return r;
  return vmHwmKiB() || r;
}

function logsTail(logs) {
  let s = '';
  const text = logs.text();
  if (text) s += ',"logs":' + JSON.stringify(text) + ',"logTimes":[' + logs.times.join(',') + ']';
  if (logs.truncated) s += ',"logsTruncated":true';
  return s + ',"maxRssKiB":' + maxRssKiB() + '}';
}

// ---------------------------------------------------------------------------
// Worker

let init = null;
let handler = null;
let ready = false;
let concurrency = 1;
const inflight = new Set(); // the invocations running
const queue = [];
let source = null; // the request pipe's socket
let logLimit = DEFAULT_LOG_LIMIT;
let resultLimit = DEFAULT_RESULT_LIMIT;
let arn = '';

class Invocation {
  constructor(req) {
    this.id = typeof req.id === 'string' ? req.id : str(req.id ?? '');
    this.deadline = Number(req.deadlineMs) || 0;
    // What the caller of Lambda's Invoke said of itself (X-Amz-Client-Context).
    this.clientContext = req.clientContext !== null && typeof req.clientContext === 'object' ? req.clientContext : undefined;
    this.logs = req.streamLogs ? new StreamedLogs(logLimit, this.id) : new Logs(logLimit);
    this.done = false;
    this.waitingForEmptyLoop = false;
  }

  succeed(result) {
    if (this.done) return;
    let res;
    try {
      res = serialize(result);
    } catch (e) {
      this.finish('', e.nimbus || errorOf(e));
      return;
    }
    const size = res.length * 3 <= resultLimit ? 0 : Buffer.byteLength(res);
    if (size > resultLimit) {
      this.finish('', {
        type: 'Runtime.ResultTooLarge',
        message: `result is ${size} bytes of JSON, over the limit of ${resultLimit} bytes`,
      });
      return;
    }
    this.finish(res, null);
  }

  fail(err) {
    if (this.done) return;
    this.finish('', errorOf(err));
  }

  finish(res, err) {
    this.done = true;
    capture = null;
    if (this.logs instanceof StreamedLogs) this.logs.close();
    inflight.delete(this);
    if (this.waitingForEmptyLoop && source.ref && ![...inflight].some((i) => i.waitingForEmptyLoop)) source.ref();
    if (err) {
      const env = { type: 'result', id: this.id, error: err };
      const text = this.logs.text();
      if (text) {
        env.logs = text;
        env.logTimes = this.logs.times;
      }
      if (this.logs.truncated) env.logsTruncated = true;
      env.maxRssKiB = maxRssKiB();
      sendFrame(JSON.stringify(env));
    } else {
      sendFrame('{"type":"result","id":' + JSON.stringify(this.id) + ',"result":' + res + logsTail(this.logs));
    }
    if (queue.length) setImmediate(next);
  }
}

function makeContext(inv) {
  return {
    functionName: init.functionName || '',
    functionVersion: init.functionVersion || '',
    memoryLimitInMB: String(init.memoryLimitInMB || 0),
    invokedFunctionArn: arn,
    awsRequestId: inv.id,
    clientContext: inv.clientContext,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, inv.deadline - Date.now()),
    done: (err, result) => (err !== null && err !== undefined ? inv.fail(err) : inv.succeed(result)),
    succeed: (result) => inv.succeed(result),
    fail: (err) => inv.fail(err),
  };
}

function invoke(req) {
  const inv = new Invocation(req);
  inflight.add(inv);
  if (als === null) {
    capture = inv.logs;
    run(inv, req);
  } else {
    als.run(inv.logs, run, inv, req);
  }
}

function run(inv, req) {
  const callback = (err, result) => (err !== null && err !== undefined ? inv.fail(err) : inv.succeed(result));
  let ret;
  try {
    ret = handler(req.event === undefined ? null : req.event, makeContext(inv), callback);
  } catch (e) {
    inv.fail(e);
    return;
  }
  if (inv.done) return;
  if (ret !== null && typeof ret === 'object' && typeof ret.then === 'function') {
    ret.then(
      (r) => inv.succeed(r),
      (e) => inv.fail(e)
    );
  } else if (ret !== undefined) {
    inv.succeed(ret);
  } else {
    // As Lambda: wait for the callback or context.done/succeed/fail, or
    // else answer null once the event loop has nothing left to do.
    inv.waitingForEmptyLoop = true;
    if (source.unref) source.unref();
  }
}

process.on('beforeExit', () => {
  for (const inv of inflight) if (inv.waitingForEmptyLoop) inv.succeed(null);
});

function next() {
  while (inflight.size < concurrency && queue.length) {
    const req = queue.shift();
    if (!req || req.type !== 'invoke') continue;
    invoke(req);
  }
}

function onFrame(body) {
  let msg;
  try {
    msg = JSON.parse(body.toString('utf8'));
  } catch (e) {
    if (init === null) {
      fatal(new Error(`bad frame from server: ${e.message}`));
    } else {
      unreadable(body, e);
    }
    return;
  }
  if (init === null) {
    init = msg;
    start();
    return;
  }
  queue.push(msg);
  if (ready && inflight.size < concurrency) next();
}

// unreadable answers a request frame that cannot be decoded as its call's
// error: it fails that call, not the worker and every call sharing it.
function unreadable(body, e) {
  const err = { type: 'Runtime.UnmarshalError', message: `Unable to unmarshal input: ${e.message}` };
  // The server writes the id before the event: {"type":"invoke","id":"…",
  const m = /"id":"([^"\\]*)"/.exec(body.subarray(0, 1024).toString('utf8'));
  if (!m) {
    try {
      fs.writeSync(2, `nimbus bootstrap: undecodable request without an id: ${err.message}\n`);
    } catch {}
    return;
  }
  sendFrame(JSON.stringify({ type: 'result', id: m[1], error: err, maxRssKiB: maxRssKiB() }));
}

async function start() {
  logLimit = Number(init.logLimit) > 0 ? Number(init.logLimit) : DEFAULT_LOG_LIMIT;
  resultLimit = Number(init.resultLimit) > 0 ? Number(init.resultLimit) : DEFAULT_RESULT_LIMIT;
  arn = 'arn:nimbus:function:' + (init.functionName || '');
  concurrency = Math.max(1, Math.floor(Number(init.concurrency)) || 1);
  if (concurrency > 1) als = new (require('node:async_hooks').AsyncLocalStorage)();
  if (init.env && typeof init.env === 'object') {
    for (const [k, v] of Object.entries(init.env)) process.env[k] = String(v);
  }
  const logs = new Logs(logLimit);
  capture = logs;
  let err = null;
  try {
    handler = await loadHandler(init);
  } catch (e) {
    err = e instanceof LoadError ? e.err : errorOf(e);
  }
  capture = null;
  if (err) {
    const env = { type: 'ready', error: err };
    const text = logs.text();
    if (text) {
      env.logs = text;
      env.logTimes = logs.times;
    }
    if (logs.truncated) env.logsTruncated = true;
    sendFrame(JSON.stringify(env));
    process.exit(1);
  }
  sendFrame('{"type":"ready"' + logsTail(logs));
  ready = true;
  next();
}

// fatal handles an uncaught exception or unhandled rejection: it fails the
// invocations in flight (or the load) with it, or else reports it on the
// real stderr, and exits. Invocations sharing the worker share its fate.
function fatal(e, rejection) {
  if (inflight.size > 0) {
    for (const inv of [...inflight]) {
      if (rejection) {
        const err = errorOf(e);
        inv.finish('', {
          type: 'Runtime.UnhandledPromiseRejection',
          message: isError(e) ? `${err.type}: ${err.message}` : err.message,
          stack: err.stack,
        });
      } else {
        inv.fail(e);
      }
    }
  } else if (init !== null && !ready) {
    capture = null;
    sendFrame(JSON.stringify({ type: 'ready', error: errorOf(e) }));
  } else {
    capture = null;
    try {
      const what = rejection ? 'unhandled promise rejection' : 'uncaught exception';
      fs.writeSync(2, `nimbus bootstrap: ${what} outside an invocation: ${describe(e)}\n`);
    } catch {}
  }
  process.exit(1);
}

process.on('uncaughtException', (e) => fatal(e, false));
process.on('unhandledRejection', (e) => fatal(e, true));

// readFrames calls onFrame for each frame arriving on the socket.
function readFrames(sock) {
  let chunks = [];
  let have = 0;
  let need = 4; // bytes wanted before the next step
  let frameLen = -1;
  sock.on('data', (chunk) => {
    chunks.push(chunk);
    have += chunk.length;
    while (have >= need) {
      let buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, have);
      if (frameLen < 0) {
        frameLen = buf.readUInt32BE(0);
        buf = buf.subarray(4);
        have -= 4;
        need = frameLen;
      }
      if (have < need) {
        chunks = [buf];
        break;
      }
      const body = buf.subarray(0, frameLen);
      buf = buf.subarray(frameLen);
      have -= frameLen;
      chunks = have ? [buf] : [];
      frameLen = -1;
      need = 4;
      onFrame(body);
    }
  });
  sock.on('end', () => process.exit(0));
  sock.on('error', (e) => {
    fs.writeSync(2, `nimbus bootstrap: request pipe: ${e.message}\n`);
    process.exit(1);
  });
}

function main() {
  let reqFd;
  try {
    fs.fstatSync(REQ_FD);
    fs.fstatSync(RESP_FD);
  } catch (e) {
    fs.writeSync(2, `nimbus bootstrap: fds 3 and 4 must be the protocol pipes: ${e.message}\n`);
    process.exit(2);
  }
  initRss();
  respFd = reopen(RESP_FD, fs.constants.O_WRONLY);
  reqFd = reopen(REQ_FD, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    // A pipe or socket: read through libuv's event loop.
    source = new net.Socket({ fd: reqFd, readable: true, writable: false });
  } catch {
    // Anything else (a file, a tty): read on the thread pool.
    source = fs.createReadStream(null, { fd: reqFd, autoClose: false, highWaterMark: 1 << 16 });
  }
  readFrames(source);
}

main();
