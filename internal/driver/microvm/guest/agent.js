'use strict';
// Nimbus microVM guest agent for Node.js: the counterpart of agent.py (see
// there for the exchange it speaks before the runtime shim takes over fds 3
// and 4). Node cannot set the clock or reseed the kernel's random number
// generator itself, so Node guests always boot afresh (never from a
// snapshot) and the clock is set with busybox `date`, to the second at once
// and to the millisecond at the next second.

const fs = require('fs');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const REQ_FD = 3;
const RESP_FD = 4;
const SHIM_PATH = '/tmp/.nimbus/bootstrap.js';
const BUSYBOX = '/nimbus/busybox';
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

function setClock(ns) {
  const ms = Math.floor(ns / 1e6);
  const sec = Math.floor(ms / 1000);
  spawnSync(BUSYBOX, ['date', '-u', '-s', '@' + sec], { stdio: 'ignore' });
  // At the next second boundary, set it again: then it is right to the
  // millisecond, give or take the time this took.
  const wait = 1000 - (ms % 1000);
  const child = spawn(BUSYBOX, ['sh', '-c', `usleep ${wait * 1000}; date -u -s @${sec + 1}`], {
    stdio: 'ignore',
    detached: true,
  });
  child.unref();
}

function writeFiles(taskDir, files) {
  const root = fs.realpathSync(taskDir);
  for (const [rel, content] of Object.entries(files)) {
    const p = path.resolve(root, rel);
    if (!p.startsWith(root + path.sep)) throw new Error(`file outside the task directory: ${rel}`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
}

function main() {
  writeFrame({ type: 'agent', stage: 'boot' });
  const prep = readFrame();
  fs.mkdirSync(path.dirname(SHIM_PATH), { recursive: true, mode: 0o755 });
  fs.writeFileSync(SHIM_PATH, prep.shim, { mode: 0o644 });
  writeFrame({ type: 'agent', stage: 'prepared' });

  const setup = readFrame();
  setClock(setup.timeNs);
  fs.writeFileSync('/dev/urandom', Buffer.from(setup.seed, 'hex'));
  writeFiles(setup.taskDir, setup.files);
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, setup.env);
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
