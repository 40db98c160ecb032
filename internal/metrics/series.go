package metrics

import (
	"math"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// numStatuses is len(fn.Statuses), as an array length.
const numStatuses = 6

func init() {
	if len(fn.Statuses) != numStatuses {
		panic("metrics: numStatuses does not match fn.Statuses")
	}
}

// maxErrorTypes bounds the distinct error types one bucket counts; the
// rest are counted together as otherErrors. Error types come from user code.
const (
	maxErrorTypes = 16
	otherErrors   = "(other)"
)

// bucket holds what ended within one slot of time. Everything in it merges
// by adding, so buckets of seconds make minutes, and minutes saved before a
// restart add up with the ones after.
type bucket struct {
	slot     int64 // unix time / resolution; identifies which slot this is
	byStatus [numStatuses]uint64
	cold     uint64
	dur      Histogram // durations of the executions that ran
	init     Histogram // cold-start times
	mem      memory
	errors   map[string]uint64 // error type → count
}

// memory sums the peak memory executions reported.
type memory struct {
	n, sumKiB, maxKiB uint64
}

func (m *memory) merge(o *memory) {
	m.n += o.n
	m.sumKiB += o.sumKiB
	m.maxKiB = max(m.maxKiB, o.maxKiB)
}

// reset empties b for slot, keeping its maps for reuse.
func (b *bucket) reset(slot int64) {
	b.slot = slot
	b.byStatus = [numStatuses]uint64{}
	b.cold = 0
	b.dur.reset()
	b.init.reset()
	b.mem = memory{}
	clear(b.errors)
}

func (b *bucket) add(o *observation) {
	b.byStatus[o.status]++
	if o.cold {
		b.cold++
		b.init.add(o.initBucket, o.initMs)
	}
	if o.ran {
		b.dur.add(o.durBucket, o.durMs)
	}
	if o.memKiB > 0 {
		b.mem.n++
		b.mem.sumKiB += uint64(o.memKiB)
		b.mem.maxKiB = max(b.mem.maxKiB, uint64(o.memKiB))
	}
	if o.errType != "" {
		b.addErrors(o.errType, 1)
	}
}

func (b *bucket) addErrors(typ string, n uint64) {
	if b.errors == nil {
		b.errors = make(map[string]uint64)
	}
	if _, ok := b.errors[typ]; !ok && len(b.errors) >= maxErrorTypes {
		typ = otherErrors
	}
	b.errors[typ] += n
}

// merge adds o's counts to b.
func (b *bucket) merge(o *bucket) {
	for i, c := range o.byStatus {
		b.byStatus[i] += c
	}
	b.cold += o.cold
	b.dur.Merge(&o.dur)
	b.init.Merge(&o.init)
	b.mem.merge(&o.mem)
	for typ, n := range o.errors {
		b.addErrors(typ, n)
	}
}

func (b *bucket) total() uint64 {
	var n uint64
	for _, c := range b.byStatus {
		n += c
	}
	return n
}

// observation is one execution as the buckets count it, worked out once
// for the several buckets it goes into.
type observation struct {
	status     int
	cold, ran  bool
	durMs      float64
	durBucket  uint16
	initMs     float64
	initBucket uint16
	memKiB     int64
	errType    string
}

func observe(e *fn.Execution) observation {
	o := observation{
		status: statusIndex(e.Status),
		cold:   e.ColdStart,
		ran:    e.Status != fn.StatusRejected, // never ran: no latency to speak of
		durMs:  e.DurationMs,
		memKiB: e.PeakMemoryKiB,
	}
	if o.ran {
		o.durBucket = bucketOf(e.DurationMs)
	}
	if o.cold {
		o.initMs = e.InitMs
		o.initBucket = bucketOf(e.InitMs)
	}
	if e.Status != fn.StatusSuccess && e.Error != nil {
		o.errType = e.Error.Type
	}
	return o
}

func statusIndex(s fn.Status) int {
	for i, v := range fn.Statuses {
		if v == s {
			return i
		}
	}
	return numStatuses - 1 // unknown: count as rejected
}

// ring is a fixed number of buckets of one resolution, allocated when
// first used.
type ring struct {
	res     time.Duration
	size    int
	buckets []*bucket
}

func (r *ring) slotOf(t time.Time) int64 { return t.UnixNano() / int64(r.res) }

// at returns the bucket for slot, emptied if it held an older slot, or nil
// (and no allocation) when the ring has nothing and create is false.
func (r *ring) at(slot int64, create bool) *bucket {
	if r.buckets == nil {
		if !create {
			return nil
		}
		r.buckets = make([]*bucket, r.size)
	}
	i := slot % int64(r.size)
	if i < 0 {
		i += int64(r.size)
	}
	b := r.buckets[i]
	switch {
	case b == nil:
		if !create {
			return nil
		}
		b = &bucket{slot: slot}
		r.buckets[i] = b
	case b.slot != slot:
		if !create {
			return nil
		}
		b.reset(slot)
	}
	return b
}

// span is how much time the ring covers.
func (r *ring) span() time.Duration { return r.res * time.Duration(r.size) }

// series is one history: per-second buckets for 15 minutes and per-minute
// buckets for 24 hours.
type series struct {
	mu  sync.Mutex
	sec ring
	min ring
	// dirty is the oldest minute slot changed since the minutes were last
	// saved, math.MaxInt64 when none was.
	dirty int64
	// restored is the end (unix ns) of the latest minute loaded from the
	// store: the per-second buckets know nothing before it.
	restored int64
}

const (
	secondsKept = 15 * 60
	minutesKept = 24 * 60
)

func newSeries() *series {
	return &series{
		sec:   ring{res: time.Second, size: secondsKept},
		min:   ring{res: time.Minute, size: minutesKept},
		dirty: math.MaxInt64,
	}
}

func (s *series) add(at time.Time, o *observation) {
	ns := at.UnixNano()
	secSlot, minSlot := ns/int64(time.Second), ns/int64(time.Minute)
	s.mu.Lock()
	s.sec.at(secSlot, true).add(o)
	s.min.at(minSlot, true).add(o)
	s.dirty = min(s.dirty, minSlot)
	s.mu.Unlock()
}

// ringFor picks the ring that answers for the window ending at now: the
// per-second one when it covers the window and holds all of it (nothing in
// the window was restored from saved minutes), else the per-minute one.
func (s *series) ringFor(now time.Time, window time.Duration) *ring {
	s.mu.Lock()
	restored := s.restored
	s.mu.Unlock()
	if window <= s.sec.span() && now.Add(-window).UnixNano() >= restored {
		return &s.sec
	}
	return &s.min
}

// slots is the range of r's slots a window ending at now covers.
func slots(r *ring, now time.Time, window time.Duration) (first, last int64) {
	last = r.slotOf(now)
	first = last - int64((window+r.res-1)/r.res) + 1
	return first, last
}

// each calls f with every bucket of r from slot first to last that holds
// something, taking the series lock for one bucket at a time so that a
// long read never holds up recording for long.
func (s *series) each(r *ring, first, last int64, f func(b *bucket)) {
	for slot := max(first, last-int64(r.size)+1); slot <= last; slot++ {
		s.mu.Lock()
		if b := r.at(slot, false); b != nil {
			f(b)
		}
		s.mu.Unlock()
	}
}

// total merges the buckets of the window ending at now.
func (s *series) total(now time.Time, window time.Duration) *bucket {
	r := s.ringFor(now, window)
	first, last := slots(r, now, window)
	var sum bucket
	s.each(r, first, last, func(b *bucket) { sum.merge(b) })
	return &sum
}

// count is the number of executions in the window ending at now: total
// without the histograms, for rates.
func (s *series) count(now time.Time, window time.Duration) uint64 {
	r := s.ringFor(now, window)
	first, last := slots(r, now, window)
	var n uint64
	s.each(r, first, last, func(b *bucket) { n += b.total() })
	return n
}
