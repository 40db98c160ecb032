package sandbox_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/driver/sandbox"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

func TestIsolatedWorkersRunBothRuntimes(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, nil)
	if p := d.Protections(); p["isolation"] != "on" || p["missing"] != "" {
		t.Fatalf("protections on this root host: %v", p)
	}
	code := map[string]string{
		runtime.Python: "import os\ndef handler(e, c):\n    return {'uid': os.getuid(), 'root': os.environ['LAMBDA_TASK_ROOT'], 'cwd': os.getcwd()}\n",
		runtime.NodeJS: "exports.handler = async () => ({ uid: process.getuid(), root: process.env.LAMBDA_TASK_ROOT, cwd: process.cwd() });\n",
	}
	for _, rt := range []string{runtime.Python, runtime.NodeJS} {
		t.Run(rt, func(t *testing.T) {
			inst, err := d.Start(context.Background(), driver.InstanceSpec{Function: h.function(rt, "iso", code[rt])})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := invoke(inst, map[string]int{}, 5*time.Second)
			if err != nil || resp.Error != nil {
				t.Fatalf("invoke: %v %+v", err, resp)
			}
			if got := string(resp.Result); got != `{"uid":65534,"root":"/var/task","cwd":"/var/task"}` &&
				got != `{"uid": 65534, "root": "/var/task", "cwd": "/var/task"}` {
				t.Errorf("result %s", got)
			}
			if st := inst.Stats(); st.PID == 0 || st.RSSKiB == 0 {
				t.Errorf("stats %+v", st)
			}
			inst.Kill("test over")
			<-inst.Done()
			if ex := inst.Exit(); ex.Reason != "test over" || ex.OOM {
				t.Errorf("exit %+v", ex)
			}
		})
	}
}

func TestOutOfMemoryIsReadFromTheCgroup(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, nil)
	f := h.function(runtime.Python, "hog", "def handler(e, c):\n    return len([b'x' * (8 << 20) for i in range(40)])\n")
	f.Memory = 64
	inst, err := d.Start(context.Background(), driver.InstanceSpec{Function: f})
	if err != nil {
		t.Fatal(err)
	}
	_, err = invoke(inst, map[string]int{}, 10*time.Second)
	var exit *driver.ExitError
	if !errors.As(err, &exit) || !exit.Exit.OOM || exit.Exit.Signal != "SIGKILL" {
		t.Fatalf("invoke: %v, want an ExitError with OOM", err)
	}
	// A small function is not an OOM.
	inst, err = d.Start(context.Background(), driver.InstanceSpec{Function: h.function(runtime.Python, "ok", okCode[runtime.Python])})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := invoke(inst, map[string]int{"n": 1}, 5*time.Second); err != nil || string(resp.Result) != `{"ok": 2}` && string(resp.Result) != `{"ok":2}` {
		t.Fatalf("after an OOM: %v %+v", err, resp)
	}
	inst.Kill("done")
	<-inst.Done()
	if inst.Exit().OOM {
		t.Errorf("a kill is reported as OOM: %+v", inst.Exit())
	}
}

func TestInstanceCgroupIsRemoved(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, map[string]string{sandbox.EnvSpareSandboxes: "0"})
	inst, err := d.Start(context.Background(), driver.InstanceSpec{Function: h.function(runtime.Python, "cg", okCode[runtime.Python])})
	if err != nil {
		t.Fatal(err)
	}
	id := inst.Stats().ID
	dirs := cgroupDirs(t, id)
	if len(dirs) == 0 {
		t.Fatalf("no cgroup named %s", id)
	}
	inst.Kill("done")
	<-inst.Done()
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s remains: %v", dir, err)
		}
	}
}

