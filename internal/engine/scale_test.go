package engine

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// countingDriver starts fakeInstances and counts them; with fail set,
// starts fail.
type countingDriver struct {
	started atomic.Int64
	fail    atomic.Bool
}

func (d *countingDriver) Name() string                    { return fn.DefaultDriver }
func (d *countingDriver) Available(context.Context) error { return nil }
func (d *countingDriver) Start(context.Context, driver.InstanceSpec) (driver.Instance, error) {
	if d.fail.Load() {
		return nil, errors.New("cannot start")
	}
	d.started.Add(1)
	return newFake(), nil
}

func testEngine(t *testing.T, d driver.Driver, adaptive bool) *Engine {
	t.Helper()
	e := New(Config{
		Drivers:   map[string]driver.Driver{fn.DefaultDriver: d},
		Records:   nopRecords{},
		KeepAlive: 10 * time.Minute,
		Adaptive:  adaptive,
	})
	e.Start(context.Background())
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func scaleFunction(minInstances int) *fn.Function {
	return &fn.Function{ID: "f1", Name: "f", Driver: fn.DefaultDriver, Revision: 1, Timeout: 1000,
		MaxInstances: 5, MinInstances: minInstances, Concurrency: 1}
}

func TestMinInstancesAreKeptWarm(t *testing.T) {
	d := &countingDriver{}
	e := testEngine(t, d, true)
	f := scaleFunction(2)
	e.Update(f) // as the API does on create
	waitFor(t, func() bool { return e.Instances(f.ID).Idle == 2 })

	// Idle for a day: still two.
	e.Scale(time.Now().Add(24 * time.Hour))
	if c := e.Instances(f.ID); c.Idle != 2 || d.started.Load() != 2 {
		t.Fatalf("after a day idle: %+v, %d started; want 2 idle, 2 started", c, d.started.Load())
	}
	ex, err := e.Invoke(context.Background(), f, json.RawMessage(`{}`))
	if err != nil || ex.ColdStart {
		t.Fatalf("call with minInstances warm: cold=%v err=%v", ex.ColdStart, err)
	}

	// One dies: the next scaling replaces it.
	v, _ := e.pools.Load(f.ID)
	p := v.(*pool)
	p.mu.Lock()
	_ = p.insts[0].Kill("crash")
	p.mu.Unlock()
	e.Scale(time.Now())
	waitFor(t, func() bool { return e.Instances(f.ID).Idle == 2 && d.started.Load() == 3 })

	// Lowering minInstances (a new version) lets them go when idle.
	g := *f
	g.MinInstances, g.Revision = 0, 2
	e.Update(&g)
	e.Scale(time.Now().Add(time.Hour))
	if c := e.Instances(f.ID); c.Idle != 0 {
		t.Fatalf("after minInstances 0 and an hour: %+v", c)
	}
}

func TestBackgroundStartsBackOffWhenTheyFail(t *testing.T) {
	d := &countingDriver{}
	d.fail.Store(true)
	e := testEngine(t, d, false)
	f := scaleFunction(1)
	e.Update(f)
	v, _ := e.pools.Load(f.ID)
	p := v.(*pool)
	waitFor(t, func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.starting == 0 && !p.retryAt.IsZero() })
	e.Scale(time.Now()) // within the backoff: no new attempt
	p.mu.Lock()
	starting := p.starting
	p.mu.Unlock()
	if starting != 0 {
		t.Fatalf("retried within the backoff (%d starting)", starting)
	}
	d.fail.Store(false)
	e.Scale(time.Now().Add(2 * time.Second))
	waitFor(t, func() bool { return e.Instances(f.ID).Idle == 1 })
}

