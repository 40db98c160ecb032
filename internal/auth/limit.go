package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a key's token bucket: RateLimit calls per second, with a
// burst of a second's worth (at least 1).
type limiter struct{ l *rate.Limiter }

func newLimiter(perSecond float64) *limiter {
	if perSecond <= 0 {
		return nil
	}
	return &limiter{rate.NewLimiter(rate.Limit(perSecond), max(1, int(math.Ceil(perSecond))))}
}

// Allow takes a token, or says how long until one is there.
func (p *Principal) Allow() (ok bool, retryAfter time.Duration) {
	if p.limit == nil {
		return true, 0
	}
	if p.limit.l.Allow() {
		return true, 0
	}
	r := p.limit.l.Reserve() // only to learn the wait
	d := r.Delay()
	r.Cancel()
	return false, max(d, time.Millisecond)
}

// Failures limits failed authentications per client address: FailBurst
// failures at once, then one per FailEvery. An address over it is refused
// before its credentials are even looked at.
type Failures struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// The failed-authentication budget of one client address.
const (
	FailBurst = 10
	FailEvery = 2 * time.Second
	// maxFailAddrs bounds the addresses tracked: past it, the ones whose
	// bucket has refilled are forgotten.
	maxFailAddrs = 10000
)

// Blocked says whether addr has used its failures up, and for how long.
func (f *Failures) Blocked(addr string) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.m[addr]
	if l == nil {
		return false, 0
	}
	// Tokens looks without taking: a blocked address's attempts do not
	// push its unblocking further away, and an allowed one costs nothing.
	if t := l.Tokens(); t < 1 {
		return true, time.Duration((1 - t) / float64(l.Limit()) * float64(time.Second))
	}
	return false, 0
}

// Fail counts a failed authentication from addr.
func (f *Failures) Fail(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*rate.Limiter{}
	}
	l := f.m[addr]
	if l == nil {
		if len(f.m) >= maxFailAddrs {
			f.prune()
		}
		l = rate.NewLimiter(rate.Every(FailEvery), FailBurst)
		f.m[addr] = l
	}
	l.Allow()
}

// prune forgets the addresses whose budget is whole again, or every one if
// that frees nothing (a flood of addresses).
func (f *Failures) prune() {
	for a, l := range f.m {
		if l.Tokens() >= FailBurst {
			delete(f.m, a)
		}
	}
	if len(f.m) >= maxFailAddrs {
		f.m = map[string]*rate.Limiter{}
	}
}
