package microvm_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/driver/drivertest"
	"github.com/nimbusfaas/nimbus/internal/driver/microvm"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestRestore checks that Python instances are clones of a template, and
// that each clone got its own randomness and the right time although they
// share one snapshot. How long a clone takes to start is logged, not
// asserted: docs/benchmarks.md measures it on a quiet machine.
func TestRestore(t *testing.T) {
	d := sharedDriver(t)
	f := function("restore", runtime.Python, `import os, random, time
import uuid
def handler(event, context):
    return {"urandom": os.urandom(16).hex(), "random": random.random(), "uuid": str(uuid.uuid4()), "time": time.time()}
`)
	start(t, d, f) // makes the template if no other test has
	type result struct {
		URandom string  `json:"urandom"`
		Random  float64 `json:"random"`
		UUID    string  `json:"uuid"`
		Time    float64 `json:"time"`
	}
	var seen []result
	for i := 0; i < 2; i++ {
		t0 := time.Now()
		inst := start(t, d, f)
		took := time.Since(t0)
		t.Logf("clone %d ready (restored, set up, handler loaded) in %s", i, took.Round(time.Millisecond))
		if c, ok := inst.(interface{ Cloned() bool }); !ok || !c.Cloned() {
			t.Fatalf("instance %d was not restored from a snapshot", i)
		}
		before := time.Now()
		resp, err := invoke(t, inst, `{}`, time.Minute)
		after := time.Now()
		if err != nil || resp.Error != nil {
			t.Fatalf("invoke: %v %+v", err, resp)
		}
		var r result
		if err := json.Unmarshal(resp.Result, &r); err != nil {
			t.Fatal(err)
		}
		// The guest's clock is set from the host's at restore: its time
		// lies between the host's before the call and after the reply.
		// Half a second either way is for a loaded machine; a clock left
		// at the snapshot's time is off by as long as the template has
		// existed, seconds at least under emulation.
		guest := time.Unix(0, int64(r.Time*1e9))
		if tol := 500 * time.Millisecond; guest.Before(before.Add(-tol)) || guest.After(after.Add(tol)) {
			t.Errorf("guest time %s, host called between %s and %s (± %s)", guest, before, after, tol)
		}
		seen = append(seen, r)
	}
	if seen[0].URandom == seen[1].URandom || seen[0].UUID == seen[1].UUID || seen[0].Random == seen[1].Random {
		t.Errorf("two clones of one snapshot produced the same random values: %+v", seen)
	}
}

// TestCloseLeavesNothing checks that closing the driver stops every VM it
// started, templates included, and removes their RAM files and sockets.
func TestCloseLeavesNothing(t *testing.T) {
	d := newDriver(t, nil)
	f := function("close", runtime.Python, "def handler(event, context):\n    return 1\n")
	inst := start(t, d, f)
	if resp, err := invoke(t, inst, `{}`, time.Minute); err != nil || string(resp.Result) != "1" {
		t.Fatalf("invoke: %v %+v", err, resp)
	}
	run := d.RunDir()
	if run == "" {
		t.Fatal("no run directory")
	}
	rams, _ := filepath.Glob(filepath.Join(run, "templates", "*.ram"))
	if len(rams) == 0 {
		t.Errorf("no template RAM file in %s", run)
	}
	if n := qemuProcesses(t, run); n == 0 {
		t.Fatalf("no QEMU process runs from %s", run)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the instance did not stop when the driver closed")
	}
	if n := qemuProcesses(t, run); n != 0 {
		t.Errorf("%d QEMU processes still run from %s", n, run)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("run directory %s left behind (%v)", run, err)
	}
	if _, err := d.Start(ctx, driver.InstanceSpec{Function: f}); !errors.Is(err, fn.ErrUnavailable) {
		t.Errorf("start after close: %v, want fn.ErrUnavailable", err)
	}
}

func TestNodeBootsAfresh(t *testing.T) {
	d := sharedDriver(t)
	f := function("node", runtime.NodeJS, "exports.handler = async (event) => ({ sum: event.a + event.b, time: Date.now() });\n")
	t0 := time.Now()
	inst := start(t, d, f)
	t.Logf("node guest booted and ready in %s", time.Since(t0).Round(time.Millisecond))
	if c, ok := inst.(interface{ Cloned() bool }); ok && c.Cloned() {
		t.Error("a Node instance was cloned: clones would share Node's random state")
	}
	before := time.Now()
	resp, err := invoke(t, inst, `{"a": 2, "b": 3}`, time.Minute)
	after := time.Now()
	if err != nil || resp.Error != nil {
		t.Fatalf("invoke: %v %+v", err, resp)
	}
	var r struct {
		Sum  int   `json:"sum"`
		Time int64 `json:"time"`
	}
	if err := json.Unmarshal(resp.Result, &r); err != nil || r.Sum != 5 {
		t.Fatalf("result %s", resp.Result)
	}
	// Node's guest clock is set in whole seconds (up to a second ahead of
	// the host's): its time lies between the host's before the call and
	// after the reply, with a second's tolerance below and two above.
	if g := time.UnixMilli(r.Time); g.Before(before.Add(-time.Second)) || g.After(after.Add(2*time.Second)) {
		t.Errorf("guest time %s, host called between %s and %s", g, before, after)
	}
}

