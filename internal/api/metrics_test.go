package api_test

import (
	"cmp"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// workload invokes name with a known mix: cold starts (three calls at
// once), durations from 0 to 24 ms, two error types, peak memory reports.
func workload(t *testing.T, h *harness, name string) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range 3 {
		// Long enough to overlap even on a loaded machine: three instances.
		wg.Go(func() { h.invoke(name, fakeEvent{SleepMs: 300, MemKiB: int64(30_000 + i)}) })
	}
	wg.Wait()
	for i := range 40 {
		ev := fakeEvent{SleepMs: (i * 7) % 25, MemKiB: int64(10_000 + 500*i)}
		switch i % 10 {
		case 3, 6, 9:
			ev.Error = "ValueError"
		case 4:
			ev.Error = "KeyError"
		}
		if i%11 == 5 {
			ev.MemKiB = 0 // not reported
		}
		h.invoke(name, ev)
	}
}

// exactQuantile is the value of rank ceil(q·n) in sorted, the definition
// the histogram's percentiles follow.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
}

func within1pc(got, want float64) bool { return math.Abs(got-want) <= 0.01*want }

type latency struct{ P50, P95, P99, Mean, Max float64 }

type summary struct {
	Invocations    uint64            `json:"invocations"`
	ByStatus       map[string]uint64 `json:"byStatus"`
	ColdStarts     uint64            `json:"coldStarts"`
	ColdStartRate  float64           `json:"coldStartRate"`
	ErrorRate      float64           `json:"errorRate"`
	DurationMs     latency           `json:"durationMs"`
	InitDurationMs latency           `json:"initDurationMs"`
	PeakMemoryKiB  struct {
		Peak    uint64  `json:"peak"`
		Average float64 `json:"average"`
		Samples uint64  `json:"samples"`
	} `json:"peakMemoryKiB"`
	TopErrors []metrics.ErrorCount `json:"topErrors"`
	Rates     metrics.Rates        `json:"rates"`
	Instances struct {
		Idle, Busy, Starting, Queued, Active int
		ByDriver                             map[string]struct{ Idle, Busy, Starting, Queued, Active int }
	} `json:"instances"`
	Series []struct {
		Start       time.Time         `json:"start"`
		Invocations uint64            `json:"invocations"`
		ByStatus    map[string]uint64 `json:"byStatus"`
		ColdStarts  uint64            `json:"coldStarts"`
		P50Ms       float64           `json:"p50Ms"`
	} `json:"series"`
}

// expected works out a summary from executions read back from history.
func expected(execs []execution) summary {
	var (
		s           = summary{ByStatus: map[string]uint64{}}
		durs, inits []float64
		memSum      float64
		ran         uint64
		errs        = map[string]uint64{}
		failed      uint64
	)
	for _, e := range execs {
		s.Invocations++
		s.ByStatus[e.Status]++
		if e.Status != "rejected" {
			ran++
			durs = append(durs, e.DurationMs)
		}
		if e.Status != "success" {
			failed++
		}
		if e.ColdStart {
			s.ColdStarts++
			inits = append(inits, e.InitDurationMs)
		}
		if e.PeakMemoryKiB > 0 {
			s.PeakMemoryKiB.Samples++
			s.PeakMemoryKiB.Peak = max(s.PeakMemoryKiB.Peak, uint64(e.PeakMemoryKiB))
			memSum += float64(e.PeakMemoryKiB)
		}
		if e.Error != nil && e.Status != "success" {
			errs[e.Error.Type]++
		}
	}
	s.ErrorRate = float64(failed) / float64(s.Invocations)
	s.ColdStartRate = float64(s.ColdStarts) / float64(ran)
	s.PeakMemoryKiB.Average = memSum / float64(s.PeakMemoryKiB.Samples)
	slices.Sort(durs)
	slices.Sort(inits)
	s.DurationMs = latency{P50: exactQuantile(durs, 0.5), P95: exactQuantile(durs, 0.95), P99: exactQuantile(durs, 0.99), Max: durs[len(durs)-1]}
	s.InitDurationMs = latency{P50: exactQuantile(inits, 0.5), Max: inits[len(inits)-1]}
	for typ, n := range errs {
		s.TopErrors = append(s.TopErrors, metrics.ErrorCount{Type: typ, Count: n})
	}
	slices.SortFunc(s.TopErrors, func(a, b metrics.ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Type, b.Type))
	})
	return s
}

