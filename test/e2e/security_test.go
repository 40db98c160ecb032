package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// The sandbox security suite: hostile functions, in Python and in Node,
// each trying one thing a function must not be able to do, or must not be
// able to do to anyone but itself. Each attempt must fail, or be contained
// with the right status, while an ordinary function called at the same
// time keeps answering; and the server stays healthy. The zygote and
// prewarm work reuses this table: keep every hostile function in it.
//
// It needs root (namespaces and cgroups without a user namespace); in CI,
// where it must run, it fails rather than skips without it.

// hostileEvent is what every hostile function is told about the server it
// runs under, so that it can aim at it.
type hostileEvent struct {
	DataDir   string `json:"dataDir"`
	ServerPID int    `json:"serverPid"`
	Port      int    `json:"port"`
	Victim    string `json:"victim"` // another function's code, on the host
}

type hostile struct {
	name    string
	memory  int // MB; 0 means the default
	timeout int // ms; 0 means 10 s
	code    map[string]string
	// check judges the execution; the server's health and the ordinary
	// function are checked for every case.
	check func(t *testing.T, ex execution)
}

// attempts decodes a result that maps each attempt to "ok" (it worked:
// the test fails) or the error that stopped it.
func attempts(t *testing.T, ex execution) map[string]string {
	t.Helper()
	if ex.Status != "success" {
		t.Fatalf("status %s %+v, want success; logs %q", ex.Status, ex.Error, ex.Logs)
	}
	var m map[string]string
	ex.decode(t, &m)
	return m
}

// allBlocked fails unless every attempt failed. An attempt on a host path
// counts only where the path exists on the host: a worker's ENOENT for a
// file the host does not have either proves nothing.
func allBlocked(t *testing.T, ex execution) {
	t.Helper()
	judged := 0
	for what, res := range attempts(t, ex) {
		if strings.HasPrefix(what, "/") {
			if _, err := os.Stat(what); err != nil {
				t.Logf("%s: not on the host either (%v): proves nothing", what, err)
				continue
			}
		}
		judged++
		if res == "ok" {
			t.Errorf("%s: worked, must fail", what)
		}
	}
	if judged == 0 {
		t.Error("no attempt was on something that exists on the host")
	}
}

