package microvm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

func TestDetectAccel(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "module")
	os.MkdirAll(sys, 0o755)
	kvm := filepath.Join(dir, "kvm")

	if a := detectAccel("auto", sys, kvm); a.name != "tcg" || !strings.Contains(a.reason, "no "+kvm) {
		t.Errorf("no /dev/kvm: %+v", a)
	}
	os.WriteFile(kvm, nil, 0o600)
	os.MkdirAll(filepath.Join(sys, "kvm_pvm"), 0o755)
	if a := detectAccel("auto", sys, kvm); a.name != "tcg" || !strings.Contains(a.reason, "neither kvm_intel nor kvm_amd") {
		t.Errorf("/dev/kvm of a software hypervisor: %+v", a)
	}
	os.MkdirAll(filepath.Join(sys, "kvm_amd"), 0o755)
	if a := detectAccel("auto", sys, kvm); a.name != "kvm" || !strings.Contains(a.reason, "kvm_amd") {
		t.Errorf("hardware KVM: %+v", a)
	}
	if a := detectAccel("tcg", sys, kvm); a.name != "tcg" {
		t.Errorf("forced tcg: %+v", a)
	}
	if a := detectAccel("kvm", filepath.Join(dir, "none"), kvm); a.name != "kvm" {
		t.Errorf("forced kvm: %+v", a)
	}
}

func TestKernelCmdline(t *testing.T) {
	tcg := kernelCmdline(accel{name: "tcg"}, "python", 128)
	for _, want := range []string{"console=ttyS0", "tsc=reliable", "nimbus_runtime=python", "nimbus_memory=128"} {
		if !strings.Contains(tcg, want) {
			t.Errorf("tcg command line %q lacks %q", tcg, want)
		}
	}
	if hostTSCkHz() > 0 && !strings.Contains(tcg, "tsc_early_khz=") {
		t.Errorf("tcg command line %q lacks tsc_early_khz", tcg)
	}
	if kvm := kernelCmdline(accel{name: "kvm"}, "nodejs", 256); strings.Contains(kvm, "tsc_early_khz") || !strings.Contains(kvm, "nimbus_runtime=nodejs") {
		t.Errorf("kvm command line %q", kvm)
	}
}

func TestOptions(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	o, err := readOptions(env("HOME", "/home/ada"), "/data")
	if err != nil {
		t.Fatal(err)
	}
	if o.dir != "/home/ada/.cache/nimbus/microvm" || o.accel != "auto" || !o.snapshots || o.overheadMB != 160 {
		t.Errorf("defaults %+v", o)
	}
	for _, c := range []struct {
		env  func(string) (string, bool)
		want string
	}{
		{env(EnvDir, "/x", "XDG_CACHE_HOME", "/c", "HOME", "/h"), "/x"},
		{env("XDG_CACHE_HOME", "/c", "HOME", "/h"), "/c/nimbus/microvm"},
		{env(), "/data/microvm"},
	} {
		if got := DefaultDir(c.env, "/data"); got != c.want {
			t.Errorf("DefaultDir %q, want %q", got, c.want)
		}
	}
	for _, bad := range [][]string{{EnvAccel, "hvf"}, {EnvOverheadMB, "8"}, {EnvBootTimeout, "soon"}, {EnvSnapshots, "maybe"}} {
		if _, err := readOptions(env(bad...), "/data"); err == nil {
			t.Errorf("%s=%s accepted", bad[0], bad[1])
		}
	}
}

// TestGuestFiles checks the guest's scripts parse, with the host's shell
// and interpreters (the guest runs busybox's ash and the same
// interpreters).
func TestGuestFiles(t *testing.T) {
	dir := t.TempDir()
	type file struct {
		name string
		data []byte
		cmd  []string
	}
	files := []file{{"init.sh", guestInit, []string{"sh", "-n"}}}
	check := map[string][]string{".py": {"python3", "-m", "py_compile"}, ".js": {"node", "--check"}}
	g := Guest() // every runtime with an interpreter has its agent
	withAgent := 0
	for _, r := range runtime.All() {
		if !r.Relayed() {
			withAgent++
		}
	}
	if len(g.Agents) != withAgent {
		t.Fatalf("%d agents for %d runtimes with an interpreter", len(g.Agents), withAgent)
	}
	for _, a := range g.Agents {
		cmd, ok := check[filepath.Ext(a.Name)]
		if !ok {
			t.Fatalf("agent %s: no syntax check for its language", a.Name)
		}
		files = append(files, file{a.Name, a.Data, cmd})
	}
	for _, c := range files {
		t.Run(c.name, func(t *testing.T) {
			if _, err := exec.LookPath(c.cmd[0]); err != nil {
				testenv.Require(t, c.cmd[0], err)
			}
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(c.cmd[0], append(c.cmd[1:], p)...).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", c.name, err, out)
			}
		})
	}
}
