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

// testFreeze: a handler leaves a thread running after it returns, which
// notes the longest stretch of time between two of its turns. Across 3 s
// frozen that stretch is at least 2 s (the thread did not run at all),
// where unfrozen it stays far under a second; the instance's clock has not
// stopped with it; thawed, it answers; frozen, it can be killed. Gaps in
// the thread's own timeline, not its CPU time or its progress: a VM's
// guest charges the time it was stopped to whatever ran when it stopped,
// and a JIT makes a loop's speed change as it runs.
func testFreeze(t *testing.T, d driver.Driver, rt string, opts Options) {
	code := map[string]string{
		runtime.Python: `
import threading, time
state = {"gap": 0.0, "beats": 0, "last": 0.0}
def spin():
    while True:
        now = time.time()
        if state["last"]:
            state["gap"] = max(state["gap"], now - state["last"])
        state["last"] = now
        state["beats"] += 1
def handler(event, context):
    if not state["beats"]:
        state["beats"] = -1
        threading.Thread(target=spin, daemon=True).start()
    # The stretch still going counts too: after a thaw the handler may
    # run before the thread's first turn.
    now = time.time()
    gap = max(state["gap"], now - state["last"] if state["last"] else 0.0)
    state["gap"] = 0.0
    return {"gap": gap, "beats": max(state["beats"], 0), "now": now}
`,
		runtime.NodeJS: `
const { Worker } = require('worker_threads');
// gap[0]: the longest stretch in ms since the last read; beats[0]: turns;
// last[0]: when the thread last ran, in ms.
const gap = new Int32Array(new SharedArrayBuffer(4));
const beats = new Int32Array(new SharedArrayBuffer(4));
const last = new Float64Array(new SharedArrayBuffer(8));
let spinner;
exports.handler = async () => {
  if (!spinner) {
    spinner = new Worker(` + "`" + `
      const { gap, beats, last } = require('worker_threads').workerData;
      for (;;) {
        const now = Date.now();
        if (last[0] && now - last[0] > Atomics.load(gap, 0)) Atomics.store(gap, 0, now - last[0]);
        last[0] = now;
        Atomics.add(beats, 0, 1);
      }` + "`" + `, { eval: true, workerData: { gap, beats, last } });
  }
  // The stretch still going counts too: after a thaw the handler may run
  // before the thread's first turn.
  const now = Date.now();
  const g = Math.max(Atomics.exchange(gap, 0, 0), last[0] ? now - last[0] : 0);
  return { gap: g / 1000, beats: Atomics.load(beats, 0), now: now / 1000 };
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
	type sample struct{ Gap, Beats, Now float64 }
	// The first call starts the thread; it takes a while to start (a Node
	// worker under an emulated CPU, seconds).
	for deadline := time.Now().Add(60 * time.Second); MustInvoke[sample](t, in, nil).Beats == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the thread never ran")
		}
	}
	time.Sleep(500 * time.Millisecond)
	if s := MustInvoke[sample](t, in, nil); s.Gap >= 1 {
		t.Fatalf("unfrozen, the thread already went %.2f s without a turn", s.Gap) // the read resets the gap
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
	s := MustInvoke[sample](t, in, nil)
	if s.Gap < 2 {
		t.Errorf("over %v frozen, the thread's longest stretch without a turn was %.2f s: it kept running", frozen, s.Gap)
	}
	if lag := sent - s.Now; lag > 0.5 {
		t.Errorf("after a thaw the instance's clock lags by %.3f s", lag)
	}
	t.Logf("over %v frozen, the thread went %.2f s without a turn", frozen, s.Gap)

	if err := fr.Freeze(); err != nil {
		t.Fatalf("freeze again: %v", err)
	}
	if err := in.Kill("frozen and killed"); err != nil {
		t.Fatalf("kill a frozen instance: %v", err)
	}
	WaitDone(t, in, 30*time.Second)

	// A freeze racing a kill (the reaper freezing an instance that a
	// delete kills) must not leave a frozen instance that never dies.
	for range 3 {
		in := Start(t, d, Function(t, rt, Source(rt, code)))
		froze := make(chan error, 1)
		go func() { froze <- in.(driver.Freezer).Freeze() }()
		if err := in.Kill("killed while being frozen"); err != nil {
			t.Fatalf("kill while freezing: %v", err)
		}
		<-froze // frozen first, or refused: either way the kill wins
		WaitDone(t, in, 30*time.Second)
	}
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
