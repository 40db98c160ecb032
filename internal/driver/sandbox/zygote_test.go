package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/driver/sandbox"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// insideCode reports, from inside an instance, what each protection looks
// like (the checks of TestSandboxProtectionsAreOn in the e2e suite).
const insideCode = `import ctypes, errno, os, resource, socket
libc = ctypes.CDLL(None, use_errno=True)
def call(f, *args):
    if f(*args) == 0:
        return "ok"
    return errno.errorcode[ctypes.get_errno()]
def comm(p):
    try:
        return open("/proc/%d/comm" % p).read().strip()
    except OSError:
        return ""
def handler(e, c):
    status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
    pids = [p for p in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) if comm(p)]
    return {
        "status": {k: status[k].strip() for k in ["Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh", "NoNewPrivs", "Seccomp", "Groups", "PPid"]},
        "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
        "unshareUser": call(libc.unshare, 0x10000000),
        "unshareNet": call(libc.unshare, 0x40000000),
        "setns": call(libc.setns, os.open("/proc/self/ns/uts", os.O_RDONLY), 0),
        "hostname": socket.gethostname(),
        "interfaces": [n for _, n in socket.if_nameindex()],
        "root": sorted(os.listdir("/")),
        "task": sorted(os.listdir("/var/task")),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "pids": pids,
        "comms": [comm(p) for p in pids],
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "color": os.environ.get("COLOR"),
        "tmp": call(lambda: open("/tmp/x", "w").write("x") - 1),
        "sid": os.getsid(0),
    }
`

type inside struct {
	Status                                map[string]string
	Mount, UnshareUser, UnshareNet, Setns string
	Hostname, Cwd, Color, Tmp             string
	Interfaces, Root, Task, Comms         []string
	PID, Sid                              int
	Pids                                  []int
	Nofile, Core                          []uint64
}

// lookInside runs insideCode in in. A worker forked into a sandbox joins it
// while its init helper is still on its way to exec the init shell (the
// server hands both their part at once): PID 1 may show as the helper
// ("exe") for a moment on a loaded machine. It asks again until PID 1 is
// the shell, for up to 10 s; checkInside then judges.
func lookInside(t *testing.T, in driver.Instance) inside {
	t.Helper()
	got := drivertest.MustInvoke[inside](t, in, nil)
	for deadline := time.Now().Add(10 * time.Second); len(got.Comms) > 0 && got.Comms[0] == "exe" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got = drivertest.MustInvoke[inside](t, in, nil)
	}
	return got
}

// checkInside fails the test unless every protection holds in got, from a
// worker the zygote forked or not.
func checkInside(t *testing.T, got inside, forked bool) {
	t.Helper()
	for k, want := range map[string]string{"CapEff": "0000000000000000", "CapPrm": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "CapInh": "0000000000000000",
		"NoNewPrivs": "1", "Seccomp": "2", "Uid": "65534\t65534\t65534\t65534", "Gid": "65534\t65534\t65534\t65534", "Groups": ""} {
		if got.Status[k] != want {
			t.Errorf("%s = %q, want %q", k, got.Status[k], want)
		}
	}
	for what, res := range map[string]string{"mount": got.Mount, "unshare a user namespace": got.UnshareUser,
		"unshare a network namespace": got.UnshareNet, "setns": got.Setns} {
		if res != "EPERM" {
			t.Errorf("%s: %q, want EPERM", what, res)
		}
	}
	if got.Hostname != "sandbox" || strings.Join(got.Interfaces, ",") != "lo" {
		t.Errorf("hostname %q, interfaces %v: want sandbox and only lo", got.Hostname, got.Interfaces)
	}
	if got.Cwd != sandbox.TaskDir || strings.Join(got.Task, ",") != "main.py" {
		t.Errorf("cwd %q, /var/task %v", got.Cwd, got.Task)
	}
	for _, d := range got.Root {
		switch d {
		case "bin", "dev", "etc", "lib", "lib64", "lib32", "libx32", "proc", "root", "sbin", "tmp", "usr", "var",
			"opt": // /opt/layers
		default:
			t.Errorf("unexpected /%s in the sandbox root %v", d, got.Root)
		}
	}
	if got.Tmp != "ok" {
		t.Errorf("writing /tmp: %s", got.Tmp)
	}
	// Its own PID namespace: its init shell (and the subshell it waits
	// on), itself, nothing else; not PID 1. A forked worker leads its own
	// session; an interpreter is in its init's, outside the namespace.
	if got.PID == 1 || forked && got.Sid != got.PID || len(got.Pids) > 3 || got.Pids[0] != 1 || !slices.Contains(got.Pids, got.PID) {
		t.Errorf("pid %d, session %d, processes %v %v", got.PID, got.Sid, got.Pids, got.Comms)
	}
	if got.Comms[0] != "sh" {
		t.Errorf("PID 1 is %q, want the init shell", got.Comms[0])
	}
	if len(got.Nofile) != 2 || got.Nofile[0] != 1024 || got.Nofile[1] != 1024 || got.Core[0] != 0 || got.Core[1] != 0 {
		t.Errorf("rlimits nofile %v core %v", got.Nofile, got.Core)
	}
}

