"""Nimbus Python zygote: forks sandboxed Python workers with the shim loaded.

Run as `python -I -S -B zygote.py` by the sandbox driver, as root on the host,
with fd 3 a SOCK_SEQPACKET unix socket to the server and the environment a
worker starts with (the function's own arrives later, with Init). It imports
the shim (bootstrap.py, beside it) and the stdlib modules handlers commonly
use, freezes the collector, and then forks one worker per request.

A request names an instance whose sandbox the server's init helper has built
(namespaces, read-only root, cgroup) and carries, as SCM_RIGHTS, the
worker's protocol pipes and output pipe, that helper's namespaces (ipc,
uts, net, pid, mnt, in that order) and its cgroups' cgroup.procs files. The
first child joins the cgroups and the namespaces and forks once more, so
that the worker is inside the PID namespace (the helper stays its PID 1),
and exits: the worker is reparented to the zygote, a child subreaper, which
reaps it and reports its wait status to the server. Before any function
code exists in it, the worker leaves its session, sets the rlimits, empties
its capability sets, becomes the sandbox user, sets no_new_privs and loads
the server's seccomp filter; it then runs the shim, which waits for Init.

Messages are JSON, one per datagram:
  server -> zygote  {"config": {...}} once, then {"fork": id, "ns": n, "cgroups": m} + fds
  zygote -> server  {"ready": pid} once, then {"id": id, "pid": p} or
                    {"id": id, "error": "..."} per fork, and {"exit": id, "status": s}
                    when a worker ends (s as waitpid's).
"""

import ctypes
import fcntl
import gc
import json
import os
import resource
import select
import signal
import socket
import sys
import traceback

CTL_FD = 3

# ---------------------------------------------------------------------------
# Preloading: shared by every worker, copy-on-write.

# -I leaves the script's directory out of sys.path: the shim is beside us.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here)
import bootstrap  # noqa: E402  (the shim; its main() runs in each worker)

del sys.path[0]

# What handlers commonly import: each is shared by every worker instead of
# private to each. Not asyncio: with ssl and OpenSSL it would add 3.5 MB to
# every worker's share of the zygote's pages, for the few coroutine
# handlers, which import it on their first call (as without the zygote).
for _m in (
    "base64", "collections", "copy", "dataclasses", "datetime", "decimal",
    "enum", "functools", "hashlib", "hmac", "itertools", "logging", "math",
    "random", "re", "string", "struct", "typing", "urllib.parse", "uuid",
):
    try:
        __import__(_m)
    except Exception:  # a stripped-down Python: go on without it
        pass
del _m

# ---------------------------------------------------------------------------
# System calls Python 3.11 lacks, through libc.

_libc = ctypes.CDLL(None, use_errno=True)
_c_long = ctypes.c_long

SYS_setns = 308
SYS_seccomp = 317
SYS_capset = 126
SYS_close_range = 436

PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_PDEATHSIG = 1
SECCOMP_SET_MODE_FILTER = 1
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _check(ret, what):
    if ret == -1:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))
    return ret


def _syscall(nr, *args, what=""):
    return _check(_libc.syscall(_c_long(nr), *[_c_long(a) for a in args]), what or "syscall %d" % nr)


