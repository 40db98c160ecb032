package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nimbusfaas/nimbus/internal/autoscale"
	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/metrics"
)

// instance is a started driver instance and what the pool knows of it.
type instance struct {
	driver.Instance
	version  int
	lastUsed time.Time // when its last call ended, or it started
	calls    int       // calls it is serving now
	retired  bool      // out of the pool: killed when its last call ends
	// Freezing (freeze.go): fz orders freezes and thaws; frozen is read
	// without it on the invoke path; unfreezable (under the pool's lock)
	// stops further tries.
	fz          sync.Mutex
	frozen      atomic.Bool
	unfreezable bool
}

// grant is what a queued caller is handed: an instance with room for its
// call, or (nil) the right to start a new one, or why it will get neither.
type grant struct {
	inst *instance
	err  error
}

var errGone = fmt.Errorf("function deleted or server shutting down: %w", fn.ErrUnavailable)

// pool holds one function's instances. Each serves up to f.Concurrency
// calls at once; there are at most f.MaxInstances, started or starting.
type pool struct {
	mu       sync.Mutex
	f        *fn.Function // the version served and its limits; instances of older versions are retired
	gone     bool         // the function was deleted
	insts    []*instance  // started and serving this version
	retiring []*instance  // out of the pool, finishing their calls
	starting int
	waiters  []chan grant
	// active counts calls running or waiting. When it falls to zero the
	// function is idle: idleSince is then, and the idle time ends with the
	// next call, which tells the tracker how long it was.
	active    int
	idleSince time.Time
	tracker   tracker
	// Background starts (minInstances, prewarming) that failed are not
	// retried before retryAt, with a backoff that doubles.
	retryAt time.Time
	backoff time.Duration
}

// tracker learns a function's idle times and proposes its keep-alive
// (*autoscale.Tracker).
type tracker interface {
	Observe(idle time.Duration)
	Windows() autoscale.Windows
}

func newPool(f *fn.Function, t tracker) *pool {
	if t == nil {
		t = autoscale.NewTracker(autoscale.Config{})
	}
	return &pool{f: f, tracker: t}
}

func (p *pool) total() int { return len(p.insts) + p.starting }

// acquire returns an instance with room for one more call, or nil and the
// right to start one (the slot is already counted). Over capacity it waits
// in FIFO order up to queueTimeout, then fails with fn.ErrCapacity. Every
// successful acquire is ended by one release, or by abandon when the
// instance could not be started.
func (p *pool) acquire(ctx context.Context, queueTimeout time.Duration) (*instance, error) {
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return nil, errGone
	}
	if p.active == 0 && !p.idleSince.IsZero() {
		p.tracker.Observe(time.Since(p.idleSince))
	}
	p.active++
	if in := p.roomLocked(); in != nil {
		in.calls++
		p.mu.Unlock()
		return in, nil
	}
	if p.total() < p.f.MaxInstances {
		p.starting++
		p.mu.Unlock()
		return nil, nil
	}
	ch := make(chan grant, 1)
	p.waiters = append(p.waiters, ch)
	limit := p.f.MaxInstances
	p.mu.Unlock()

	timer := time.NewTimer(queueTimeout)
	defer timer.Stop()
	var why error
	select {
	case g := <-ch:
		if g.err != nil {
			p.callEnded()
		}
		return g.inst, g.err
	case <-timer.C:
		why = fmt.Errorf("all %d instances busy for %s: %w", limit, queueTimeout, fn.ErrCapacity)
	case <-ctx.Done():
		why = fmt.Errorf("gave up waiting for an instance: %w", ctx.Err())
	}
	p.mu.Lock()
	if i := slices.Index(p.waiters, ch); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
		p.callEndedLocked()
		p.mu.Unlock()
		return nil, why
	}
	p.mu.Unlock()
	// Granted while we gave up: pass the grant on.
	switch g := <-ch; {
	case g.inst != nil:
		p.release(g.inst, true)
	case g.err == nil:
		p.abandon()
	default:
		p.callEnded()
	}
	return nil, why
}