var hostiles = []hostile{
	{
		name: "read-secrets",
		code: map[string]string{
			"python": `import os
def handler(e, c):
    out = {}
    # (/proc/1 is the instance's own init, with the function's own environment.)
    for p in ["/etc/shadow", e["dataDir"] + "/nimbus.db", "/root/.bash_history", "/root/.pyenv/version",
              e["dataDir"] + "/sandbox/instances", "/proc/" + str(e["serverPid"]) + "/environ"]:
        try:
            if os.path.isdir(p):
                os.listdir(p)
            else:
                open(p, "rb").read(1)
            out[p] = "ok"
        except OSError as err:
            out[p] = err.strerror
    try:
        os.listdir("/root")
        out["list /root"] = "ok" if [x for x in os.listdir("/root") if x != ".pyenv"] else "only the interpreter"
    except OSError as err:
        out["list /root"] = err.strerror
    return out
`,
			"nodejs": `const fs = require('fs');
exports.handler = async (e) => {
  const out = {};
  for (const p of ['/etc/shadow', e.dataDir + '/nimbus.db', '/root/.bash_history', e.dataDir + '/sandbox/instances',
                   '/proc/' + e.serverPid + '/environ']) {
    try {
      if (fs.existsSync(p) && fs.statSync(p).isDirectory()) fs.readdirSync(p); else fs.readFileSync(p);
      out[p] = 'ok';
    } catch (err) { out[p] = err.code; }
  }
  return out;
};
`,
		},
		check: allBlocked,
	},
	{
		name: "read-other-code",
		code: map[string]string{
			// The victim's code holds a marker; the search is for it, in
			// every file of the sandbox but the interpreters' own.
			"python": `import os, sys
def handler(e, c):
    out = {}
    for p in [e["victim"], os.path.dirname(e["victim"])]:
        try:
            open(p).read() if p.endswith(".py") else os.listdir(p)
            out[p] = "ok"
        except OSError as err:
            out[p] = err.strerror
    marker, found = ("victim_" + "secret").encode(), []
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/usr", "/dev", "/sys", sys.prefix)]
        for f in files:
            try:
                with open(os.path.join(root, f), "rb") as fh:
                    if marker in fh.read(1 << 20):
                        found.append(os.path.join(root, f))
            except OSError:
                pass
    out["search the file system: %s" % found] = "ok" if found else "not found"
    return out
`,
			"nodejs": `const fs = require('fs');
exports.handler = async (e) => {
  const out = {};
  try { fs.readFileSync(e.victim); out[e.victim] = 'ok'; } catch (err) { out[e.victim] = err.code; }
  const marker = 'victim_' + 'secret', found = [];
  const walk = (d) => {
    let names = [];
    try { names = fs.readdirSync(d); } catch { return; }
    for (const n of names) {
      const p = (d === '/' ? '' : d) + '/' + n;
      if (['/proc', '/usr', '/dev', '/sys', '/root'].includes(p)) continue;
      let st;
      try { st = fs.lstatSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size < (1 << 20)) {
        try { if (fs.readFileSync(p, 'latin1').includes(marker)) found.push(p); } catch {}
      }
    }
  };
  walk('/');
  out['search the file system: ' + found.join(',')] = found.length ? 'ok' : 'not found';
  return out;
};
`,
		},
		check: allBlocked,
	},
	{
		name: "write-outside-tmp",
		code: map[string]string{
			"python": `import os
def handler(e, c):
    out = {}
    for p in ["/var/task/x", "/var/runtime/x", "/etc/x", "/x", "/usr/x", "/dev/x", "/proc/sys/kernel/hostname"]:
        try:
            with open(p, "w") as f:
                f.write("x")
            out[p] = "ok"
        except OSError as err:
            out[p] = err.strerror
    with open("/tmp/x", "w") as f:
        f.write("x")
    out["/tmp/x is writable"] = "no" if open("/tmp/x").read() == "x" else "ok"
    return out
`,
			"nodejs": `const fs = require('fs');
exports.handler = async () => {
  const out = {};
  for (const p of ['/var/task/x', '/var/runtime/x', '/etc/x', '/x', '/usr/x', '/dev/x', '/proc/sys/kernel/hostname']) {
    try { fs.writeFileSync(p, 'x'); out[p] = 'ok'; } catch (err) { out[p] = err.code; }
  }
  fs.writeFileSync('/tmp/x', 'x');
  out['/tmp/x is writable'] = fs.readFileSync('/tmp/x', 'utf8') === 'x' ? 'no' : 'ok';
  return out;
};
`,
		},
		check: allBlocked,
	},
	{
		name:   "fill-tmp",
		memory: 256,
		code: map[string]string{
			"python": `import errno
def handler(e, c):
    n, chunk = 0, b"x" * (1 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            while n < (1 << 30):
                f.write(chunk)
                f.flush()
                n += len(chunk)
    except OSError as err:
        return {"written": n, "errno": err.errno}
    return {"written": n, "errno": 0}
`,
			"nodejs": `const fs = require('fs');
exports.handler = async () => {
  const fd = fs.openSync('/tmp/fill', 'w');
  const chunk = Buffer.alloc(1 << 20, 120);
  let n = 0;
  try {
    while (n < (1 << 30)) { n += fs.writeSync(fd, chunk); }
  } catch (err) { return { written: n, errno: -err.errno }; }
  return { written: n, errno: 0 };
};
`,
		},
		check: func(t *testing.T, ex execution) {
			if ex.Status != "success" {
				t.Fatalf("status %s %+v", ex.Status, ex.Error)
			}
			var r struct{ Written, Errno int }
			ex.decode(t, &r)
			if r.Errno != 28 || r.Written > 64<<20 || r.Written < 60<<20 {
				t.Errorf("wrote %d bytes to /tmp, then errno %d; want about 64 MB, then ENOSPC (28)", r.Written, r.Errno)
			}
		},
	},
	{
		name: "reach-the-api",
		code: map[string]string{
			"python": `import socket, urllib.request
def handler(e, c):
    out = {}
    for host in ["127.0.0.1", "localhost"]:
        try:
            s = socket.create_connection((host, e["port"]), timeout=2)
            s.close()
            out[host] = "ok"
        except OSError as err:
            out[host] = str(err)
    return out
`,
			"nodejs": `const net = require('net');
const tryConnect = (host, port) => new Promise((res) => {
  const s = net.connect({ host, port, timeout: 2000 });
  s.on('connect', () => { s.destroy(); res('ok'); });
  s.on('error', (err) => res(err.code));
  s.on('timeout', () => { s.destroy(); res('timeout'); });
});
exports.handler = async (e) => ({ '127.0.0.1': await tryConnect('127.0.0.1', e.port) });
`,
		},
		check: allBlocked,
	},
	{
		name: "find-networks",
		code: map[string]string{
			"python": `import os
def handler(e, c):
    out = {}
    devs = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
    out["interfaces besides lo: " + ",".join(devs)] = "ok" if [d for d in devs if d != "lo"] else "none"
    routes = open("/proc/net/route").read().splitlines()[1:]
    out["routes: %d" % len(routes)] = "ok" if routes else "none"
    for p in ["/sys/class/net", "/sys"]:
        out[p] = "ok" if os.path.exists(p) and os.listdir(p) else "absent or empty"
    return out
`,
			"nodejs": `const fs = require('fs'), os = require('os');
exports.handler = async () => {
  const out = {};
  const names = Object.keys(os.networkInterfaces()).filter((n) => n !== 'lo');
  out['interfaces besides lo: ' + names.join(',')] = names.length ? 'ok' : 'none';
  const devs = fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0].trim());
  out['/proc/net/dev: ' + devs.join(',')] = devs.some((d) => d !== 'lo') ? 'ok' : 'none';
  out['/sys/class/net'] = fs.existsSync('/sys/class/net') ? 'ok' : 'absent';
  return out;
};
`,
		},
		check: allBlocked,
	},
	{
		name: "see-or-signal-host-processes",
		code: map[string]string{
			"python": `import os, signal
def handler(e, c):
    out = {}
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    out["processes besides its own: %s" % pids] = "ok" if len(pids) > 3 else "none"
    for pid in [e["serverPid"], 1]:
        try:
            os.kill(pid, signal.SIGKILL)
            out["kill %d" % pid] = "ok" if pid != 1 else "ignored (its own init)"
        except OSError as err:
            out["kill %d" % pid] = err.strerror
    return out
`,
			"nodejs": `const fs = require('fs');
exports.handler = async (e) => {
  const out = {};
  const pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  out['processes besides its own: ' + pids.join(',')] = pids.length > 3 ? 'ok' : 'none';
  try { process.kill(e.serverPid, 'SIGKILL'); out['kill server'] = 'ok'; } catch (err) { out['kill server'] = err.code; }
  return out;
};
`,
		},
		check: allBlocked,
	},
	{
		name: "fork-bomb",
		code: map[string]string{
			"python": `import os, time
def handler(e, c):
    n = 0
    while n < 10000:
        try:
            pid = os.fork()
        except OSError as err:
            raise RuntimeError("fork failed after %d: errno %d" % (n, err.errno))
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    return n
`,
			"nodejs": `const { spawn } = require('child_process');
exports.handler = async () => {
  let n = 0;
  while (n < 10000) {
    const err = await new Promise((res) => {
      const p = spawn('/bin/sleep', ['60']);
      p.on('spawn', () => res(null));
      p.on('error', res);
    });
    if (err) throw new Error('fork failed after ' + n + ': ' + err.code);
    n++;
  }
  return n;
};
`,
		},
		check: func(t *testing.T, ex execution) {
			if ex.Status != "error" && ex.Status != "crashed" {
				t.Fatalf("status %s %s, want error or crashed", ex.Status, ex.Result)
			}
			if ex.Status == "error" {
				var n int
				if _, err := fmt.Sscanf(ex.Error.Message[strings.Index(ex.Error.Message, "after"):], "after %d", &n); err != nil || n >= 64 {
					t.Errorf("forked %d (%q), want fewer than the pids limit of 64", n, ex.Error.Message)
				}
			}
		},
	},
	{
		name:   "allocate-10x-memory",
		memory: 64,
		code: map[string]string{
			"python": `def handler(e, c):
    hog = []
    for i in range(64):
        hog.append(b"x" * (10 << 20))
    return len(hog)
`,
			"nodejs": `exports.handler = async () => {
  const hog = [];
  for (let i = 0; i < 64; i++) hog.push(Buffer.alloc(10 << 20, 1));
  return hog.length;
};
`,
		},
		check: func(t *testing.T, ex execution) {
			if ex.Status != "oom" || ex.Error == nil || ex.Error.Type != "Runtime.OutOfMemory" {
				t.Fatalf("status %s %+v, want oom", ex.Status, ex.Error)
			}
		},
	},
	{
		name:    "spin-past-timeout",
		timeout: 1000,
		code: map[string]string{
			"python": "def handler(e, c):\n    while True:\n        pass\n",
			"nodejs": "exports.handler = async () => { for (;;) {} };\n",
		},
		check: func(t *testing.T, ex execution) {
			if ex.Status != "timeout" {
				t.Fatalf("status %s %+v, want timeout", ex.Status, ex.Error)
			}
		},
	},
	{
		name: "print-100mb",
		code: map[string]string{
			"python": `def handler(e, c):
    line = "x" * 1023
    for i in range(100 * 1024):
        print(line)
    return "printed"
`,
			"nodejs": `exports.handler = async () => {
  const line = 'x'.repeat(1023);
  for (let i = 0; i < 100 * 1024; i++) console.log(line);
  return 'printed';
};
`,
		},
		check: func(t *testing.T, ex execution) {
			if ex.Status != "success" || string(ex.Result) != `"printed"` {
				t.Fatalf("status %s %s %+v", ex.Status, ex.Result, ex.Error)
			}
			if len(ex.Logs) > 70<<10 || !strings.Contains(ex.Logs, "truncated") {
				t.Errorf("logs of %d bytes, want at most 64 KiB and marked truncated", len(ex.Logs))
			}
		},
	},
	{
		name: "return-7mb",
		code: map[string]string{
			"python": "def handler(e, c):\n    return 'x' * (7 << 20)\n",
			"nodejs": "exports.handler = async () => 'x'.repeat(7 << 20);\n",
		},
		check: func(t *testing.T, ex execution) {
			if ex.Status != "error" || ex.Error == nil || ex.Error.Type != "Runtime.ResultTooLarge" {
				t.Fatalf("status %s %+v, want error Runtime.ResultTooLarge", ex.Status, ex.Error)
			}
		},
	},
	{
		name: "kill-the-parent",
		code: map[string]string{
			"python": "import os\ndef handler(e, c):\n    os.kill(os.getppid(), 9)\n    return os.getppid()\n",
			"nodejs": "exports.handler = async () => { process.kill(process.ppid, 'SIGKILL'); return process.ppid; };\n",
		},
		check: func(t *testing.T, ex execution) {
			// A fresh interpreter's parent is its own init, which ignores
			// the signal; were it to die, the worker would die with it. A
			// worker forked by the zygote has no parent in its PID
			// namespace (getppid() is 0), so it signals its own process
			// group: itself. Success or crashed, and the server unharmed
			// (checked for every case).
			if ex.Status != "success" && ex.Status != "crashed" {
				t.Fatalf("status %s %+v", ex.Status, ex.Error)
			}
		},
	},
}