func compare(t *testing.T, what string, got, want summary) {
	t.Helper()
	if got.Invocations != want.Invocations || got.ColdStarts != want.ColdStarts {
		t.Errorf("%s: %d invocations, %d cold; history has %d, %d", what, got.Invocations, got.ColdStarts, want.Invocations, want.ColdStarts)
	}
	for st, n := range want.ByStatus {
		if got.ByStatus[st] != n {
			t.Errorf("%s: %d %s, history has %d", what, got.ByStatus[st], st, n)
		}
	}
	if !within1pc(got.ErrorRate, want.ErrorRate) || !within1pc(got.ColdStartRate, want.ColdStartRate) {
		t.Errorf("%s: error rate %v, cold-start rate %v; history gives %v, %v", what, got.ErrorRate, got.ColdStartRate, want.ErrorRate, want.ColdStartRate)
	}
	for _, q := range []struct {
		name      string
		got, want float64
	}{
		{"duration p50", got.DurationMs.P50, want.DurationMs.P50},
		{"duration p95", got.DurationMs.P95, want.DurationMs.P95},
		{"duration p99", got.DurationMs.P99, want.DurationMs.P99},
		{"duration max", got.DurationMs.Max, want.DurationMs.Max},
		{"init p50", got.InitDurationMs.P50, want.InitDurationMs.P50},
		{"init max", got.InitDurationMs.Max, want.InitDurationMs.Max},
	} {
		if !within1pc(q.got, q.want) {
			t.Errorf("%s: %s = %v, history gives %v", what, q.name, q.got, q.want)
		}
	}
	if got.PeakMemoryKiB != want.PeakMemoryKiB {
		t.Errorf("%s: memory %+v, history gives %+v", what, got.PeakMemoryKiB, want.PeakMemoryKiB)
	}
	if !slices.Equal(got.TopErrors, want.TopErrors) {
		t.Errorf("%s: top errors %+v, history gives %+v", what, got.TopErrors, want.TopErrors)
	}
}

func TestMetricsAgreeWithHistory(t *testing.T) {
	h := newHarness(t, options{startDelay: 30 * time.Millisecond, queueTimeout: 100 * time.Millisecond})
	h.create("calc", 3)
	h.create("single", 1)
	workload(t, h, "calc")
	// Two calls at once on a function of one instance: one is rejected.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.do("POST", "/api/executions/single", fakeEvent{SleepMs: 1000, MemKiB: 5000}, nil) })
	}
	wg.Wait()
	h.invoke("single", fakeEvent{Error: "Boom"})

	calc, single := h.history("calc"), h.history("single")
	if len(calc) != 43 || len(single) != 3 {
		t.Fatalf("history has %d and %d executions, want 43 and 3", len(calc), len(single))
	}

	var got summary
	if st := h.do("GET", "/api/metrics/functions/calc?window=5m&series=true&step=10s", nil, &got); st != 200 {
		t.Fatalf("function metrics: %d", st)
	}
	compare(t, "calc", got, expected(calc))
	var total, errors, cold uint64
	for _, p := range got.Series {
		total += p.Invocations
		errors += p.ByStatus["error"]
		cold += p.ColdStarts
	}
	if len(got.Series) != 30 || total != 43 || errors != got.ByStatus["error"] || cold != 3 {
		t.Errorf("series: %d points adding up to %d calls, %d errors, %d cold; want 30, 43, %d, 3", len(got.Series), total, errors, got.ByStatus["error"], cold)
	}
	if got.Rates.M1 != 43.0/60 || got.Instances.Active != 3 || got.Instances.Idle != 3 {
		t.Errorf("rates %+v, instances %+v; want 43/60 a second and 3 idle instances", got.Rates, got.Instances)
	}

	var sys summary
	if st := h.do("GET", "/api/metrics/system?window=1h", nil, &sys); st != 200 {
		t.Fatalf("system metrics: %d", st)
	}
	compare(t, "system", sys, expected(append(calc, single...)))
	if sb := sys.Instances.ByDriver["sandbox"]; sb.Active != 4 || sys.Instances.Active != 4 {
		t.Errorf("instances %+v, want 4 active on sandbox", sys.Instances)
	}
	if sys.ByStatus["rejected"] != 1 {
		t.Errorf("rejected %d, want 1", sys.ByStatus["rejected"])
	}
	// The host, the process and the drivers.
	var extra struct {
		Drivers map[string]struct{ Available bool }
		Host    struct {
			Memory struct{ TotalBytes uint64 }
			CPU    struct{ Cores int }
		}
		Process       struct{ RSSBytes uint64 }
		UptimeSeconds *int
	}
	h.do("GET", "/api/metrics/system", nil, &extra)
	if !extra.Drivers["sandbox"].Available || extra.Host.Memory.TotalBytes == 0 || extra.Host.CPU.Cores < 1 ||
		extra.Process.RSSBytes == 0 || extra.UptimeSeconds == nil {
		t.Errorf("system extras %+v", extra)
	}
}

