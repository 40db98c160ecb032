package soak_test

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// defaultSoak is the load's duration when NIMBUS_SOAK is not set: the
// short run of `make test`. `make soak` sets an hour.
const defaultSoak = 2 * time.Minute

// maxInFlight bounds the calls the load has open at once. The load is
// open-loop (calls start on a schedule, not when the previous ends), but a
// machine shared with other work can stall the server for a while; past
// this many open calls the load skips its ticks (and counts them) rather
// than pile up thousands of requests that would end in 429s.
const maxInFlight = 64

// keepAlive (ms) of every soak function: short, so that the instances are
// gone soon after the load stops and the quiet check can see the server
// back at its baseline.
const keepAlive = 2000

// tolerances say how much each quantity may grow (see checkTrend) in a run
// of at least longRun. They sit well above what the noise of a loaded
// 2-core machine does in a steady run: goroutines, fds and children follow
// the calls in flight and the instances started (up to 10 per function),
// memory follows the GC. A leak of one goroutine, fd, thread, process or
// cgroup per cold start, timeout, OOM kill or create/update/delete cycle
// exceeds them within the hour.
//
// Memory fills up by design for the first 15 minutes: the metrics keep a
// bucket per second for 15 minutes (per function and in all), allocated as
// the seconds pass (then one per minute for 24 hours, ~1 MiB an hour here).
// A long run fits memory only after that.
var tolerances = map[string]tolerance{
	"rss_mib":    {Abs: 32, Rel: 0.5, Last: 64, MinRise: 32, Settle: 16 * time.Minute},
	"heap_mib":   {Abs: 16, Rel: 0.5, Last: 32, MinRise: 16, Settle: 16 * time.Minute},
	"goroutines": {Abs: 200, Rel: 0.5, Last: 150, MinRise: 100},
	"fds":        {Abs: 100, Rel: 0.5, Last: 100, MinRise: 50},
	"threads":    {Abs: 20, Rel: 0.5, Last: 20, MinRise: 10},
	"children":   {Abs: 40, Rel: 0.5, Last: 40, MinRise: 20},
	"cgroups":    {Abs: 20, Rel: 0.5, Last: 20, MinRise: 10},
}

// longRun is the shortest run checked with tolerances; shorter ones end
// while the metrics still fill up (RSS grew ~280 MiB an hour's pace, the
// heap ~130, in 2-minute runs here), so their memory bounds catch only a
// fast leak: one of a few hundred bytes per call. The hour's run is the
// one that catches a slow one.
const longRun = 30 * time.Minute

func tolerancesFor(d time.Duration) map[string]tolerance {
	if d >= longRun {
		return tolerances
	}
	short := maps.Clone(tolerances)
	short["rss_mib"] = tolerance{Abs: 800, Rel: 0.5, Last: 64, MinRise: 32}
	short["heap_mib"] = tolerance{Abs: 400, Rel: 0.5, Last: 32, MinRise: 16}
	return short
}

// quietSlack is how far above the baseline goroutines and fds may stay
// once the instances are gone: the HTTP server's connections to this test
// close a little later than the test forgets them.
var quietSlack = map[string]float64{"goroutines": 20, "fds": 10}

func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("NIMBUS_SOAK")
	if v == "" {
		return defaultSoak
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 30*time.Second {
		t.Fatalf("NIMBUS_SOAK=%q: want a duration of at least 30s", v)
	}
	return d
}

const (
	noopPy  = "def handler(event, context):\n    return 1\n"
	noopJS  = "exports.handler = async () => 1;\n"
	raisePy = "def handler(event, context):\n    raise ValueError('soak')\n"
	raiseJS = "exports.handler = async () => { throw new TypeError('soak'); };\n"
	sleepPy = "import time\ndef handler(event, context):\n    time.sleep(1)\n    return 1\n"
	sleepJS = "exports.handler = async () => { await new Promise(r => setTimeout(r, 1000)); return 1; };\n"
	oomPy   = "def handler(event, context):\n    hog = []\n    for i in range(20):\n        hog.append(bytearray(10 << 20))\n    return len(hog)\n"
	oomJS   = "exports.handler = async () => {\n  const hog = [];\n  for (let i = 0; i < 20; i++) hog.push(Buffer.alloc(10 << 20, 1));\n  return hog.length;\n};\n"
)

func versionPy(v int) string {
	return fmt.Sprintf("def handler(event, context):\n    return %d\n", v)
}

