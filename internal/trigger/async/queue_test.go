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
	run func(f *fn.Function, c engine.Call) (fn.Status, error)

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

func (e *fakeEngine) Flush(context.Context) error { return nil }

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
