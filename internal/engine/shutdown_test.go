package engine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// slowStartDriver's starts take until their context ends.
type slowStartDriver struct{ starting chan struct{} }

func (d *slowStartDriver) Name() string                    { return fn.DefaultDriver }
func (d *slowStartDriver) Available(context.Context) error { return nil }
func (d *slowStartDriver) Start(ctx context.Context, _ driver.InstanceSpec) (driver.Instance, error) {
	d.starting <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestCloseStopsStartingInstances: when the drain runs out, an instance
// still starting is stopped like a busy one, so Close returns at once
// rather than when the start (here, the function's 60 s timeout) ends; the
// call is recorded as crashed by the shutdown.
func TestCloseStopsStartingInstances(t *testing.T) {
	d := &slowStartDriver{starting: make(chan struct{}, 1)}
	e := New(Config{Drivers: map[string]driver.Driver{fn.DefaultDriver: d}, Records: nopRecords{}})
	e.Start(context.Background())
	f := &fn.Function{ID: "f1", Name: "f", Driver: fn.DefaultDriver, Revision: 1, Timeout: 60_000, MaxInstances: 1, Concurrency: 1}
	done := make(chan *fn.Execution, 1)
	go func() {
		ex, _ := e.Invoke(context.Background(), f, json.RawMessage(`{}`))
		done <- ex
	}()
	<-d.starting
	drain, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- e.Close(drain) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close waited for the start instead of stopping it")
	}
	ex := <-done
	if ex.Status != fn.StatusCrashed || ex.Error == nil || ex.Error.Message == "" {
		t.Fatalf("the starting call: %s %+v", ex.Status, ex.Error)
	}
	t.Logf("recorded as %s: %s", ex.Status, ex.Error.Message)
}
