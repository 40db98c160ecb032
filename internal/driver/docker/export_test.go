package docker

import (
	"context"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// PooledReady counts the started generic containers ready for rt at the
// default memory size.
func (d *Driver) PooledReady(rt string) int {
	p := d.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.keys[poolKey{runtime: rt, memoryMB: d.opts.memoryMB}]; e != nil {
		return len(e.ready)
	}
	return 0
}

// CreateStart creates and starts a generic container for rt, as the pool
// does, and returns what stops it.
func (d *Driver) CreateStart(ctx context.Context, rt string) (stop func(), err error) {
	c, err := d.create(ctx, poolKey{runtime: rt, memoryMB: d.opts.memoryMB}, nil)
	if err != nil {
		return nil, err
	}
	return func() { c.Kill("benchmark"); <-c.Done() }, nil
}

// OOMEvents counts the "oom" events the driver has seen.
func (d *Driver) OOMEvents() int64 { return d.oom.events.Load() }

// SetOOMEventWait sets how long an exit by SIGKILL waits for the daemon's
// oom event, and returns a function that restores it.
func SetOOMEventWait(d time.Duration) (restore func()) {
	saved := oomEventWait
	oomEventWait = d
	return func() { oomEventWait = saved }
}

// KernelSawOOM reports whether the kernel's log tells of an OOM kill in
// the container of in.
func KernelSawOOM(in driver.Instance) bool {
	c := in.(*container)
	return kernelSawOOM(c.id, int(c.pid.Load()), c.loadedUs.Load())
}
