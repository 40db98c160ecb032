package autoscale

import (
	"fmt"
	"time"
)

// Windows says what to do with a function's warm instances after it goes idle
// (its last call ended and none is running or queued).
//
// Prewarm > 0: release the instances at once, then have one warm instance
// from Prewarm after the idle start until Prewarm+KeepAlive.
// Prewarm == 0: keep the warm instance(s) for KeepAlive, then release them.
// The zero Windows releases everything at once.
type Windows struct {
	Prewarm   time.Duration // release at once, then one warm instance from Prewarm after the idle start ...
	KeepAlive time.Duration // ... until Prewarm+KeepAlive; Prewarm 0: keep the warm instance(s) for KeepAlive
}

// Warm reports whether, idle for d, the function should have a warm instance:
// d in [Prewarm, Prewarm+KeepAlive).
func (w Windows) Warm(d time.Duration) bool {
	d = max(d, 0)
	return d >= w.Prewarm && d < w.Prewarm+w.KeepAlive
}

// WarmFor is how long, within the first d of an idle period, the function has
// a warm instance: the measure of the d' in [0, d) for which Warm(d') holds.
func (w Windows) WarmFor(d time.Duration) time.Duration {
	return max(0, min(d, w.Prewarm+w.KeepAlive)-w.Prewarm)
}

// Releases reports whether the windows release the warm instances at the idle
// start (and pre-warm one later), rather than keeping them.
func (w Windows) Releases() bool { return w.Prewarm > 0 }

func (w Windows) String() string {
	if w.Prewarm > 0 {
		return fmt.Sprintf("prewarm %s keep-alive %s", w.Prewarm, w.KeepAlive)
	}
	return fmt.Sprintf("keep-alive %s", w.KeepAlive)
}
