package bench_test

import (
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/bench"
)

func warm(nimbus, echo float64) bench.Result {
	return bench.Result{Scenario: "warm call", Metric: "p50", Unit: "ms", Nimbus: nimbus, Baseline: echo, Ratio: nimbus / echo}
}

func tail(nimbus, echo float64) bench.Result {
	return bench.Result{Scenario: "warm call", Metric: "p99", Unit: "ms", Nimbus: nimbus, Baseline: echo, Ratio: nimbus / echo}
}

func rate(nimbus, echo float64) bench.Result {
	return bench.Result{Scenario: "throughput c=16", Metric: "calls/s", Unit: "1/s", Nimbus: nimbus, Baseline: echo, Ratio: nimbus / echo}
}

func cold(nimbus, fresh float64) bench.Result {
	return bench.Result{Scenario: "cold start python", Metric: "p50", Unit: "ms", Nimbus: nimbus, Baseline: fresh, Ratio: nimbus / fresh}
}

func mem(mb float64) bench.Result {
	return bench.Result{Scenario: "idle instance python", Metric: "PSS each", Unit: "MB", Nimbus: mb}
}

// deployed and layered are the figures of the scenarios of code, whose
// ratios are not judged.
func deployed(nimbus, plain float64) bench.Result {
	return bench.Result{Scenario: "deploy, dependencies cached", Metric: "p50", Unit: "ms", Nimbus: nimbus, Baseline: plain, Ratio: nimbus / plain}
}

func layered(nimbus, plain float64) bench.Result {
	return bench.Result{Scenario: "cold start, 20 MB layer", Metric: "p50", Unit: "ms", Nimbus: nimbus, Baseline: plain, Ratio: nimbus / plain}
}

func report(rs ...bench.Result) *bench.Report { return &bench.Report{Results: rs} }

func TestRegressions(t *testing.T) {
	// The reference of testdata/reference.json, in short (cold start
	// ratios there are rounded up to 0.1).
	ref := report(warm(0.259, 0.101), tail(0.86, 0.28), rate(5900, 15100), cold(8.2, 82), mem(2.6))
	for _, tc := range []struct {
		name string
		ref  *bench.Report // the reference above when nil
		runs []*bench.Report
		want []string // substrings of the problems, in order; none: passes
	}{
		{
			name: "as the reference",
			runs: []*bench.Report{report(warm(0.259, 0.101), tail(0.86, 0.28), rate(5900, 15100), cold(4.7, 82), mem(2.6))},
		},
		{
			// A fresh machine whose echo server answered in 0.03 ms: a ratio
			// of 7 that is no regression at all (Nimbus adds 0.18 ms).
			name: "fast echo baseline",
			runs: []*bench.Report{report(warm(0.21, 0.03), rate(5000, 14000), cold(5, 90), mem(2.7))},
		},
		{
			name: "loaded machine",
			runs: []*bench.Report{report(warm(0.9, 0.35), tail(9, 1.2), rate(2200, 8000), cold(12, 160), mem(2.6))},
		},
		{
			name: "warm call regressed",
			runs: []*bench.Report{report(warm(1.2, 0.1), rate(5900, 15100), cold(4.7, 82), mem(2.6))},
			want: []string{"warm call p50: Nimbus adds 1.100 ms"},
		},
		{
			name: "throughput, cold start and memory regressed",
			runs: []*bench.Report{report(warm(0.259, 0.101), rate(1000, 15100), cold(60, 82), mem(6))},
			want: []string{"throughput c=16: 0.07", "cold start python p50: ratio 0.73", "idle instance python PSS each: 6.00 MB"},
		},
		{
			name: "one good run of three settles it",
			runs: []*bench.Report{
				report(warm(1.5, 0.1), rate(1000, 15000), cold(50, 82), mem(2.6)),
				report(warm(0.3, 0.1), rate(1000, 15000), cold(4, 82), mem(2.6)),
				report(warm(1.5, 0.1), rate(6000, 15000), cold(50, 82), mem(2.6)),
			},
		},
		{
			name: "the tail is not judged",
			runs: []*bench.Report{report(warm(0.259, 0.101), tail(50, 0.3))},
		},
		{
			// Even in a reference regenerated from a run that has them.
			name: "deploys and layered cold starts are not judged",
			ref:  report(warm(0.259, 0.101), deployed(70, 70), layered(5, 5)),
			runs: []*bench.Report{report(warm(0.259, 0.101), deployed(700, 70), layered(50, 5))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := ref
			if tc.ref != nil {
				ref = tc.ref
			}
			got, checked := bench.Regressions(ref, tc.runs)
			if checked == 0 {
				t.Fatal("nothing checked")
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %q does not say %q", got[i], w)
				}
			}
		})
	}
}