// cgroupDirs finds the cgroup directories of instance id below
// /sys/fs/cgroup, named <server>-<id>.
func cgroupDirs(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, e os.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if strings.HasSuffix(e.Name(), "-"+id) {
			out = append(out, p)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

func TestIsolationOffRunsPlainProcesses(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, map[string]string{sandbox.EnvIsolation: "off"})
	p := d.Protections()
	if p["isolation"] != "off" || !strings.Contains(p["missing"], sandbox.EnvIsolation) {
		t.Fatalf("protections %v", p)
	}
	inst, err := d.Start(context.Background(), driver.InstanceSpec{Function: h.function(runtime.Python, "plain",
		"import os\ndef handler(e, c):\n    return os.getuid()\n")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := invoke(inst, nil, 5*time.Second)
	if err != nil || string(resp.Result) != "0" {
		t.Fatalf("unisolated worker as root: %v %+v", err, resp)
	}
	inst.Kill("done")
	<-inst.Done()
}

func TestStrictModeRefusesLessIsolation(t *testing.T) {
	h := newHarness(t)
	d := h.driver(t, map[string]string{sandbox.EnvIsolation: "off", sandbox.EnvStrict: "1"})
	if err := d.Available(context.Background()); !errors.Is(err, fn.ErrUnavailable) {
		t.Fatalf("Available: %v, want fn.ErrUnavailable", err)
	}
	if _, err := d.Start(context.Background(), driver.InstanceSpec{Function: h.function(runtime.Python, "x", okCode[runtime.Python])}); !errors.Is(err, fn.ErrUnavailable) {
		t.Fatalf("Start: %v, want fn.ErrUnavailable", err)
	}
	// With every protection, strict mode runs functions.
	d = h.driver(t, map[string]string{sandbox.EnvStrict: "1"})
	if err := d.Available(context.Background()); err != nil {
		t.Fatalf("strict with full isolation: %v", err)
	}
}

func TestBadSettingsAreRefused(t *testing.T) {
	h := newHarness(t)
	for k, v := range map[string]string{
		sandbox.EnvStrict:         "maybe",
		sandbox.EnvIsolation:      "partly",
		sandbox.EnvUID:            "0",
		sandbox.EnvTmpMB:          "lots",
		sandbox.EnvPids:           "2",
		sandbox.EnvSpareSandboxes: "-1",
		sandbox.EnvZygote:         "maybe",
	} {
		t.Run(k, func(t *testing.T) {
			_, err := sandbox.New(driver.Config{DataDir: t.TempDir(), Interpreters: h.interp, Shims: h.shims,
				Lookup: func(key string) (string, bool) { return v, key == k }})
			if err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s=%s: %v, want an error naming it", k, v, err)
			}
		})
	}
}

// TestUnprivilegedServerUsesAUserNamespace runs this test binary again as
// uid 65534, which cannot create namespaces without a user namespace nor
// write cgroups, and checks that the sandbox still isolates (Node only:
// this host's Python may live under /root, out of reach of that user).
func TestUnprivilegedServerUsesAUserNamespace(t *testing.T) {
	if os.Getenv("NIMBUS_TEST_UNPRIVILEGED") != "" {
		unprivilegedChild(t)
		return
	}
	h := newHarness(t)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "sandbox.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUnprivilegedServerUsesAUserNamespace$", "-test.v")
	cmd.Env = []string{"NIMBUS_TEST_UNPRIVILEGED=1", "NIMBUS_NODE=" + h.interp.Path(runtime.NodeJS), "PATH=/usr/bin:/bin", "TMPDIR=" + tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("as uid 65534: %v\n%s", err, out)
	}
}

func unprivilegedChild(t *testing.T) {
	node, _ := os.LookupEnv("NIMBUS_NODE")
	shims, err := runtime.InstallShims(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := sandbox.New(driver.Config{DataDir: t.TempDir(), Interpreters: runtime.Interpreters{runtime.NodeJS: {Path: node}}, Shims: shims})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := d.Protections()
	if p["isolation"] != "on" || !strings.Contains(p["namespaces"], "user") || !strings.HasPrefix(p["seccomp"], "on") {
		t.Fatalf("protections as an unprivileged user: %v", p)
	}
	// It cannot mount code into a sandbox from outside: code and layers
	// are copied in.
	if !strings.HasPrefix(p["code"], "copied") {
		t.Errorf("code protection as an unprivileged user: %q", p["code"])
	}
	f := &fn.Function{ID: fn.NewID(), Name: "u", Runtime: runtime.NodeJS, Handler: "index.handler", Revision: 1, Memory: 128, Timeout: 5000}
	code := drivertest.Dir(t, map[string]drivertest.File{"index.js": {Data: []byte(`const fs = require('fs');
exports.handler = async () => {
  const st = {};
  for (const l of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) { const [k, v] = l.split(':\t'); st[k] = v; }
  let write = 'written';
  try { fs.writeFileSync('/var/task/index.js', ''); } catch (e) { write = e.code; }
  return [process.getuid(), st.CapEff, st.CapBnd, st.NoNewPrivs, st.Seccomp, fs.readdirSync('/').includes('root'),
    require('nimbuslayerdemo'), write];
};
`)}})
	layer := drivertest.Dir(t, map[string]drivertest.File{"nodejs/node_modules/nimbuslayerdemo/index.js": {Data: []byte("module.exports = 'layer';\n")}})
	inst, err := d.Start(context.Background(), driver.InstanceSpec{Function: f, Code: code, Layers: []string{layer}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { inst.Kill("done"); <-inst.Done() }()
	resp, err := invoke(inst, nil, 5*time.Second)
	if err != nil || resp.Error != nil {
		t.Fatalf("invoke: %v %+v", err, resp)
	}
	if got := string(resp.Result); got != `[65534,"0000000000000000","0000000000000000","1","2",false,"layer","EROFS"]` {
		t.Errorf("inside: %s", got)
	}
}