func TestConcurrencySharesAnInstance(t *testing.T) {
	p := newPool(&fn.Function{Revision: 1, MaxInstances: 1, Concurrency: 3}, nil)
	ctx := context.Background()
	if in, err := p.acquire(ctx, time.Second); in != nil || err != nil {
		t.Fatalf("first acquire = %v, %v; want a slot to start", in, err)
	}
	in := &instance{Instance: newFake(), version: 1}
	p.started(in)
	for i := range 2 {
		if got, err := p.acquire(ctx, time.Second); got != in || err != nil {
			t.Fatalf("call %d: %v, %v; want the shared instance", i+2, got, err)
		}
	}
	if c := p.counts("", false); c.Busy != 1 || c.Idle != 0 {
		t.Fatalf("counts %+v, want one busy instance", c)
	}
	// A fourth call queues until one of the three ends.
	got := make(chan *instance, 1)
	go func() { g, _ := p.acquire(ctx, 5*time.Second); got <- g }()
	waitFor(t, func() bool { return p.counts("", false).Queued == 1 })
	p.release(in, true)
	if g := <-got; g != in {
		t.Fatalf("queued call got %v, want the shared instance", g)
	}
	for range 3 {
		p.release(in, true)
	}
	if c := p.counts("", false); c.Idle != 1 || c.Busy != 0 || in.calls != 0 {
		t.Fatalf("after all calls: %+v, calls %d", c, in.calls)
	}
}

func TestRetiredInstanceFinishesItsCallsFirst(t *testing.T) {
	p := newPool(&fn.Function{Revision: 1, MaxInstances: 2, Concurrency: 2}, nil)
	ctx := context.Background()
	p.acquire(ctx, time.Second)
	in := &instance{Instance: newFake(), version: 1}
	p.started(in)
	p.acquire(ctx, time.Second)
	p.update(&fn.Function{Revision: 2, MaxInstances: 2, Concurrency: 2})
	p.release(in, true)
	if driver.IsClosed(in.Done()) {
		t.Fatal("retired instance killed with a call still running")
	}
	p.killBusy("shutdown") // it is still known to the pool
	if !driver.IsClosed(in.Done()) {
		t.Fatal("killBusy missed an instance retired while busy")
	}
}

func TestPrewarmWindows(t *testing.T) {
	p := newPool(&fn.Function{Revision: 1, MaxInstances: 3, Concurrency: 1}, nil)
	ctx := context.Background()
	p.acquire(ctx, time.Second)
	in := &instance{Instance: newFake(), version: 1}
	p.started(in)
	p.release(in, true)
	idle := p.idleSince
	w := autoscale.Windows{Prewarm: 10 * time.Minute, KeepAlive: 5 * time.Minute}

	// Inside the prewarm window the instance is released at once...
	if n, _ := p.scale(idle.Add(time.Minute), w, false); n != 0 || !driver.IsClosed(in.Done()) || p.total() != 0 {
		t.Fatalf("before the prewarm: %d to start, killed %v, total %d", n, driver.IsClosed(in.Done()), p.total())
	}
	// ... one is started when the window opens ...
	n, _ := p.scale(idle.Add(11*time.Minute), w, false)
	if n != 1 {
		t.Fatalf("at the prewarm: %d to start, want 1", n)
	}
	warm := &instance{Instance: newFake(), version: 1}
	if !p.added(warm) {
		t.Fatal("prewarmed instance refused")
	}
	if n, _ := p.scale(idle.Add(12*time.Minute), w, false); n != 0 || driver.IsClosed(warm.Done()) {
		t.Fatalf("inside the keep-alive: %d to start, killed %v", n, driver.IsClosed(warm.Done()))
	}
	// ... and let go when it closes.
	if n, _ := p.scale(idle.Add(16*time.Minute), w, false); n != 0 || !driver.IsClosed(warm.Done()) {
		t.Fatalf("after the keep-alive: %d to start, killed %v", n, driver.IsClosed(warm.Done()))
	}
}

// idleLog records the idle times a pool observes.
type idleLog struct {
	mu   sync.Mutex
	seen []time.Duration
}

