package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// TestRemovedFunctionStaysRemoved is a call or an update that read its
// function before the function was deleted, and reaches the engine after
// Remove: it must not start the deleted code again.
func TestRemovedFunctionStaysRemoved(t *testing.T) {
	d := &countingDriver{}
	e := testEngine(t, d, false)
	ctx := context.Background()
	f := scaleFunction(0)
	if _, err := e.Invoke(ctx, f, json.RawMessage(`{}`)); err != nil {
		t.Fatalf("call before the delete: %v", err)
	}
	e.Remove(f.ID)

	ex, err := e.Invoke(ctx, f, json.RawMessage(`{}`))
	if !errors.Is(err, fn.ErrNotFound) {
		t.Errorf("call after Remove: err = %v, want fn.ErrNotFound", err)
	}
	if ex == nil || ex.Status != fn.StatusRejected {
		t.Errorf("call after Remove: execution %+v, want one with status rejected", ex)
	}
	g := scaleFunction(2) // a late update, with instances to keep warm
	e.Update(g)
	e.Scale(time.Now())
	if n := d.started.Load(); n != 1 {
		t.Errorf("%d instances started, want only the one of the call before the delete", n)
	}
	if c := e.Instances(f.ID); c != (metrics.InstanceCount{FunctionID: f.ID}) {
		t.Errorf("after Remove the engine still has %+v", c)
	}
	if all := e.AllInstances(false); len(all) != 0 {
		t.Errorf("after Remove the engine reports pools %+v", all)
	}
}

// TestRemovedIDsAreBounded: the engine remembers the most recent removals
// only.
func TestRemovedIDsAreBounded(t *testing.T) {
	r := newRemovedIDs(3)
	for i := range 5 {
		r.add(fmt.Sprint(i))
	}
	r.add("4") // again: no second slot
	for i, want := range []bool{false, false, true, true, true} {
		if got := r.has(fmt.Sprint(i)); got != want {
			t.Errorf("has(%d) = %v, want %v", i, got, want)
		}
	}
	if len(r.ids) != 3 {
		t.Errorf("remembers %d ids, want 3", len(r.ids))
	}
}