// forkedFromZygote fails the test unless in's worker is a child of d's
// zygote and lives in the namespaces of in's init, and returns its pid.
func forkedFromZygote(t *testing.T, d *sandbox.Driver, in driver.Instance, nsPID int) int {
	t.Helper()
	z, w := d.ZygotePID(), sandbox.WorkerPID(in)
	if z == 0 || w == 0 {
		t.Fatalf("zygote pid %d, worker pid %d: the worker was not forked from the zygote", z, w)
	}
	st := procStatus(t, w)
	if st["PPid"] != strconv.Itoa(z) {
		t.Errorf("the worker's parent is %s, not the zygote %d", st["PPid"], z)
	}
	if f := strings.Fields(st["NSpid"]); len(f) != 2 || f[0] != strconv.Itoa(w) || f[1] != strconv.Itoa(nsPID) {
		t.Errorf("worker NSpid %q, want %d then %d (the pid it reported)", st["NSpid"], w, nsPID)
	}
	init := in.Stats().PID
	for _, ns := range []string{"pid", "mnt", "net", "ipc", "uts"} {
		a, _ := os.Readlink("/proc/" + strconv.Itoa(w) + "/ns/" + ns)
		b, _ := os.Readlink("/proc/" + strconv.Itoa(init) + "/ns/" + ns)
		h, _ := os.Readlink("/proc/self/ns/" + ns)
		if a == "" || a != b || a == h {
			t.Errorf("%s namespace: worker %s, its init %s, host %s", ns, a, b, h)
		}
	}
	return w
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// hostCgroup is the v1 memory cgroup of pid or, on a host without one, its
// v2 cgroup, as a path.
func hostCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	unified := ""
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		p := strings.SplitN(l, ":", 3)
		switch {
		case len(p) != 3:
		case p[1] == "memory":
			return p[2]
		case p[1] == "":
			unified = p[2]
		}
	}
	return unified
}

// memoryLimit is the memory limit of cgroup cg (a path from hostCgroup), in
// the v1 memory hierarchy where there is one, else in the v2 hierarchy.
func memoryLimit(t *testing.T, cg string) int64 {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		return readInt(t, filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes"))
	}
	return readInt(t, filepath.Join("/sys/fs/cgroup", cg, "memory.max"))
}

