package e2e_test

import (
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
	if pids := processesWith(n.dataDir); len(pids) > 0 {
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
