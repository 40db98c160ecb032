package drivertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// testFreeze: a handler leaves a thread spinning after it returns. While
// its instance is frozen, the thread uses no CPU (the process's CPU time,
// read by the next call, grows by little over a second frozen); thawed,
// the instance answers, and a frozen instance can be killed.
func testFreeze(t *testing.T, d driver.Driver, rt string, opts Options) {
	code := map[string]string{
		fn.Python: `
import threading, time
spinning = []
def spin():
    while True:
        pass
def handler(event, context):
    if not spinning:
        spinning.append(threading.Thread(target=spin, daemon=True))
        spinning[0].start()
    return time.process_time()
`,
		fn.NodeJS: `
const { Worker } = require('worker_threads');
let spinner;
exports.handler = async () => {
  if (!spinner) spinner = new Worker('for (;;) {}', { eval: true });
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
`,
	}[rt]
	in := Start(t, d, Function(t, rt, Source(rt, code)))
	fr, ok := in.(driver.Freezer)
	if !opts.Freezes {
		if ok {
			t.Fatal("the driver's instances are Freezers, but its conformance options say they do not freeze")
		}
		return
	}
	if !ok {
		t.Fatal("the driver's instances are not driver.Freezers")
	}
	MustInvoke[float64](t, in, nil) // starts the spinner
	time.Sleep(300 * time.Millisecond)
	before := MustInvoke[float64](t, in, nil)
	if err := fr.Freeze(); err != nil {
		t.Fatalf("freeze: %v", err)
	}
	const frozen = 1500 * time.Millisecond
	time.Sleep(frozen)
	if err := fr.Thaw(); err != nil {
		t.Fatalf("thaw: %v", err)
	}
	after := MustInvoke[float64](t, in, nil)
	// Unfrozen, the spinner would use up to a whole CPU; frozen, only the
	// moments before the freeze and after the thaw count.
	if used := after - before; used > 0.4 {
		t.Errorf("the instance used %.2f s of CPU over %v frozen", used, frozen)
	}
	t.Logf("CPU over %v frozen: %.3f s", frozen, after-before)

	if err := fr.Freeze(); err != nil {
		t.Fatalf("freeze again: %v", err)
	}
	if err := in.Kill("frozen and killed"); err != nil {
		t.Fatalf("kill a frozen instance: %v", err)
	}
	WaitDone(t, in, 30*time.Second)
}

// testHalfFrame: a handler that writes half a response frame on the
// protocol's stream (fd 4, where every driver's shim writes) and dies ends
// its call with an error, and the instance stops.
func testHalfFrame(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := `
import os
def handler(event, context):
    os.write(4, b"\x00\x00\x01\x00{\"type\":\"res")
    os._exit(3)
`
	in := Start(t, d, Function(t, rt, Source(rt, code)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dl, _ := ctx.Deadline()
	_, err := in.Invoke(ctx, driver.NewRequest(fn.NewID(), []byte(`{}`), dl.UnixMilli()))
	var ee *driver.ExitError
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a worker that died mid-frame: %v, want an error before the deadline", err)
	}
	if !errors.As(err, &ee) {
		t.Logf("error %v (not an ExitError)", err)
	}
	WaitDone(t, in, 30*time.Second)
}
