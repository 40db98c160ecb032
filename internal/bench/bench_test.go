package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/bench"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// TestRatiosHaveNotRegressed runs a short benchmark and fails when a ratio
// to its same-run baseline is more than twice as bad as the reference in
// testdata/reference.json. Ratios, not times: the machines are noisy and
// shared, and a baseline measured in the same run cancels most of it.
func TestRatiosHaveNotRegressed(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark")
	}
	if raceEnabled {
		t.Skip("ratios under the race detector mean nothing; make test runs this without it, alone")
	}
	ctx := context.Background()
	stop, url, err := bench.StartLocal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	in, errs := runtime.FindInterpreters(ctx, os.LookupEnv)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var log strings.Builder
	rep, err := bench.Run(ctx, bench.Config{
		URL: url, ServerPID: os.Getpid(), Duration: 700 * time.Millisecond, Colds: 3,
		Concurrency: []int{16}, Python: in.Python, Node: in.Node, Log: &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var ref bench.Report
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	want := map[string]bench.Result{}
	for _, r := range ref.Results {
		want[r.Scenario+"/"+r.Metric] = r
	}
	checked := 0
	for _, got := range rep.Results {
		r, ok := want[got.Scenario+"/"+got.Metric]
		if !ok {
			continue
		}
		checked++
		switch {
		case got.Unit == "1/s": // higher is better
			if got.Ratio < r.Ratio/2 {
				t.Errorf("%s %s: ratio %.2f, reference %.2f: regressed more than 2x", got.Scenario, got.Metric, got.Ratio, r.Ratio)
			}
		case got.Baseline > 0: // lower is better
			if got.Ratio > r.Ratio*2 {
				t.Errorf("%s %s: ratio %.2f, reference %.2f: regressed more than 2x", got.Scenario, got.Metric, got.Ratio, r.Ratio)
			}
		default: // absolute, e.g. memory
			if got.Nimbus > r.Nimbus*2 {
				t.Errorf("%s %s: %.2f %s, reference %.2f: regressed more than 2x", got.Scenario, got.Metric, got.Nimbus, got.Unit, r.Nimbus)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d results matched the reference:\n%s", checked, log.String())
	}
	t.Logf("\n%s", log.String())
}
