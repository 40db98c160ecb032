package metrics

import (
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// bucket holds what ended within one slot of time.
type bucket struct {
	slot     int64 // unix time / resolution; identifies which slot this is
	byStatus [6]uint64
	cold     uint64
	hist     Histogram
}

// ring is a fixed number of buckets of one resolution.
type ring struct {
	res     time.Duration
	buckets []bucket
}

func (r *ring) add(at time.Time, status int, e *fn.Execution) {
	slot := at.UnixNano() / int64(r.res)
	b := &r.buckets[slot%int64(len(r.buckets))]
	if b.slot != slot {
		*b = bucket{slot: slot}
	}
	b.byStatus[status]++
	if e.ColdStart {
		b.cold++
	}
	if e.Status != fn.StatusRejected { // never ran: no latency to speak of
		b.hist.Add(e.DurationMs)
	}
}

// span is how much time the ring covers.
func (r *ring) span() time.Duration { return r.res * time.Duration(len(r.buckets)) }

// series is one history: per-second buckets for 15 minutes and per-minute
// buckets for 24 hours.
type series struct {
	mu  sync.Mutex
	sec ring
	min ring
}

func newSeries() *series {
	return &series{
		sec: ring{res: time.Second, buckets: make([]bucket, 15*60)},
		min: ring{res: time.Minute, buckets: make([]bucket, 24*60)},
	}
}

func statusIndex(s fn.Status) int {
	for i, v := range fn.Statuses {
		if v == s {
			return i
		}
	}
	return len(fn.Statuses) - 1 // unknown: count as rejected
}

func (s *series) add(at time.Time, e *fn.Execution) {
	st := statusIndex(e.Status)
	s.mu.Lock()
	s.sec.add(at, st, e)
	s.min.add(at, st, e)
	s.mu.Unlock()
}

func (s *series) summary(now time.Time, window time.Duration) Summary {
	window = min(max(window, time.Second), MaxWindow)
	r := &s.sec
	if window > r.span() {
		r = &s.min
	}
	last := now.UnixNano() / int64(r.res)
	first := last - int64((window+r.res-1)/r.res) + 1
	var (
		byStatus [6]uint64
		cold     uint64
		hist     Histogram
	)
	s.mu.Lock()
	for i := range r.buckets {
		b := &r.buckets[i]
		if b.slot < first || b.slot > last {
			continue
		}
		for j, c := range b.byStatus {
			byStatus[j] += c
		}
		cold += b.cold
		hist.Merge(&b.hist)
	}
	s.mu.Unlock()

	sum := Summary{Window: window.String(), ByStatus: make(map[string]uint64, len(fn.Statuses))}
	for i, st := range fn.Statuses {
		sum.ByStatus[string(st)] = byStatus[i]
		sum.Invocations += byStatus[i]
	}
	sum.ColdStarts = cold
	sum.PerSecond = float64(sum.Invocations) / window.Seconds()
	if sum.Invocations > 0 {
		ran := sum.Invocations - byStatus[statusIndex(fn.StatusSuccess)]
		sum.ErrorRate = float64(ran) / float64(sum.Invocations)
	}
	q := hist.Quantiles(0.50, 0.95, 0.99)
	sum.DurationMs = Latency{P50: q[0], P95: q[1], P99: q[2], Mean: hist.Mean(), Max: hist.Max()}
	return sum
}