// roomLocked finds a live instance with room for a call: the most
// recently used, so that idle ones age and can be let go.
func (p *pool) roomLocked() *instance {
	for i := len(p.insts) - 1; i >= 0; i-- {
		in := p.insts[i]
		if driver.IsClosed(in.Done()) {
			p.insts = slices.Delete(p.insts, i, i+1)
			continue
		}
		if in.calls < max(p.f.Concurrency, 1) {
			return in
		}
	}
	return nil
}

func (p *pool) callEnded() {
	p.mu.Lock()
	p.callEndedLocked()
	p.mu.Unlock()
}

func (p *pool) callEndedLocked() {
	if p.active--; p.active == 0 {
		p.idleSince = time.Now()
	}
}

// started registers an instance that acquire let the caller start; its
// first call is running.
func (p *pool) started(in *instance) {
	p.mu.Lock()
	p.starting--
	in.calls = 1
	in.lastUsed = time.Now()
	p.insts = append(p.insts, in)
	// With room for more calls, it can take queued ones at once.
	p.handOnLocked()
	p.mu.Unlock()
}

// added registers an instance started in the background (minInstances,
// prewarming) and reports whether the pool took it; if not, it was
// killed.
func (p *pool) added(in *instance) bool {
	p.mu.Lock()
	p.starting--
	if p.gone || in.version != p.f.Revision {
		p.handOnLocked()
		p.mu.Unlock()
		_ = in.Kill("no longer needed")
		return false
	}
	p.retryAt, p.backoff = time.Time{}, 0
	in.lastUsed = time.Now()
	p.insts = append(p.insts, in)
	p.handOnLocked()
	p.mu.Unlock()
	return true
}

// startFailed gives back the slot of a background start that failed and
// holds further background starts off for a while.
func (p *pool) startFailed() {
	p.mu.Lock()
	p.starting--
	p.backoff = min(max(2*p.backoff, time.Second), time.Minute)
	p.retryAt = time.Now().Add(p.backoff)
	p.handOnLocked()
	p.mu.Unlock()
}

// release ends a call on in. An unhealthy instance is killed at once, one
// of an older version once its last call ends; either way its room goes to
// the next caller.
func (p *pool) release(in *instance, healthy bool) {
	p.mu.Lock()
	in.calls--
	in.lastUsed = time.Now()
	p.callEndedLocked()
	var kill string
	switch {
	case !healthy || driver.IsClosed(in.Done()):
		kill = "retired"
		p.removeLocked(in)
	case p.gone || in.retired || in.version != p.f.Revision:
		p.removeLocked(in)
		if in.calls == 0 {
			kill = "retired"
		}
	}
	if kill != "" {
		if i := slices.Index(p.retiring, in); i >= 0 {
			p.retiring = slices.Delete(p.retiring, i, i+1)
		}
	}
	p.handOnLocked()
	p.mu.Unlock()
	if kill != "" {
		_ = in.Kill(kill)
	}
}

// abandon gives back a slot that acquire granted but no instance filled.
func (p *pool) abandon() {
	p.mu.Lock()
	p.starting--
	p.callEndedLocked()
	p.handOnLocked()
	p.mu.Unlock()
}

// removeLocked takes in out of the pool; one still serving calls is
// remembered until they end.
func (p *pool) removeLocked(in *instance) {
	if i := slices.Index(p.insts, in); i >= 0 {
		p.insts = slices.Delete(p.insts, i, i+1)
		if in.calls > 0 {
			p.retiring = append(p.retiring, in)
		}
	}
	in.retired = true
}

// handOnLocked gives queued callers room on an instance, or the right to
// start one, while there is either.
func (p *pool) handOnLocked() {
	for len(p.waiters) > 0 && !p.gone {
		var g grant
		if in := p.roomLocked(); in != nil {
			in.calls++
			g.inst = in
		} else if p.total() < p.f.MaxInstances {
			p.starting++
		} else {
			return
		}
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w <- g
	}
}

// isVersion reports whether the pool serves version v of its function.
func (p *pool) isVersion(v int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.f.Revision == v
}

