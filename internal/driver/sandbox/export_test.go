package sandbox

import (
	"errors"
	"time"
)

// SetupOnce does what Start does on its critical path before the
// interpreter's exec, with a warm helper: take it, set its cgroup's limits,
// send it the spec and wait until it has built the sandbox and locked
// itself down (it reports then, instead of starting an interpreter). It
// returns how long that took, not counting the wait for a warm helper.
func (d *Driver) SetupOnce(memMB int) (time.Duration, error) {
	for {
		d.warm.mu.Lock()
		n := len(d.warm.idle)
		d.warm.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// A warm helper is started well before it is needed, except here:
	// let it finish starting.
	time.Sleep(20 * time.Millisecond)
	t0 := time.Now()
	l, err := d.take(false)
	if err != nil {
		return 0, err
	}
	defer l.abort()
	if l.cg != nil {
		if err := l.cg.limit(memMB); err != nil {
			return 0, err
		}
	}
	sp := d.instanceSpec(d.instDir, false)
	if err := l.send(sp); err != nil {
		return 0, err
	}
	<-l.h.reported
	took := time.Since(t0)
	<-l.h.exited
	go d.refill()
	if st := parseStatus(l.h.status); !st.probe {
		return 0, errors.New("helper did not finish: " + st.err)
	}
	return took, nil
}
