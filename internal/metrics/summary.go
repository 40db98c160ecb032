package metrics

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// MaxWindow is the longest window Summary answers for.
const MaxWindow = 24 * time.Hour

// Summary is what happened over a window.
type Summary struct {
	Window      string            `json:"window"`
	Invocations uint64            `json:"invocations"`
	ByStatus    map[string]uint64 `json:"byStatus"`
	ColdStarts  uint64            `json:"coldStarts"`
	// ColdStartRate is the share of the executions that ran (all but the
	// rejected) that started a new instance.
	ColdStartRate float64 `json:"coldStartRate"`
	PerSecond     float64 `json:"invocationsPerSecond"`
	// ErrorRate is the share of invocations that did not succeed.
	ErrorRate  float64 `json:"errorRate"`
	DurationMs Latency `json:"durationMs"`
	// InitDurationMs summarises cold starts: starting an instance and
	// loading the handler.
	InitDurationMs Latency `json:"initDurationMs"`
	// PeakMemoryKiB summarises the peak memory of the worker each execution
	// ran in, as far as it was reported.
	PeakMemoryKiB MemoryUse `json:"peakMemoryKiB"`
	// Errors are the most frequent error types, most frequent first.
	Errors []ErrorCount `json:"topErrors"`
}

// Latency summarises durations; percentiles are within 1%.
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// MemoryUse summarises per-execution peak memory.
type MemoryUse struct {
	Peak    uint64  `json:"peak"`    // the largest
	Average float64 `json:"average"` // the mean
	Samples uint64  `json:"samples"` // executions that reported it
}

// ErrorCount is how often one error type occurred.
type ErrorCount struct {
	Type  string `json:"type"`
	Count uint64 `json:"count"`
}

// topErrors is how many error types a Summary lists.
const topErrors = 5

// clampWindow keeps a window within what the rings answer for.
func clampWindow(w time.Duration) time.Duration { return min(max(w, time.Second), MaxWindow) }

func summarize(b *bucket, window time.Duration) Summary {
	sum := Summary{Window: window.String(), ByStatus: make(map[string]uint64, numStatuses), Errors: []ErrorCount{}}
	for i, st := range fn.Statuses {
		sum.ByStatus[string(st)] = b.byStatus[i]
		sum.Invocations += b.byStatus[i]
	}
	sum.ColdStarts = b.cold
	sum.PerSecond = float64(sum.Invocations) / window.Seconds()
	if sum.Invocations > 0 {
		failed := sum.Invocations - b.byStatus[statusIndex(fn.StatusSuccess)]
		sum.ErrorRate = float64(failed) / float64(sum.Invocations)
	}
	if ran := sum.Invocations - b.byStatus[statusIndex(fn.StatusRejected)]; ran > 0 {
		sum.ColdStartRate = float64(b.cold) / float64(ran)
	}
	sum.DurationMs = latency(&b.dur)
	sum.InitDurationMs = latency(&b.init)
	sum.PeakMemoryKiB = MemoryUse{Peak: b.mem.maxKiB, Samples: b.mem.n}
	if b.mem.n > 0 {
		sum.PeakMemoryKiB.Average = float64(b.mem.sumKiB) / float64(b.mem.n)
	}
	for typ, n := range b.errors {
		sum.Errors = append(sum.Errors, ErrorCount{Type: typ, Count: n})
	}
	slices.SortFunc(sum.Errors, func(x, y ErrorCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), strings.Compare(x.Type, y.Type))
	})
	if len(sum.Errors) > topErrors {
		sum.Errors = sum.Errors[:topErrors]
	}
	return sum
}

func latency(h *Histogram) Latency {
	q := h.Quantiles(0.50, 0.95, 0.99)
	return Latency{P50: q[0], P95: q[1], P99: q[2], Mean: h.Mean(), Max: h.Max()}
}

// Rates are invocations per second over the last 1, 5 and 15 minutes.
type Rates struct {
	M1  float64 `json:"1m"`
	M5  float64 `json:"5m"`
	M15 float64 `json:"15m"`
}

func rates(s *series, now time.Time) Rates {
	rate := func(w time.Duration) float64 { return float64(s.count(now, w)) / w.Seconds() }
	return Rates{M1: rate(time.Minute), M5: rate(5 * time.Minute), M15: rate(15 * time.Minute)}
}

// Point is one step of a time series, for charts.
type Point struct {
	Start       time.Time         `json:"start"`
	Invocations uint64            `json:"invocations"`
	ByStatus    map[string]uint64 `json:"byStatus"`
	ColdStarts  uint64            `json:"coldStarts"`
	P50Ms       float64           `json:"p50Ms"`
	P95Ms       float64           `json:"p95Ms"`
}

// SeriesStep checks a series step for a window and picks one when step is
// zero: about 60 points. Steps of whole minutes come from the per-minute
// buckets, which survive restarts; finer steps, whole seconds, from the
// per-second ones, which cover the last 15 minutes this process ran.
func SeriesStep(window, step time.Duration) (time.Duration, error) {
	window = clampWindow(window)
	if step == 0 {
		step = (window + 59) / 60
		if window > secondsKept*time.Second || step >= time.Minute {
			step = (step + time.Minute - 1).Truncate(time.Minute)
		} else {
			step = (step + time.Second - 1).Truncate(time.Second)
		}
	}
	switch {
	case step <= 0 || step > window:
		return 0, fmt.Errorf("step %s: want a step from 1s up to the window, %s", step, window)
	case step%time.Minute == 0:
		return step, nil
	case step%time.Second != 0:
		return 0, fmt.Errorf("step %s: want whole seconds (or whole minutes)", step)
	case window > secondsKept*time.Second:
		return 0, fmt.Errorf("step %s: per-second steps reach back 15 minutes; over %s use whole minutes", step, window)
	}
	return step, nil
}

// points cuts the window ending at now into steps (as SeriesStep checked
// them), oldest first.
func points(s *series, now time.Time, window, step time.Duration) []Point {
	window = clampWindow(window)
	r := &s.sec
	if step%time.Minute == 0 {
		r = &s.min
	}
	per := int64(step / r.res) // ring slots per point
	lastPoint := r.slotOf(now) / per
	n := int64((window + step - 1) / step)
	out := make([]Point, n)
	for i := range out {
		p := lastPoint - n + 1 + int64(i)
		var sum bucket
		s.each(r, p*per, p*per+per-1, func(b *bucket) { sum.merge(b) })
		pt := Point{Start: time.Unix(0, p*int64(step)).UTC(), ByStatus: make(map[string]uint64, numStatuses), ColdStarts: sum.cold}
		for j, st := range fn.Statuses {
			pt.ByStatus[string(st)] = sum.byStatus[j]
			pt.Invocations += sum.byStatus[j]
		}
		q := sum.dur.Quantiles(0.50, 0.95)
		pt.P50Ms, pt.P95Ms = q[0], q[1]
		out[i] = pt
	}
	return out
}
