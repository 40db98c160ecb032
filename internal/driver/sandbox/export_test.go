package sandbox

import (
	"errors"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// SetupOnce does what Start does on its critical path with a warm helper,
// with /bin/true for an interpreter: take the helper, set its cgroup's
// limits, tell it what to run, and wait until its init reports that
// /bin/true has exited. It returns how long that took, not counting the
// wait for a warm helper to be ready.
func (d *Driver) SetupOnce(memMB int) (time.Duration, error) {
	var l *launched
	for l == nil {
		d.warm.mu.Lock()
		if n := len(d.warm.idle); n > 0 {
			l = d.warm.idle[n-1]
		}
		d.warm.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	<-l.h.ready
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
	if err := l.run(runSpec{Path: "/bin/true", Args: []string{"/bin/true"}, Dir: "/"}); err != nil {
		return 0, err
	}
	<-l.h.reported
	took := time.Since(t0)
	<-l.h.exited
	d.background(d.refill)
	if st := parseStatus(l.h.status); st.exit == nil || st.exit.Code != 0 {
		return 0, errors.New("helper did not finish: " + st.err)
	}
	return took, nil
}

// PrestartedPIDs lists the host pids of the workers prestarted for rt.
func (d *Driver) PrestartedPIDs(rt string) []int {
	return d.prestarted(rt, func(l *launched) int { return l.h.cmd.Process.Pid })
}

// prestarted lists pid(l) of rt's prestarted workers, where it is not 0.
func (d *Driver) prestarted(rt string, pid func(*launched) int) []int {
	p := d.pre[rt]
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, l := range p.idle {
		if n := pid(l); n != 0 {
			pids = append(pids, n)
		}
	}
	return pids
}

// ZygotePID is the pid of the Python zygote, or 0 when it does not run.
func (d *Driver) ZygotePID() int {
	if !d.zy.alive() {
		return 0
	}
	return d.zy.pid
}

// WorkerPID is the host pid of the worker the zygote forked for in, or 0
// if it did not fork it.
func WorkerPID(in driver.Instance) int {
	if i, ok := in.(*instance); ok && i.zc != nil {
		return i.zc.pid
	}
	return 0
}

// PrestartedWorkerPIDs lists the host pids of the prestarted workers of rt
// that the zygote forked.
func (d *Driver) PrestartedWorkerPIDs(rt string) []int {
	return d.prestarted(rt, func(l *launched) int {
		if l.inst != nil && l.inst.zc != nil {
			return l.inst.zc.pid
		}
		return 0
	})
}
