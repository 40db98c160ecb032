package e2e_test

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentCallsGetTheirOwnWorkers(t *testing.T) {
	n := start(t)
	n.create(function{Name: "par", Runtime: "python", MaxInstances: 3, Code: "import time, uuid\nTOKEN = uuid.uuid4().hex\ndef handler(e, c):\n    time.sleep(0.7)\n    return TOKEN\n"}) // pids repeat across PID namespaces
	var wg sync.WaitGroup
	pids := make(chan string, 3)
	t0 := time.Now()
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex := n.invoke("par", nil)
			pids <- string(ex.Result)
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	close(pids)
	seen := map[string]bool{}
	for p := range pids {
		seen[p] = true
	}
	if len(seen) != 3 {
		t.Fatalf("3 concurrent calls ran in %d workers, want 3", len(seen))
	}
	if took > 2*time.Second { // serialised would be 2.1 s plus cold starts
		t.Errorf("3 concurrent 0.7 s calls took %v: not run in parallel", took)
	}
	var m struct{ Instances map[string]int }
	n.do("GET", "/api/metrics/functions/par", nil, &m)
	if m.Instances["idle"] != 3 {
		t.Errorf("instances %v, want 3 idle", m.Instances)
	}
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
	n.create(function{Name: "shared-node", Runtime: "nodejs", MaxInstances: 1, Concurrency: 4,
		Code: "exports.handler = async (e) => { console.log('call ' + e.n); await new Promise((r) => setTimeout(r, 600)); return process.pid; };\n"})
	n.create(function{Name: "shared-py", Runtime: "python", MaxInstances: 1, Concurrency: 4,
		Code: "import os, time\ndef handler(e, c):\n    print('call', e['n'])\n    time.sleep(0.6)\n    return os.getpid()\n"})
	for _, name := range []string{"shared-node", "shared-py"} {
		t.Run(name, func(t *testing.T) {
			n.invoke(name, map[string]int{"n": 0}) // started: the four below find it warm
			var wg sync.WaitGroup
			exs := make([]execution, 4)
			t0 := time.Now()
			for i := range exs {
				wg.Add(1)
				go func() { defer wg.Done(); exs[i] = n.invoke(name, map[string]int{"n": i + 1}) }()
			}
			wg.Wait()
			if took := time.Since(t0); took > 1800*time.Millisecond { // one at a time: 2.4 s
				t.Errorf("4 calls of 0.6 s on one instance of concurrency 4 took %v", took)
			}
			for i, ex := range exs {
				if ex.Status != "success" || string(ex.Result) != string(exs[0].Result) || ex.ColdStart {
					t.Errorf("call %d: %s result %s cold %v; want success on the one warm instance (pid %s)", i+1, ex.Status, ex.Result, ex.ColdStart, exs[0].Result)
				}
				if want := "call " + strconv.Itoa(i+1) + "\n"; ex.Logs != want {
					t.Errorf("call %d logs %q, want %q", i+1, ex.Logs, want)
				}
			}
		})
	}
}
