'use strict';
// Nimbus microVM guest agent for Node.js: the counterpart of agent.py (see
// there for the exchange it speaks before the runtime shim takes over fds 3
// and 4, and how it writes the function's code and layers). Node cannot set the clock or reseed the kernel's random number
// generator itself, so Node guests always boot afresh (never from a
// snapshot) and the clock is set with busybox `date`, which takes whole
// seconds: see setClock.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const REQ_FD = 3;
const RESP_FD = 4;
const SHIM_PATH = '/tmp/.nimbus/bootstrap.js';
const BUSYBOX = '/nimbus/busybox';
const WORKER_CGROUP = '/sys/fs/cgroup/worker/cgroup.procs';
const nap = new Int32Array(new SharedArrayBuffer(4));

function readExact(n) {
  const buf = Buffer.alloc(n);
  let off = 0;
  while (off < n) {
    let got;
    try {
      got = fs.readSync(REQ_FD, buf, off, n - off, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') {
        Atomics.wait(nap, 0, 0, 1);
        continue;
      }
      throw e;
    }
    if (got === 0) throw new Error('port closed');
    off += got;
  }
  return buf;
}

function readFrame() {
  return JSON.parse(readExact(readExact(4).readUInt32BE(0)).toString('utf8'));
}

function writeFrame(obj) {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const buf = Buffer.alloc(4 + body.length);
  buf.writeUInt32BE(body.length, 0);
  body.copy(buf, 4);
  let off = 0;
  while (off < buf.length) off += fs.writeSync(RESP_FD, buf, off, buf.length - off);
}

// setClock sets the guest's clock from the host's time (the clock exchange
// of agent.py), never behind it. busybox date takes whole seconds, so the
// clock is set to a second still ahead when date runs: ahead of the host's
// by less than a second and the time date takes to start. Node's monotonic
// clock tells whether it landed behind (date started later than allowed
// for); then it is set again, allowing more.
function setClock() {
  const sent = process.hrtime.bigint(); // before the host can answer
  writeFrame({ type: 'agent', stage: 'clock' });
  const host = readFrame().timeNs / 1e6;
  const now = () => host + Number(process.hrtime.bigint() - sent) / 1e6; // ms, never early
  for (let allow = 100; allow <= 6400; allow *= 2) {
    const sec = Math.ceil((now() + allow) / 1000);
    spawnSync(BUSYBOX, ['date', '-u', '-s', '@' + sec], { stdio: 'ignore' });
    if (Date.now() >= now()) return;
  }
}

// joinCgroup moves this process into the worker's memory cgroup (see init).
function joinCgroup() {
  try {
    fs.writeFileSync(WORKER_CGROUP, String(process.pid));
  } catch (e) {
    if (e.code !== 'ENOENT') throw e; // no memory cgroup: the VM's RAM is the limit
  }
}

// inside is the path of rel below the real directory root, refusing any
// that leads out of it (.., an absolute path, a link written before).
function inside(root, rel) {
  const p = path.resolve(root, rel);
  const parent = fs.realpathSync(path.dirname(p));
  const name = path.basename(p);
  if (path.isAbsolute(rel) || !name || (parent !== root && !parent.startsWith(root + path.sep))) {
    throw new Error(`file outside its directory: ${rel}`);
  }
  return path.join(parent, name);
}

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

// receiveFiles writes the file frames that follow setup below dirs (the
// task directory and the layers'), until files-done: byte for byte, with
// their permission bits but for group and others' write (see agent.py).
function receiveFiles(dirs) {
  const roots = new Map();
  for (const d of dirs) {
    fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    roots.set(d, fs.realpathSync(d));
  }
  let fd = -1;
  let name = '';
  try {
    for (;;) {
      const fr = readFrame();
      if (fr.type === 'files-done') return;
      if (fr.type !== 'file') throw new Error(`frame ${fr.type} among the function's files`);
      if (fr.append) {
        if (fd < 0 || `${fr.dir}\0${fr.path}` !== name) throw new Error(`a piece of ${fr.path}, which is not being written`);
        writeAll(fd, Buffer.from(fr.data || '', 'base64'));
        continue;
      }
      if (fd >= 0) {
        fs.closeSync(fd);
        fd = -1;
      }
      const root = roots.get(fr.dir);
      if (root === undefined) throw new Error(`a file for ${fr.dir}, which is not the function's`);
      const p = inside(root, fr.path);
      if (fr.kind === 'dir') {
        fs.mkdirSync(p, { recursive: true, mode: 0o755 });
      } else if (fr.kind === 'symlink') {
        fs.symlinkSync(fr.link, p);
      } else if (fr.kind === 'file') {
        const mode = (fr.mode || 0o644) & 0o755; // the worker's user never writes
        const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
        fd = fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
        fs.fchmodSync(fd, mode); // whatever the umask took
        name = `${fr.dir}\0${fr.path}`;
        if (fr.data) writeAll(fd, Buffer.from(fr.data, 'base64'));
      } else {
        throw new Error(`${fr.path}: unknown kind ${fr.kind}`);
      }
    }
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

function main() {
  writeFrame({ type: 'agent', stage: 'boot' });
  const prep = readFrame();
  fs.mkdirSync(path.dirname(SHIM_PATH), { recursive: true, mode: 0o755 });
  fs.writeFileSync(SHIM_PATH, prep.shim, { mode: 0o644 });
  writeFrame({ type: 'agent', stage: 'prepared' });

  const setup = readFrame();
  joinCgroup();
  fs.writeFileSync('/dev/urandom', Buffer.from(setup.seed, 'hex'));
  const layers = setup.layers || [];
  receiveFiles([setup.taskDir, ...layers]);
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, setup.env);
  setClock();
  process.chdir(setup.taskDir);
  process.setgroups([]);
  process.setgid(setup.gid);
  process.setuid(setup.uid);
  process.argv[1] = SHIM_PATH;
  require(SHIM_PATH);
}

try {
  main();
} catch (e) {
  fs.writeSync(2, `nimbus agent: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
}
