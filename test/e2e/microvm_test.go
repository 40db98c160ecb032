package e2e_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// startMicroVM starts nimbus serve with the microVM artifacts this machine
// has and returns it, or skips (fails in CI) when the driver cannot run.
func startMicroVM(t *testing.T) *nimbus {
	t.Helper()
	n := start(t, "NIMBUS_MICROVM_DIR="+microvm.DefaultDir(os.LookupEnv, ""))
	requireMicroVM(t, n)
	return n
}

// requireMicroVM fails (skips outside CI) unless n's microVM driver is
// available, and checks that it says which accelerator it uses and why.
func requireMicroVM(t *testing.T, n *nimbus) {
	t.Helper()
	var sys struct {
		Drivers map[string]struct {
			Available bool           `json:"available"`
			Reason    string         `json:"reason"`
			Details   map[string]any `json:"details"`
		} `json:"drivers"`
	}
	if st := n.do("GET", "/api/system", nil, &sys); st != http.StatusOK {
		t.Fatalf("GET /api/system: %d", st)
	}
	m, ok := sys.Drivers["microvm"]
	if !ok {
		t.Fatalf("no microvm driver in /api/system: %+v", sys)
	}
	if !m.Available {
		testenv.Require(t, "the microVM driver (make microvm builds it)", errors.New(m.Reason))
	}
	acc, _ := m.Details["accelerator"].(string)
	why, _ := m.Details["acceleratorReason"].(string)
	if (acc != "kvm" && acc != "tcg") || why == "" {
		t.Errorf("/api/system says accelerator %q because %q", acc, why)
	}
	t.Logf("accelerator %s: %s", acc, why)
}

// TestMicroVMFunctions runs functions in real VMs through a real nimbus
// serve (driver "firecracker", the alias, for one of them), checks the
// statuses of a slow and a greedy handler, and that SIGTERM leaves no VM
// process and no RAM file behind.
func TestMicroVMFunctions(t *testing.T) {
	n := startMicroVM(t)
	create := func(name, driver string, extra map[string]any) string {
		f := map[string]any{"name": name, "runtime": "python", "driver": driver, "timeout": 60000,
			"code": `import os, time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("hog"):
        hog = [b"x" * (4 << 20) for _ in range(1000)]
    return {"hello": event.get("name"), "kernel": os.uname().release, "greeting": os.environ.get("GREETING")}
`, "env": map[string]string{"GREETING": "hi"}}
		for k, v := range extra {
			f[k] = v
		}
		var got struct {
			ID       string   `json:"id"`
			Warnings []string `json:"warnings"`
		}
		if st := n.do("POST", "/api/functions", f, &got); st != http.StatusCreated {
			t.Fatalf("create %s: status %d", name, st)
		}
		if len(got.Warnings) > 0 {
			t.Errorf("create %s: warnings %q", name, got.Warnings)
		}
		return got.ID
	}
	id := create("vm-hello", "microvm", nil)
	alias := create("vm-alias", "firecracker", nil)

	type result struct {
		Hello, Kernel, Greeting string
	}
	for i, want := range []bool{true, false} {
		ex := n.invoke(id, map[string]any{"name": "Ada"})
		var r result
		ex.decode(t, &r)
		if ex.Status != "success" || r.Hello != "Ada" || r.Greeting != "hi" || ex.ColdStart != want {
			t.Errorf("call %d: %s %+v cold %v", i, ex.Status, r, ex.ColdStart)
		}
		host, _ := os.ReadFile("/proc/sys/kernel/osrelease")
		if r.Kernel == "" || r.Kernel == strings.TrimSpace(string(host)) {
			t.Errorf("the function saw kernel %q, the host's is %q: not in a VM", r.Kernel, host)
		}
		t.Logf("call %d: %s in %.0f ms (cold %v), guest kernel %s", i, ex.Status, ex.DurationMs, ex.ColdStart, r.Kernel)
	}
	if ex := n.invoke(alias, map[string]any{"name": "Grace"}); ex.Status != "success" {
		t.Errorf("driver firecracker: %s %+v", ex.Status, ex.Error)
	}

	slow := create("vm-slow", "microvm", map[string]any{"timeout": 5000})
	if ex := n.invoke(slow, map[string]any{"sleep": 30}); ex.Status != "timeout" {
		t.Errorf("a handler past its timeout: status %s %+v", ex.Status, ex.Error)
	}
	greedy := create("vm-greedy", "microvm", map[string]any{"memory": 128})
	if ex := n.invoke(greedy, map[string]any{"hog": true}); ex.Status != "oom" {
		t.Errorf("a handler past its memory: status %s %+v", ex.Status, ex.Error)
	}
	if ex := n.invoke(greedy, map[string]any{"name": "again"}); ex.Status != "success" {
		t.Errorf("after an OOM kill: status %s %+v", ex.Status, ex.Error)
	}

	pid := n.cmd.Process.Pid
	marker := fmt.Sprintf("nimbus-microvm-%d-", pid)
	if len(processesWith(marker)) == 0 {
		t.Fatalf("no process mentions %s while functions are warm", marker)
	}
	n.stop()
	if pids := processesWith(marker); len(pids) > 0 {
		t.Errorf("VM processes left after shutdown: %v", pids)
	}
	for _, base := range []string{"/dev/shm", os.TempDir()} {
		left, _ := filepath.Glob(filepath.Join(base, marker+"*"))
		if len(left) > 0 {
			t.Errorf("left after shutdown: %v", left)
		}
	}
}

