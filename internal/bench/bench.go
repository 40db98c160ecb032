package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Config says what to run.
type Config struct {
	URL       string        // Nimbus to measure
	APIKey    string        // its API key, if any
	ServerPID int           // its process, to find workers' memory (0: skip)
	Duration  time.Duration // per latency or throughput measurement
	Colds     int           // cold starts measured per runtime, and with a layer
	Deploys   int           // deploys measured with cached dependencies, and without
	// PipFindLinks is the directory of wheels the server's dependency
	// builds install from (its NIMBUS_PIP_FIND_LINKS), which this process
	// can write: the deploy scenario writes its wheel there. Empty skips
	// that scenario: a dependency from anywhere else (PyPI) would measure
	// the network, or install a stranger's package.
	PipFindLinks string
	// Interpreters run the cold-start baseline.
	Interpreters runtime.Interpreters
	Concurrency  []int
	// Only names the scenarios to run (Steps); empty runs every one.
	Only []string
	Log  io.Writer // progress; nil for none
	// SkipGo skips the Go function scenarios, whose first build on a
	// fresh server compiles the standard library it uses (minutes).
	SkipGo bool
}

// Result is one figure beside its baseline.
type Result struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Unit     string  `json:"unit"`
	Nimbus   float64 `json:"nimbus"`
	Baseline float64 `json:"baseline,omitempty"`
	// BaselineName says what the baseline is.
	BaselineName string `json:"baselineName,omitempty"`
	// Ratio is Nimbus / Baseline.
	Ratio float64 `json:"ratio,omitempty"`
	Note  string  `json:"note,omitempty"`
}

// Report is every result of a run.
type Report struct {
	When    time.Time `json:"when"`
	Host    string    `json:"host"`
	CPUs    int       `json:"cpus"`
	Results []Result  `json:"results"`
}

type runner struct {
	cfg    Config
	client *http.Client
	echo   string
	rep    *Report
}

// Run runs every scenario.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Duration == 0 {
		cfg.Duration = 3 * time.Second
	}
	if cfg.Colds == 0 {
		cfg.Colds = 10
	}
	if cfg.Deploys == 0 {
		cfg.Deploys = 10
	}
	if len(cfg.Concurrency) == 0 {
		cfg.Concurrency = []int{1, 16, 64}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	host, _ := os.Hostname()
	r := &runner{
		cfg:    cfg,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: time.Minute},
		rep:    &Report{When: time.Now().UTC(), Host: host, CPUs: NumCPU()},
	}
	echo, stop, err := startEcho()
	if err != nil {
		return nil, err
	}
	defer stop()
	r.echo = echo
	for _, step := range r.steps() {
		if len(cfg.Only) > 0 && !slices.Contains(cfg.Only, step.name) {
			continue
		}
		if err := step.run(ctx); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

type step struct {
	name string
	run  func(context.Context) error
}

// steps are the scenarios in the order they run: those of code come last,
// as their functions and layers do not change what the others measure.
func (r *runner) steps() []step {
	return []step{
		{"warm", r.warmLatency}, {"throughput", r.throughput}, {"url", r.functionURL}, {"lambda", r.lambdaInvoke},
		{"async-accept", r.asyncAccept}, {"async-rate", r.asyncRate}, {"async-e2e", r.asyncEndToEnd},
		{"cold", r.coldStarts}, {"go", r.goRuntime}, {"memory", r.idleMemory}, {"deploy", r.deployCached}, {"layer", r.layerColdStart},
	}
}

// Steps names the scenarios, for Config.Only.
func Steps() []string {
	var names []string
	for _, s := range (&runner{}).steps() {
		names = append(names, s.name)
	}
	return names
}

func (r *runner) logf(format string, args ...any) { fmt.Fprintf(r.cfg.Log, format+"\n", args...) }

func (r *runner) add(res Result) {
	if res.Baseline > 0 {
		res.Ratio = res.Nimbus / res.Baseline
	}
	r.rep.Results = append(r.rep.Results, res)
	r.logf("  %-28s %-12s nimbus %10.3f %s   baseline %10.3f   ratio %.2f", res.Scenario, res.Metric, res.Nimbus, res.Unit, res.Baseline, res.Ratio)
}

// startEcho serves a bare Go HTTP server that answers each POST with its
// body: the floor any HTTP platform stands on.
func startEcho() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/echo", func() { srv.Close() }, nil
}