// TestSandboxSecurity runs the table against the server as it starts by
// default: Python workers forked from the zygote.
func TestSandboxSecurity(t *testing.T) {
	testenv.RequireRoot(t)
	n := start(t, "NIMBUS_SANDBOX_STRICT=1")
	requireZygote(t, n, true)
	runHostiles(t, n, []string{"python", "nodejs"})
}

// TestSandboxSecurityWithoutZygote runs the Python half of the table with
// the zygote off: workers started as fresh interpreters (prestarted or on
// demand), the path taken when the zygote is off or has died.
func TestSandboxSecurityWithoutZygote(t *testing.T) {
	testenv.RequireRoot(t)
	n := start(t, "NIMBUS_SANDBOX_STRICT=1", "NIMBUS_SANDBOX_ZYGOTE=off")
	requireZygote(t, n, false)
	runHostiles(t, n, []string{"python"})
}

// requireZygote fails the test unless GET /api/system says the sandbox's
// Python zygote is on (or off, if !on).
func requireZygote(t *testing.T, n *nimbus, on bool) {
	t.Helper()
	var sys struct {
		Drivers map[string]struct{ Protections map[string]string }
	}
	n.do("GET", "/api/system", nil, &sys)
	z := sys.Drivers["sandbox"].Protections["zygote"]
	if strings.HasPrefix(z, "on:") != on {
		t.Fatalf("sandbox zygote %q, want it %s", z, map[bool]string{true: "on", false: "off"}[on])
	}
}

