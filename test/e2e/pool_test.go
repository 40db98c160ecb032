package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentCallsGetTheirOwnWorkers(t *testing.T) {
	n := start(t)
	// Each call returns its worker's token (pids repeat across PID
	// namespaces) and the interval it ran in, by the worker's clock. The
	// three cold starts end at different times on a loaded machine (1.2 s
	// apart was seen): each call lasts 3 s, so that run in parallel they
	// overlap whatever the stagger.
	n.create(function{Name: "par", Runtime: "python", MaxInstances: 3, Code: "import time, uuid\nTOKEN = uuid.uuid4().hex\ndef handler(e, c):\n    t0 = time.time()\n    time.sleep(3)\n    return {'token': TOKEN, 'start': t0, 'end': time.time()}\n"})
	var wg sync.WaitGroup
	exs := make([]execution, 3)
	for i := range exs {
		wg.Add(1)
		go func() { defer wg.Done(); exs[i] = n.invoke("par", nil) }()
	}
	wg.Wait()
	seen := map[string]bool{}
	spans := make([]span, len(exs))
	for i, ex := range exs {
		var r struct {
			Token      string
			Start, End float64
		}
		if ex.Status != "success" || json.Unmarshal(ex.Result, &r) != nil || r.Token == "" {
			t.Fatalf("call %d: %s %s %+v", i, ex.Status, ex.Result, ex.Error)
		}
		seen[r.Token] = true
		spans[i] = span{r.Start, r.End}
	}
	if len(seen) != 3 {
		t.Fatalf("3 concurrent calls ran in %d workers, want 3", len(seen))
	}
	if !overlap(spans) {
		t.Errorf("3 concurrent 3 s calls ran at %v s: one ended before another started, not run in parallel", spans)
	}
	var m struct{ Instances map[string]int }
	n.do("GET", "/api/metrics/functions/par", nil, &m)
	if m.Instances["idle"] != 3 {
		t.Errorf("instances %v, want 3 idle", m.Instances)
	}
}

// span is when a handler ran, in seconds since the epoch by its own clock.
type span struct{ Start, End float64 }

// String shows when the handler ran, in seconds of the epoch's minute.
func (s span) String() string {
	return fmt.Sprintf("[%.3f, %.3f]", math.Mod(s.Start, 60), math.Mod(s.End, 60))
}

// overlap says whether every call started before any ended: all ran at the
// same time. Clocks that differ between workers would have to differ by the
// handler's whole sleep to fake it.
func overlap(spans []span) bool {
	lastStart, firstEnd := spans[0].Start, spans[0].End
	for _, s := range spans[1:] {
		lastStart, firstEnd = max(lastStart, s.Start), min(firstEnd, s.End)
	}
	return lastStart < firstEnd
}

