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

// slowFreezing is a freezingInstance whose freeze takes a while, and says
// when it has begun.
type slowFreezing struct {
	*freezingInstance
	begun chan struct{}
}

// Freeze stops the instance at once, as a real freeze does, and returns
// later.
func (s *slowFreezing) Freeze() error {
	err := s.freezingInstance.Freeze()
	close(s.begun)
	time.Sleep(200 * time.Millisecond)
	return err
}

type slowFreezingDriver struct{ last *slowFreezing }

func (d *slowFreezingDriver) Name() string                    { return fn.DefaultDriver }
func (d *slowFreezingDriver) Available(context.Context) error { return nil }
func (d *slowFreezingDriver) Start(context.Context, driver.InstanceSpec) (driver.Instance, error) {
	d.last = &slowFreezing{freezingInstance: &freezingInstance{fakeInstance: newFake()}, begun: make(chan struct{})}
	return d.last, nil
}

// TestACallDuringAFreezeWaitsAndThaws: a call that takes an instance while
// it is being frozen waits for the freeze, thaws it, and only then is sent
// (the soak caught calls sent to an instance being frozen, which hung
// until their timeout).
func TestACallDuringAFreezeWaitsAndThaws(t *testing.T) {
	d := &slowFreezingDriver{}
	e := New(Config{Drivers: map[string]driver.Driver{fn.DefaultDriver: d}, Records: nopRecords{},
		KeepAlive: time.Hour, FreezeAfter: time.Millisecond})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	f := scaleFunction(0)
	if _, err := e.Invoke(context.Background(), f, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	in := d.last
	go e.Scale(time.Now().Add(time.Second))
	<-in.begun
	ex, err := e.Invoke(context.Background(), f, json.RawMessage(`{}`))
	if err != nil || ex.Status != fn.StatusSuccess {
		t.Fatalf("call during a freeze: %v %+v", err, ex)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.calledWhenFrozen || in.frozen || in.thaws != 1 {
		t.Fatalf("called while frozen %v, frozen after %v, %d thaws", in.calledWhenFrozen, in.frozen, in.thaws)
	}
}