// runHostiles runs every hostile function of runtimes rts on n.
func runHostiles(t *testing.T, n *nimbus, rts []string) {
	port, _ := strconv.Atoi(n.url[strings.LastIndex(n.url, ":")+1:])
	n.create(function{Name: "ordinary", Runtime: "python", Code: "def handler(e, c):\n    return e['n'] * 2\n"})
	n.create(function{Name: "victim", Runtime: "python", Code: "victim_secret = 42\ndef handler(e, c):\n    return victim_secret\n"})
	if ex := n.invoke("victim", nil); ex.Status != "success" { // its code is on the host now
		t.Fatalf("victim: %s %+v", ex.Status, ex.Error)
	}
	// Code is unpacked once per content, below the data dir's code/.
	var victims []string
	mains, _ := filepath.Glob(filepath.Join(n.dataDir, "code", "*", "main.py"))
	for _, m := range mains {
		if b, err := os.ReadFile(m); err == nil && strings.Contains(string(b), "victim_secret") {
			victims = append(victims, m)
		}
	}
	if len(victims) == 0 {
		t.Fatalf("the victim's code is not under %s", n.dataDir)
	}
	event := hostileEvent{DataDir: n.dataDir, ServerPID: n.cmd.Process.Pid, Port: port, Victim: victims[0]}

	for _, h := range hostiles {
		for _, rt := range rts {
			t.Run(h.name+"/"+rt, func(t *testing.T) {
				n.t = t
				defer func() { n.t = t }()
				timeout := h.timeout
				if timeout == 0 {
					timeout = 10000
				}
				name := h.name + "-" + map[string]string{"python": "py", "nodejs": "js"}[rt]
				n.create(function{Name: name, Runtime: rt, Code: h.code[rt], Memory: h.memory, Timeout: timeout})

				// An ordinary function keeps answering while the hostile one runs.
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var ordinaryErr error
				var ordinaryCalls int
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 1; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						var ex execution
						st := n.do("POST", "/api/executions/ordinary", map[string]int{"n": i}, &ex)
						if st != 200 || ex.Status != "success" || string(ex.Result) != strconv.Itoa(2*i) {
							ordinaryErr = fmt.Errorf("ordinary call %d: %d %s %s %+v", i, st, ex.Status, ex.Result, ex.Error)
							return
						}
						ordinaryCalls++
						time.Sleep(20 * time.Millisecond)
					}
				}()
				var ex execution
				st := n.do("POST", "/api/executions/"+name, event, &ex)
				close(stop)
				wg.Wait()
				if st != 200 {
					t.Fatalf("invoke: HTTP %d", st)
				}
				h.check(t, ex)
				if ordinaryErr != nil || ordinaryCalls == 0 {
					t.Errorf("the ordinary function did not keep answering: %d calls, %v", ordinaryCalls, ordinaryErr)
				}
				assertHealthy(t, n)
			})
		}
	}
}