func TestMetricsParameters(t *testing.T) {
	h := newHarness(t, options{})
	h.create("calc", 1)
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"", 200},
		{"?series=false", 200},
		{"?series=1m&window=1h", 200},
		{"?series=10s", 200},
		{"?series=true&step=30s", 200},
		{"?series=maybe", 400},
		{"?series=10s&window=1h", 400},
		{"?series=true&step=soon", 400},
		{"?series=90s", 200},
		{"?series=1500ms", 400},
		{"?window=2d", 400},
	} {
		for _, path := range []string{"/api/metrics/system", "/api/metrics/functions/calc"} {
			if st := h.do("GET", path+tc.query, nil, nil); st != tc.status {
				t.Errorf("GET %s%s: %d, want %d", path, tc.query, st, tc.status)
			}
		}
	}
	if st := h.do("GET", "/api/metrics/functions/nope", nil, nil); st != 404 {
		t.Errorf("unknown function: %d", st)
	}
}

// scrape reads /metrics as Prometheus does and parses it with its parser.
func (h *harness) scrape(key string) (int, map[string]*dto.MetricFamily) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		h.t.Fatalf("parse /metrics: %v", err)
	}
	return resp.StatusCode, fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestPrometheusScrape(t *testing.T) {
	h := newHarness(t, options{key: "s3cret", startDelay: 5 * time.Millisecond})
	calc := h.create("calc", 3)
	h.create("gone", 1)
	workload(t, h, "calc")
	h.invoke("gone", fakeEvent{})

	if st, _ := h.scrape(""); st != http.StatusUnauthorized {
		t.Fatalf("/metrics without the key: %d", st)
	}
	if st, _ := h.scrape("wrong"); st != http.StatusUnauthorized {
		t.Fatalf("/metrics with a wrong key: %d", st)
	}
	_, fams := h.scrape("s3cret")

	// The counters add up to what history says happened, by status and cold.
	want := map[string]float64{}
	ran := 0
	for _, e := range h.history("calc") {
		want[e.Status+" "+strconv.FormatBool(e.ColdStart)]++
		if e.Status != "rejected" {
			ran++
		}
	}
	got := map[string]float64{}
	for _, m := range fams["nimbus_invocations_total"].GetMetric() {
		l := labelsOf(m)
		if l["function"] == "calc" {
			if l["function_id"] != calc.ID {
				t.Errorf("function_id %q, want %q", l["function_id"], calc.ID)
			}
			got[l["status"]+" "+l["cold"]] += m.GetCounter().GetValue()
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("nimbus_invocations_total{calc, %s} = %v, history has %v", k, got[k], n)
		}
	}
	if len(want) < 3 {
		t.Fatalf("workload made too little variety: %v", want)
	}
	for _, m := range fams["nimbus_invocation_duration_seconds"].GetMetric() {
		if labelsOf(m)["function"] == "calc" && m.GetHistogram().GetSampleCount() != uint64(ran) {
			t.Errorf("duration histogram counts %d calls, want %d", m.GetHistogram().GetSampleCount(), ran)
		}
	}
	idle := 0.0
	for _, m := range fams["nimbus_instances"].GetMetric() {
		if l := labelsOf(m); l["function"] == "calc" && l["state"] == "idle" && l["driver"] == "sandbox" {
			idle = m.GetGauge().GetValue()
		}
	}
	if idle != 3 {
		t.Errorf("idle instances of calc: %v, want 3", idle)
	}
	for _, name := range []string{
		"nimbus_cold_start_duration_seconds", "nimbus_queue_wait_seconds", "nimbus_queue_depth",
		"nimbus_driver_start_duration_seconds", "nimbus_store_batch_records", "nimbus_store_write_duration_seconds",
		"nimbus_worker_memory_bytes", "nimbus_records_dropped_total", "nimbus_events_dropped_total",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// A deleted function's series go.
	if st := h.do("DELETE", "/api/functions/gone", nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	_, fams = h.scrape("s3cret")
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			if labelsOf(m)["function"] == "gone" {
				t.Errorf("%s keeps a series of a deleted function: %v", name, labelsOf(m))
			}
		}
	}
}