func TestIdleWorkersStopAfterKeepAlive(t *testing.T) {
	n := start(t, "NIMBUS_KEEP_ALIVE=1s")
	n.create(function{Name: "brief", Runtime: "nodejs", Code: "exports.handler = async () => process.pid;\n"})
	first := n.invoke("brief", nil)
	if second := n.invoke("brief", nil); second.ColdStart || string(second.Result) != string(first.Result) {
		t.Fatalf("second call within keep-alive was cold (pid %s → %s)", first.Result, second.Result)
	}
	pid := string(first.Result)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var m struct{ Instances map[string]int }
		n.do("GET", "/api/metrics/functions/brief", nil, &m)
		if m.Instances["idle"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker still idle 10s after a 1s keep-alive: %v", m.Instances)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The Python zygote and the workers it forked ahead serve every function
	// and carry the data directory in their command line; this function is
	// Node's.
	var pids []string
	for _, p := range processesWith(n.dataDir) {
		if b, _ := os.ReadFile("/proc/" + p + "/cmdline"); !bytes.Contains(b, []byte("zygote.py")) {
			pids = append(pids, p)
		}
	}
	if len(pids) > 0 {
		t.Errorf("worker processes %v remain after keep-alive (first pid %s)", pids, pid)
	}
	if ex := n.invoke("brief", nil); !ex.ColdStart || ex.Status != "success" {
		t.Fatalf("call after keep-alive: cold=%v %s", ex.ColdStart, ex.Status)
	}
}

func TestRetentionKeepsNewest(t *testing.T) {
	n := start(t, "NIMBUS_RETENTION=3")
	n.create(function{Name: "counted", Runtime: "python", Code: "def handler(e, c):\n    return e['i']\n"})
	for i := range 8 {
		n.invoke("counted", map[string]int{"i": i})
	}
	var h struct{ Executions []execution }
	// Pruning runs after each written batch; the history read flushes first,
	// and a second read sees the prune of that flush.
	n.do("GET", "/api/executions/counted/history", nil, &h)
	n.do("GET", "/api/executions/counted/history", nil, &h)
	var got []string
	for _, e := range h.Executions {
		got = append(got, string(e.Result))
	}
	if strings.Join(got, ",") != "7,6,5" {
		t.Fatalf("history after retention 3: %v, want 7,6,5", got)
	}
}

// instances reads a function's instance counts.
func (n *nimbus) instances(name string) map[string]int {
	var m struct{ Instances map[string]int }
	n.do("GET", "/api/metrics/functions/"+name, nil, &m)
	return m.Instances
}

// waitInstances waits until cond holds for name's instance counts.
func (n *nimbus) waitInstances(name string, what string, cond func(map[string]int) bool) {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := n.instances(name)
		if cond(m) {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: instances %v after 15s, want %s", name, m, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMinInstancesAreWarmBeforeTheFirstCall(t *testing.T) {
	data := "NIMBUS_DATA_DIR=" + t.TempDir()
	n := start(t, data, "NIMBUS_KEEP_ALIVE=1s")
	var bad apiError
	if st := n.do("POST", "/api/functions", function{Name: "over", Runtime: "python", Code: "def handler(e, c):\n    return 1\n", MaxInstances: 2, MinInstances: 3}, &bad); st != 400 || bad.Error.Field != "minInstances" {
		t.Fatalf("minInstances over maxInstances: %d %+v", st, bad)
	}
	n.create(function{Name: "ready", Runtime: "python", MinInstances: 1, KeepAlive: 60_000, Code: "import os\ndef handler(e, c):\n    return os.getpid()\n"})
	one := func(m map[string]int) bool { return m["idle"] == 1 && m["busy"] == 0 }
	n.waitInstances("ready", "one idle before any call", one)
	if ex := n.invoke("ready", nil); ex.ColdStart || ex.Status != "success" {
		t.Fatalf("first call with minInstances 1: cold=%v status %s", ex.ColdStart, ex.Status)
	}
	// Past the server's 1s keep-alive the instance stays: it is the minimum.
	time.Sleep(2 * time.Second)
	if m := n.instances("ready"); !one(m) {
		t.Fatalf("instances %v 2s after a call with a 1s server keep-alive, want the minimum of 1", m)
	}
	var got struct {
		KeepAliveNow struct {
			Source      string
			KeepAliveMs int64
		}
	}
	n.do("GET", "/api/functions/ready", nil, &got)
	if got.KeepAliveNow.Source != "function" || got.KeepAliveNow.KeepAliveMs != 60_000 {
		t.Errorf("keepAliveNow %+v, want the function's own 60000 ms", got.KeepAliveNow)
	}

	// A restart starts them again, before any call.
	n.stop()
	n = start(t, data, "NIMBUS_KEEP_ALIVE=1s")
	n.waitInstances("ready", "one idle after a restart", one)
	if ex := n.invoke("ready", nil); ex.ColdStart {
		t.Fatal("first call after a restart was cold despite minInstances 1")
	}
	// Back to zero: the instance goes after the keep-alive.
	if st := n.do("PUT", "/api/functions/ready", map[string]any{"minInstances": 0, "keepAlive": 500}, nil); st != 200 {
		t.Fatalf("PUT minInstances 0: %d", st)
	}
	n.waitInstances("ready", "none once minInstances is 0", func(m map[string]int) bool { return m["idle"]+m["busy"]+m["starting"] == 0 })
}

func TestConcurrencyServesCallsOnOneInstance(t *testing.T) {
	n := start(t)
	// Each call returns its instance's token (pids repeat across PID
	// namespaces) and the interval it ran in, in seconds by the guest's clock.
	n.create(function{Name: "shared-node", Runtime: "nodejs", MaxInstances: 1, Concurrency: 4,
		Code: "const TOKEN = require('crypto').randomUUID();\nexports.handler = async (e) => { const start = Date.now() / 1000; console.log('call ' + e.n); await new Promise((r) => setTimeout(r, 600)); return { token: TOKEN, start, end: Date.now() / 1000 }; };\n"})
	n.create(function{Name: "shared-py", Runtime: "python", MaxInstances: 1, Concurrency: 4,
		Code: "import time, uuid\nTOKEN = uuid.uuid4().hex\ndef handler(e, c):\n    start = time.time()\n    print('call', e['n'])\n    time.sleep(0.6)\n    return {'token': TOKEN, 'start': start, 'end': time.time()}\n"})
	for _, name := range []string{"shared-node", "shared-py"} {
		t.Run(name, func(t *testing.T) {
			first := n.invoke(name, map[string]int{"n": 0}) // started: the four below find it warm
			var want struct{ Token string }
			if json.Unmarshal(first.Result, &want) != nil || want.Token == "" {
				t.Fatalf("first call: %s %s %+v", first.Status, first.Result, first.Error)
			}
			var wg sync.WaitGroup
			exs := make([]execution, 4)
			for i := range exs {
				wg.Add(1)
				go func() { defer wg.Done(); exs[i] = n.invoke(name, map[string]int{"n": i + 1}) }()
			}
			wg.Wait()
			spans := make([]span, len(exs))
			for i, ex := range exs {
				var r struct {
					Token      string
					Start, End float64
				}
				json.Unmarshal(ex.Result, &r)
				if ex.Status != "success" || r.Token != want.Token || ex.ColdStart {
					t.Errorf("call %d: %s result %s cold %v; want success on the one warm instance (token %s)", i+1, ex.Status, ex.Result, ex.ColdStart, want.Token)
				}
				if want := "call " + strconv.Itoa(i+1) + "\n"; ex.Logs != want {
					t.Errorf("call %d logs %q, want %q", i+1, ex.Logs, want)
				}
				spans[i] = span{r.Start, r.End}
			}
			if !t.Failed() && !overlap(spans) { // one at a time, each would end before the next started
				t.Errorf("4 calls of 0.6 s on one instance of concurrency 4 ran at %v s: not all at once", spans)
			}
		})
	}
}
