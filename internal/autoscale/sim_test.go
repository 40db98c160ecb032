package autoscale_test

import (
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
)

// always decides the same windows, whatever the history.
type always autoscale.Windows

func (always) Observe(time.Duration)        {}
func (a always) Windows() autoscale.Windows { return autoscale.Windows(a) }

func trace(span time.Duration, calls ...autoscale.Call) autoscale.Trace {
	return autoscale.Trace{Name: "hand", Span: span, Calls: calls}
}

func TestSimulate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tr     autoscale.Trace
		p      autoscale.Policy
		want   autoscale.Result
		idleMB float64 // MB·s at 1 MB per instance
	}{{
		name: "fixed keep-alive",
		// Cold; warm after 59s idle; cold after 18m59s; 9m59s idle at the end.
		tr:     trace(30*min, autoscale.Call{At: 0, Duration: sec}, autoscale.Call{At: min, Duration: sec}, autoscale.Call{At: 20 * min, Duration: sec}),
		p:      autoscale.FixedKeepAlive(10 * min),
		want:   autoscale.Result{Invocations: 3, ColdStarts: 2, MaxInstances: 1},
		idleMB: 59 + 600 + 599,
	}, {
		name: "prewarm: one hit, one wasted",
		// Idle 5m59s: pre-warmed at 5m, warm (59s held). Idle 13m59s:
		// pre-warmed 5m to 7m, released, cold (120s held).
		tr:     trace(20*min+sec, autoscale.Call{At: 0, Duration: sec}, autoscale.Call{At: 6 * min, Duration: sec}, autoscale.Call{At: 20 * min, Duration: sec}),
		p:      always{Prewarm: 5 * min, KeepAlive: 2 * min},
		want:   autoscale.Result{Invocations: 3, ColdStarts: 2, Prewarms: 2, WastedPrewarms: 1, MaxInstances: 1},
		idleMB: 59 + 120,
	}, {
		name: "overlapping calls start a second instance",
		// Two cold starts; instance A idle 10s to 20s beside B, then both
		// kept 1m after the function goes idle at 20s (until the end at 50s).
		tr:     trace(50*sec, autoscale.Call{At: 0, Duration: 10 * sec}, autoscale.Call{At: 5 * sec, Duration: 15 * sec}),
		p:      autoscale.FixedKeepAlive(min),
		want:   autoscale.Result{Invocations: 2, ColdStarts: 2, MaxInstances: 2},
		idleMB: 10 + 30 + 30,
	}, {
		name: "idle beside a running call only for the whole window",
		// A (0-1s) and B (0.5s-100s): A is released at 1s+30s while B runs;
		// the call at 50s is cold.
		tr:     trace(100*sec, autoscale.Call{At: 0, Duration: sec}, autoscale.Call{At: sec / 2, Duration: 100 * sec}, autoscale.Call{At: 50 * sec, Duration: sec}),
		p:      autoscale.FixedKeepAlive(30 * sec),
		want:   autoscale.Result{Invocations: 3, ColdStarts: 3, MaxInstances: 2},
		idleMB: 30 + 30,
	}, {
		name: "zero windows: everything cold, nothing held",
		tr:   trace(time.Hour, autoscale.Call{At: 0, Duration: sec}, autoscale.Call{At: 2 * sec, Duration: sec}),
		p:    autoscale.FixedKeepAlive(0),
		want: autoscale.Result{Invocations: 2, ColdStarts: 2, MaxInstances: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := autoscale.Simulate(tc.tr, tc.p, 1)
			if math.Abs(got.IdleMBs-tc.idleMB) > 1e-6 {
				t.Errorf("idle = %.3f MB·s, want %.3f", got.IdleMBs, tc.idleMB)
			}
			tc.want.ColdPct = 100 * float64(tc.want.ColdStarts) / float64(tc.want.Invocations)
			got.IdleMBs = 0
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSimulateScalesWithMemory(t *testing.T) {
	tr := autoscale.Traces(1, 1)[0]
	a := autoscale.Simulate(tr, autoscale.FixedKeepAlive(10*min), 1)
	b := autoscale.Simulate(tr, autoscale.FixedKeepAlive(10*min), 256)
	if a.IdleMBs <= 0 || math.Abs(b.IdleMBs-256*a.IdleMBs) > 1e-6*b.IdleMBs {
		t.Errorf("1 MB: %.1f MB·s, 256 MB: %.1f MB·s", a.IdleMBs, b.IdleMBs)
	}
}

func TestTracesAreDeterministic(t *testing.T) {
	a, b, c := autoscale.Traces(7, 1), autoscale.Traces(7, 1), autoscale.Traces(7, 2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different traces")
	}
	for i, tr := range a {
		if reflect.DeepEqual(tr.Calls, c[i].Calls) {
			t.Errorf("%s: seeds 1 and 2 gave the same trace", tr.Name)
		}
		if !slices.IsSortedFunc(tr.Calls, func(x, y autoscale.Call) int { return int(x.At - y.At) }) {
			t.Errorf("%s: calls not sorted", tr.Name)
		}
		if n := len(tr.Calls); n == 0 || tr.Calls[0].At < 0 || tr.Calls[n-1].At >= tr.Span || tr.Span != 7*autoscale.Day {
			t.Errorf("%s: %d calls, span %s", tr.Name, n, tr.Span)
		}
	}
}

// The generators follow their documented distributions.
func TestTraceRates(t *testing.T) {
	want := map[string]float64{ // expected calls in 7 days
		"periodic-30m": 7*48 - 1,
		"periodic-5m":  7*288 - 1,
		"poisson-20s":  7 * 86400 / 20,
		"poisson-5m":   7 * 288,
		"daily":        7,
		"bursty":       7 * 8 * 200, // 8 bursts a day of 200 calls on average
		"rare-6h":      7 * 4,
		"diurnal":      7 * (300 + 1),
	}
	for _, tr := range autoscale.Traces(7, 1) {
		w, ok := want[tr.Name]
		if !ok {
			t.Errorf("%s: no expected rate", tr.Name)
			continue
		}
		// Poisson counts: within 4 standard deviations; bursts and rare
		// calls vary more (few bursts or calls), so a looser bound there.
		tol := 4 * math.Sqrt(w)
		if tr.Name == "bursty" || tr.Name == "rare-6h" {
			tol = 0.5 * w
		}
		if n := float64(len(tr.Calls)); math.Abs(n-w) > tol {
			t.Errorf("%s: %.0f calls, want %.0f ± %.0f", tr.Name, n, w, tol)
		}
	}
}
