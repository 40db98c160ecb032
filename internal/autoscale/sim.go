package autoscale

import (
	"container/heap"
	"time"
)

// Policy is what the simulator (and the engine) asks at each idle start. A
// *Tracker is one; FixedKeepAlive is the baseline.
type Policy interface {
	Observe(idle time.Duration)
	Windows() Windows
}

var (
	_ Policy = (*Tracker)(nil)
	_ Policy = FixedKeepAlive(0)
)

// FixedKeepAlive keeps a function's warm instances for a fixed time after it
// goes idle, whatever its history: Windows{KeepAlive: d}.
type FixedKeepAlive time.Duration

// Observe ignores the idle time.
func (FixedKeepAlive) Observe(time.Duration) {}

// Windows returns Windows{KeepAlive: d}.
func (d FixedKeepAlive) Windows() Windows { return Windows{KeepAlive: time.Duration(d)} }

// Result is what a replay counts.
type Result struct {
	Invocations int     `json:"invocations"`
	ColdStarts  int     `json:"coldStarts"` // calls that found no warm idle instance
	ColdPct     float64 `json:"coldPct"`    // 100 * ColdStarts / Invocations
	// IdleMBs is the memory warm instances held while not executing, in
	// MB·s: instances idle beside running ones, kept after the idle start,
	// and pre-warmed ones until they serve a call or are released.
	IdleMBs float64 `json:"idleMBs"`
	// Prewarms counts the idle periods in which an instance was pre-warmed;
	// WastedPrewarms those in which it was released before any call came.
	Prewarms       int `json:"prewarms"`
	WastedPrewarms int `json:"wastedPrewarms"`
	MaxInstances   int `json:"maxInstances"` // most instances alive at once
}

// Simulate replays a trace under a policy by event time, nothing slept, with
// the rules the engine's pool applies:
//
//   - Instances start on demand and run one call at a time. A call takes the
//     most recently used warm idle instance; when there is none it is a cold
//     start on a new instance (starts take no time: the replay counts, it does
//     not time them).
//   - While calls run, an idle instance beside them is released once it has
//     been idle for Prewarm+KeepAlive of the current decision.
//   - When the last running call ends the function goes idle and the policy
//     decides Windows. Prewarm 0: every instance stays warm while Warm(idle)
//     holds, i.e. for KeepAlive. Prewarm > 0: every instance is released at
//     once and one is pre-warmed while Warm(idle) holds. The call that ends
//     the idle period is warm exactly when Windows.Warm says so, and the
//     policy then observes the idle time.
//   - The last idle period is counted up to tr.Span.
func Simulate(tr Trace, p Policy, memoryMB float64) Result {
	var (
		r      Result
		ends   endHeap         // completion times of running calls
		stack  []time.Duration // idle-since of warm idle instances, oldest first
		idleAt = time.Duration(-1)
		w      = p.Windows()
		idleNS float64 // instance-nanoseconds warm and idle
		hits   int     // pre-warmed instances that served a call
	)
	dropUntil := func(i int, until time.Duration) { idleNS += float64(max(until-stack[i], 0)) }
	// expire releases the instances idle for the whole window by now, while
	// calls run.
	expire := func(now time.Duration) {
		h, n := w.Prewarm+w.KeepAlive, 0
		for n < len(stack) && stack[n]+h <= now {
			dropUntil(n, stack[n]+h)
			n++
		}
		stack = stack[n:]
	}
	// finish processes the completions up to and including t.
	finish := func(t time.Duration) {
		for len(ends) > 0 && ends[0] <= t {
			c := heap.Pop(&ends).(time.Duration)
			expire(c)
			stack = append(stack, c)
			if len(ends) > 0 {
				continue
			}
			idleAt, w = c, p.Windows() // the function goes idle
			if w.Releases() {
				for i := range stack {
					dropUntil(i, c)
				}
				stack = stack[:0]
			}
		}
	}
	// endIdle ends the idle period at t, by a call or the trace's end, and
	// reports whether the function had a warm instance then.
	endIdle := func(t time.Duration) bool {
		d := t - idleAt
		warm := w.Warm(d)
		if w.Releases() {
			idleNS += float64(w.WarmFor(d))
			if d >= w.Prewarm {
				r.Prewarms++
			}
			if warm {
				hits++
				stack = append(stack, t)
			}
			return warm
		}
		n := 0
		for i := range stack { // kept through the idle period
			if !warm {
				dropUntil(i, idleAt+w.KeepAlive)
			} else if stack[i]+w.Prewarm+w.KeepAlive <= t {
				dropUntil(i, t) // kept by the idle rule, gone now that calls run
			} else {
				stack[n] = stack[i]
				n++
			}
		}
		stack = stack[:n]
		return warm
	}
	for _, call := range tr.Calls {
		finish(call.At)
		if idleAt >= 0 {
			endIdle(call.At)
			p.Observe(call.At - idleAt)
			idleAt, w = -1, p.Windows()
		} else {
			expire(call.At)
		}
		r.Invocations++
		if n := len(stack); n > 0 {
			dropUntil(n-1, call.At)
			stack = stack[:n-1]
		} else {
			r.ColdStarts++
		}
		heap.Push(&ends, call.At+call.Duration)
		r.MaxInstances = max(r.MaxInstances, len(stack)+len(ends))
	}
	finish(time.Duration(1<<63 - 1))
	if idleAt >= 0 && tr.Span > idleAt {
		pre := r.Prewarms
		if endIdle(tr.Span) && w.Releases() { // still warm at the end: not (yet) wasted
			r.Prewarms = pre
			hits--
		}
		for i := range stack {
			dropUntil(i, tr.Span)
		}
	}
	r.WastedPrewarms = r.Prewarms - hits
	if r.Invocations > 0 {
		r.ColdPct = 100 * float64(r.ColdStarts) / float64(r.Invocations)
	}
	r.IdleMBs = memoryMB * idleNS / float64(time.Second)
	return r
}

type endHeap []time.Duration

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h endHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)        { *h = append(*h, x.(time.Duration)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