// TestSandboxProtectionsAreOn shows, from inside, that each protection is
// really there: with one removed, its check fails.
func TestSandboxProtectionsAreOn(t *testing.T) {
	testenv.RequireRoot(t)
	n := start(t, "NIMBUS_SANDBOX_STRICT=1")
	hostName, _ := os.Hostname()
	code := map[string]string{
		"python": `import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def call(f, *args):
    if f(*args) == 0:
        return "ok"
    return errno.errorcode[ctypes.get_errno()]
def handler(e, c):
    status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
    cg = [l.split(":", 2)[2] for l in open("/proc/self/cgroup").read().splitlines() if l.split(":")[1] in ("memory", "")]
    return {
        "status": {k: status[k].strip() for k in ["Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh", "NoNewPrivs", "Seccomp", "Groups"]},
        "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
        "unshare_user": call(libc.unshare, 0x10000000),
        "unshare_net": call(libc.unshare, 0x40000000),
        "hostname": socket.gethostname(),
        "interfaces": [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]],
        "cgroup": cg[0] if cg else "",
        "root": sorted(os.listdir("/")),
        "taskRoot": os.environ.get("LAMBDA_TASK_ROOT"),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }
`,
		"nodejs": `const fs = require('fs'), os = require('os'), { spawnSync } = require('child_process');
exports.handler = async () => {
  const status = {};
  for (const l of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const i = l.indexOf(':\t');
    if (i > 0) status[l.slice(0, i)] = l.slice(i + 2).trim();
  }
  const pick = {};
  for (const k of ['Uid', 'Gid', 'CapEff', 'CapPrm', 'CapBnd', 'CapAmb', 'CapInh', 'NoNewPrivs', 'Seccomp', 'Groups']) pick[k] = status[k];
  const run = (cmd, args) => { const r = spawnSync(cmd, args, { encoding: 'utf8' }); return r.status === 0 ? 'ok' : (r.stderr || String(r.error)).trim(); };
  const cg = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':')).filter((p) => p[1] === 'memory' || p[1] === '');
  return {
    status: pick,
    mount: run('/bin/mount', ['-t', 'tmpfs', 'none', '/tmp']),
    unshare_user: run('/usr/bin/unshare', ['-U', 'true']),
    unshare_net: run('/usr/bin/unshare', ['-n', 'true']),
    hostname: os.hostname(),
    interfaces: fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0].trim()),
    cgroup: cg.length ? cg[0][2] : '',
    root: fs.readdirSync('/').sort(),
    taskRoot: process.env.LAMBDA_TASK_ROOT,
    cwd: process.cwd(),
    pid: process.pid,
  };
};
`,
	}
	for _, rt := range []string{"python", "nodejs"} {
		t.Run(rt, func(t *testing.T) {
			n.t = t
			name := "inside-" + rt
			n.create(function{Name: name, Runtime: rt, Code: code[rt], Memory: 192})
			ex := n.invoke(name, nil)
			var r struct {
				Status                          map[string]string
				Mount, UnshareUser, UnshareNet  string
				Hostname, Cgroup, TaskRoot, Cwd string
				Interfaces, Root                []string
				PID                             int
			}
			if err := json.Unmarshal(ex.Result, &r); err != nil {
				t.Fatalf("%s %+v %s: %v", ex.Status, ex.Error, ex.Logs, err)
			}
			// json field names are lowercase in the result
			var raw map[string]json.RawMessage
			json.Unmarshal(ex.Result, &raw)
			json.Unmarshal(raw["unshare_user"], &r.UnshareUser)
			json.Unmarshal(raw["unshare_net"], &r.UnshareNet)
			for k, want := range map[string]string{"CapEff": "0000000000000000", "CapPrm": "0000000000000000",
				"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "CapInh": "0000000000000000",
				"NoNewPrivs": "1", "Seccomp": "2"} {
				if r.Status[k] != want {
					t.Errorf("%s = %q, want %q", k, r.Status[k], want)
				}
			}
			for _, k := range []string{"Uid", "Gid"} {
				for _, id := range strings.Fields(r.Status[k]) {
					if id == "0" {
						t.Errorf("%s = %q: root inside", k, r.Status[k])
					}
				}
			}
			if r.Status["Groups"] != "" {
				t.Errorf("supplementary groups %q, want none", r.Status["Groups"])
			}
			// Python makes the calls itself; Node runs util-linux, whose
			// mount gives up before the call for a user that is not root.
			for what, res := range map[string]string{"mount": r.Mount, "unshare a user namespace": r.UnshareUser, "unshare a network namespace": r.UnshareNet} {
				if res == "ok" || (rt == "python" && res != "EPERM") ||
					(rt == "nodejs" && what != "mount" && !strings.Contains(res, "not permitted")) {
					t.Errorf("%s: %q, want EPERM", what, res)
				}
			}
			if r.Hostname == hostName || r.Hostname == "" {
				t.Errorf("hostname %q, the host's is %q", r.Hostname, hostName)
			}
			if strings.Join(r.Interfaces, ",") != "lo" {
				t.Errorf("interfaces %v, want only lo", r.Interfaces)
			}
			if r.TaskRoot != "/var/task" || r.Cwd != "/var/task" {
				t.Errorf("LAMBDA_TASK_ROOT %q, cwd %q, want /var/task", r.TaskRoot, r.Cwd)
			}
			if r.PID == 1 {
				t.Errorf("the interpreter is PID 1: signals to itself would be ignored")
			}
			for _, d := range r.Root {
				switch d {
				case "bin", "dev", "etc", "lib", "lib64", "lib32", "libx32", "proc", "root", "sbin", "tmp", "usr", "var",
					"opt": // /opt/layers/<i>: the function's layers, read-only
				default:
					t.Errorf("unexpected /%s in the sandbox root %v", d, r.Root)
				}
			}
			// The memory cgroup, seen from the host, limits it to its memory.
			limit := cgroupMemoryLimit(t, r.Cgroup)
			if limit != 192<<20 {
				t.Errorf("memory limit of cgroup %s is %d, want %d", r.Cgroup, limit, 192<<20)
			}
		})
	}
	n.t = t
	var sys struct {
		Drivers map[string]struct {
			Available   bool
			Protections map[string]string
		}
	}
	n.do("GET", "/api/system", nil, &sys)
	p := sys.Drivers["sandbox"].Protections
	if !sys.Drivers["sandbox"].Available || p["isolation"] != "on" || !strings.HasPrefix(p["seccomp"], "on") || p["missing"] != "" ||
		!strings.HasPrefix(p["zygote"], "on:") {
		t.Errorf("GET /api/system sandbox: %+v", sys.Drivers["sandbox"])
	}
}

