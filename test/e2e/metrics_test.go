package e2e_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// functionMetrics is GET /api/metrics/functions/{id}, in part.
type functionMetrics struct {
	Invocations uint64            `json:"invocations"`
	ByStatus    map[string]uint64 `json:"byStatus"`
	ColdStarts  uint64            `json:"coldStarts"`
	DurationMs  struct {
		P50, P95, P99, Max float64
	} `json:"durationMs"`
	PeakMemoryKiB struct {
		Peak    uint64 `json:"peak"`
		Samples uint64 `json:"samples"`
	} `json:"peakMemoryKiB"`
	TopErrors []struct {
		Type  string `json:"type"`
		Count uint64 `json:"count"`
	} `json:"topErrors"`
}

func TestMetricsSurviveRestart(t *testing.T) {
	dataDir := t.TempDir()
	n := start(t, "NIMBUS_DATA_DIR="+dataDir)
	n.create(function{Name: "counted", Runtime: "python", Code: "def handler(e, c):\n    if e.get('fail'):\n        raise KeyError('k')\n    return 1\n"})
	for i := range 7 {
		n.invoke("counted", map[string]bool{"fail": i%3 == 2})
	}
	var before functionMetrics
	n.do("GET", "/api/metrics/functions/counted?window=1h", nil, &before)
	if before.Invocations != 7 {
		t.Fatalf("before the restart: %+v", before)
	}
	n.stop()

	n = start(t, "NIMBUS_DATA_DIR="+dataDir)
	var after functionMetrics
	n.do("GET", "/api/metrics/functions/counted?window=1h", nil, &after)
	if after.Invocations != 7 || after.ByStatus["success"] != 5 || after.ByStatus["error"] != 2 || after.ColdStarts != 1 ||
		len(after.TopErrors) != 1 || after.TopErrors[0].Type != "KeyError" || after.TopErrors[0].Count != 2 {
		t.Fatalf("after the restart: %+v", after)
	}
	if after.DurationMs != before.DurationMs || after.PeakMemoryKiB != before.PeakMemoryKiB || after.PeakMemoryKiB.Samples != 7 {
		t.Errorf("latency or memory changed across the restart:\n before %+v\n after  %+v", before, after)
	}
	var sys functionMetrics
	n.do("GET", "/api/metrics/system?window=1h", nil, &sys)
	if sys.Invocations != 7 {
		t.Errorf("system after the restart: %d invocations, want 7", sys.Invocations)
	}
	// Calls after the restart add to what was there.
	n.invoke("counted", nil)
	n.do("GET", "/api/metrics/functions/counted?window=1h", nil, &after)
	if after.Invocations != 8 || after.ColdStarts != 2 {
		t.Errorf("after one more call: %d invocations, %d cold, want 8 and 2", after.Invocations, after.ColdStarts)
	}
}

func TestLiveEventsAndPrometheus(t *testing.T) {
	n := start(t, "NIMBUS_API_KEY=e2e-key")
	n.create(function{Name: "py", Runtime: "python", Code: "def handler(e, c):\n    return len(b'x' * e['n'])\n"})
	n.create(function{Name: "js", Runtime: "nodejs", Code: "exports.handler = async (e) => Buffer.alloc(e.n, 1).length;\n"})

	// A browser's EventSource cannot send headers: the key goes in the URL.
	resp, err := http.Get(n.url + "/api/events?key=e2e-key&function=py")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan [2]string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var name string
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				name = v
			} else if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- [2]string{name, v}
			}
		}
		close(events)
	}()
	next := func(name string) string {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended waiting for %q", name)
				}
				if ev[0] == name {
					return ev[1]
				}
			case <-timeout:
				t.Fatalf("no %q event in 20 s", name)
			}
		}
	}
	next("metrics") // subscribed

	js := n.invoke("js", map[string]int{"n": 32 << 20})
	py := n.invoke("py", map[string]int{"n": 32 << 20})
	var ev struct {
		ExecutionID, FunctionID, Function, Status string
		DurationMs                                float64
		ColdStart                                 bool
	}
	if err := json.Unmarshal([]byte(next("execution")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ExecutionID != py.ExecutionID || ev.Function != "py" || ev.Status != "success" || !ev.ColdStart || ev.DurationMs != py.DurationMs {
		t.Errorf("event %+v, want py's execution %s (js's is %s)", ev, py.ExecutionID, js.ExecutionID)
	}

	// Each execution records the peak memory its worker reported: both
	// allocated 32 MiB.
	for _, x := range []execution{py, js} {
		var rec struct{ PeakMemoryKiB int64 }
		name := map[string]string{py.ExecutionID: "py", js.ExecutionID: "js"}[x.ExecutionID]
		n.do("GET", "/api/executions/"+name+"/"+x.ExecutionID, nil, &rec)
		if rec.PeakMemoryKiB < 32<<10 {
			t.Errorf("%s: peakMemoryKiB %d, want at least 32 MiB", name, rec.PeakMemoryKiB)
		}
	}

	// Prometheus reads the same counts.
	req, _ := http.NewRequest("GET", n.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer e2e-key")
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(mresp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	counts := map[string]float64{}
	for _, m := range fams["nimbus_invocations_total"].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		counts[l["function"]+" "+l["status"]+" "+l["cold"]] += m.GetCounter().GetValue()
	}
	for _, k := range []string{"py success true", "js success true"} {
		if counts[k] != 1 {
			t.Errorf("nimbus_invocations_total{%s} = %v, want 1 (all: %v)", k, counts[k], counts)
		}
	}
}