// A cold Python start, from a spare worker or on demand, runs in a
// worker forked from the zygote, inside every protection of the sandbox.
func TestColdStartIsForkedFromTheZygote(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ name, spareWorkers string }{{"spare worker", "2"}, {"on demand", "0"}} {
		t.Run(c.name, func(t *testing.T) {
			d := h.driver(t, map[string]string{sandbox.EnvSpareWorkers: c.spareWorkers})
			if p := d.Protections(); !strings.HasPrefix(p["zygote"], "on:") || p["missing"] != "" {
				t.Fatalf("protections %v", p)
			}
			if c.spareWorkers != "0" {
				waitForSpareWorker(t, d)
			}
			f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, insideCode))
			f.Env = map[string]string{"COLOR": "teal"}
			f.Memory = 96
			in := drivertest.Start(t, d, f)
			got := lookInside(t, in)
			checkInside(t, got, true)
			if got.Color != "teal" {
				t.Errorf("COLOR=%q: the function's environment did not arrive with Init", got.Color)
			}
			w := forkedFromZygote(t, d, in, got.PID)
			// The init shell holding the sandbox waits; it does not spin.
			init := in.Stats().PID
			before := cpuTicks(t, init)
			time.Sleep(500 * time.Millisecond)
			if used := cpuTicks(t, init) - before; used > 5 {
				t.Errorf("the idle instance's init used %d clock ticks of CPU in 0.5 s", used)
			}
			// Its own cgroup, the instance's, limited to its memory.
			cg := hostCgroup(t, w)
			if cg == "" || cg != hostCgroup(t, in.Stats().PID) || !strings.HasSuffix(cg, "-"+in.Stats().ID) { // named <server>-<instance>
				t.Errorf("worker cgroup %q, its init's %q, instance %s", cg, hostCgroup(t, in.Stats().PID), in.Stats().ID)
			}
			if lim := memoryLimit(t, cg); lim != 96<<20 {
				t.Errorf("memory limit %d, want %d", lim, 96<<20)
			}
			// When its init ends, nothing of it survives.
			in.Kill("test over")
			drivertest.WaitDone(t, in, 10*time.Second)
			if ex := in.Exit(); ex.Signal != "SIGKILL" || ex.Reason != "test over" || ex.OOM {
				t.Errorf("exit %+v", ex)
			}
			if err := syscall.Kill(w, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the worker %d outlived its instance: %v", w, err)
			}
		})
	}
}

// cpuTicks is the CPU time of pid and of its children it reaped, in clock
// ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var n int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime, after pid and comm
		v, _ := strconv.ParseInt(f[i], 10, 64)
		n += v
	}
	return n
}

func waitForSpareWorker(t *testing.T, d *sandbox.Driver) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(d.SpareZygoteChildPIDs(runtime.Python)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no python worker forked ahead in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// zygoteDriver is a driver.Driver whose Python instances must be forked by
// the zygote: Start fails the test otherwise.
type zygoteDriver struct {
	*sandbox.Driver
	t *testing.T
}

func (z zygoteDriver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	in, err := z.Driver.Start(ctx, spec)
	if err == nil && spec.Function.Runtime == runtime.Python && sandbox.WorkerPID(in) == 0 {
		z.t.Errorf("a python instance of %s was not forked from the zygote", spec.Function.Name)
	}
	return in, err
}

// The shared confinement and conformance suites, with every Python
// instance forked from the zygote.
func TestZygoteIsolationSuite(t *testing.T) {
	h := newHarness(t)
	factory := func(t *testing.T) driver.Driver {
		d := h.driver(t, nil)
		if d.ZygotePID() == 0 {
			t.Fatalf("no zygote: %s", d.Protections()["zygote"])
		}
		return zygoteDriver{d, t}
	}
	t.Run("isolation", func(t *testing.T) {
		drivertest.RunIsolation(t, factory, drivertest.IsolationOptions{MaxProcesses: 64, MemoryLimit: true})
	})
	t.Run("conformance", func(t *testing.T) {
		drivertest.Run(t, factory, drivertest.Options{MemoryLimit: true, Freezes: true})
	})
}

// Two zygote-forked instances cannot see or signal each other or the
// zygote; killing one, and an out-of-memory kill in another, leave the
// zygote and the others healthy.
func TestZygoteChildrenCannotReachEachOther(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, map[string]string{sandbox.EnvSpareWorkers: "0"})
	z := d.ZygotePID()
	attacker := `import os, signal
def handler(e, c):
    out = {"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
    for name, pid in e.items():
        try:
            os.kill(pid, 0)
            out[name] = "visible"
        except OSError as err:
            out[name] = err.strerror
    try:
        os.kill(-1, signal.SIGKILL)  # all it may signal, but its init and itself
        out["kill -1"] = "sent"
    except OSError as err:
        out["kill -1"] = err.strerror
    return out
`
	victim := "import os\ndef handler(e, c):\n    return os.getpid()\n"
	start := func(name, code string) driver.Instance {
		f := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, code))
		f.Name = name
		return drivertest.Start(t, d, f)
	}
	b := start("victim", victim)
	bPID := drivertest.MustInvoke[int](t, b, nil)
	bWorker := forkedFromZygote(t, d, b, bPID)
	a := start("attacker", attacker)
	got := drivertest.MustInvoke[map[string]any](t, a, map[string]int{
		"victim on the host": bWorker, "victim's init on the host": b.Stats().PID, "zygote": z, "server": os.Getpid(),
	})
	for _, k := range []string{"victim on the host", "victim's init on the host", "zygote", "server"} {
		if got[k] != "No such process" {
			t.Errorf("%s from another instance: %v, want No such process", k, got[k])
		}
	}
	if pids, _ := got["pids"].([]any); len(pids) > 3 {
		t.Errorf("the attacker sees %v", pids)
	}
	if n := drivertest.MustInvoke[int](t, b, nil); n != bPID {
		t.Errorf("victim answers %d, want %d", n, bPID)
	}
	// Killing the attacker leaves the victim and the zygote alone.
	a.Kill("test")
	drivertest.WaitDone(t, a, 10*time.Second)
	if n := drivertest.MustInvoke[int](t, b, nil); n != bPID {
		t.Errorf("victim after a kill answers %d", n)
	}
	// So does an out-of-memory kill.
	hog := drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python,
		"def handler(e, c):\n    return len([b'x' * (8 << 20) for i in range(40)])\n"))
	hog.Memory = 64
	c := drivertest.Start(t, d, hog)
	_, err := drivertest.Invoke(c, nil, 30*time.Second)
	var ee *driver.ExitError
	if !errors.As(err, &ee) || !ee.Exit.OOM || ee.Exit.Signal != "SIGKILL" {
		t.Fatalf("the hog: %v, want an ExitError with OOM and SIGKILL", err)
	}
	if n := drivertest.MustInvoke[int](t, b, nil); n != bPID {
		t.Errorf("victim after an OOM answers %d", n)
	}
	if d.ZygotePID() != z || syscall.Kill(z, 0) != nil {
		t.Fatalf("the zygote %d did not survive its children (now %d)", z, d.ZygotePID())
	}
	n := start("next", victim)
	forkedFromZygote(t, d, n, drivertest.MustInvoke[int](t, n, nil))
}

