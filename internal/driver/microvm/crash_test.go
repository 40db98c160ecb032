package microvm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestQEMUKilledMidCall kills an instance's QEMU process while a call
// sleeps in its guest: the call ends at once with an ExitError (not at its
// deadline), the instance is done, its files in the run directory are
// gone, and a new instance works.
func TestQEMUKilledMidCall(t *testing.T) {
	d := sharedDriver(t)
	f := function("qemu-killed", runtime.Python, `import time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return "awake"
`)
	inst := start(t, d, f)
	if resp, err := invoke(t, inst, `{}`, time.Minute); err != nil || string(resp.Result) != `"awake"` {
		t.Fatalf("first call: %v %+v", err, resp)
	}
	st := inst.Stats()
	dir := filepath.Join(d.RunDir(), st.ID)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the instance's directory: %v", err)
	}

	type result struct {
		resp *runtime.Response
		err  error
		took time.Duration
	}
	calling, done := make(chan struct{}), make(chan result, 1)
	const deadline = 5 * time.Minute // far beyond the kill: a call that waits for it is the bug
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		t0 := time.Now()
		close(calling)
		resp, err := inst.Invoke(ctx, driver.NewRequest(fn.NewID(), json.RawMessage(`{"sleep": 600}`), time.Now().Add(deadline).UnixMilli()))
		done <- result{resp, err, time.Since(t0)}
	}()
	// Give the request time to reach the guest's handler. Nothing below
	// depends on it: a kill before the request is read must end the call
	// the same way.
	<-calling
	time.Sleep(time.Second)
	select {
	case r := <-done:
		t.Fatalf("the sleeping call returned before the kill: %+v %v", r.resp, r.err)
	default:
	}
	killed := time.Now()
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill QEMU (pid %d): %v", st.PID, err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not return 30 s after its QEMU was killed")
	}
	t.Logf("the call returned %s after the kill", time.Since(killed).Round(time.Millisecond))
	var ee *driver.ExitError
	if !errors.As(r.err, &ee) {
		t.Fatalf("call on a killed VM: %+v %v, want a *driver.ExitError", r.resp, r.err)
	}
	if ee.Exit.Code != -1 || ee.Exit.Reason != "virtual machine stopped" {
		t.Errorf("exit %+v, want code -1 and reason \"virtual machine stopped\"", ee.Exit)
	}
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the instance is not done 10 s after its call failed")
	}
	if e := inst.Exit(); e.Reason != "virtual machine stopped" {
		t.Errorf("instance exit %+v", e)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(dir)
		t.Errorf("the killed instance's directory %s remains (%v): %v", dir, err, entries)
	}
	if err := syscall.Kill(st.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("QEMU pid %d: %v, want it reaped", st.PID, err)
	}

	next := start(t, d, f)
	if resp, err := invoke(t, next, `{}`, time.Minute); err != nil || string(resp.Result) != `"awake"` {
		t.Fatalf("call on a new instance: %v %+v", err, resp)
	}
}