// TestUnavailable needs neither QEMU nor artifacts: it checks the reasons
// the driver gives when they are missing.
func TestUnavailable(t *testing.T) {
	in, sh := hostEnv(t)
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no artifacts", map[string]string{microvm.EnvDir: t.TempDir()}, "nimbus microvm build"},
		{"no qemu", map[string]string{microvm.EnvQEMU: "/nonexistent/qemu-system-x86_64"}, "qemu"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := microvm.New(driver.Config{
				DataDir:      t.TempDir(),
				Lookup:       func(k string) (string, bool) { v, ok := c.env[k]; return v, ok },
				Interpreters: in,
				Shims:        sh,
			})
			if err != nil {
				t.Fatal(err)
			}
			err = d.Available(context.Background())
			if !errors.Is(err, fn.ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Available: %v, want fn.ErrUnavailable mentioning %q", err, c.want)
			}
			_, err = d.Start(context.Background(), driver.InstanceSpec{Function: function("x", runtime.Python, "def handler(e, c):\n    return 1\n")})
			if !errors.Is(err, fn.ErrUnavailable) {
				t.Fatalf("Start: %v, want fn.ErrUnavailable", err)
			}
		})
	}
}

func TestDetails(t *testing.T) {
	d := newDriver(t, map[string]string{microvm.EnvAccel: "tcg"})
	det := d.Details()
	if det["accelerator"] != "tcg" || !strings.Contains(det["acceleratorReason"].(string), "TCG") {
		t.Errorf("details %v", det)
	}
}

// TestLargeLayer sends a layer of 20 MiB of random bytes, which takes many
// frames, beside an executable, a world-writable file and a symbolic link:
// they arrive exactly, and the function can write none of them.
func TestLargeLayer(t *testing.T) {
	d := sharedDriver(t)
	big := make([]byte, 20<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	layer := drivertest.Dir(t, map[string]drivertest.File{
		"python/big.bin":   {Data: big},
		"python/tool.sh":   {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		"python/empty.txt": {Mode: 0o666},
	})
	if err := os.Symlink("big.bin", filepath.Join(layer, "python/link.bin")); err != nil {
		t.Fatal(err)
	}
	code := drivertest.Dir(t, map[string]drivertest.File{"main.py": {Data: []byte(`import hashlib, os
def handler(event, context):
    d = "/opt/layers/0/python/"
    with open(d + "link.bin", "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    writes = {}
    for p in (d + "empty.txt", d + "new.txt", "/var/task/main.py", "/var/task/new.py", "/opt/layers/new"):
        try:
            open(p, "a").close()
            writes[p] = "written"
        except OSError as e:
            writes[p] = e.strerror
    return {"sha256": digest, "link": os.readlink(d + "link.bin"), "tool": os.access(d + "tool.sh", os.X_OK),
            "empty": os.path.getsize(d + "empty.txt"), "writes": writes}
`)}})
	f := function("large-layer", runtime.Python, "")
	f.Memory = 256
	warm := function("large-layer-warm", runtime.Python, "def handler(event, context):\n    return 1\n")
	warm.Memory = f.Memory
	start(t, d, warm) // makes the template if no other test has: the time below is the layer's
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	inst, err := d.Start(ctx, driver.InstanceSpec{Function: f, Code: code, Layers: []string{layer}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a clone started with a 20 MiB layer in %s", time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() {
		inst.Kill("test over")
		<-inst.Done()
	})
	resp, err := invoke(t, inst, `{}`, time.Minute)
	if err != nil || resp.Error != nil {
		t.Fatalf("invoke: %v %+v", err, resp)
	}
	var got struct {
		SHA256 string            `json:"sha256"`
		Link   string            `json:"link"`
		Tool   bool              `json:"tool"`
		Empty  int               `json:"empty"`
		Writes map[string]string `json:"writes"`
	}
	if err := json.Unmarshal(resp.Result, &got); err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("the layer's 20 MiB file has sha256 %s in the guest, %x on the host", got.SHA256, sum)
	}
	if got.Link != "big.bin" || !got.Tool || got.Empty != 0 {
		t.Errorf("link %q, tool.sh executable %v, empty.txt %d bytes", got.Link, got.Tool, got.Empty)
	}
	for p, res := range got.Writes {
		if res == "written" {
			t.Errorf("the function wrote %s", p)
		}
	}
}
