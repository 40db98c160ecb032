package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// fakeInstance is a narrow stand-in for pool bookkeeping tests.
type fakeInstance struct {
	once   sync.Once
	done   chan struct{}
	reason string
}

func newFake() *fakeInstance { return &fakeInstance{done: make(chan struct{})} }

func (f *fakeInstance) Invoke(context.Context, *runtime.Request) (*runtime.Response, error) {
	return &runtime.Response{}, nil
}
func (f *fakeInstance) Stats() driver.Stats { return driver.Stats{} }
func (f *fakeInstance) Kill(reason string) error {
	f.once.Do(func() { f.reason = reason; close(f.done) })
	return nil
}
func (f *fakeInstance) Done() <-chan struct{} { return f.done }
func (f *fakeInstance) Exit() driver.ExitInfo { return driver.ExitInfo{Reason: f.reason} }

func testPool(max int) *pool { return newPool(&fn.Function{Revision: 1, MaxInstances: max}, nil) }

func TestPoolReusesWarmInstance(t *testing.T) {
	p := testPool(2)
	in, err := p.acquire(context.Background(), time.Second)
	if in != nil || err != nil {
		t.Fatalf("first acquire = %v, %v; want a slot to start", in, err)
	}
	started := &instance{Instance: newFake(), version: 1}
	p.started(started)
	p.release(started, true)
	got, err := p.acquire(context.Background(), time.Second)
	if err != nil || got != started {
		t.Fatalf("second acquire = %v, %v; want the warm instance", got, err)
	}
}

func TestPoolQueuesThenRejects(t *testing.T) {
	p := testPool(1)
	if _, err := p.acquire(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := p.acquire(context.Background(), 50*time.Millisecond)
	if !errors.Is(err, fn.ErrCapacity) {
		t.Fatalf("acquire over capacity: %v, want ErrCapacity", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("rejected after %v, before the queue timeout", waited)
	}
}

func TestPoolHandsOverInFIFOOrder(t *testing.T) {
	p := testPool(1)
	if _, err := p.acquire(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	busy := &instance{Instance: newFake(), version: 1}
	p.started(busy)

	order := make(chan int, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := p.acquire(context.Background(), 5*time.Second)
			if err != nil || in != busy {
				t.Errorf("waiter %d got %v, %v", i, in, err)
				return
			}
			order <- i
			p.release(in, true)
		}()
		// Let waiter i queue before waiter i+1.
		waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.waiters) == i+1 })
	}
	p.release(busy, true)
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("waiter %d served in position %d", got, want)
		}
		want++
	}
}

func TestPoolRetiresOldVersionsAndDeadInstances(t *testing.T) {
	p := testPool(3)
	old := &instance{Instance: newFake(), version: 1}
	dead := &instance{Instance: newFake(), version: 1}
	for _, in := range []*instance{old, dead} {
		if _, err := p.acquire(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		p.started(in)
	}
	p.release(old, true)
	p.release(dead, true)
	_ = dead.Kill("crashed while idle")
	p.update(&fn.Function{Revision: 2, MaxInstances: 3})
	if !driver.IsClosed(old.Done()) {
		t.Fatal("idle instance of version 1 still running after update to version 2")
	}
	in, err := p.acquire(context.Background(), time.Second)
	if in != nil || err != nil {
		t.Fatalf("acquire after update = %v, %v; want a fresh start", in, err)
	}
	if p.total() != 1 {
		t.Fatalf("total = %d, want 1", p.total())
	}
}

func TestPoolUnhealthyReleaseLetsWaiterStart(t *testing.T) {
	p := testPool(1)
	if _, err := p.acquire(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	crashed := &instance{Instance: newFake(), version: 1}
	p.started(crashed)
	got := make(chan error, 1)
	go func() {
		in, err := p.acquire(context.Background(), 5*time.Second)
		if err == nil && in != nil {
			err = errors.New("got the crashed instance")
		}
		got <- err
	}()
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.waiters) == 1 })
	p.release(crashed, false)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if !driver.IsClosed(crashed.Done()) {
		t.Fatal("unhealthy instance not killed")
	}
}

func TestPoolReapKillsIdle(t *testing.T) {
	p := testPool(2)
	in := &instance{Instance: newFake(), version: 1}
	if _, err := p.acquire(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	p.started(in)
	p.release(in, true)
	w := autoscale.Windows{KeepAlive: time.Minute}
	if p.scale(time.Now(), w, false); p.total() != 1 {
		t.Fatalf("scaling a fresh instance left %d, want 1", p.total())
	}
	if p.scale(time.Now().Add(time.Minute+time.Second), w, false); p.total() != 0 || !driver.IsClosed(in.Done()) {
		t.Fatalf("scaling after keep-alive left %d, killed=%v", p.total(), driver.IsClosed(in.Done()))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
