package sandbox

import (
	"errors"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
)

// SetupOnce does what Start does on its critical path with a spare
// sandbox, with /bin/true for an interpreter: take the sandbox, set its
// cgroup's limits, tell it what to run, and wait until its init reports
// that /bin/true has exited. It returns how long that took, not counting
// the wait for a spare sandbox to be ready.
func (d *Driver) SetupOnce(memMB int) (time.Duration, error) {
	var sb *sandbox
	for sb == nil {
		d.spareSandboxes.mu.Lock()
		if n := len(d.spareSandboxes.idle); n > 0 {
			sb = d.spareSandboxes.idle[n-1]
		}
		d.spareSandboxes.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	<-sb.h.ready
	t0 := time.Now()
	sb, err := d.takeSandbox(false)
	if err != nil {
		return 0, err
	}
	defer sb.abort()
	if sb.cg != nil {
		if err := sb.cg.limit(memMB); err != nil {
			return 0, err
		}
	}
	if err := sb.run(runSpec{Path: "/bin/true", Args: []string{"/bin/true"}, Dir: "/"}); err != nil {
		return 0, err
	}
	<-sb.h.reported
	took := time.Since(t0)
	<-sb.h.exited
	d.background(d.refillSpareSandboxes)
	if st := parseStatus(sb.h.status); st.exit == nil || st.exit.Code != 0 {
		return 0, errors.New("helper did not finish: " + st.err)
	}
	return took, nil
}

// SpareWorkerPIDs lists the host pids of rt's spare workers, as their
// instances' Stats will report them (their helpers').
func (d *Driver) SpareWorkerPIDs(rt string) []int {
	return d.spareWorkerPIDs(rt, func(sb *sandbox) int { return sb.h.cmd.Process.Pid })
}

// spareWorkerPIDs lists pid(sb) of rt's spare workers, where it is not 0.
func (d *Driver) spareWorkerPIDs(rt string, pid func(*sandbox) int) []int {
	s := d.spareWorkers[rt]
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []int
	for _, sb := range s.idle {
		if n := pid(sb); n != 0 {
			pids = append(pids, n)
		}
	}
	return pids
}

// ZygotePID is the pid of the Python zygote, or 0 when it does not run.
func (d *Driver) ZygotePID() int {
	if !d.zygote.alive() {
		return 0
	}
	return d.zygote.pid
}

// WorkerPID is the host pid of the worker the zygote forked for in, or 0
// if it did not fork it.
func WorkerPID(in driver.Instance) int {
	if i, ok := in.(*instance); ok && i.zygoteChild != nil {
		return i.zygoteChild.pid
	}
	return 0
}

// SpareZygoteChildPIDs lists the host pids of rt's spare workers that the
// zygote forked (see WorkerPID).
func (d *Driver) SpareZygoteChildPIDs(rt string) []int {
	return d.spareWorkerPIDs(rt, func(sb *sandbox) int {
		if sb.worker != nil && sb.worker.zygoteChild != nil {
			return sb.worker.zygoteChild.pid
		}
		return 0
	})
}

// CgroupParents lists the directories, one per hierarchy, that hold the
// instances' cgroups.
func (d *Driver) CgroupParents() []string {
	if d.cg == nil {
		return nil
	}
	return d.cg.parents()
}

// AssignOnce takes a sandbox (a spare one, or one started now) once its
// helper has built it, and returns how long assigning it to spec's
// function took: its code and layers mounted, copied or written, late
// masks, its cgroup's limits. The sandbox is then stopped.
func (d *Driver) AssignOnce(spec driver.InstanceSpec) (time.Duration, error) {
	sb, err := d.takeSandbox(false)
	if err != nil {
		return 0, err
	}
	defer d.background(d.refillSpareSandboxes)
	defer sb.abort()
	<-sb.h.ready
	t0 := time.Now()
	err = d.assign(sb, spec)
	return time.Since(t0), err
}