// TestSandboxNetworkOptIn shows what network: true allows: the host's
// network namespace, host loopback services included.
func TestSandboxNetworkOptIn(t *testing.T) {
	testenv.RequireRoot(t)
	n := start(t)
	port, _ := strconv.Atoi(n.url[strings.LastIndex(n.url, ":")+1:])
	code := "import socket\ndef handler(e, c):\n    s = socket.create_connection(('127.0.0.1', e['port']), timeout=2)\n    s.close()\n    return 'connected'\n"
	var created function
	if st := n.do("POST", "/api/functions", map[string]any{"name": "online", "runtime": "python", "code": code, "network": true}, &created); st != 201 {
		t.Fatalf("create: %d", st)
	}
	ex := n.invoke("online", map[string]int{"port": port})
	if ex.Status != "success" || string(ex.Result) != `"connected"` {
		t.Fatalf("with network: true: %s %s %+v", ex.Status, ex.Result, ex.Error)
	}
	var got map[string]any
	n.do("GET", "/api/functions/online", nil, &got)
	if got["network"] != true {
		t.Errorf("network not kept: %v", got["network"])
	}
	// Turning it off gives the next instance its own network namespace.
	if st := n.do("PUT", "/api/functions/online", map[string]any{"network": false}, nil); st != 200 {
		t.Fatalf("update: %d", st)
	}
	ex = n.invoke("online", map[string]int{"port": port})
	if ex.Status != "error" {
		t.Fatalf("with network: false: %s %s, want a refused connection", ex.Status, ex.Result)
	}
}

func assertHealthy(t *testing.T, n *nimbus) {
	t.Helper()
	select {
	case <-n.exited:
		t.Fatalf("the server died")
	default:
	}
	resp, err := http.Get(n.url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("server unhealthy: %v", err)
	}
	resp.Body.Close()
}

// cgroupMemoryLimit reads the memory limit of the cgroup at path (as a
// process sees it in /proc/self/cgroup) on the host, v1 or v2.
func cgroupMemoryLimit(t *testing.T, path string) int64 {
	t.Helper()
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes"),
		filepath.Join("/sys/fs/cgroup", path, "memory.max"),
		filepath.Join("/sys/fs/cgroup/unified", path, "memory.max"),
	} {
		if b, err := os.ReadFile(f); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return n
		}
	}
	t.Fatalf("no memory limit file for cgroup %q", path)
	return 0
}