func versionJS(v int) string {
	return fmt.Sprintf("exports.handler = async () => %d;\n", v)
}

// tally counts the outcomes of the load, per kind of call.
type tally struct {
	mu       sync.Mutex
	counts   map[string]map[string]int // kind → outcome → count
	failures []string
	failed   int
	skipped  map[string]int // kind → ticks skipped (too many calls open)
}

func newTally() *tally {
	return &tally{counts: map[string]map[string]int{}, skipped: map[string]int{}}
}

func (tl *tally) count(kind, outcome string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.counts[kind] == nil {
		tl.counts[kind] = map[string]int{}
	}
	tl.counts[kind][outcome]++
}

func (tl *tally) fail(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.failed++
	if len(tl.failures) < 20 {
		tl.failures = append(tl.failures, fmt.Sprintf(format, args...))
	}
}

func (tl *tally) skip(kind string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.skipped[kind]++
}

// load drives a server and checks every reply.
type load struct {
	n        *nimbus
	tally    *tally
	inFlight atomic.Int64
	wg       sync.WaitGroup
}

// invoke calls fn and checks that it ends with status want (and, for a
// success, with result want); kind names the call in the tally.
func (l *load) invoke(kind, fn, want string, result string) {
	var ex execution
	st, body, err := l.n.request("POST", "/api/executions/"+fn, map[string]any{}, &ex)
	switch {
	case err != nil:
		l.tally.fail("%s: %v", kind, err)
		l.tally.count(kind, "transport error")
	case st != http.StatusOK:
		l.tally.fail("%s: %s answered %d %s", kind, fn, st, bytes.TrimSpace(body))
		l.tally.count(kind, fmt.Sprintf("http %d", st))
	case ex.Status != want:
		l.tally.fail("%s: %s ended %s, want %s: %+v", kind, fn, ex.Status, want, ex.Error)
		l.tally.count(kind, ex.Status)
	case want == "success" && result != "" && string(ex.Result) != result:
		l.tally.fail("%s: %s returned %s, want %s", kind, fn, ex.Result, result)
		l.tally.count(kind, "wrong result")
	default:
		l.tally.count(kind, ex.Status)
		if ex.ColdStart {
			l.tally.count(kind, "(cold)")
		}
	}
}

// expect sends a request and checks its status.
func (l *load) expect(kind, method, path string, body any, want int) bool {
	st, reply, err := l.n.request(method, path, body, nil)
	if err != nil {
		l.tally.fail("%s: %v", kind, err)
		l.tally.count(kind, "transport error")
		return false
	}
	if st != want {
		l.tally.fail("%s: %s %s answered %d, want %d: %s", kind, method, path, st, want, bytes.TrimSpace(reply))
		l.tally.count(kind, fmt.Sprintf("http %d", st))
		return false
	}
	return true
}

// every runs call every period until stop, skipping a tick while the
// previous call of the same kind is still running.
func (l *load) every(kind string, period time.Duration, stop <-chan struct{}, call func(i int)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		var busy atomic.Bool
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if !busy.CompareAndSwap(false, true) {
				l.tally.skip(kind)
				continue
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer busy.Store(false)
				call(i)
			}()
		}
	}()
}

// warm starts calls at rate per second, open-loop, until stop.
func (l *load) warm(rate float64, stop <-chan struct{}) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		// Every 2 ms: calls arrive spread out, not in bursts that would
		// scale the pools up for nothing.
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		t0 := time.Now()
		sent := 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			due := int(rate*time.Since(t0).Seconds()) - sent
			for range due {
				sent++
				if l.inFlight.Load() >= maxInFlight {
					l.tally.skip("warm")
					continue
				}
				l.inFlight.Add(1)
				fn := "noop-py"
				if sent%2 == 0 {
					fn = "noop-js"
				}
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					defer l.inFlight.Add(-1)
					l.invoke("warm", fn, "success", "1")
				}()
			}
		}
	}()
}

