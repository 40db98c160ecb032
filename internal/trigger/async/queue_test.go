package async_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/bus"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/trigger/async"
)

// functions is a fixed set of functions.
type functions map[string]*fn.Function

func (fs functions) ResolveQualified(ctx context.Context, id, qualifier string) (*fn.Function, error) {
	if qualifier == "gone" {
		return nil, fn.ErrNotFound // an alias deleted meanwhile
	}
	return fs.Resolve(ctx, id)
}

func (fs functions) Resolve(_ context.Context, id string) (*fn.Function, error) {
	for _, f := range fs {
		if f.ID == id || f.Name == id {
			return f, nil
		}
	}
	return nil, fn.ErrNotFound
}

// fakeEngine runs calls with run and keeps every record it is given.
type fakeEngine struct {
	run   func(f *fn.Function, c engine.Call) (fn.Status, error)
	flush func(context.Context) error // nil: records are written at once

	mu      sync.Mutex
	calls   []engine.Call
	records map[string][]*fn.Execution
}

func (e *fakeEngine) InvokeCall(_ context.Context, f *fn.Function, c engine.Call) (*fn.Execution, error) {
	st, err := e.run(f, c)
	if err != nil {
		return nil, err
	}
	ex := &fn.Execution{ID: c.ID, FunctionID: f.ID, Status: st, Trigger: c.Trigger, Event: c.Event, Attempt: c.Attempt, StartedAt: time.Now()}
	if st == fn.StatusSuccess {
		ex.Result = json.RawMessage(`"ok"`)
	} else {
		ex.Error = &fn.ErrorInfo{Type: "ValueError", Message: "boom"}
	}
	e.mu.Lock()
	e.calls = append(e.calls, c)
	e.mu.Unlock()
	e.Stage(f, ex)
	return ex, nil
}

func (e *fakeEngine) Stage(_ *fn.Function, ex *fn.Execution) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.records == nil {
		e.records = map[string][]*fn.Execution{}
	}
	e.records[ex.ID] = append(e.records[ex.ID], ex)
}

func (e *fakeEngine) Flush(ctx context.Context) error {
	if e.flush != nil {
		return e.flush(ctx)
	}
	return nil
}

func (e *fakeEngine) ran() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

func (e *fakeEngine) last(id string) *fn.Execution {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.records[id]
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1]
}

