package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Config configures an Engine. Zero durations take the defaults noted; a
// zero ReapInterval or FlushInterval turns that background job off, so tests
// can drive time by hand.
type Config struct {
	Drivers map[string]driver.Driver
	// Code finds the local directories of a function's code and layers
	// for its instances (functions.Service.Code). Without it, drivers
	// write the function's inline files themselves.
	Code CodeSource
	// Secrets reveals the secrets functions reference (SecretEnv), at
	// each instance's start. Without it, a function that references one
	// cannot start.
	Secrets      SecretSource
	Records      RecordStore
	Metrics      *metrics.Recorder
	Logger       *slog.Logger
	QueueTimeout time.Duration // how long a call waits for a busy function (5s)
	// KeepAlive is how long idle instances are kept (10m) for functions
	// that set none: fixed, or with Adaptive the fallback of each
	// function's adaptive policy (package autoscale) while its history of
	// idle times says too little.
	KeepAlive    time.Duration
	Adaptive     bool
	ReapInterval time.Duration // how often pools are scaled
	// FreezeAfter is how long an instance stays idle before it is frozen,
	// if its driver can freeze it (0: never): what a handler left running
	// between calls then uses no CPU, and the next call thaws it.
	FreezeAfter time.Duration
	LogLimit    int // bytes of logs per execution (64 KiB)
	Retention   int // executions kept per function (10,000)

	FlushInterval time.Duration // how often records are written
	BatchSize     int           // records per write (512)
	RecordBuffer  int           // records waiting to be written (65,536)
	// RecordBufferBytes bounds what the records kept for an unavailable
	// store hold (256 MiB): past it, records arriving lose their event and
	// result, then the oldest are dropped.
	RecordBufferBytes int
}

// CodeSource finds what an instance of a function runs: the directory of
// its code and those of its layers, on this node.
type CodeSource interface {
	Code(ctx context.Context, f *fn.Function) (dir string, layers []string, err error)
}

// spec is the instance spec of f: its code and layers found on this
// node, and the values of the secrets it references (in a copy of f).
func (e *Engine) spec(ctx context.Context, f *fn.Function) (driver.InstanceSpec, error) {
	sp := driver.InstanceSpec{Function: f, LogLimit: e.cfg.LogLimit}
	var err error
	if sp.Function, err = e.withSecrets(ctx, f); err != nil {
		return sp, err
	}
	if e.cfg.Code == nil {
		return sp, nil
	}
	if sp.Code, sp.Layers, err = e.cfg.Code.Code(ctx, f); err != nil {
		return sp, fmt.Errorf("the code of %q: %w", f.Name, err)
	}
	return sp, nil
}

// Engine runs functions.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	pools sync.Map // function id → *pool
	// poolsMu orders the creation of pools with Remove, so that a pool is
	// never created for a function after its removal.
	poolsMu sync.Mutex
	removed *removedIDs
	rec     *recorder
	closing atomic.Bool
	calls   atomic.Int64 // calls in flight
	stop    chan struct{}
	stopped chan struct{}
	// Background starts (minInstances, prewarming) run under bg and are
	// waited for on Close.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// New builds an engine; Start begins its background work.