// capacity measures warm calls per second to fns in turn, closed-loop at
// concurrency 8, over d. The soak measures it on the warm calls it then
// makes, alternating the Python and Node no-op functions: Node's calls
// cost about twice Python's here, so half of Python's alone would be more
// than half of what the mix sustains.
func capacity(t *testing.T, n *nimbus, d time.Duration, fns ...string) float64 {
	t.Helper()
	var calls atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				var ex execution
				fn := fns[calls.Load()%int64(len(fns))]
				st, body, err := n.request("POST", "/api/executions/"+fn, map[string]any{}, &ex)
				if err != nil || st != http.StatusOK || ex.Status != "success" {
					t.Errorf("capacity: %d %s %v (%s)", st, body, err, ex.Status)
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(calls.Load()) / d.Seconds()
}

// settle waits until the server's child processes and cgroups have not
// changed for 5 s (its spares are started), and returns that sample.
func settle(t *testing.T, s *sampler, limit time.Duration) sample {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last sample
	stable := 0
	for time.Now().Before(deadline) {
		cur, err := s.take(0)
		if err != nil {
			t.Fatal(err)
		}
		if last.values != nil && cur.values["children"] == last.values["children"] && cur.values["cgroups"] == last.values["cgroups"] {
			stable++
			if stable >= 10 {
				return cur
			}
		} else {
			stable = 0
		}
		last = cur
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("children and cgroups still changing after %v: %v", limit, last.values)
	return last
}

func TestSoak(t *testing.T) {
	testenv.RequireRoot(t) // cgroups: the OOM calls need a memory limit
	d := soakDuration(t)
	interval := 10 * time.Second
	if d < longRun {
		interval = 5 * time.Second // enough samples for a trend in a short run
	}
	foreign := existingCgroups()
	// A long queue timeout: a machine shared with other work may stall the
	// server for seconds, which must not turn into 429s that would fail
	// the soak for the machine's sake (the load is at half capacity).
	n := start(t, "NIMBUS_QUEUE_TIMEOUT=60s")
	s := &sampler{n: n, foreign: foreign}

	for _, f := range []function{
		{Name: "noop-py", Runtime: "python", Code: noopPy},
		{Name: "noop-js", Runtime: "nodejs", Code: noopJS},
		{Name: "cold-py", Runtime: "python", Code: noopPy},
		{Name: "cold-js", Runtime: "nodejs", Code: noopJS},
		{Name: "raise-py", Runtime: "python", Code: raisePy},
		{Name: "raise-js", Runtime: "nodejs", Code: raiseJS},
		{Name: "sleep-py", Runtime: "python", Code: sleepPy, Timeout: 100},
		{Name: "sleep-js", Runtime: "nodejs", Code: sleepJS, Timeout: 100},
		{Name: "oom-py", Runtime: "python", Code: oomPy, Memory: 32},
		{Name: "oom-js", Runtime: "nodejs", Code: oomJS, Memory: 32},
	} {
		f.KeepAlive = keepAlive
		if f.Name == "cold-py" {
			f.KeepAlive = 100 // called every second: each call a cold start
		}
		n.create(f)
	}
	if s.cgroupParent = findCgroupParent(n.pid()); s.cgroupParent == "" {
		t.Fatalf("no cgroup parent of the sandbox driver found for server %d", n.pid())
	}
	baseline := settle(t, s, time.Minute)
	t.Logf("baseline: %v (cgroups in %s)", baseline.values, s.cgroupParent)

	// Capacity: a second to start the instances, then 5 s measured.
	capacity(t, n, time.Second, "noop-py", "noop-js")
	capa := capacity(t, n, 5*time.Second, "noop-py", "noop-js")
	if t.Failed() {
		t.FailNow()
	}
	rate := capa / 2
	t.Logf("capacity %.0f warm calls/s (closed loop, 8 at once); load: %.0f warm calls/s for %v, samples every %v", capa, rate, d, interval)

	l := &load{n: n, tally: newTally()}
	stop := make(chan struct{})
	l.warm(rate, stop)
	l.every("cold", time.Second, stop, func(int) { l.invoke("cold", "cold-py", "success", "1") })
	l.every("cold (updated)", time.Second, stop, func(int) { l.invoke("cold (updated)", "cold-js", "success", "1") })
	l.every("update", 10*time.Second, stop, func(i int) {
		l.expect("update", "PUT", "/api/functions/cold-js", map[string]any{"env": map[string]string{"N": fmt.Sprint(i)}}, http.StatusOK)
	})
	l.every("error", 500*time.Millisecond, stop, func(i int) {
		l.invoke("error", []string{"raise-py", "raise-js"}[i%2], "error", "")
	})
	l.every("timeout", 2*time.Second, stop, func(i int) {
		l.invoke("timeout", []string{"sleep-py", "sleep-js"}[i%2], "timeout", "")
	})
	l.every("oom", 5*time.Second, stop, func(i int) {
		l.invoke("oom", []string{"oom-py", "oom-js"}[i%2], "oom", "")
	})
	l.every("churn", 5*time.Second, stop, func(i int) { churn(l, i) })

	samples := sampleFor(t, s, d, interval)
	close(stop)
	l.wg.Wait()

	// The quiet period: instances end after their keep-alive, the spares
	// stay; child processes and cgroups must be back at the baseline.
	n.client.CloseIdleConnections()
	quiet, quietErr := waitQuiet(s, baseline, time.Minute)

	report := newReport(d, interval, capa, rate, baseline, samples, l.tally, quiet, quietErr)
	t.Log("\n" + report.text())
	if path := os.Getenv("NIMBUS_SOAK_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report.markdown()), 0o644); err != nil {
			t.Errorf("write the report: %v", err)
		}
	}
	for _, f := range l.tally.failures {
		t.Error(f)
	}
	if l.tally.failed > len(l.tally.failures) {
		t.Errorf("… and %d more unexpected outcomes", l.tally.failed-len(l.tally.failures))
	}
	for _, q := range quantities {
		if err := report.trends[q].err; err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if quietErr != nil {
		t.Error(quietErr)
	}
}

// churn creates a function, calls it, changes it, calls the new version,
// deletes it and checks that it is gone.
func churn(l *load, i int) {
	name := fmt.Sprintf("churn-%d", i)
	rt, code := "python", versionPy
	if i%2 == 1 {
		rt, code = "nodejs", versionJS
	}
	f := function{Name: name, Runtime: rt, Code: code(1), KeepAlive: keepAlive}
	if !l.expect("churn", "POST", "/api/functions", f, http.StatusCreated) {
		return
	}
	l.invoke("churn", name, "success", "1")
	if l.expect("churn", "PUT", "/api/functions/"+name, map[string]any{"code": code(2)}, http.StatusOK) {
		l.invoke("churn", name, "success", "2")
	}
	if l.expect("churn", "DELETE", "/api/functions/"+name, nil, http.StatusNoContent) {
		l.expect("churn", "POST", "/api/executions/"+name, map[string]any{}, http.StatusNotFound)
	}
}

// sampleFor samples every interval for d, from the start of the load.
func sampleFor(t *testing.T, s *sampler, d, interval time.Duration) []sample {
	t.Helper()
	t0 := time.Now()
	var out []sample
	tick := time.NewTicker(interval)
	defer tick.Stop()
	t.Logf("%8s %8s %8s %10s %6s %7s %8s %7s", "t", "rss MiB", "heap MiB", "goroutines", "fds", "threads", "children", "cgroups")
	for {
		at := time.Since(t0).Round(time.Second)
		sm, err := s.take(at)
		if err != nil {
			// One retry: a sample read while the machine stalls may time
			// out; two in a row means the server does not answer.
			if sm, err = s.take(at); err != nil {
				t.Errorf("sample at %v: %v", at, err)
			}
		}
		if err == nil {
			out = append(out, sm)
			v := sm.values
			t.Logf("%8v %8.1f %8.1f %10.0f %6.0f %7.0f %8.0f %7.0f", at, v["rss_mib"], v["heap_mib"], v["goroutines"], v["fds"], v["threads"], v["children"], v["cgroups"])
		}
		if time.Since(t0)+interval/2 > d {
			return out
		}
		<-tick.C
	}
}

// waitQuiet waits up to limit for children and cgroups to be back at the
// baseline and goroutines and fds near it, and returns the last sample.
func waitQuiet(s *sampler, baseline sample, limit time.Duration) (sample, error) {
	deadline := time.Now().Add(limit)
	for {
		cur, err := s.take(0)
		if err != nil {
			return cur, err
		}
		var over []string
		for _, q := range []string{"children", "cgroups", "goroutines", "fds"} {
			if cur.values[q] > baseline.values[q]+quietSlack[q] {
				over = append(over, fmt.Sprintf("%s %.0f (baseline %.0f)", q, cur.values[q], baseline.values[q]))
			}
		}
		if len(over) == 0 {
			return cur, nil
		}
		if time.Now().After(deadline) {
			return cur, fmt.Errorf("%v after the load stopped, still above the baseline: %s", limit, strings.Join(over, ", "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