func (l *idleLog) Observe(d time.Duration) { l.mu.Lock(); l.seen = append(l.seen, d); l.mu.Unlock() }
func (l *idleLog) Windows() autoscale.Windows {
	return autoscale.Windows{KeepAlive: time.Minute}
}

func TestIdleTimesReachTheTracker(t *testing.T) {
	tr := &idleLog{}
	p := newPool(&fn.Function{Revision: 1, MaxInstances: 3, Concurrency: 1}, tr)
	ctx := context.Background()
	for i := range 3 {
		in, _ := p.acquire(ctx, time.Second)
		if in == nil {
			in = &instance{Instance: newFake(), version: 1}
			p.started(in)
		}
		if i == 1 {
			// A call while another runs ends no idle time.
			in2, _ := p.acquire(ctx, time.Second)
			if in2 == nil {
				in2 = &instance{Instance: newFake(), version: 1}
				p.started(in2)
			}
			p.release(in2, true)
		}
		p.release(in, true)
		time.Sleep(5 * time.Millisecond)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.seen) != 2 || tr.seen[0] < 5*time.Millisecond || tr.seen[1] < 5*time.Millisecond {
		t.Fatalf("tracker saw idle times %v, want two of at least 5ms", tr.seen)
	}
}

type nopRecords struct{}

func (nopRecords) InsertExecutions(context.Context, []*fn.Execution) error { return nil }
func (nopRecords) PruneExecutions(context.Context, string, int) (int64, error) {
	return 0, nil
}

func TestAdaptiveKeepAliveReleasesAndPrewarms(t *testing.T) {
	d := &countingDriver{}
	e := testEngine(t, d, true)
	f := scaleFunction(0)
	ctx := context.Background()
	// A function called every 30 minutes, as a scheduled job is: replay its
	// idle times by moving the start of each idle period back.
	for range 30 {
		if _, err := e.Invoke(ctx, f, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		v, _ := e.pools.Load(f.ID)
		p := v.(*pool)
		p.mu.Lock()
		p.idleSince = p.idleSince.Add(-30 * time.Minute)
		p.mu.Unlock()
	}
	w, src := e.KeepAlive(f)
	if src != "adaptive" || w.Prewarm < 20*time.Minute || w.Prewarm > 30*time.Minute || w.Prewarm+w.KeepAlive < 30*time.Minute {
		t.Fatalf("keep-alive for a 30-minute schedule: %v (%s); want a prewarm a little before 30m, a window past it", w, src)
	}
	v, _ := e.pools.Load(f.ID)
	idle := v.(*pool).idleSince
	e.Scale(idle.Add(time.Minute))
	if c := e.Instances(f.ID); c.Idle+c.Starting != 0 {
		t.Fatalf("a minute into a 30-minute gap: %+v; want the memory released", c)
	}
	started := d.started.Load()
	e.Scale(idle.Add(w.Prewarm + time.Second))
	waitFor(t, func() bool { return e.Instances(f.ID).Idle == 1 })
	if d.started.Load() != started+1 {
		t.Fatalf("prewarm started %d instances, want 1", d.started.Load()-started)
	}
	// The scheduled call finds it warm.
	ex, err := e.Invoke(ctx, f, json.RawMessage(`{}`))
	if err != nil || ex.ColdStart {
		t.Fatalf("the call after the prewarm: cold=%v err=%v", ex.ColdStart, err)
	}
}

func TestKeepAliveDoesNotReplaceInstancesThatDied(t *testing.T) {
	p := newPool(&fn.Function{Revision: 1, MaxInstances: 3, Concurrency: 1}, nil)
	p.acquire(context.Background(), time.Second)
	in := &instance{Instance: newFake(), version: 1}
	p.started(in)
	p.release(in, false) // it crashed
	w := autoscale.Windows{KeepAlive: 10 * time.Minute}
	if n, _ := p.scale(p.idleSince.Add(time.Minute), w, false); n != 0 {
		t.Fatalf("a minute into the keep-alive, %d started to replace a crashed instance; want none", n)
	}
}