// TestMicroVMLeftoversAfterServerKilled kills a server with a VM running
// (SIGKILL: no shutdown) and checks that no QEMU process of it survives,
// and that the next server removes the RAM files and sockets it left in
// /dev/shm.
func TestMicroVMLeftoversAfterServerKilled(t *testing.T) {
	n := startMicroVM(t)
	var got struct{ ID string }
	if st := n.do("POST", "/api/functions", map[string]any{"name": "vm-killed", "runtime": "python", "driver": "microvm", "timeout": 60000,
		"code": "def handler(event, context):\n    return 'up'\n"}, &got); st != http.StatusCreated {
		t.Fatalf("create: status %d", st)
	}
	if ex := n.invoke(got.ID, nil); ex.Status != "success" || string(ex.Result) != `"up"` {
		t.Fatalf("call: %s %s %+v", ex.Status, ex.Result, ex.Error)
	}
	pid := n.cmd.Process.Pid
	marker := fmt.Sprintf("nimbus-microvm-%d-", pid)
	if len(processesWith(marker)) == 0 {
		t.Fatalf("no process mentions %s while an instance is warm", marker)
	}
	base := "/dev/shm"
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		base = os.TempDir()
	}
	left, _ := filepath.Glob(filepath.Join(base, marker+"*"))
	if len(left) == 0 {
		t.Fatalf("no run directory %s* while an instance is warm", filepath.Join(base, marker))
	}

	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.exited
	// QEMU dies with its parent (PDEATHSIG); a loaded machine may take a
	// moment to deliver and reap.
	for deadline := time.Now().Add(10 * time.Second); len(processesWith(marker)) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("QEMU processes %v of the killed server survive 10 s", processesWith(marker))
		}
	}
	t.Logf("left in %s by the killed server: %v", base, left)

	// The next server removes them at start-up, before it needs a VM.
	next := startMicroVM(t)
	if still, _ := filepath.Glob(filepath.Join(base, marker+"*")); len(still) > 0 {
		t.Fatalf("the next server started and left the killed server's %v", still)
	}
	var got2 struct{ ID string }
	if st := next.do("POST", "/api/functions", map[string]any{"name": "vm-after", "runtime": "python", "driver": "microvm", "timeout": 60000,
		"code": "def handler(event, context):\n    return 'up'\n"}, &got2); st != http.StatusCreated {
		t.Fatalf("create on the next server: status %d", st)
	}
	if ex := next.invoke(got2.ID, nil); ex.Status != "success" {
		t.Fatalf("call on the next server: %s %+v", ex.Status, ex.Error)
	}
	// The test's own leftovers: a clean stop removes the next server's.
	nextMarker := fmt.Sprintf("nimbus-microvm-%d-", next.cmd.Process.Pid)
	next.stop()
	if left, _ := filepath.Glob(filepath.Join(base, nextMarker+"*")); len(left) > 0 || len(processesWith(nextMarker)) > 0 {
		t.Errorf("left after the next server's shutdown: %v, processes %v", left, processesWith(nextMarker))
	}
}