// Without the zygote (turned off, or dead), Python instances start as fresh
// interpreters, and the isolation report says why.
func TestWithoutTheZygotePythonStartsFreshInterpreters(t *testing.T) {
	h := newHarness(t)
	t.Run("off", func(t *testing.T) {
		d := h.driver(t, map[string]string{sandbox.EnvZygote: "off"})
		if p := d.Protections()["zygote"]; !strings.HasPrefix(p, "off: turned off by "+sandbox.EnvZygote) {
			t.Errorf("zygote protection %q", p)
		}
		in := drivertest.Start(t, d, drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, insideCode)))
		got := lookInside(t, in)
		checkInside(t, got, false)
		if sandbox.WorkerPID(in) != 0 || got.Status["PPid"] != "1" {
			t.Errorf("worker pid %d, parent %s: want a fresh interpreter under its init", sandbox.WorkerPID(in), got.Status["PPid"])
		}
	})
	t.Run("dead", func(t *testing.T) {
		d := h.driver(t, nil)
		waitForSpareWorker(t, d)
		before := drivertest.Start(t, d, drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, okCode[runtime.Python])))
		z := d.ZygotePID()
		if err := syscall.Kill(z, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		drivertest.WaitDone(t, before, 10*time.Second)
		if ex := before.Exit(); ex.Reason != "the python zygote exited" {
			t.Errorf("an instance of the dead zygote: %+v", ex)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.HasPrefix(d.Protections()["zygote"], "off: the python zygote exited") {
			if time.Now().After(deadline) {
				t.Fatalf("zygote protection %q", d.Protections()["zygote"])
			}
			time.Sleep(10 * time.Millisecond)
		}
		in := drivertest.Start(t, d, drivertest.Function(t, runtime.Python, drivertest.Source(runtime.Python, insideCode)))
		got := lookInside(t, in)
		checkInside(t, got, false)
		if sandbox.WorkerPID(in) != 0 {
			t.Errorf("forked by a dead zygote?")
		}
	})
}
