package e2e_test

import (
	"encoding/json"
	"testing"
	"time"
)

// TestIdleInstancesUseNoCPU: a handler leaves a thread running after it
// returns, which notes the longest time it went without running. While
// calls keep coming, it runs (no long pause); once the instance has been
// idle past NIMBUS_FREEZE_AFTER (100 ms by default) it is frozen, and over
// 4 s idle the thread stops for seconds at a stretch; the next call thaws
// it and is answered.
//
// The verdict rests on that pause, not on how much the thread counted: a
// loaded machine changes how fast it runs and how soon the freeze comes,
// but a thread that is runnable is not kept off every CPU for 2 s, and a
// frozen one is kept off for the rest of the window.
func TestIdleInstancesUseNoCPU(t *testing.T) {
	n := start(t)
	n.create(function{Name: "spinner", Runtime: "python", Code: `import threading, time
state = {'last': time.monotonic(), 'pause': 0.0}
def spin():
    while True:
        now = time.monotonic()
        state['pause'] = max(state['pause'], now - state['last'])
        state['last'] = now
threading.Thread(target=spin, daemon=True).start()
def handler(e, c):
    pause, state['pause'] = state['pause'], 0.0
    return pause
`})
	pause := func() float64 {
		t.Helper()
		ex := n.invoke("spinner", nil)
		var p float64
		if ex.Status != "success" || json.Unmarshal(ex.Result, &p) != nil {
			t.Fatalf("call: %s %s", ex.Status, ex.Result)
		}
		return p
	}
	// Busy: calls back to back keep the instance thawed, and the thread
	// runs between them.
	pause()
	var longest float64
	for t0 := time.Now(); time.Since(t0) < 700*time.Millisecond; {
		longest = max(longest, pause())
	}
	if longest >= 2 {
		t.Fatalf("while called the thread stopped for %.2f s: it should run", longest)
	}
	time.Sleep(4 * time.Second)
	idle := pause()
	if idle < 2 {
		t.Errorf("over 4 s idle the thread never stopped for 2 s (longest %.2f s): the idle instance kept running", idle)
	}
	t.Logf("longest stop while called %.3f s; while idle %.2f s", longest, idle)
}