// update adopts a function's new version and limits, retiring instances
// of older versions: idle ones now, busy ones when their calls end.
func (p *pool) update(f *fn.Function) {
	p.mu.Lock()
	var idle []*instance
	if f.Revision != p.f.Revision {
		for _, in := range slices.Clone(p.insts) {
			p.removeLocked(in)
			if in.calls == 0 {
				idle = append(idle, in)
			}
		}
		p.retryAt, p.backoff = time.Time{}, 0
	}
	p.f = f
	p.handOnLocked()
	p.mu.Unlock()
	for _, in := range idle {
		_ = in.Kill("new version")
	}
}

// scale applies the keep-alive windows w at now: it stops idle instances
// the function should not keep and reports how many to start (for
// minInstances, or to prewarm before a predicted call), counting them as
// starting. With gone, it stops every idle instance and fails the queue.
func (p *pool) scale(now time.Time, w autoscale.Windows, gone bool) (start int, f *fn.Function) {
	p.mu.Lock()
	if gone && !p.gone {
		p.gone = true
		for _, ch := range p.waiters {
			ch <- grant{err: errGone}
		}
		p.waiters = nil
	}
	var dead []*instance
	for i := len(p.insts) - 1; i >= 0; i-- { // the dead need no keeping
		if in := p.insts[i]; driver.IsClosed(in.Done()) {
			p.insts = slices.Delete(p.insts, i, i+1)
		}
	}
	keep := p.f.MinInstances // at least
	switch {
	case p.gone:
		keep = 0
	case p.active > 0:
		// Busy: instances idle longer than the whole window go.
		keep = max(keep, p.busyOrRecentLocked(now.Add(-(w.Prewarm + w.KeepAlive))))
	case w.Warm(now.Sub(p.idleSince)):
		keep = max(keep, len(p.insts))
		if w.Prewarm > 0 {
			// The policy predicted a call: one instance waits for it.
			// (Without a prewarm, instances that died are not replaced.)
			keep = max(keep, 1)
		}
	}
	if excess := len(p.insts) - keep; excess > 0 {
		// The least recently used idle ones go first.
		idle := make([]*instance, 0, len(p.insts))
		for _, in := range p.insts {
			if in.calls == 0 {
				idle = append(idle, in)
			}
		}
		slices.SortFunc(idle, func(a, b *instance) int { return a.lastUsed.Compare(b.lastUsed) })
		dead = idle[:min(excess, len(idle))]
		for _, in := range dead {
			p.removeLocked(in)
		}
	}
	if !p.gone && now.After(p.retryAt) {
		start = max(0, min(keep, p.f.MaxInstances)-p.total())
		p.starting += start
	}
	f = p.f
	p.mu.Unlock()
	for _, in := range dead {
		_ = in.Kill("idle")
	}
	return start, f
}

// busyOrRecentLocked counts instances serving calls or used since cutoff.
func (p *pool) busyOrRecentLocked(cutoff time.Time) int {
	n := 0
	for _, in := range p.insts {
		if in.calls > 0 || !in.lastUsed.Before(cutoff) {
			n++
		}
	}
	return n
}

// killBusy kills instances still serving calls (forced shutdown).
func (p *pool) killBusy(reason string) {
	p.mu.Lock()
	busy := slices.Clone(p.retiring)
	for _, in := range p.insts {
		if in.calls > 0 {
			busy = append(busy, in)
		}
	}
	p.mu.Unlock()
	for _, in := range busy {
		_ = in.Kill(reason)
	}
}

// counts reports the pool's instances by state and its queue, and with
// withRSS the resident memory of its running workers.
// functionID is the id of the pool's function.
func (p *pool) functionID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.f.ID
}

func (p *pool) counts(functionID string, withRSS bool) metrics.InstanceCount {
	p.mu.Lock()
	c := metrics.InstanceCount{
		FunctionID: functionID,
		Function:   p.f.Name,
		Driver:     p.f.Driver,
		Starting:   p.starting,
		Queued:     len(p.waiters),
	}
	for _, in := range p.insts {
		if in.calls > 0 {
			c.Busy++
		} else {
			c.Idle++
		}
	}
	var running []*instance
	if withRSS {
		running = slices.Clone(p.insts)
	}
	p.mu.Unlock()
	for _, in := range running { // Stats may read /proc: not under the lock
		c.RSSKiB += in.Stats().RSSKiB
	}
	return c
}
