package async

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nimbusfaas/nimbus/internal/bus"
	"github.com/nimbusfaas/nimbus/internal/engine"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

type oneFunction struct{ f *fn.Function }

func (o oneFunction) ResolveQualified(ctx context.Context, id, _ string) (*fn.Function, error) {
	return o.Resolve(ctx, id)
}

func (o oneFunction) Resolve(_ context.Context, id string) (*fn.Function, error) {
	if id == o.f.ID || id == o.f.Name {
		return o.f, nil
	}
	return nil, fn.ErrNotFound
}

// countingEngine counts the calls it is asked to run, and succeeds.
type countingEngine struct {
	calls  chan engine.Call
	staged chan *fn.Execution
}

func (e *countingEngine) InvokeCall(_ context.Context, f *fn.Function, c engine.Call) (*fn.Execution, error) {
	e.calls <- c
	return &fn.Execution{ID: c.ID, FunctionID: f.ID, Status: fn.StatusSuccess, Attempt: c.Attempt}, nil
}
func (e *countingEngine) Stage(_ *fn.Function, ex *fn.Execution) { e.staged <- ex }
func (e *countingEngine) Flush(context.Context) error            { return nil }

// A call that waited longer than its function's maxEventAgeSeconds goes
// to the dead letters without running.
func TestTooOldGoesToDeadLettersUnrun(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	f := &fn.Function{ID: "old1", Name: "old", MaxInstances: 1, Async: &fn.AsyncConfig{MaxEventAgeSeconds: 60}}
	e := &countingEngine{calls: make(chan engine.Call, 10), staged: make(chan *fn.Execution, 10)}
	q, err := Open(ctx, Config{Bus: b, Functions: oneFunction{f}, Engine: e, AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q.Start(ctx)
	defer q.Close(ctx)
	if err := q.ensure(ctx, f); err != nil {
		t.Fatal(err)
	}
	// As Enqueue would have stored it two minutes ago.
	m := nats.NewMsg(q.subject(f.ID))
	m.Data = json.RawMessage(`{"late":true}`)
	m.Header.Set(hExecution, "0123456789abcdef01234567")
	m.Header.Set(hAccepted, time.Now().Add(-2*time.Minute).UTC().Format(time.RFC3339Nano))
	m.Header.Set(hTrigger, fn.TriggerAsync)
	if _, err := q.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	select {
	case ex := <-e.staged:
		if ex.Status != fn.StatusRejected || ex.Error == nil || ex.Error.Type != "Nimbus.EventAgeExceeded" {
			t.Errorf("record %+v", ex)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no record")
	}
	var d DeadLetter
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if d, err = q.DeadLetter(ctx, f.ID, "0123456789abcdef01234567"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || d.Reason != ReasonEventAgeExceeded || string(d.Event) != `{"late":true}` {
		t.Errorf("dead letter %+v, %v", d, err)
	}
	select {
	case c := <-e.calls:
		t.Errorf("ran a call that was too old: %+v", c)
	default:
	}
}