func New(cfg Config) *Engine {
	if cfg.QueueTimeout == 0 {
		cfg.QueueTimeout = 5 * time.Second
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 10 * time.Minute
	}
	if cfg.LogLimit == 0 {
		cfg.LogLimit = runtime.DefaultLogLimit
	}
	if cfg.Retention == 0 {
		cfg.Retention = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewRecorder(nil)
	}
	log := cfg.Logger.With("component", "engine")
	e := &Engine{
		cfg:     cfg,
		log:     log,
		rec:     newRecorder(cfg, log),
		removed: newRemovedIDs(maxRemovedIDs),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	e.bgCtx, e.bgCancel = context.WithCancel(context.Background())
	return e
}

// Start begins writing records and scaling pools.
func (e *Engine) Start(ctx context.Context) {
	go e.rec.run()
	go e.reapLoop()
}

// Driver returns the named driver, or an error wrapping fn.ErrInvalid.
// Normalize stores canonical names; the name is resolved again here for
// functions stored before it did (an alias such as "firecracker").
func (e *Engine) Driver(name string) (driver.Driver, error) {
	d, ok := e.cfg.Drivers[fn.CanonicalDriver(name)]
	if !ok {
		return nil, fn.Invalid("driver", fmt.Sprintf("unknown driver %q", name))
	}
	return d, nil
}

// Availability is whether the driver called name can run functions now;
// one the engine does not have cannot, and says so.
func (e *Engine) Availability(ctx context.Context, name string) driver.Availability {
	d, err := e.Driver(name)
	if err != nil {
		return driver.Availability{Reason: err.Error()}
	}
	return driver.CheckAvailability(ctx, d)
}

// Invoke runs f once with event and returns its execution record, which is
// also written to the store and counted in metrics. The error is non-nil only
// when the call never ran (status rejected): it wraps fn.ErrCapacity or
// fn.ErrUnavailable, or fn.ErrNotFound when f was removed (its record is
// then neither written nor counted: its function is gone). The record is
// shared with the record writer: callers must not modify it.
func (e *Engine) Invoke(ctx context.Context, f *fn.Function, event json.RawMessage) (*fn.Execution, error) {
	return e.InvokeCall(ctx, f, Call{Event: event})
}

// Call is one invocation: its event, and what a front end says of it.
type Call struct {
	// ID is the execution's id, fn.NewID() when empty. A front end that
	// puts the id in the event (a function URL's requestId) makes it
	// first, with fn.NewID.
	ID string
	// Trigger is the way the call came in (fn.Execution.Trigger).
	Trigger string
	Event   json.RawMessage
	// Attempt numbers the tries of an async call (fn.Execution.Attempt).
	// An async call that cannot start now (over capacity, or the server
	// is shutting down) is not recorded as rejected: it waits in its
	// queue, and InvokeCall returns the error without a record.
	Attempt int
	// ClientContext reaches the handler's context (runtime.Request); nil
	// for none.
	ClientContext json.RawMessage
}

// InvokeCall is Invoke with the execution's id and trigger given.
func (e *Engine) InvokeCall(ctx context.Context, f *fn.Function, c Call) (*fn.Execution, error) {
	if c.ID == "" {
		c.ID = fn.NewID()
	}
	ex := &fn.Execution{
		ID:         c.ID,
		FunctionID: f.ID,
		Version:    f.Version,
		Trigger:    c.Trigger,
		Event:      c.Event,
		Attempt:    c.Attempt,
		StartedAt:  time.Now(),
	}
	e.calls.Add(1)
	defer e.calls.Add(-1)
	err := e.invoke(ctx, f, ex, c.ClientContext)
	ex.DurationMs = msSince(ex.StartedAt)
	if err != nil {
		ex.Status = fn.StatusRejected
		ex.Error = &fn.ErrorInfo{Type: "Nimbus.Rejected", Message: fn.ScrubPaths(err.Error())}
		if errors.Is(err, fn.ErrNotFound) {
			return ex, err
		}
		if c.Attempt > 0 && (errors.Is(err, fn.ErrCapacity) || errors.Is(err, fn.ErrUnavailable)) {
			return nil, err // it stays queued
		}
	}
	e.cfg.Metrics.Record(f, ex)
	e.rec.add(ex)
	return ex, err
}

func (e *Engine) invoke(ctx context.Context, f *fn.Function, ex *fn.Execution, clientContext json.RawMessage) error {
	if e.closing.Load() {
		return fmt.Errorf("server is shutting down: %w", fn.ErrUnavailable)
	}
	d, err := e.Driver(f.Driver)
	if err != nil {
		return fmt.Errorf("%w: %w", fn.ErrUnavailable, err)
	}
	p, err := e.pool(f)
	if err != nil {
		return err
	}
	in, err := p.acquire(ctx, e.cfg.QueueTimeout)
	ex.QueueMs = msSince(ex.StartedAt)
	if errors.Is(err, errGone) && e.removed.has(f.ID) {
		return errRemoved(f) // removed while this call waited
	}
	if err != nil {
		return err
	}
	// The call runs to its own deadline even if the caller goes away.
	deadline := time.Now().Add(time.Duration(f.Timeout) * time.Millisecond)
	run, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()

	if in == nil {
		ex.ColdStart = true
		t0 := time.Now()
		// A start is stopped, like a busy instance, when a shutdown's
		// drain runs out: a slow one would hold the shutdown to its end.
		start, stopStart := context.WithCancel(run)
		unlink := context.AfterFunc(e.bgCtx, stopStart)
		sp, err := e.spec(start, f)
		var di driver.Instance
		if err == nil {
			di, err = d.Start(start, sp)
		}
		unlink()
		stopStart()
		ex.InitMs = msSince(t0)
		if err != nil {
			p.abandon()
			if errors.Is(err, fn.ErrUnavailable) {
				return err
			}
			if e.bgCtx.Err() != nil && run.Err() == nil {
				err = fmt.Errorf("server shutting down: %w", err)
			}
			e.fail(ex, run, err, f.Timeout)
			return nil
		}
		in = &instance{Instance: di, version: f.Revision}
		p.started(in)
	} else if err := in.thaw(); err != nil {
		p.release(in, false)
		e.fail(ex, run, fmt.Errorf("thaw the instance: %w", err), f.Timeout)
		return nil
	}
	req := driver.NewRequest(ex.ID, ex.Event, deadline.UnixMilli())
	req.ClientContext = clientContext
	call := run
	if ev := e.cfg.Metrics.Events(); ev.WantsLogs(f.ID) {
		// Someone follows f's logs live: the worker streams them.
		call = driver.WithLogs(run, func(data string) { ev.PublishLog(f, ex.ID, data) })
	}
	sent := time.Now()
	resp, err := in.Invoke(call, req)
	if err != nil {
		p.release(in, false)
		e.fail(ex, run, err, f.Timeout)
		return nil
	}
	ex.PeakMemoryKiB = resp.MaxRSSKiB
	p.release(in, true)
	ex.Logs = e.logs(resp.Logs, resp.LogsTruncated)
	ex.LogTimes = logTimes(resp.LogTimes, ex.Logs, time.Since(sent), sent.Sub(ex.StartedAt))
	if resp.Error != nil {
		ex.Status = fn.StatusError
		ex.Error = fn.UserError(resp.Error.Type, resp.Error.Message, resp.Error.Stack)
		return nil
	}
	ex.Status = fn.StatusSuccess
	ex.Result = resp.Result
	if len(ex.Result) == 0 {
		ex.Result = json.RawMessage("null")
	}
	return nil
}

// fail records why a started call did not produce a response.
func (e *Engine) fail(ex *fn.Execution, run context.Context, err error, timeoutMs int) {
	var (
		initErr *driver.InitError
		exitErr *driver.ExitError
	)
	switch {
	case errors.Is(run.Err(), context.DeadlineExceeded):
		ex.Status = fn.StatusTimeout
		ex.Error = &fn.ErrorInfo{Type: "Runtime.Timeout", Message: fmt.Sprintf("execution timed out after %d ms", timeoutMs)}
	case errors.As(err, &initErr):
		ex.Status = fn.StatusError
		ex.Logs = e.logs(initErr.Logs, false)
		ex.Error = fn.UserError(initErr.Err.Type, initErr.Err.Message, initErr.Err.Stack)
	case errors.As(err, &exitErr) && exitErr.Exit.OOM:
		ex.Status = fn.StatusOOM
		ex.Error = &fn.ErrorInfo{Type: "Runtime.OutOfMemory", Message: "worker " + exitErr.Exit.String()}
	case errors.As(err, &exitErr):
		ex.Status = fn.StatusCrashed
		ex.Error = &fn.ErrorInfo{Type: "Runtime.ExitError", Message: "worker " + exitErr.Exit.String()}
	case errors.Is(err, runtime.ErrFrameTooLarge):
		ex.Status = fn.StatusError
		ex.Error = &fn.ErrorInfo{Type: "Runtime.ResponseTooLarge", Message: err.Error()}
	default:
		ex.Status = fn.StatusCrashed
		ex.Error = &fn.ErrorInfo{Type: "Runtime.Error", Message: fn.ScrubPaths(err.Error())}
	}
}

// logs applies the per-execution limit and marks truncation.
func (e *Engine) logs(s string, truncated bool) string {
	if len(s) > e.cfg.LogLimit {
		s, truncated = s[:e.cfg.LogLimit], true
	}
	if truncated {
		s += fmt.Sprintf("\n[nimbus: logs truncated at %d bytes]\n", e.cfg.LogLimit)
	}
	return s
}

// logTimes is what a worker says of when each line of logs began (ms
// since it began the call), if it holds together: no more times than
// lines (those past the log limit are dropped with their lines), none
// negative, in order, none after the call ended (took, plus a second for
// the clocks' grain). Otherwise the call has no times: a worker's word is
// not trusted. They are returned as ms since the call's record began:
// plus after, the time from the record's start (a cold start, a wait for
// an instance) to the request's.
func logTimes(times []int, logs string, took, after time.Duration) []int {
	if len(times) == 0 || logs == "" {
		return nil
	}
	lines := strings.Count(logs[:len(logs)-1], "\n") + 1
	times = times[:min(len(times), lines, runtime.MaxLogTimes)]
	limit := int(took/time.Millisecond) + 1000
	last := 0
	for _, t := range times {
		if t < last || t > limit {
			return nil
		}
		last = t
	}
	shift := int(after / time.Millisecond)
	out := make([]int, len(times))
	for i, t := range times {
		out[i] = t + shift
	}
	return out
}

// pool returns f's pool, creating it unless f was removed (then an error
// wrapping fn.ErrNotFound).
func (e *Engine) pool(f *fn.Function) (*pool, error) {
	key := poolKey(f)
	if v, ok := e.pools.Load(key); ok {
		p := v.(*pool)
		if !p.isVersion(f.Revision) {
			p.update(f)
		}
		return p, nil
	}
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	if e.removed.has(f.ID) {
		return nil, errRemoved(f)
	}
	if f.Version > 0 && f.MinInstances > 0 {
		// Only the draft keeps instances warm however idle: a version's
		// scale to zero when nothing calls it.
		g := *f
		g.MinInstances = 0
		f = &g
	}
	v, _ := e.pools.LoadOrStore(key, newPool(f, autoscale.NewTracker(autoscale.Config{Fixed: e.cfg.KeepAlive})))
	return v.(*pool), nil
}

// poolKey names the pool of f: each published version of a function has
// its own instances, apart from the draft's ($LATEST), so that a call to
// one never reaches another's code.
func poolKey(f *fn.Function) string {
	if f.Version == 0 {
		return f.ID
	}
	return f.ID + "@" + strconv.Itoa(f.Version)
}

// ofFunction reports whether key names a pool of the function id.
func ofFunction(key, id string) bool {
	rest, ok := strings.CutPrefix(key, id)
	return ok && (rest == "" || rest[0] == '@')
}

func errRemoved(f *fn.Function) error {
	return fmt.Errorf("function %q was deleted: %w", f.Name, fn.ErrNotFound)
}

// Update tells the engine a function was created or changed: idle
// instances of an old version stop, busy ones stop when their call ends,
// and its minInstances start. A removed function stays removed.
func (e *Engine) Update(f *fn.Function) {
	if v, ok := e.pools.Load(poolKey(f)); ok {
		v.(*pool).update(f)
	}
	if f.MinInstances > 0 && !e.closing.Load() {
		if p, err := e.pool(f); err == nil {
			e.scalePool(p, time.Now(), false)
		}
	}
}

// Remove stops a deleted function's instances and forgets it. From then on
// the engine refuses to start it again (Invoke fails with fn.ErrNotFound,
// Update does nothing) for calls and updates that read it before it was
// deleted; ids are never reused.
func (e *Engine) Remove(functionID string) {
	e.poolsMu.Lock()
	e.removed.add(functionID) // before the pools go: no call starts one again
	e.poolsMu.Unlock()
	e.Retire(functionID)
	e.rec.forget(functionID)
	e.cfg.Metrics.Forget(functionID)
}

// Retire stops a function's instances and forgets its pools, without
// taking it for deleted: it may run again (a function whose build
// failed, until code that builds comes).
func (e *Engine) Retire(functionID string) {
	e.poolsMu.Lock()
	var gone []*pool
	e.pools.Range(func(k, v any) bool {
		if ofFunction(k.(string), functionID) {
			e.pools.Delete(k)
			gone = append(gone, v.(*pool))
		}
		return true
	})
	e.poolsMu.Unlock()
	for _, p := range gone {
		p.scale(time.Now(), autoscale.Windows{}, true)
	}
}

// Stage records that an async call was queued or began an attempt
// (ex.Status queued or running): its record, replaced by a later stage
// or the final one, and an event.
func (e *Engine) Stage(f *fn.Function, ex *fn.Execution) {
	e.rec.add(ex)
	e.cfg.Metrics.Events().PublishStage(f, ex)
}

// Flush writes every record made so far to the store.
func (e *Engine) Flush(ctx context.Context) error { return e.rec.flush(ctx) }

// Dropped is how many records were lost because the store fell behind.
func (e *Engine) Dropped() int64 { return e.rec.dropped.Load() }

// Instances counts a function's instances by state and the calls waiting
// for one.
func (e *Engine) Instances(functionID string) metrics.InstanceCount {
	c := metrics.InstanceCount{FunctionID: functionID}
	e.pools.Range(func(k, v any) bool {
		if ofFunction(k.(string), functionID) {
			c = c.Add(v.(*pool).counts(functionID, false))
		}
		return true
	})
	return c
}

// AllInstances counts every function's instances, with the resident
// memory of their workers when withRSS (which reads it from each).
func (e *Engine) AllInstances(withRSS bool) []metrics.InstanceCount {
	// The versions of a function that share a driver are counted
	// together: the figures are per function and driver.
	type fnDriver struct{ id, driver string }
	byKey := map[fnDriver]int{}
	var out []metrics.InstanceCount
	e.pools.Range(func(_, v any) bool {
		p := v.(*pool)
		c := p.counts(p.functionID(), withRSS)
		k := fnDriver{c.FunctionID, c.Driver}
		if i, ok := byKey[k]; ok {
			out[i] = out[i].Add(c)
		} else {
			byKey[k] = len(out)
			out = append(out, c)
		}
		return true
	})
	return out
}

// InFlight is the number of calls running or waiting for an instance.
func (e *Engine) InFlight() int { return int(e.calls.Load()) }

// Drivers lists the names of the drivers the engine has, sorted.
func (e *Engine) Drivers() []string {
	names := make([]string, 0, len(e.cfg.Drivers))
	for name := range e.cfg.Drivers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (e *Engine) reapLoop() {
	defer close(e.stopped)
	if e.cfg.ReapInterval <= 0 {
		<-e.stop
		return
	}
	t := time.NewTicker(e.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.Scale(time.Now())
		case <-e.stop:
			return
		}
	}
}

// Scale applies every function's keep-alive at now: it stops the idle
// instances a function should not keep, starts its minInstances, and
// prewarms an instance shortly before a call its history predicts.
func (e *Engine) Scale(now time.Time) {
	e.pools.Range(func(_, v any) bool {
		e.scalePool(v.(*pool), now, false)
		return true
	})
}

func (e *Engine) scalePool(p *pool, now time.Time, gone bool) {
	n, f := p.scale(now, e.windows(p), gone)
	for range n {
		e.bg.Add(1)
		go e.startIdle(p, f)
	}
	if e.cfg.FreezeAfter > 0 && !gone {
		for _, in := range p.freezable(now.Add(-e.cfg.FreezeAfter)) {
			if err := in.freeze(p); err != nil {
				e.log.Debug("cannot freeze an idle instance", "instance", in.Stats().ID, "error", err)
			}
		}
	}
}

// KeepAlive is the keep-alive in force for f now, and where it comes
// from: "function" (its own keepAlive), "server" (a fixed
// NIMBUS_KEEP_ALIVE) or "adaptive" (its history of idle times).
func (e *Engine) KeepAlive(f *fn.Function) (autoscale.Windows, string) {
	var t tracker
	if v, ok := e.pools.Load(poolKey(f)); ok {
		t = v.(*pool).tracker
	}
	return e.policy(f.KeepAlive, t)
}

// windows is the keep-alive of p's function.
func (e *Engine) windows(p *pool) autoscale.Windows {
	p.mu.Lock()
	ms := p.f.KeepAlive
	p.mu.Unlock()
	w, _ := e.policy(ms, p.tracker)
	return w
}

func (e *Engine) policy(ms int, t tracker) (autoscale.Windows, string) {
	switch {
	case ms > 0:
		return autoscale.Windows{KeepAlive: time.Duration(ms) * time.Millisecond}, "function"
	case !e.cfg.Adaptive:
		return autoscale.Windows{KeepAlive: e.cfg.KeepAlive}, "server"
	case t == nil:
		return autoscale.Windows{KeepAlive: e.cfg.KeepAlive}, "adaptive"
	}
	return t.Windows(), "adaptive"
}

// startIdle starts an instance of f that no call is waiting for.
func (e *Engine) startIdle(p *pool, f *fn.Function) {
	defer e.bg.Done()
	fail := func(err error) {
		p.startFailed()
		e.log.Warn("could not start an instance ahead of calls", "function", f.Name, "id", f.ID, "error", err)
	}
	d, err := e.Driver(f.Driver)
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(e.bgCtx, max(time.Duration(f.Timeout)*time.Millisecond, 30*time.Second))
	defer cancel()
	sp, err := e.spec(ctx, f)
	if err != nil {
		fail(err)
		return
	}
	di, err := d.Start(ctx, sp)
	if err != nil {
		fail(err)
		return
	}
	p.added(&instance{Instance: di, version: f.Revision})
}

// Close stops taking calls, waits for calls in flight until ctx ends, stops
// every instance and writes the remaining records.
func (e *Engine) Close(ctx context.Context) error {
	if !e.closing.CompareAndSwap(false, true) {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
wait:
	for e.calls.Load() > 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			break wait
		}
	}
	t.Stop()
	close(e.stop)
	<-e.stopped
	e.bgCancel()
	e.bg.Wait()
	e.pools.Range(func(_, v any) bool {
		p := v.(*pool)
		p.scale(time.Now(), autoscale.Windows{}, true)
		p.killBusy("server shutting down")
		return true
	})
	// Calls killed above finish promptly; wait for their records.
	for e.calls.Load() > 0 {
		time.Sleep(time.Millisecond)
	}
	return e.rec.close(context.WithoutCancel(ctx))
}

func msSince(t time.Time) float64 {
	return float64(time.Since(t).Nanoseconds()) / 1e6
}