def _prctl(opt, arg=0, what=""):
    return _check(
        _libc.prctl(ctypes.c_int(opt), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
        what or "prctl %d" % opt,
    )


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


# Built here, once, so that a worker allocates nothing for them.
_cap_header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
_cap_none = (_CapData * 2)()
_seccomp_buf = None
_seccomp_prog = None

# ---------------------------------------------------------------------------
# The worker side of a fork.

_cfg = {}


def _move_fds(fds):
    """Moves fds above the ones a worker uses (0 to 5) and returns them."""
    out = []
    for fd in fds:
        out.append(fcntl.fcntl(fd, fcntl.F_DUPFD, 10))
        os.close(fd)
    return out


def _first_child(fds, n_ns, report_fd):
    """Joins the instance's cgroups and namespaces, forks the worker, exits."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    report = report_fd
    try:
        report = _move_fds([report_fd])[0]
        fds = _move_fds(fds)
        req, resp, out = fds[0:3]
        ns = fds[3 : 3 + n_ns]
        cgroups = fds[3 + n_ns :]
        for fd in cgroups:
            os.write(fd, b"0")  # this process, and so what it forks
            os.close(fd)
        # ipc, uts, net, pid (for its children), mnt last: its root and cwd
        # become the sandbox's.
        for fd in ns:
            _syscall(SYS_setns, fd, 0, what="setns")
            os.close(fd)
        null = os.open("/dev/null", os.O_RDWR)
        for src, dst in ((null, 0), (out, 1), (out, 2), (req, 3), (resp, 4), (report, 5)):
            os.dup2(src, dst)
        report = 5
        _syscall(SYS_close_range, 6, 0xFFFFFFFF, 0, what="close_range")
        pid = os.fork()  # the worker: inside the PID namespace
        if pid == 0:
            _worker()
        os.write(5, b"P%d\n" % pid)
    except BaseException as e:
        try:
            os.write(report, ("E%s\n" % e).encode("utf-8", "replace"))
        except BaseException:
            pass
        os._exit(125)
    os._exit(0)


def _worker():
    """Drops every privilege, then runs the shim. Never returns."""
    try:
        os.setsid()  # its own session and process group: kill(0) reaches only itself
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for res, cur, mx in _cfg.get("rlimits") or ():
            resource.setrlimit(res, (cur, mx))
        c = 0
        while True:  # the bounding set, up to the kernel's last capability
            if _libc.prctl(ctypes.c_int(PR_CAPBSET_DROP), ctypes.c_ulong(c), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) == -1:
                if ctypes.get_errno() == 22 and c > 0:  # EINVAL: past the last one
                    break
                _check(-1, "drop capability %d from the bounding set" % c)
            c += 1
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, what="clear ambient capabilities")
        uid, gid = _cfg["uid"], _cfg["gid"]
        if _cfg.get("setGroups"):
            os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # leaving root clears the permitted and effective sets
        _syscall(SYS_capset, ctypes.addressof(_cap_header), ctypes.addressof(_cap_none), what="capset")
        # As after an exec by this user: its /proc files are its own.
        _prctl(PR_SET_DUMPABLE, 1, what="dumpable")
        _prctl(PR_SET_NO_NEW_PRIVS, 1, what="no_new_privs")
        if _seccomp_prog is not None:
            _syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, ctypes.addressof(_seccomp_prog), what="seccomp")
        os.chdir(_cfg.get("dir") or "/var/task")
        sys.argv[:] = [os.path.join(_cfg.get("runtimeDir") or "/var/runtime", "bootstrap.py")]
        os.close(5)  # the zygote reads EOF: this worker is ready
    except BaseException as e:
        try:
            os.write(5, ("E%s\n" % e).encode("utf-8", "replace"))
        finally:
            os._exit(125)
    bootstrap.run()


# ---------------------------------------------------------------------------
# The zygote.


def _send(ctl, obj):
    ctl.send(json.dumps(obj, separators=(",", ":")).encode())


def _fork(ctl, msg, fds, workers):
    iid = msg.get("fork") or ""
    n_ns = int(msg.get("ns") or 0)
    if len(fds) < 3 + n_ns:
        for fd in fds:
            os.close(fd)
        _send(ctl, {"id": iid, "error": "fork request with %d file descriptors" % len(fds)})
        return
    r, w = os.pipe()
    sys.stderr.flush()
    gc.collect()  # only the young generations: the rest is frozen
    gc.freeze()
    try:
        pid = os.fork()
    except OSError as e:
        pid = -1
        err = "fork: %s" % e
    if pid == 0:
        os.close(r)
        ctl.detach()
        _first_child(fds, n_ns, w)  # never returns
    os.close(w)
    for fd in fds:
        os.close(fd)
    data = b""
    if pid > 0:
        while True:  # until the worker is ready (or it or the first child failed)
            b = os.read(r, 4096)
            if not b:
                break
            data += b
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    os.close(r)
    if pid < 0:
        _send(ctl, {"id": iid, "error": err})
        return
    wpid, errs = 0, []
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("P"):
            wpid = int(line[1:])
        elif line.startswith("E"):
            errs.append(line[1:])
    if wpid:
        workers[wpid] = iid
    if errs or not wpid:
        _send(ctl, {"id": iid, "pid": wpid, "error": "; ".join(errs) or "the worker did not start"})
    else:
        _send(ctl, {"id": iid, "pid": wpid})


def _reap(ctl, workers):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        iid = workers.pop(pid, None)
        if iid is not None:
            _send(ctl, {"exit": iid, "pid": pid, "status": status})


def _configure(cfg):
    global _cfg, _seccomp_buf, _seccomp_prog
    import base64

    _cfg = cfg
    prog = base64.b64decode(cfg.get("seccomp") or "")
    if prog:
        _seccomp_buf = ctypes.create_string_buffer(prog, len(prog))
        _seccomp_prog = _SockFprog(len(prog) // 8, ctypes.addressof(_seccomp_buf))


def main():
    ctl = socket.socket(fileno=CTL_FD)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
    _prctl(PR_SET_CHILD_SUBREAPER, 1, what="subreaper")
    msg = json.loads(ctl.recv(1 << 16) or b"{}")
    _configure(msg.get("config") or {})
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    workers = {}  # worker pid -> instance id
    gc.collect()
    gc.freeze()
    _send(ctl, {"ready": os.getpid()})
    while True:
        ready = select.select([ctl, wake_r], [], [])[0]
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(ctl, workers)
        if ctl in ready:
            data, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 64)
            if not data:
                return 0  # the server is gone
            _fork(ctl, json.loads(data), fds, workers)


if __name__ == "__main__":
    try:
        code = main()
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    os._exit(code)
