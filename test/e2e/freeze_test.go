package e2e_test

import (
	"encoding/json"
	"testing"
	"time"
)

// TestIdleInstancesUseNoCPU: a handler leaves a thread counting after it
// returns. While calls keep coming its count grows; once the instance has
// been idle past NIMBUS_FREEZE_AFTER (100 ms by default) it is frozen, and
// over 2 s idle the count moves by little (the moments before the freeze);
// the next call thaws it and is answered.
func TestIdleInstancesUseNoCPU(t *testing.T) {
	n := start(t)
	n.create(function{Name: "spinner", Runtime: "python", Code: `import threading, time
count = [0]
def spin():
    while True:
        count[0] += 1
threading.Thread(target=spin, daemon=True).start()
def handler(e, c):
    return count[0]
`})
	read := func() float64 {
		t.Helper()
		ex := n.invoke("spinner", nil)
		var c float64
		if ex.Status != "success" || json.Unmarshal(ex.Result, &c) != nil {
			t.Fatalf("call: %s %s", ex.Status, ex.Result)
		}
		return c
	}
	// Busy: calls back to back keep the instance thawed.
	first, t0 := read(), time.Now()
	var last float64
	for time.Since(t0) < 700*time.Millisecond {
		last = read()
	}
	rate := (last - first) / time.Since(t0).Seconds()
	if rate <= 0 {
		t.Fatalf("the thread does not count: %v then %v", first, last)
	}
	time.Sleep(2 * time.Second)
	moved := read() - last
	// Unfrozen it would have counted rate*2 s; frozen after 100 ms (and a
	// reaper tick), well under a third of that.
	if moved > rate*2/3 {
		t.Errorf("over 2 s idle the thread counted %.0f, against %.0f/s while busy: the idle instance kept running", moved, rate)
	}
	t.Logf("over 2 s idle the thread counted %.0f; it counts %.0f/s while calls come", moved, rate)
}
