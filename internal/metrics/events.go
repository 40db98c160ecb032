package metrics

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// Event is one finished execution, as the live stream shows it, or, when
// Build is set, a step of a function's build, or, when Log is set, a part
// of a running execution's output.
type Event struct {
	ExecutionID string    `json:"executionId"`
	FunctionID  string    `json:"functionId"`
	Function    string    `json:"function"` // its name
	Status      fn.Status `json:"status"`
	StartedAt   time.Time `json:"startedAt"`
	DurationMs  float64   `json:"durationMs"`
	ColdStart   bool      `json:"coldStart"`
	// Trigger and Attempt are the execution's (fn.Execution).
	Trigger string `json:"trigger,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Error is "type: message" of a finished execution that failed.
	Error string `json:"error,omitempty"`
	Build *Build `json:"build,omitempty"`
	Log   *Log   `json:"log,omitempty"`
}

// Log is a part of a running execution's output, as its worker sent it:
// whole lines, but for a long line's pieces and what a call printed last.
type Log struct {
	Data string `json:"data"`
}

// WantsLogs reports whether a subscriber follows the output of function
// id's calls (SubscribeLogs): only then is it worth asking workers for.
// With none anywhere it is one atomic load.
func (e *Events) WantsLogs(functionID string) bool {
	if e.logSubs.Load() == 0 {
		return false
	}
	p := e.subs.Load()
	if p == nil {
		return false
	}
	for _, s := range *p {
		if s.logs && (s.function == "" || s.function == functionID) {
			return true
		}
	}
	return false
}

// PublishLog sends data, output of execution executionID of f, to the
// subscribers that follow f's logs: never waits, as publish.
func (e *Events) PublishLog(f *fn.Function, executionID, data string) {
	e.send(Event{ExecutionID: executionID, FunctionID: f.ID, Function: f.Name, Log: &Log{Data: data}})
}

// Build is a step of a function's build on the live stream: its state
// changed, or its output gained a line.
type Build struct {
	State string `json:"state"` // fn.BuildBuilding, BuildReady, BuildFailed
	Line  string `json:"line,omitempty"`
}

// PublishBuild sends a build step of function f (id and name) to the
// subscribers that follow it: never waits, as publish.
func (e *Events) PublishBuild(functionID, name, state, line string) {
	e.send(Event{FunctionID: functionID, Function: name, Build: &Build{State: state, Line: line}})
}

// Events fans finished executions out to subscribers. Publishing never
// waits: each subscriber has a bounded buffer, and what does not fit is
// dropped and counted, so a slow or stalled client never slows a call.
type Events struct {
	subs    atomic.Pointer[[]*Subscription] // replaced, never changed in place
	mu      sync.Mutex                      // serialises Subscribe and Close
	dropped atomic.Uint64
	logSubs atomic.Int64 // subscriptions that follow logs
	prom    *promMetrics // nil without Prometheus
}

func newEvents(p *promMetrics) *Events { return &Events{prom: p} }

// Subscription is one subscriber's stream of events.
type Subscription struct {
	events   *Events
	ch       chan Event
	function string // only this function's events; "" for all
	logs     bool   // log events too
	dropped  atomic.Uint64
}

// Subscribe starts a stream of the events of one function (by id), or of
// all for "", buffering up to buffer events (at least 1).
func (e *Events) Subscribe(functionID string, buffer int) *Subscription {
	return e.subscribe(functionID, buffer, false)
}

// SubscribeLogs is Subscribe with log events too: the output of the
// function's calls (of all functions for "") while they run. Calls that
// started before it are not followed.
func (e *Events) SubscribeLogs(functionID string, buffer int) *Subscription {
	return e.subscribe(functionID, buffer, true)
}

func (e *Events) subscribe(functionID string, buffer int, logs bool) *Subscription {
	s := &Subscription{events: e, ch: make(chan Event, max(buffer, 1)), function: functionID, logs: logs}
	e.mu.Lock()
	if logs {
		e.logSubs.Add(1)
	}
	var subs []*Subscription
	if p := e.subs.Load(); p != nil {
		subs = slices.Clone(*p)
	}
	subs = append(subs, s)
	e.subs.Store(&subs)
	e.mu.Unlock()
	if e.prom != nil {
		e.prom.subscribers.Inc()
	}
	return s
}

// C delivers the events.
func (s *Subscription) C() <-chan Event { return s.ch }

// Dropped is how many events did not fit in this subscriber's buffer.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription. The channel is left open: a publisher may
// still hold it.
func (s *Subscription) Close() {
	e := s.events
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.subs.Load()
	if p == nil {
		return
	}
	i := slices.Index(*p, s)
	if i < 0 {
		return
	}
	subs := slices.Delete(slices.Clone(*p), i, i+1)
	e.subs.Store(&subs)
	if s.logs {
		e.logSubs.Add(-1)
	}
	if e.prom != nil {
		e.prom.subscribers.Dec()
	}
}

// Dropped is how many events were dropped across all subscribers.
func (e *Events) Dropped() uint64 { return e.dropped.Load() }

// Subscribers is how many subscriptions are open.
func (e *Events) Subscribers() int {
	if p := e.subs.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// PublishStage tells subscribers that an async call of f was queued or
// began an attempt (x.Status is queued or running). Final statuses come
// through Recorder.Record, which counts them too.
func (e *Events) PublishStage(f *fn.Function, x *fn.Execution) { e.publish(f, x) }

func (e *Events) publish(f *fn.Function, x *fn.Execution) {
	p := e.subs.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	ev := Event{
		ExecutionID: x.ID,
		FunctionID:  x.FunctionID,
		Status:      x.Status,
		StartedAt:   x.StartedAt,
		DurationMs:  x.DurationMs,
		ColdStart:   x.ColdStart,
		Trigger:     x.Trigger,
		Attempt:     x.Attempt,
	}
	if x.Error != nil {
		ev.Error = x.Error.Type + ": " + x.Error.Message
	}
	if f != nil {
		ev.Function = f.Name
	}
	e.send(ev)
}

// send hands ev to every subscriber that follows its function, dropping
// it for those whose buffer is full.
func (e *Events) send(ev Event) {
	p := e.subs.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	for _, s := range *p {
		if s.function != "" && s.function != ev.FunctionID || ev.Log != nil && !s.logs {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
			e.dropped.Add(1)
			if e.prom != nil {
				e.prom.eventsDropped.Inc()
			}
		}
	}
}