// call POSTs body to url and returns the elapsed time.
func (r *runner) call(ctx context.Context, url string, body []byte) (time.Duration, []byte, error) {
	return r.post(ctx, url, body, nil)
}

// post POSTs body to url with the headers hdr (nil for none) and returns
// the elapsed time until the whole answer was read.
func (r *runner) post(ctx context.Context, url string, body []byte, hdr http.Header) (time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if r.cfg.APIKey != "" && strings.HasPrefix(url, r.cfg.URL) {
		req.Header.Set("Authorization", "Bearer "+r.cfg.APIKey)
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err == nil && resp.StatusCode >= 300 {
		err = fmt.Errorf("%s: %d %s", url, resp.StatusCode, out)
	}
	return d, out, err
}

// api sends a JSON request to Nimbus.
func (r *runner) api(ctx context.Context, method, path string, in, out any) error {
	if in == nil {
		return r.send(ctx, method, path, "", nil, out)
	}
	b, _ := json.Marshal(in)
	return r.send(ctx, method, path, "application/json", b, out)
}

// send sends a request with a body of contentType to Nimbus and decodes
// its JSON answer into out.
func (r *runner) send(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.cfg.URL+path, rd)
	if err != nil {
		return err
	}
	if r.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.APIKey)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// function creates (or replaces) a benchmark function and returns its id.
func (r *runner) function(ctx context.Context, name, runtime, code string, maxInstances int) (string, error) {
	var f struct{ ID string }
	_, err := r.create(ctx, map[string]any{
		"name": name, "runtime": runtime, "code": code, "maxInstances": maxInstances, "timeout": 10000,
	}, &f)
	return f.ID, err
}

// create deletes the function named spec["name"], if any, creates it from
// spec, decodes the answer into out, and returns how long the create took:
// from its request to its answer.
func (r *runner) create(ctx context.Context, spec map[string]any, out any) (time.Duration, error) {
	_ = r.api(ctx, "DELETE", "/api/functions/"+spec["name"].(string), nil, nil)
	b, _ := json.Marshal(spec)
	t0 := time.Now()
	err := r.send(ctx, "POST", "/api/functions", "application/json", b, out)
	return time.Since(t0), err
}

const (
	pyNoop   = "def handler(event, context):\n    return event\n"
	nodeNoop = "exports.handler = async (event) => event;\n"
	// What the idle-memory instances run: calls that overlap, so that each
	// gets its own instance, and import nothing more than a no-op.
	pySleep   = "import time\ndef handler(event, context):\n    time.sleep(event.get(\"sleep\", 0))\n    return 1\n"
	nodeSleep = "exports.handler = (event) => new Promise((ok) => setTimeout(() => ok(1), (event.sleep || 0) * 1000));\n"
)

var event = []byte(`{"hello":"world","n":1}`)

