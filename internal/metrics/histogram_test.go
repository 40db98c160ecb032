package metrics_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

func exact(sorted []float64, q float64) float64 {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(rank, 0)]
}

func TestHistogramPercentilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		"uniform 0-100ms":      func() float64 { return rng.Float64() * 100 },
		"exponential mean 5ms": func() float64 { return rng.ExpFloat64() * 5 },
		"lognormal":            func() float64 { return math.Exp(rng.NormFloat64()*2 - 1) },
		"bimodal warm/cold": func() float64 {
			return map[bool]float64{true: 0.3, false: 40}[rng.IntN(10) > 0] * (1 + rng.Float64()/10)
		},
	}
	for name, draw := range dists {
		t.Run(name, func(t *testing.T) {
			var h metrics.Histogram
			vals := make([]float64, 100000)
			for i := range vals {
				vals[i] = draw()
				h.Add(vals[i])
			}
			sort.Float64s(vals)
			qs := []float64{0.5, 0.9, 0.95, 0.99, 0.999}
			got := h.Quantiles(qs...)
			for i, q := range qs {
				want := exact(vals, q)
				if want < 0.001 {
					continue // below the histogram's floor
				}
				if rel := math.Abs(got[i]-want) / want; rel > 0.01 {
					t.Errorf("p%v = %.4f, exact %.4f: error %.2f%% > 1%%", q*100, got[i], want, rel*100)
				}
			}
			if h.Count() != uint64(len(vals)) {
				t.Errorf("count %d, want %d", h.Count(), len(vals))
			}
		})
	}
}

func TestHistogramMergeEqualsWhole(t *testing.T) {
	var a, b, whole metrics.Histogram
	for i := 1; i <= 1000; i++ {
		v := float64(i) / 10
		whole.Add(v)
		if i%2 == 0 {
			a.Add(v)
		} else {
			b.Add(v)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.5, 0.99} {
		if x, y := a.Quantiles(q)[0], whole.Quantiles(q)[0]; x != y {
			t.Errorf("merged p%v = %v, whole %v", q*100, x, y)
		}
	}
}

func TestRecorderWindowCounts(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := metrics.NewRecorder(func() time.Time { return now })
	add := func(ago time.Duration, fnID string, st fn.Status, cold bool, ms float64) {
		r.Record(nil, &fn.Execution{FunctionID: fnID, Status: st, ColdStart: cold, DurationMs: ms, StartedAt: now.Add(-ago)})
	}
	for i := range 10 {
		add(time.Duration(i)*time.Second, "a", fn.StatusSuccess, i == 0, 10)
	}
	add(2*time.Second, "a", fn.StatusError, false, 20)
	add(2*time.Second, "b", fn.StatusTimeout, true, 1000)
	add(20*time.Minute, "a", fn.StatusSuccess, false, 10) // outside 15m, inside 1h

	s := r.Function("a", 15*time.Minute)
	if s.Invocations != 11 || s.ByStatus["success"] != 10 || s.ByStatus["error"] != 1 || s.ColdStarts != 1 {
		t.Fatalf("function a over 15m: %+v", s)
	}
	if s.ErrorRate != 1.0/11 {
		t.Errorf("error rate %v, want 1/11", s.ErrorRate)
	}
	if s := r.Function("a", time.Hour); s.Invocations != 12 {
		t.Errorf("function a over 1h: %d invocations, want 12", s.Invocations)
	}
	if s := r.Function("a", 5*time.Second); s.Invocations != 6 { // 0..4 s ago and the error
		t.Errorf("function a over 5s: %d invocations, want 6", s.Invocations)
	}
	sys := r.System(15 * time.Minute)
	if sys.Invocations != 12 || sys.ByStatus["timeout"] != 1 || sys.ColdStarts != 2 {
		t.Fatalf("system over 15m: %+v", sys)
	}
	if sys.DurationMs.Max != 1000 {
		t.Errorf("max %v, want 1000", sys.DurationMs.Max)
	}
}

func TestHistogramJSONRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var h metrics.Histogram
	for range 10000 {
		h.Add(math.Exp(rng.NormFloat64()*3) * 2)
	}
	h.Add(0)       // bucket 0
	h.Add(3600000) // an hour
	b, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	var back metrics.Histogram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	qs := []float64{0.001, 0.5, 0.9, 0.99, 0.9999, 1}
	if back.Count() != h.Count() || back.Mean() != h.Mean() || back.Max() != h.Max() ||
		!slices.Equal(back.Quantiles(qs...), h.Quantiles(qs...)) {
		t.Errorf("decoded histogram differs: count %d/%d mean %v/%v max %v/%v quantiles %v/%v",
			back.Count(), h.Count(), back.Mean(), h.Mean(), back.Max(), h.Max(), back.Quantiles(qs...), h.Quantiles(qs...))
	}
	for _, bad := range []string{`{"scheme":"linear","buckets":[]}`, `{"scheme":"log1.02-from-1us","buckets":[[70000,1]]}`, `[`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("decoding %s succeeded", bad)
		}
	}
}
