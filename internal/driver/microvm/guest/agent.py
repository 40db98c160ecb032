"""Nimbus microVM guest agent for Python.

Started by the guest's init with fds 3 and 4 on the virtio-serial port that
carries the runtime protocol. Before handing the port to the runtime shim it
speaks a short exchange of its own, in the same frames (4-byte big-endian
length, then JSON):

  agent -> host  {"type": "agent", "stage": "boot"}
  host -> agent  {"type": "prepare", "shim": "<bootstrap.py source>"}
  agent -> host  {"type": "agent", "stage": "prepared"}
      (a template VM is snapshotted here; every clone resumes below)
  host -> agent  {"type": "setup", "seed", "env", "taskDir", "layers",
                  "uid", "gid"}
  host -> agent  {"type": "file", "dir", "path", "kind", "mode", "data",
                  "append", "link"}  ...  (instance.go, fileFrame)
  host -> agent  {"type": "files-done"}
  agent -> host  {"type": "agent", "stage": "clock"}
  host -> agent  {"type": "clock", "timeNs": <the host's time>}

Setup moves the agent into the worker's memory cgroup (so the function's
code and layers, in RAM, count against its memory), reseeds the kernel's
random number generator (a clone starts with its template's), writes the
function's code to the task directory and layer i to /opt/layers/<i>, byte
for byte (base64 in the frames) with their permission bits but for group
and others' write, and replaces the environment. Owned by root, they are
read-only to the worker's user (remounting them read-only would cost a
process start on every cold start, and stop no one the owner's bits do
not: only root may remount). The
clock exchange sets the guest's clock (a clone's stopped when its template
was saved) to the host's time plus the exchange's round trip: never behind
the host's, ahead by at most that round trip. Then the agent drops root and
runs the shim as __main__, which reads its Init frame from fd 3 as it does
under every other driver.
"""

import base64
import fcntl
import json
import os
import struct
import sys
import time
import types

# What the shim imports, loaded before the snapshot so clones do not.
import importlib  # noqa: F401
import io  # noqa: F401
import resource  # noqa: F401
import traceback  # noqa: F401

REQ_FD = 3
RESP_FD = 4
SHIM_PATH = "/nimbus/bootstrap.py"
WORKER_CGROUP = "/sys/fs/cgroup/worker/cgroup.procs"
RNDADDENTROPY = 0x40085203  # _IOW('R', 0x03, int[2])
RNDRESEEDCRNG = 0x5207  # _IO('R', 0x07)


def _read_exact(n):
    buf = bytearray()
    while len(buf) < n:
        b = os.read(REQ_FD, n - len(buf))
        if not b:
            raise EOFError("port closed")
        buf += b
    return bytes(buf)


def _read_frame():
    n = int.from_bytes(_read_exact(4), "big")
    return json.loads(_read_exact(n))


def _write_frame(obj):
    b = json.dumps(obj).encode()
    b = len(b).to_bytes(4, "big") + b
    while b:
        b = b[os.write(RESP_FD, b):]


def _reseed(seed):
    with open("/dev/urandom", "wb", buffering=0) as f:
        fcntl.ioctl(f, RNDADDENTROPY, struct.pack("ii", 8 * len(seed), len(seed)) + seed)
        fcntl.ioctl(f, RNDRESEEDCRNG)
    rnd = sys.modules.get("random")
    if rnd is not None:
        rnd.seed()


def _join_cgroup():
    """Moves this process into the worker's memory cgroup (see init)."""
    try:
        with open(WORKER_CGROUP, "w") as f:
            f.write(str(os.getpid()))
    except FileNotFoundError:
        pass  # the guest has no memory cgroup: the VM's RAM is the limit


def _inside(root, rel):
    """The path of rel below the real directory root, refusing any that
    leads out of it (.., an absolute path, a link written before)."""
    path = os.path.normpath(os.path.join(root, rel))
    parent = os.path.realpath(os.path.dirname(path))
    name = os.path.basename(path)
    if os.path.isabs(rel) or not name or name == ".." or (parent != root and not parent.startswith(root + os.sep)):
        raise ValueError("file outside its directory: %r" % rel)
    return os.path.join(parent, name)


def _receive_files(dirs):
    """Writes the file frames that follow setup below dirs (the task
    directory and the layers'), until files-done."""
    roots = {}
    for d in dirs:
        os.makedirs(d, 0o755, exist_ok=True)
        roots[d] = os.path.realpath(d)
    fd, name = -1, None
    try:
        while True:
            fr = _read_frame()
            t = fr.get("type")
            if t == "files-done":
                return
            if t != "file":
                raise ValueError("frame %r among the function's files" % t)
            if fr.get("append"):
                if fd < 0 or (fr.get("dir"), fr.get("path")) != name:
                    raise ValueError("a piece of %r, which is not being written" % fr.get("path"))
                _write_all(fd, base64.b64decode(fr.get("data") or ""))
                continue
            if fd >= 0:
                os.close(fd)
                fd, name = -1, None
            root = roots.get(fr.get("dir"))
            if root is None:
                raise ValueError("a file for %r, which is not the function's" % fr.get("dir"))
            path = _inside(root, fr["path"])
            kind = fr.get("kind")
            if kind == "dir":
                os.makedirs(path, 0o755, exist_ok=True)
            elif kind == "symlink":
                os.symlink(fr["link"], path)
            elif kind == "file":
                mode = (fr.get("mode") or 0o644) & 0o755  # the worker's user never writes
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
                os.fchmod(fd, mode)  # whatever the umask took
                name = (fr.get("dir"), fr.get("path"))
                data = fr.get("data")
                if data:
                    _write_all(fd, base64.b64decode(data))
            else:
                raise ValueError("%r: unknown kind %r" % (fr.get("path"), kind))
    finally:
        if fd >= 0:
            os.close(fd)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main():
    _write_frame({"type": "agent", "stage": "boot"})
    prep = _read_frame()
    code = compile(prep["shim"], SHIM_PATH, "exec")
    del prep
    _write_frame({"type": "agent", "stage": "prepared"})

    setup = _read_frame()
    _join_cgroup()
    _reseed(bytes.fromhex(setup["seed"]))
    task_dir = setup["taskDir"]
    layers = setup.get("layers") or []
    _receive_files([task_dir] + layers)
    os.environ.clear()
    os.environ.update(setup["env"])
    time.tzset()  # the C library read TZ when the interpreter started
    sent = time.monotonic_ns()  # before the host can answer
    _write_frame({"type": "agent", "stage": "clock"})
    host = _read_frame()["timeNs"]
    time.clock_settime_ns(time.CLOCK_REALTIME, host + time.monotonic_ns() - sent)
    os.chdir(task_dir)
    os.setgroups([])
    os.setgid(setup["gid"])
    os.setuid(setup["uid"])
    del setup

    mod = types.ModuleType("__main__")
    mod.__file__ = SHIM_PATH
    mod.__builtins__ = __builtins__
    sys.modules["__main__"] = mod
    sys.argv = [SHIM_PATH]
    exec(code, mod.__dict__)


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:  # the shim exits with os._exit: this is ours
        print("nimbus agent: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
        os._exit(1)
