package docker

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// pool keeps started, generic containers per key, so that a function's
// first call skips container creation (a few hundred milliseconds): Start
// takes one and hands it the function. One background job refills it, at
// most one container per key and two at a time, for the default memory
// size of each runtime and for every key used in the last keep-alive
// period.
type pool struct {
	d    *Driver
	size int
	kick chan struct{}

	mu   sync.Mutex
	keys map[poolKey]*poolEntry
}

type poolEntry struct {
	ready    []*container
	starting chan struct{} // closed when the container being started is ready (or failed)
	lastUsed time.Time
	pinned   bool      // the defaults: never dropped
	failedAt time.Time // the last failed start: retried after a pause
}

// retryAfter is how long a key whose container failed to start waits.
const retryAfter = 15 * time.Second

func newPool(d *Driver, size int) *pool {
	return &pool{d: d, size: size, kick: make(chan struct{}, 1), keys: map[poolKey]*poolEntry{}}
}

// take returns a started generic container for key, or nil. A container
// being started for key is waited for (until ctx ends): it is ready sooner
// than a new one. The key is kept filled from now on.
func (p *pool) take(ctx context.Context, key poolKey) *container {
	if p.size == 0 {
		return nil
	}
	defer p.signal()
	for waited := false; ; waited = true {
		p.mu.Lock()
		e := p.keys[key]
		if e == nil {
			e = &poolEntry{}
			p.keys[key] = e
		}
		e.lastUsed = time.Now()
		for len(e.ready) > 0 {
			c := e.ready[0]
			e.ready = e.ready[1:]
			if !driver.IsClosed(c.Done()) {
				p.mu.Unlock()
				return c
			}
		}
		starting := e.starting
		p.mu.Unlock()
		if starting == nil || waited {
			return nil
		}
		select {
		case <-starting:
		case <-ctx.Done():
			return nil
		}
	}
}

func (p *pool) signal() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run refills the pool until ctx ends, then kills what it holds.
func (p *pool) run(ctx context.Context, memoryMB int) {
	p.mu.Lock()
	for _, r := range runtime.All() {
		if r.Relayed() {
			// Its containers are pooled once a function uses it: a
			// server that never runs one holds none.
			continue
		}
		rt := r.Name
		p.keys[poolKey{runtime: rt, memoryMB: memoryMB}] = &poolEntry{pinned: true, lastUsed: time.Now()}
	}
	p.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p.fill(ctx)
		select {
		case <-ctx.Done():
			p.drain()
			return
		case <-p.kick:
		case <-tick.C:
		}
	}
}

// fillers is how many containers the pool starts at once: two keys (the
// two runtimes at start-up) fill side by side.
const fillers = 2

// fill starts containers for the keys short of size, most recently used
// first, and drops keys unused for the keep-alive period.
func (p *pool) fill(ctx context.Context) {
	var wg sync.WaitGroup
	for range fillers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.fillOne(ctx)
		}()
	}
	wg.Wait()
}

func (p *pool) fillOne(ctx context.Context) {
	for ctx.Err() == nil {
		key, ok := p.next()
		if !ok {
			return
		}
		c, err := p.d.create(ctx, key, nil)
		p.mu.Lock()
		e := p.keys[key]
		if e != nil {
			e.wake()
		}
		if err != nil {
			if e != nil {
				e.failedAt = time.Now()
			}
			p.mu.Unlock()
			if ctx.Err() == nil {
				p.d.log.Warn("could not start a container for the pool", "runtime", key.runtime, "memoryMB", key.memoryMB, "error", err)
			}
			continue
		}
		if e == nil || ctx.Err() != nil {
			p.mu.Unlock()
			c.Kill("pool key dropped")
			continue
		}
		e.ready = append(e.ready, c)
		p.mu.Unlock()
	}
}

// next picks the key to start a container for, dropping stale keys.
func (p *pool) next() (poolKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var (
		best  poolKey
		found bool
		stale []*container
	)
	keys := make([]poolKey, 0, len(p.keys))
	for k := range p.keys {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return p.keys[keys[i]].lastUsed.After(p.keys[keys[j]].lastUsed) })
	for _, k := range keys {
		e := p.keys[k]
		live := e.ready[:0]
		for _, c := range e.ready {
			if !driver.IsClosed(c.Done()) {
				live = append(live, c)
			}
		}
		e.ready = live
		if !e.pinned && now.Sub(e.lastUsed) > p.d.opts.keepAlive {
			stale = append(stale, e.ready...)
			e.wake()
			delete(p.keys, k)
			continue
		}
		if found || e.starting != nil || len(e.ready) >= p.size || now.Sub(e.failedAt) < retryAfter {
			continue
		}
		best, found = k, true
		e.starting = make(chan struct{})
	}
	for _, c := range stale {
		go c.Kill("pool key unused")
	}
	return best, found
}

// drain kills every pooled container.
func (p *pool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range p.keys {
		for _, c := range e.ready {
			go c.Kill("driver closed")
		}
		e.wake()
		delete(p.keys, k)
	}
}

// wake tells those waiting for the container being started that it is
// ready or will not be.
func (e *poolEntry) wake() {
	if e.starting != nil {
		close(e.starting)
		e.starting = nil
	}
}