// The list of all functions' figures agrees, function by function, with
// each one's own route, series included.
func TestAllFunctionMetrics(t *testing.T) {
	h := newHarness(t, options{})
	h.create("busy", 2)
	h.create("idle", 1)
	for i := range 5 {
		ev := fakeEvent{}
		if i == 2 {
			ev.Error = "ValueError"
		}
		h.invoke("busy", ev)
	}
	type view struct {
		FunctionID  string `json:"functionId"`
		Name        string `json:"name"`
		Invocations uint64 `json:"invocations"`
		ErrorRate   float64
		DurationMs  latency `json:"durationMs"`
		Instances   struct{ Active int }
		Series      []struct {
			Start       time.Time         `json:"start"`
			Invocations uint64            `json:"invocations"`
			ByStatus    map[string]uint64 `json:"byStatus"`
		} `json:"series"`
	}
	var all struct {
		Window    string `json:"window"`
		Functions []view `json:"functions"`
	}
	if st := h.do("GET", "/api/metrics/functions?window=1h&series=5m", nil, &all); st != 200 {
		t.Fatalf("all function metrics: %d", st)
	}
	if all.Window != "1h0m0s" || len(all.Functions) != 2 {
		t.Fatalf("window %q, %d functions; want 1h0m0s and 2", all.Window, len(all.Functions))
	}
	for _, got := range all.Functions {
		var one view
		if st := h.do("GET", "/api/metrics/functions/"+got.Name+"?window=1h&series=5m", nil, &one); st != 200 {
			t.Fatalf("%s metrics: %d", got.Name, st)
		}
		if got.FunctionID != one.FunctionID || got.Invocations != one.Invocations || got.ErrorRate != one.ErrorRate ||
			got.DurationMs != one.DurationMs || got.Instances != one.Instances || len(got.Series) != 12 || len(one.Series) != 12 {
			t.Errorf("%s: in the list %+v, on its own %+v", got.Name, got, one)
		}
		var calls, errs uint64
		for _, p := range got.Series {
			calls += p.Invocations
			errs += p.ByStatus["error"]
		}
		want := map[string][2]uint64{"busy": {5, 1}, "idle": {0, 0}}[got.Name]
		if calls != want[0] || errs != want[1] {
			t.Errorf("%s: series adds up to %d calls, %d errors; want %v", got.Name, calls, errs, want)
		}
	}
	var e struct{ Error struct{ Field string } }
	if st := h.do("GET", "/api/metrics/functions?window=1h&series=7s", nil, &e); st != 400 || e.Error.Field != "step" {
		t.Errorf("a per-second step over an hour: %d %+v, want 400 on step", st, e)
	}
}
