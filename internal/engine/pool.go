package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// instance is a started driver instance and what the pool knows of it.
type instance struct {
	driver.Instance
	version  int
	lastUsed time.Time
}

// grant is what a queued caller is handed: an idle instance, or (nil) the
// right to start a new one, or why it will get neither.
type grant struct {
	inst *instance
	err  error
}

var errGone = fmt.Errorf("function deleted or server shutting down: %w", fn.ErrUnavailable)

// pool holds one function's instances. Each serves one call at a time.
type pool struct {
	mu      sync.Mutex
	version int // instances of older versions are retired
	name    string
	driver  string
	max     int
	gone    bool        // the function was deleted
	idle    []*instance // most recently used last
	busy    map[*instance]struct{}
	total   int // idle + busy + starting
	waiters []chan grant
}

func newPool(f *fn.Function) *pool {
	return &pool{version: f.Version, name: f.Name, driver: f.Driver, max: f.MaxInstances, busy: make(map[*instance]struct{})}
}

// acquire returns a warm instance, or nil and the right to start one (the
// slot is already counted). Over capacity it waits in FIFO order up to
// queueTimeout, then fails with fn.ErrCapacity.
func (p *pool) acquire(ctx context.Context, queueTimeout time.Duration) (*instance, error) {
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return nil, errGone
	}
	for len(p.idle) > 0 {
		in := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if isDone(in.Done()) {
			p.total--
			continue
		}
		p.busy[in] = struct{}{}
		p.mu.Unlock()
		return in, nil
	}
	if p.total < p.max {
		p.total++
		p.mu.Unlock()
		return nil, nil
	}
	ch := make(chan grant, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()

	timer := time.NewTimer(queueTimeout)
	defer timer.Stop()
	var why error
	select {
	case g := <-ch:
		return g.inst, g.err
	case <-timer.C:
		why = fmt.Errorf("all %d instances busy for %s: %w", p.max, queueTimeout, fn.ErrCapacity)
	case <-ctx.Done():
		why = fmt.Errorf("gave up waiting for an instance: %w", ctx.Err())
	}
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil, why
		}
	}
	p.mu.Unlock()
	// Granted while we gave up: pass the grant on.
	switch g := <-ch; {
	case g.inst != nil:
		p.release(g.inst, true)
	case g.err == nil:
		p.abandon()
	}
	return nil, why
}

// started registers a newly started instance as busy.
func (p *pool) started(in *instance) {
	p.mu.Lock()
	p.busy[in] = struct{}{}
	p.mu.Unlock()
}

// release returns in after a call. An unhealthy or outdated instance is
// killed and its slot handed on.
func (p *pool) release(in *instance, healthy bool) {
	p.mu.Lock()
	delete(p.busy, in)
	if !healthy || p.gone || in.version != p.version || isDone(in.Done()) {
		p.total--
		p.handOnLocked()
		p.mu.Unlock()
		_ = in.Kill("retired")
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.busy[in] = struct{}{}
		p.mu.Unlock()
		w <- grant{inst: in}
		return
	}
	in.lastUsed = time.Now()
	p.idle = append(p.idle, in)
	p.mu.Unlock()
}

// abandon gives back a slot that acquire granted but no instance filled.
func (p *pool) abandon() {
	p.mu.Lock()
	p.total--
	p.handOnLocked()
	p.mu.Unlock()
}

// handOnLocked lets the first waiter start an instance if a slot is free.
func (p *pool) handOnLocked() {
	if len(p.waiters) > 0 && p.total < p.max && !p.gone {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.total++
		w <- grant{}
	}
}

// isVersion reports whether the pool serves version v of its function.
func (p *pool) isVersion(v int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.version == v
}

// update adopts a function's new version and limits, retiring idle
// instances of older versions.
func (p *pool) update(f *fn.Function) {
	p.mu.Lock()
	var retired []*instance
	if f.Version != p.version {
		p.version = f.Version
		retired, p.idle = p.idle, nil
		p.total -= len(retired)
	}
	p.name, p.driver, p.max = f.Name, f.Driver, f.MaxInstances
	for p.total < p.max && len(p.waiters) > 0 {
		p.handOnLocked()
	}
	p.mu.Unlock()
	for _, in := range retired {
		_ = in.Kill("new version")
	}
}

// reap kills idle instances unused since before cutoff, or all when cutoff
// is zero (or the function is gone), and reports how many remain.
func (p *pool) reap(cutoff time.Time, gone bool) int {
	p.mu.Lock()
	if gone && !p.gone {
		p.gone = true
		for _, w := range p.waiters {
			w <- grant{err: errGone}
		}
		p.waiters = nil
	}
	var dead, keep []*instance
	for _, in := range p.idle {
		if cutoff.IsZero() || p.gone || in.lastUsed.Before(cutoff) || isDone(in.Done()) {
			dead = append(dead, in)
		} else {
			keep = append(keep, in)
		}
	}
	p.idle = keep
	p.total -= len(dead)
	left := p.total
	p.mu.Unlock()
	for _, in := range dead {
		_ = in.Kill("idle")
	}
	return left
}

// killBusy kills instances still serving calls (forced shutdown).
func (p *pool) killBusy(reason string) {
	p.mu.Lock()
	busy := make([]*instance, 0, len(p.busy))
	for in := range p.busy {
		busy = append(busy, in)
	}
	p.mu.Unlock()
	for _, in := range busy {
		_ = in.Kill(reason)
	}
}

// counts reports the pool's instances by state and its queue, and with
// withRSS the resident memory of its running workers.
func (p *pool) counts(functionID string, withRSS bool) metrics.InstanceCount {
	p.mu.Lock()
	c := metrics.InstanceCount{
		FunctionID: functionID,
		Function:   p.name,
		Driver:     p.driver,
		Idle:       len(p.idle),
		Busy:       len(p.busy),
		Starting:   p.total - len(p.idle) - len(p.busy),
		Queued:     len(p.waiters),
	}
	var running []*instance
	if withRSS {
		running = append(slices.Clone(p.idle), slices.Collect(maps.Keys(p.busy))...)
	}
	p.mu.Unlock()
	for _, in := range running { // Stats may read /proc: not under the lock
		c.RSSKiB += in.Stats().RSSKiB
	}
	return c
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
