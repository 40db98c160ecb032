package soak_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// tolerance is how much a quantity may grow before the soak calls it a
// leak. Each bound is Abs plus Rel times the median of the samples after
// the warm-up.
type tolerance struct {
	// Abs and Rel bound the growth over an hour projected from the slope.
	Abs, Rel float64
	// Last bounds how far the final sample may be above the median.
	Last float64
	// MinRise is the least growth over the fitted samples that can fail
	// the slope check: a step of a few (one more instance, a few more
	// runtime threads) in a short run fits a steep, clean slope, but it is
	// not a leak.
	MinRise float64
	// Settle is how long after the start the quantity may still be
	// filling up by design; samples before it count as warm-up too.
	Settle time.Duration
}

// bound is the growth t allows for a quantity whose median is median.
func (t tolerance) bound(median float64) float64 { return t.Abs + t.Rel*median }

// trend is what checkTrend found in one quantity's samples.
type trend struct {
	Median, Last float64
	// PerHour is the least-squares slope projected over an hour; Low is the
	// lower end of its confidence interval (the slope less four standard
	// errors, projected likewise).
	PerHour, Low float64
	// Rise is the fitted growth from the first fitted sample to the last.
	Rise float64
	// Samples is how many samples were fitted, after the warm-up.
	Samples int
}

// warmUp is the share of the samples checkTrend ignores at the start: the
// server's pools, caches and metric buckets fill up there.
const warmUp = 0.2

// checkTrend fits a least-squares line to the samples (at in seconds,
// values) after the warm-up (the first fifth of them, and those before
// tol.Settle) and reports an error when the quantity grows:
// when even the low end of the slope's confidence interval, projected over
// an hour, exceeds tol's bound and the fitted line rises by more than
// tol.MinRise, or when the last sample is more than
// tol.Last above the median. Using the low end makes a short, noisy run
// pass unless its growth is both steep and clear; an hour's run fits many
// more samples over a longer time, so its interval is narrow and a slow
// leak shows. Falling values never fail.
func checkTrend(at, values []float64, tol tolerance) (trend, error) {
	if len(at) != len(values) {
		return trend{}, fmt.Errorf("%d times for %d values", len(at), len(values))
	}
	skip := int(math.Ceil(warmUp * float64(len(values))))
	for skip < len(at) && at[skip] < tol.Settle.Seconds() {
		skip++
	}
	at, values = at[skip:], values[skip:]
	var tr trend
	tr.Samples = len(values)
	if tr.Samples < 5 {
		return tr, fmt.Errorf("%d samples after the warm-up, need at least 5", tr.Samples)
	}
	tr.Median = median(values)
	tr.Last = values[len(values)-1]

	n := float64(len(values))
	var mt, mv float64
	for i := range values {
		mt += at[i]
		mv += values[i]
	}
	mt, mv = mt/n, mv/n
	var stt, stv float64
	for i := range values {
		stt += (at[i] - mt) * (at[i] - mt)
		stv += (at[i] - mt) * (values[i] - mv)
	}
	if stt == 0 {
		return tr, fmt.Errorf("all samples at the same time")
	}
	slope := stv / stt
	var sse float64
	for i := range values {
		r := values[i] - (mv + slope*(at[i]-mt))
		sse += r * r
	}
	se := math.Sqrt(sse / (n - 2) / stt)
	hour := time.Hour.Seconds()
	tr.PerHour = slope * hour
	tr.Low = (slope - 4*se) * hour
	tr.Rise = slope * (at[len(at)-1] - at[0])

	bound := tol.bound(tr.Median)
	if tr.Low > bound && tr.Rise > tol.MinRise {
		return tr, fmt.Errorf("grows %.4g an hour (at least %.4g), more than %.4g", tr.PerHour, tr.Low, bound)
	}
	if tr.Last > tr.Median+tol.Last {
		return tr, fmt.Errorf("last sample %.4g is more than %.4g above the median %.4g", tr.Last, tol.Last, tr.Median)
	}
	return tr, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func TestCheckTrend(t *testing.T) {
	// Series of a 2-minute run sampled every 5 s, and of an hour's every
	// 10 s, around a level of 100 with noise of ±20 (uniform), as
	// goroutines are under load.
	series := func(seed uint64, count int, every, level, perHour, noise float64) (at, v []float64) {
		r := rand.New(rand.NewPCG(seed, 1))
		for i := range count {
			x := float64(i) * every
			at = append(at, x)
			v = append(v, level+perHour*x/3600+noise*(2*r.Float64()-1))
		}
		return at, v
	}
	tol := tolerance{Abs: 50, Rel: 0.5, Last: 40, MinRise: 20}
	tests := []struct {
		name    string
		count   int
		every   float64
		perHour float64
		noise   float64
		spike   float64 // added to the last sample
		step    float64 // added to the second half
		fails   bool
	}{
		{name: "flat and quiet", count: 24, every: 5},
		{name: "flat and noisy, short run", count: 24, every: 5, noise: 20},
		{name: "flat and noisy, hour", count: 360, every: 10, noise: 20},
		{name: "falling", count: 24, every: 5, perHour: -3000, noise: 20},
		{name: "slow leak over an hour", count: 360, every: 10, perHour: 300, noise: 20, fails: true},
		{name: "fast leak in a short run", count: 24, every: 5, perHour: 20000, noise: 20, fails: true},
		{name: "jump at the end", count: 24, every: 5, spike: 80, fails: true},
		{name: "step of a few in a short run", count: 24, every: 5, step: 5},
		{name: "step of many in a short run", count: 24, every: 5, step: 60, fails: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Many seeds: the check must hold for every draw of the noise,
			// not for a lucky one.
			for seed := range uint64(1000) {
				at, v := series(seed, tc.count, tc.every, 100, tc.perHour, tc.noise)
				v[len(v)-1] += tc.spike
				for i := len(v) / 2; i < len(v); i++ {
					v[i] += tc.step
				}
				tr, err := checkTrend(at, v, tol)
				if (err != nil) != tc.fails {
					t.Fatalf("seed %d: %+v: error %v, want failure %v", seed, tr, err, tc.fails)
				}
			}
		})
	}
	t.Run("settling", func(t *testing.T) {
		// Fills for the first 15 minutes of a 20-minute run, then flat.
		var at, v []float64
		for i := range 120 {
			x := float64(i) * 10
			at = append(at, x)
			v = append(v, 100+min(x, 900)/3)
		}
		if _, err := checkTrend(at, v, tol); err == nil {
			t.Fatal("growth within the warm-up's 20% not reported without Settle")
		}
		settled := tol
		settled.Settle = 16 * time.Minute
		if tr, err := checkTrend(at, v, settled); err != nil {
			t.Fatalf("%+v: %v", tr, err)
		}
	})
	t.Run("too few samples", func(t *testing.T) {
		if _, err := checkTrend([]float64{0, 1, 2, 3, 4}, []float64{1, 1, 1, 1, 1}, tol); err == nil {
			t.Fatal("5 samples, 4 after the warm-up: no error")
		}
	})
}