// warmAgainstEcho warms url up (200 calls, connections and caches), then
// times sequential calls of it and of the echo server, interleaved three
// times to share the machine's noise fairly.
func (r *runner) warmAgainstEcho(ctx context.Context, url string) (nim, echo []time.Duration, err error) {
	for range 200 {
		if _, _, err := r.call(ctx, url, event); err != nil {
			return nil, nil, err
		}
		r.call(ctx, r.echo, event)
	}
	for range 3 {
		a, err := r.sequential(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		b, err := r.sequential(ctx, r.echo)
		if err != nil {
			return nil, nil, err
		}
		nim, echo = append(nim, a...), append(echo, b...)
	}
	return nim, echo, nil
}

// sequential measures back-to-back calls for the configured duration.
func (r *runner) sequential(ctx context.Context, url string) ([]time.Duration, error) {
	var lat []time.Duration
	end := time.Now().Add(r.cfg.Duration)
	for time.Now().Before(end) {
		d, _, err := r.call(ctx, url, event)
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	return lat, nil
}

func (r *runner) warmLatency(ctx context.Context) error {
	r.logf("warm call latency (no-op Python handler, sequential)")
	id, err := r.function(ctx, "bench-warm", runtime.Python, pyNoop, 8)
	if err != nil {
		return err
	}
	url := r.cfg.URL + "/api/executions/" + id
	nim, echo, err := r.warmAgainstEcho(ctx, url)
	if err != nil {
		return err
	}
	p50n, p50e := percentile(nim, .5), percentile(echo, .5)
	r.add(Result{Scenario: "warm call", Metric: "p50", Unit: "ms", Nimbus: ms(p50n), Baseline: ms(p50e), BaselineName: "Go HTTP echo",
		Note: fmt.Sprintf("Nimbus adds %.3f ms", ms(p50n-p50e))})
	r.add(Result{Scenario: "warm call", Metric: "p99", Unit: "ms", Nimbus: ms(percentile(nim, .99)), Baseline: ms(percentile(echo, .99)), BaselineName: "Go HTTP echo"})

	// After an idle pause the instance has been frozen (NIMBUS_FREEZE_AFTER,
	// 100 ms by default): the call pays the thaw. Back-to-back calls above
	// never do.
	var thawed []time.Duration
	for range max(r.cfg.Colds, 3) {
		time.Sleep(400 * time.Millisecond)
		d, _, err := r.call(ctx, url, event)
		if err != nil {
			return err
		}
		thawed = append(thawed, d)
	}
	p50t := percentile(thawed, .5)
	r.add(Result{Scenario: "call after 400 ms idle", Metric: "p50", Unit: "ms", Nimbus: ms(p50t), Baseline: ms(p50n), BaselineName: "warm call",
		Note: fmt.Sprintf("the thaw of a frozen instance adds %.3f ms", ms(p50t-p50n))})
	return nil
}

// load runs conc workers calling url for the duration; it returns calls/s.
func (r *runner) load(ctx context.Context, url string, conc int) (float64, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	end := time.Now().Add(r.cfg.Duration)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if _, _, err := r.call(ctx, url, event); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n.Load()) / time.Since(t0).Seconds(), nil
}

func (r *runner) throughput(ctx context.Context) error {
	r.logf("throughput (no-op Python handler, keep-alive connections, every execution recorded)")
	// The default maxInstances (0: 10), as a function gets when it sets none.
	id, err := r.function(ctx, "bench-throughput", runtime.Python, pyNoop, 0)
	if err != nil {
		return err
	}
	url := r.cfg.URL + "/api/executions/" + id
	if _, err := r.load(ctx, url, fn.DefaultMaxInstances); err != nil { // start the instances
		return err
	}
	for _, c := range r.cfg.Concurrency {
		nim, err := r.load(ctx, url, c)
		if err != nil {
			return err
		}
		echo, err := r.load(ctx, r.echo, c)
		if err != nil {
			return err
		}
		r.add(Result{Scenario: fmt.Sprintf("throughput c=%d", c), Metric: "calls/s", Unit: "1/s", Nimbus: nim, Baseline: echo, BaselineName: "Go HTTP echo"})
	}
	return nil
}

func (r *runner) coldStarts(ctx context.Context) error {
	for _, rt := range []struct{ name, code, comment string }{
		{runtime.Python, pyNoop, "#"},
		{runtime.NodeJS, nodeNoop, "//"},
	} {
		r.logf("cold start, %s (first call after create)", rt.name)
		var nim []time.Duration
		for i := range r.cfg.Colds {
			// At rest between cold starts, as after a scale to zero: what
			// runs ahead of calls (warm sandboxes, prestarted workers) has
			// been refilled. Back to back, a burst would measure the refill.
			time.Sleep(250 * time.Millisecond)
			id, err := r.function(ctx, "bench-cold-"+rt.name, rt.name, fmt.Sprintf("%s\n%s %d\n", rt.code, rt.comment, i), 1)
			if err != nil {
				return err
			}
			d, _, err := r.call(ctx, r.cfg.URL+"/api/executions/"+id, event)
			if err != nil {
				return err
			}
			nim = append(nim, d)
		}
		base, err := freshInterpreter(ctx, rt.name, r.cfg.Interpreters.Path(rt.name), r.cfg.Colds)
		if err != nil {
			return err
		}
		r.add(Result{Scenario: "cold start " + rt.name, Metric: "p50", Unit: "ms", Nimbus: ms(percentile(nim, .5)), Baseline: ms(percentile(base, .5)),
			BaselineName: "fresh interpreter per call"})
	}
	return nil
}

// echoArgs make each runtime's interpreter print the JSON event it reads.
var echoArgs = map[string][]string{
	runtime.Python: {"-c", "import sys, json; print(json.dumps(json.load(sys.stdin)))"},
	runtime.NodeJS: {"-e", "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.stringify(JSON.parse(s))))"},
}

// freshInterpreter times starting an interpreter that reads an event on
// stdin and prints it: the cost of a platform with no warm instances.
func freshInterpreter(ctx context.Context, rt, interp string, n int) ([]time.Duration, error) {
	args := echoArgs[rt]
	var out []time.Duration
	for range n {
		cmd := exec.CommandContext(ctx, interp, args...)
		cmd.Stdin = bytes.NewReader(event)
		t0 := time.Now()
		if b, err := cmd.Output(); err != nil || !bytes.Contains(b, []byte("hello")) {
			return nil, fmt.Errorf("baseline %s: %v %s", interp, err, b)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func (r *runner) idleMemory(ctx context.Context) error {
	if r.cfg.ServerPID == 0 {
		r.logf("idle memory: skipped (server process unknown)")
		return nil
	}
	r.logf("idle memory per warm instance (PSS)")
	// What one more instance costs the machine: the PSS of every process
	// below the server with four idle instances, less that without them,
	// over four. PSS sums to the memory in use, so pages an instance shares
	// (with a zygote, say) count once across them all.
	const n = 4
	base := r.settledPSS()
	r.add(Result{Scenario: "server children, no instance", Metric: "PSS", Unit: "MB", Nimbus: base / 1024,
		Note: "warm sandboxes, prestarted workers, zygote"})
	for _, rt := range []struct{ name, code string }{{runtime.Python, pySleep}, {runtime.NodeJS, nodeSleep}} {
		id, err := r.function(ctx, "bench-idle-"+rt.name, rt.name, rt.code, n)
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for range n { // n concurrent calls: n instances
			wg.Add(1)
			go func() { defer wg.Done(); r.call(ctx, r.cfg.URL+"/api/executions/"+id, []byte(`{"sleep":0.5}`)) }()
		}
		wg.Wait()
		var m struct{ Instances struct{ Idle int } }
		if err := r.api(ctx, "GET", "/api/metrics/functions/"+id, nil, &m); err != nil || m.Instances.Idle != n {
			return fmt.Errorf("idle memory: %d idle %s instances after %d overlapping calls, want %d (%v)", m.Instances.Idle, rt.name, n, n, err)
		}
		with := r.settledPSS()
		r.add(Result{Scenario: "idle instance " + rt.name, Metric: "PSS each", Unit: "MB", Nimbus: (with - base) / n / 1024,
			Note: fmt.Sprintf("(children with %d idle instances − without) / %d", n, n)})
		_ = r.api(ctx, "DELETE", "/api/functions/bench-idle-"+rt.name, nil, nil)
		base = r.settledPSS()
	}
	return nil
}

// settledPSS is the PSS of the server's descendants, in KiB, once their
// number has stopped changing (prestarted workers refill in the
// background): the median of three readings.
func (r *runner) settledPSS() float64 {
	count := func() int { return len(descendants(r.cfg.ServerPID)) }
	last, since := count(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && time.Since(since) < time.Second; {
		time.Sleep(100 * time.Millisecond)
		if c := count(); c != last {
			last, since = c, time.Now()
		}
	}
	var v []float64
	for range 3 {
		total := 0.0
		for _, p := range descendants(r.cfg.ServerPID) {
			total += pssKiB(p)
		}
		v = append(v, total)
		time.Sleep(100 * time.Millisecond)
	}
	slices.Sort(v)
	return v[1]
}

// descendants lists every process below pid.
func descendants(pid int) []int {
	var out []int
	for _, c := range children(pid) {
		out = append(out, c)
		out = append(out, descendants(c)...)
	}
	return out
}

// children lists the direct children of pid.
func children(pid int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[1] == strconv.Itoa(pid) {
			p, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			out = append(out, p)
		}
	}
	return out
}

func pssKiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return n
		}
	}
	return 0
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
