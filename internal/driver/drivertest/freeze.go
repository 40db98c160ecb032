package drivertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// testFreeze: a handler leaves a thread counting as fast as it can after
// it returns. While its instance is frozen the count hardly moves (under
// half of what the same time unfrozen adds: only the moments before the
// freeze and after the thaw count, up to a few hundred milliseconds for a
// Node worker under an emulated CPU, against 3 s frozen); the instance's clock has not stopped
// with it; thawed, it answers; frozen, it can be killed. Progress, not the
// worker's own CPU time: a VM's guest charges the time it was stopped to
// whatever ran when it stopped.
func testFreeze(t *testing.T, d driver.Driver, rt string, opts Options) {
	code := map[string]string{
		runtime.Python: `
import threading, time
count = [0]
started = []
def spin():
    while True:
        count[0] += 1
def handler(event, context):
    if not started:
        started.append(threading.Thread(target=spin, daemon=True))
        started[0].start()
    return {"count": count[0], "now": time.time()}
`,
		runtime.NodeJS: `
const { Worker } = require('worker_threads');
const count = new BigInt64Array(new SharedArrayBuffer(8));
let spinner;
exports.handler = async () => {
  if (!spinner) {
    spinner = new Worker('const c = require("worker_threads").workerData; for (;;) Atomics.add(c, 0, 1n);',
      { eval: true, workerData: count });
  }
  return { count: Number(Atomics.load(count, 0)), now: Date.now() / 1000 };
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
	type sample struct{ Count, Now float64 }
	// The first call starts the spinner; a thread takes a while to start
	// (a Node worker under an emulated CPU, seconds).
	for deadline := time.Now().Add(60 * time.Second); MustInvoke[sample](t, in, nil).Count == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the spinner never started counting")
		}
	}
	a, ta := MustInvoke[sample](t, in, nil), time.Now()
	time.Sleep(500 * time.Millisecond)
	b, tb := MustInvoke[sample](t, in, nil), time.Now()
	rate := (b.Count - a.Count) / tb.Sub(ta).Seconds()
	if rate <= 0 {
		t.Fatalf("the spinner does not count: %v then %v", a.Count, b.Count)
	}
	if err := fr.Freeze(); err != nil {
		t.Fatalf("freeze: %v", err)
	}
	const frozen = 3 * time.Second
	time.Sleep(frozen)
	if err := fr.Thaw(); err != nil {
		t.Fatalf("thaw: %v", err)
	}
	sent := float64(time.Now().UnixNano()) / 1e9
	c := MustInvoke[sample](t, in, nil)
	moved, unfrozen := c.Count-b.Count, rate*frozen.Seconds()
	if moved > unfrozen/2 {
		t.Errorf("over %v frozen the spinner counted %.0f, half or more of the %.0f it counts in that time unfrozen", frozen, moved, unfrozen)
	}
	if lag := sent - c.Now; lag > 0.5 {
		t.Errorf("after a thaw the instance's clock lags by %.3f s", lag)
	}
	t.Logf("over %v frozen the spinner counted %.0f; unfrozen it counts %.0f", frozen, moved, unfrozen)

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
