package metrics

import (
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Config configures a Recorder. Every field is optional.
type Config struct {
	Now func() time.Time // the clock (time.Now)
	// Registry receives the recorder's Prometheus collectors; nil leaves
	// them out (and Record cheaper).
	Registry prometheus.Registerer
	// Store keeps per-minute aggregates across restarts; nil keeps none.
	Store        MinuteStore
	SaveInterval time.Duration // how often changed minutes are saved; 0: only by Save and Close
	Retention    time.Duration // how long saved minutes are kept (7 days)
	Logger       *slog.Logger
}

// Recorder keeps the recent history of executions, system-wide and per
// function, feeds the Prometheus collectors and publishes each execution to
// the live event stream. It is safe for concurrent use.
type Recorder struct {
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	all  *series
	fns  sync.Map // function id → *function
	gone sync.Map // function id → struct{}: forgotten, never recorded again
	// versions hold the history of each published version that ran
	// ("<id>@<n>" → *series), in memory only: a rollout judges its steps
	// and charts them, a restart forgets them.
	versions sync.Map
	prom     *promMetrics
	events   *Events

	// Saving minutes (persist.go).
	saveMu    sync.Mutex // one Save at a time
	mu        sync.Mutex
	deleted   []string // forgotten functions whose saved minutes must go (with a Store)
	lastPrune time.Time
	stop      chan struct{}
	stopped   chan struct{}
	running   atomic.Bool // the saving goroutine was started
	closed    atomic.Bool
}

// function is what the recorder keeps of one function.
type function struct {
	series *series
	prom   atomic.Pointer[fnProm] // its Prometheus series, once it recorded
}

// New returns an empty recorder; Start loads saved minutes and begins
// saving.
func New(cfg Config) *Recorder {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Recorder{
		cfg:     cfg,
		now:     cfg.Now,
		log:     cfg.Logger.With("component", "metrics"),
		all:     newSeries(),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if cfg.Registry != nil {
		r.prom = newPromMetrics(cfg.Registry)
	}
	r.events = newEvents(r.prom)
	return r
}

// NewRecorder returns a recorder with clock now (nil: time.Now) and nothing
// else: no Prometheus collectors, nothing saved.
func NewRecorder(now func() time.Time) *Recorder { return New(Config{Now: now}) }

// Record counts one finished execution of f. It is on the invoke path:
// a few map increments under per-series locks, atomic adds for Prometheus
// and a non-blocking send to each event subscriber.
func (r *Recorder) Record(f *fn.Function, e *fn.Execution) {
	at := e.StartedAt.Add(time.Duration(e.DurationMs * float64(time.Millisecond)))
	o := observe(e)
	r.all.add(at, &o)
	if m := r.function(e.FunctionID, true); m != nil {
		m.series.add(at, &o)
		if r.prom != nil {
			r.prom.observe(r, m, f, e, &o)
		}
		if e.Version > 0 {
			v, _ := r.versions.LoadOrStore(versionKey(e.FunctionID, e.Version), newSeries())
			v.(*series).add(at, &o)
		}
	}
	r.events.publish(f, e)
}

// function returns what the recorder keeps of a function, creating it if
// create and the function was not forgotten; nil otherwise.
func (r *Recorder) function(id string, create bool) *function {
	if v, ok := r.fns.Load(id); ok {
		return v.(*function)
	}
	if !create {
		return nil
	}
	if _, gone := r.gone.Load(id); gone {
		return nil // a call that ended after its function was deleted
	}
	v, _ := r.fns.LoadOrStore(id, &function{series: newSeries()})
	return v.(*function)
}

// Forget drops a deleted function's history, its Prometheus series and its
// saved minutes (at the next save). Executions of it that end later still
// count system-wide.
func (r *Recorder) Forget(functionID string) {
	r.gone.Store(functionID, struct{}{})
	r.versions.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), functionID+"@") {
			r.versions.Delete(k)
		}
		return true
	})
	if v, ok := r.fns.LoadAndDelete(functionID); ok && r.prom != nil {
		if p := v.(*function).prom.Load(); p != nil {
			r.prom.forget(p)
		}
	}
	if r.cfg.Store != nil {
		r.requeue([]string{functionID})
	}
}

// forgotten reports whether Forget was called for functionID.
func (r *Recorder) forgotten(functionID string) bool {
	_, gone := r.gone.Load(functionID)
	return gone
}

// Events is the live stream of executions.
func (r *Recorder) Events() *Events { return r.events }

// System summarises every execution over window.
func (r *Recorder) System(window time.Duration) Summary {
	window = clampWindow(window)
	return summarize(r.all.total(r.now(), window), window)
}

// Function summarises one function's executions over window.
func (r *Recorder) Function(functionID string, window time.Duration) Summary {
	window = clampWindow(window)
	m := r.function(functionID, false)
	if m == nil {
		return summarize(new(bucket), window)
	}
	return summarize(m.series.total(r.now(), window), window)
}

func versionKey(functionID string, version int) string {
	return functionID + "@" + strconv.Itoa(version)
}

// Version summarises the executions of one published version of a
// function over window.
func (r *Recorder) Version(functionID string, version int, window time.Duration) Summary {
	window = clampWindow(window)
	v, ok := r.versions.Load(versionKey(functionID, version))
	if !ok {
		return summarize(new(bucket), window)
	}
	return summarize(v.(*series).total(r.now(), window), window)
}

// VersionSeries is Series for one published version of a function.
func (r *Recorder) VersionSeries(functionID string, version int, window, step time.Duration) []Point {
	s := newSeries()
	if v, ok := r.versions.Load(versionKey(functionID, version)); ok {
		s = v.(*series)
	}
	return points(s, r.now(), window, step)
}

// seriesOf is the history of a function, or the system's for "".
func (r *Recorder) seriesOf(functionID string) *series {
	if functionID == "" {
		return r.all
	}
	if m := r.function(functionID, false); m != nil {
		return m.series
	}
	return nil
}

// Rates are a function's invocation rates, or the system's for "".
func (r *Recorder) Rates(functionID string) Rates {
	s := r.seriesOf(functionID)
	if s == nil {
		return Rates{}
	}
	return rates(s, r.now())
}

// Series cuts the window into steps (checked by SeriesStep) for a function,
// or the system for "", oldest first.
func (r *Recorder) Series(functionID string, window, step time.Duration) []Point {
	s := r.seriesOf(functionID)
	if s == nil {
		s = newSeries()
	}
	return points(s, r.now(), window, step)
}

// StoreWrite counts one batch of execution records written to the store.
func (r *Recorder) StoreWrite(records int, took time.Duration, err error) {
	if r.prom != nil {
		r.prom.storeWrite(records, took, err)
	}
}
