package engine

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// freezingInstance is a fake that can be frozen, and fails a call sent to
// it while frozen.
type freezingInstance struct {
	*fakeInstance
	mu               sync.Mutex
	frozen           bool
	freezes, thaws   int
	calledWhenFrozen bool
}

func (f *freezingInstance) Freeze() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = true
	f.freezes++
	return nil
}

func (f *freezingInstance) Thaw() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = false
	f.thaws++
	return nil
}

func (f *freezingInstance) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	f.mu.Lock()
	f.calledWhenFrozen = f.calledWhenFrozen || f.frozen
	f.mu.Unlock()
	return f.fakeInstance.Invoke(ctx, req)
}

var _ driver.Freezer = (*freezingInstance)(nil)

type freezingDriver struct{ last *freezingInstance }

func (d *freezingDriver) Name() string                    { return fn.DefaultDriver }
func (d *freezingDriver) Available(context.Context) error { return nil }
func (d *freezingDriver) Start(context.Context, driver.InstanceSpec) (driver.Instance, error) {
	d.last = &freezingInstance{fakeInstance: newFake()}
	return d.last, nil
}

// TestIdleInstancesAreFrozenAndThawed: an instance idle for FreezeAfter is
// frozen at the next scaling, not before; the next call thaws it before
// the call is sent; a busy instance is never frozen.
func TestIdleInstancesAreFrozenAndThawed(t *testing.T) {
	d := &freezingDriver{}
	e := New(Config{Drivers: map[string]driver.Driver{fn.DefaultDriver: d}, Records: nopRecords{},
		KeepAlive: time.Hour, FreezeAfter: 100 * time.Millisecond})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	f := scaleFunction(0)
	call := func() {
		t.Helper()
		if ex, err := e.Invoke(context.Background(), f, json.RawMessage(`{}`)); err != nil || ex.Status != fn.StatusSuccess {
			t.Fatalf("call: %v %+v", err, ex)
		}
	}
	call()
	in := d.last
	e.Scale(time.Now()) // idle for less than FreezeAfter
	if in.freezes != 0 {
		t.Fatalf("frozen after %d freezes while recently used", in.freezes)
	}
	e.Scale(time.Now().Add(time.Second))
	if !in.frozen || in.freezes != 1 {
		t.Fatalf("idle a second: frozen %v after %d freezes", in.frozen, in.freezes)
	}
	e.Scale(time.Now().Add(2 * time.Second)) // already frozen: no second freeze
	call()
	if in.frozen || in.thaws != 1 || in.calledWhenFrozen || in.freezes != 1 {
		t.Fatalf("after a call: frozen %v, %d thaws, called while frozen %v, %d freezes", in.frozen, in.thaws, in.calledWhenFrozen, in.freezes)
	}
}