func open(t *testing.T, fs functions, e *fakeEngine) *async.Queue {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	q, err := async.Open(ctx, async.Config{Bus: b, Functions: fs, Engine: e, AckWait: 2 * time.Second, Rescan: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q.Start(ctx)
	t.Cleanup(func() { q.Close(context.Background()) })
	return q
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
	}
}

func retries(n int) *int { return &n }

func TestRetriesThenDeadLetter(t *testing.T) {
	f := &fn.Function{ID: "f1", Name: "flaky", MaxInstances: 2, Concurrency: 1,
		Async: &fn.AsyncConfig{MaxRetries: retries(2), RetryBackoff: "200ms"}}
	e := &fakeEngine{run: func(*fn.Function, engine.Call) (fn.Status, error) { return fn.StatusError, nil }}
	q := open(t, functions{"flaky": f}, e)
	a, err := q.Enqueue(context.Background(), f, async.Call{Event: json.RawMessage(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "no dead letter", func() bool {
		_, total, err := q.DeadLetters(context.Background(), f.ID, 10)
		return err == nil && total == 1
	})
	d, err := q.DeadLetter(context.Background(), f.ID, a.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Attempts != 3 || d.Reason != async.ReasonRetriesExhausted || string(d.Event) != `{"n":1}` {
		t.Errorf("dead letter %+v", d)
	}
	// Backoff 200 ms, then 400 ms.
	if gap := d.DeadAt.Sub(d.AcceptedAt); gap < 600*time.Millisecond {
		t.Errorf("three attempts took %s, less than the backoffs (600 ms)", gap)
	}
	if last := e.last(a.ExecutionID); last == nil || last.Attempt != 3 || last.Status != fn.StatusError {
		t.Errorf("last record %+v", last)
	}
}

// A call the engine has no room for waits its turn, in hand: not
// rejected, not counted as an attempt.
func TestOverCapacityWaits(t *testing.T) {
	f := &fn.Function{ID: "f2", Name: "busy", MaxInstances: 1, Concurrency: 1}
	var mu sync.Mutex
	busy := 3
	e := &fakeEngine{run: func(*fn.Function, engine.Call) (fn.Status, error) {
		mu.Lock()
		defer mu.Unlock()
		if busy > 0 {
			busy--
			return "", fn.ErrCapacity
		}
		return fn.StatusSuccess, nil
	}}
	q := open(t, functions{"busy": f}, e)
	a, err := q.Enqueue(context.Background(), f, async.Call{Event: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "never ran", func() bool {
		r := e.last(a.ExecutionID)
		return r != nil && r.Status == fn.StatusSuccess
	})
	if r := e.last(a.ExecutionID); r.Attempt != 1 {
		t.Errorf("attempt %d after waiting for capacity, want 1", r.Attempt)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.records[a.ExecutionID] {
		if r.Status == fn.StatusRejected {
			t.Errorf("recorded as rejected while it waited: %+v", r)
		}
	}
}

// Close does not wait for calls that wait for an instance: they give up
// at once and run again later.
func TestCloseDoesNotWaitForCallsWaitingForCapacity(t *testing.T) {
	f := &fn.Function{ID: "f3", Name: "full", MaxInstances: 1, Concurrency: 1}
	asked := make(chan struct{}, 100)
	e := &fakeEngine{run: func(*fn.Function, engine.Call) (fn.Status, error) {
		asked <- struct{}{}
		return "", fn.ErrCapacity
	}}
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	q, err := async.Open(ctx, async.Config{Bus: b, Functions: functions{"full": f}, Engine: e, AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q.Start(ctx)
	if _, err := q.Enqueue(ctx, f, async.Call{Event: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("the call never reached the engine")
	}
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	begin := time.Now()
	if err := q.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("Close took %s with a call waiting for capacity", took)
	}
	if _, err := q.Enqueue(ctx, f, async.Call{Event: json.RawMessage(`{}`)}); !errors.Is(err, fn.ErrUnavailable) {
		t.Errorf("Enqueue after Close: %v, want ErrUnavailable", err)
	}
}

// A call whose alias was deleted before it ran is recorded as rejected
// and kept in the dead letters, not dropped.
func TestCallOfADeletedAliasGoesToDeadLetters(t *testing.T) {
	f := &fn.Function{ID: "f4", Name: "aliased", MaxInstances: 1}
	e := &fakeEngine{run: func(*fn.Function, engine.Call) (fn.Status, error) { return fn.StatusSuccess, nil }}
	q := open(t, functions{"aliased": f}, e)
	a, err := q.Enqueue(context.Background(), f, async.Call{Event: json.RawMessage(`{}`), Qualifier: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "no dead letter", func() bool {
		d, err := q.DeadLetter(context.Background(), f.ID, a.ExecutionID)
		return err == nil && d.Reason == async.ReasonQualifierGone
	})
	if r := e.last(a.ExecutionID); r == nil || r.Status != fn.StatusRejected || r.Error == nil || r.Error.Type != "Nimbus.QualifierNotFound" {
		t.Errorf("record %+v", r)
	}
}

// TestCallsRunWhileTheirRecordsAreWritten: a call is acknowledged only
// once its record is written, but the next calls do not wait for that:
// with the store's writes held up, every call of a one-instance function
// still runs, one at a time; once the writes go through, all are
// acknowledged.
func TestCallsRunWhileTheirRecordsAreWritten(t *testing.T) {
	f := &fn.Function{ID: "f9", Name: "quick", MaxInstances: 1, Concurrency: 1}
	var mu sync.Mutex
	running, most := 0, 0
	held := make(chan struct{})
	e := &fakeEngine{
		run: func(*fn.Function, engine.Call) (fn.Status, error) {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			return fn.StatusSuccess, nil
		},
		flush: func(ctx context.Context) error {
			select {
			case <-held:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	q := open(t, functions{"quick": f}, e)
	release := sync.OnceFunc(func() { close(held) })
	t.Cleanup(release) // before the queue closes, should the test fail
	const n = 20
	for i := range n {
		if _, err := q.Enqueue(context.Background(), f, async.Call{Event: json.RawMessage(`{}`)}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	eventually(t, 20*time.Second, "the calls did not all run while the records of the first were being written", func() bool { return e.ran() == n })
	d, err := q.Depth(context.Background(), f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Queued+uint64(d.InFlight) == 0 {
		t.Errorf("depth %+v with no call acknowledged yet", d)
	}
	release()
	eventually(t, 20*time.Second, "the calls were not acknowledged once their records were written", func() bool {
		d, err := q.Depth(context.Background(), f.ID)
		return err == nil && d.Queued == 0 && d.InFlight == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("%d calls of a one-instance function ran at once", most)
	}
}

// TestCloseWithTheStoreDown: Close keeps to its context when the records
// of finished calls cannot be written; the calls are left unacknowledged,
// to run again.
func TestCloseWithTheStoreDown(t *testing.T) {
	f := &fn.Function{ID: "f10", Name: "stuck", MaxInstances: 1, Concurrency: 1}
	e := &fakeEngine{
		run: func(*fn.Function, engine.Call) (fn.Status, error) { return fn.StatusSuccess, nil },
		flush: func(ctx context.Context) error {
			<-ctx.Done() // the store never answers
			return ctx.Err()
		},
	}
	q := open(t, functions{"stuck": f}, e)
	if _, err := q.Enqueue(context.Background(), f, async.Call{Event: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the call never ran", func() bool { return e.ran() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	closed := make(chan struct{})
	go func() { q.Close(ctx); close(closed) }()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close(500ms) still waiting 15 s later for a store that does not answer")
	}
}

// TestLongCallsStayInHand: a call that runs longer than the ack wait, and
// one that waits that long for a slot, are each delivered once: the
// queue tells JetStream that they are in hand.
func TestLongCallsStayInHand(t *testing.T) {
	f := &fn.Function{ID: "f11", Name: "long", MaxInstances: 1, Concurrency: 1}
	e := &fakeEngine{run: func(_ *fn.Function, c engine.Call) (fn.Status, error) {
		if string(c.Event) == `"long"` {
			time.Sleep(5 * time.Second) // the ack wait is 2 s
		}
		return fn.StatusSuccess, nil
	}}
	q := open(t, functions{"long": f}, e)
	var ids []string
	for _, ev := range []string{`"long"`, `"short"`} {
		a, err := q.Enqueue(context.Background(), f, async.Call{Event: json.RawMessage(ev)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ExecutionID)
	}
	eventually(t, 30*time.Second, "the calls did not both succeed", func() bool {
		for _, id := range ids {
			if r := e.last(id); r == nil || r.Status != fn.StatusSuccess {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if r := e.last(id); r.Attempt != 1 {
			t.Errorf("call %s: attempt %d, want 1", id, r.Attempt)
		}
	}
	if n := e.ran(); n != 2 {
		t.Errorf("%d runs of two calls", n)
	}
}
