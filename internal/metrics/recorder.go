package metrics

import (
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Recorder keeps the recent history of executions, system-wide and per
// function. It is safe for concurrent use.
type Recorder struct {
	all *series
	fns sync.Map // function id → *series
	now func() time.Time
}

// NewRecorder returns an empty recorder. now is the clock (nil: time.Now).
func NewRecorder(now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{all: newSeries(), now: now}
}

// Record counts one finished execution.
func (r *Recorder) Record(e *fn.Execution) {
	at := e.StartedAt.Add(time.Duration(e.DurationMs * float64(time.Millisecond)))
	r.all.add(at, e)
	s, ok := r.fns.Load(e.FunctionID)
	if !ok {
		s, _ = r.fns.LoadOrStore(e.FunctionID, newSeries())
	}
	s.(*series).add(at, e)
}

// Forget drops a deleted function's history.
func (r *Recorder) Forget(functionID string) { r.fns.Delete(functionID) }

// MaxWindow is the longest window Summary answers for.
const MaxWindow = 24 * time.Hour

// Summary is what happened over a window.
type Summary struct {
	Window      string            `json:"window"`
	Invocations uint64            `json:"invocations"`
	ByStatus    map[string]uint64 `json:"byStatus"`
	ColdStarts  uint64            `json:"coldStarts"`
	PerSecond   float64           `json:"invocationsPerSecond"`
	ErrorRate   float64           `json:"errorRate"`
	DurationMs  Latency           `json:"durationMs"`
}

// Latency summarises durations; percentiles are within 1%.
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// System summarises every execution over window.
func (r *Recorder) System(window time.Duration) Summary {
	return r.all.summary(r.now(), window)
}

// Function summarises one function's executions over window.
func (r *Recorder) Function(functionID string, window time.Duration) Summary {
	s, ok := r.fns.Load(functionID)
	if !ok {
		return newSeries().summary(r.now(), window)
	}
	return s.(*series).summary(r.now(), window)
}
