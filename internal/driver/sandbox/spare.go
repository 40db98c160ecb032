package sandbox

import (
	"sync"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Spares: what the driver starts ahead of need, before it knows the
// function (see the package doc for the vocabulary). There are two kinds,
// each kept topped up in the background and taken by Start:
//
//   - A spare sandbox is a sandbox (sandbox.go) whose helper has built and
//     locked down its sandbox around an empty code directory and waits to
//     be told what to run. opts.spareSandboxes of them are kept
//     (EnvSpareSandboxes, NIMBUS_SANDBOX_WARM); Start takes one for a
//     function without network access when no spare worker fits.
//   - A spare worker is a spare sandbox in which the runtime's interpreter
//     has also started, with the shim loaded, waiting for its function.
//     opts.spareWorkers of them are kept per runtime (EnvSpareWorkers,
//     NIMBUS_SANDBOX_PRESTART).
//
// A spare sandbox saves a cold start the helper's start, but it still pays
// the interpreter's start and the shim's imports (tens of milliseconds:
// most of Python's is its site import, most of Node's is V8's start). A
// spare worker saves that too: a cold start then mounts the code at
// /var/task and the layers at /opt/layers (sandbox.go, assign), sets the
// cgroup's limits, and sends Init (with the function's environment), which
// imports the handler. Every protection is
// in place before the interpreter starts, as for any instance; the worker
// runs no user code until it is specialised, and is never reused for
// another function.
//
// What a spare worker cannot have: per-function interpreter flags. Node
// runs without --max-old-space-size; the cgroup's memory limit (and its OOM
// status) still holds.

// spares holds the spares of one kind that wait to be taken.
type spares struct {
	mu      sync.Mutex
	idle    []*sandbox
	filling int // being started
	closed  bool
	// onDemand spares are kept only once a function has asked for one
	// (wanted): the relay's, which most servers never use.
	onDemand, wanted bool
}

// takeSandbox returns a spare sandbox, or starts one; the caller refills
// the spare sandboxes when it is done starting. Functions with network
// access share the host's network namespace, so they always start their
// own.
func (d *Driver) takeSandbox(network bool) (*sandbox, error) {
	if !network && d.opts.spareSandboxes > 0 {
		for {
			d.spareSandboxes.mu.Lock()
			var sb *sandbox
			if n := len(d.spareSandboxes.idle); n > 0 {
				sb = d.spareSandboxes.idle[n-1]
				d.spareSandboxes.idle = d.spareSandboxes.idle[:n-1]
			}
			d.spareSandboxes.mu.Unlock()
			if sb == nil {
				break
			}
			if sb.alive() {
				return sb, nil
			}
			sb.abort()
		}
	}
	return d.startSandbox(network)
}

// refillSpareSandboxes starts spare sandboxes until there are
// opts.spareSandboxes of them.
func (d *Driver) refillSpareSandboxes() {
	for {
		d.spareSandboxes.mu.Lock()
		if d.spareSandboxes.closed || len(d.spareSandboxes.idle)+d.spareSandboxes.filling >= d.opts.spareSandboxes {
			d.spareSandboxes.mu.Unlock()
			return
		}
		d.spareSandboxes.filling++
		d.spareSandboxes.mu.Unlock()
		sb, err := d.startSandbox(false)
		d.spareSandboxes.mu.Lock()
		d.spareSandboxes.filling--
		closed := d.spareSandboxes.closed
		if err == nil && !closed {
			d.spareSandboxes.idle = append(d.spareSandboxes.idle, sb)
		}
		d.spareSandboxes.mu.Unlock()
		switch {
		case err != nil:
			d.log.Warn("start a spare sandbox", "error", err)
			return
		case closed:
			sb.abort()
			return
		}
	}
}

// closeSpareSandboxes stops the spare sandboxes.
func (d *Driver) closeSpareSandboxes() {
	d.spareSandboxes.mu.Lock()
	d.spareSandboxes.closed = true
	idle := d.spareSandboxes.idle
	d.spareSandboxes.idle = nil
	d.spareSandboxes.mu.Unlock()
	for _, sb := range idle {
		sb.abort()
	}
}

// background runs f, a refill, on its own goroutine; Close waits for it.
// Once Close has begun there is nothing to refill.
func (d *Driver) background(f func()) {
	if d.closing.Load() {
		return
	}
	d.refills.Add(1)
	go func() {
		defer d.refills.Done()
		f()
	}()
}

// genericCommand runs rt's shim with no function-specific flags.
func (d *Driver) genericCommand(rt string) (string, []string, error) {
	return d.command(&fn.Function{Runtime: rt}, RuntimeDir)
}

// genericEnv is a spare worker's environment; the function's own
// variables arrive with Init.
func genericEnv() []string { return runtime.BaseEnv(TaskDir) }

// startSpareWorker starts a worker of runtime rt in a new sandbox: forked
// from the zygote for Python while it runs, a fresh interpreter otherwise.
func (d *Driver) startSpareWorker(rt string) (*sandbox, error) {
	if d.zygoteFor(rt) {
		sb, err := d.startSandbox(false)
		if err != nil {
			return nil, err
		}
		if sb.worker, err = d.forkWorker(sb); err == nil {
			return sb, nil
		}
		if d.zygoteUp() {
			return nil, err
		}
		// It died meanwhile: a fresh interpreter, then.
	}
	path, args, err := d.genericCommand(rt)
	if err != nil {
		return nil, err
	}
	sb, err := d.startSandbox(false)
	if err != nil {
		return nil, err
	}
	if err := sb.run(runSpec{Path: path, Args: args, Env: genericEnv(), Dir: TaskDir}); err != nil {
		sb.abort()
		return nil, err
	}
	sb.worker = d.newInstance(sb.id, sb.dir, sb.h.cmd, sb.p, sb.h, sb.cg, nil)
	return sb, nil
}

// takeSpareWorker returns a live spare worker of rt, or nil.
func (d *Driver) takeSpareWorker(rt string) *sandbox {
	s := d.spareWorkers[rt]
	if s == nil {
		return nil
	}
	s.mu.Lock()
	first := s.onDemand && !s.wanted
	s.wanted = true
	s.mu.Unlock()
	if first {
		d.background(func() { d.refillSpareWorkers(rt) })
		return nil
	}
	for {
		s.mu.Lock()
		var sb *sandbox
		if n := len(s.idle); n > 0 {
			sb = s.idle[n-1]
			s.idle = s.idle[:n-1]
		}
		s.mu.Unlock()
		if sb == nil {
			return nil
		}
		if sb.alive() {
			return sb
		}
		_ = sb.worker.Kill("died while spare")
	}
}

// specialise turns a spare worker into an instance of spec's function: its
// code at /var/task, its layers at /opt/layers and its limits on the
// cgroup. Init follows in Start.
func (d *Driver) specialise(sb *sandbox, spec driver.InstanceSpec) (*instance, error) {
	if err := d.assign(sb, spec); err != nil {
		_ = sb.worker.Kill("could not assign it to the function")
		return nil, err
	}
	return sb.worker, nil
}

// refillSpareWorkers starts spare workers of rt until opts.spareWorkers of
// them wait.
func (d *Driver) refillSpareWorkers(rt string) {
	s := d.spareWorkers[rt]
	if s == nil {
		return
	}
	for {
		s.mu.Lock()
		if s.closed || (s.onDemand && !s.wanted) || len(s.idle)+s.filling >= d.opts.spareWorkers {
			s.mu.Unlock()
			return
		}
		s.filling++
		s.mu.Unlock()
		sb, err := d.startSpareWorker(rt)
		s.mu.Lock()
		s.filling--
		closed := s.closed
		if err == nil && !closed {
			s.idle = append(s.idle, sb)
		}
		s.mu.Unlock()
		switch {
		case err != nil:
			d.log.Warn("start a spare worker", "runtime", rt, "error", err)
			return
		case closed:
			_ = sb.worker.Kill("driver closed")
			<-sb.worker.Done()
			return
		}
	}
}

// startSpareWorkers keeps spare workers for each runtime whose interpreter
// exists.
func (d *Driver) startSpareWorkers() {
	if !d.isolation.on || d.opts.spareWorkers == 0 {
		return
	}
	d.spareWorkers = map[string]*spares{}
	for rt, in := range d.cfg.Interpreters {
		if in.Path != "" {
			d.spareWorkers[rt] = &spares{}
		}
	}
	if d.plan != nil && d.plan.relay != "" {
		// The Runtime API relay starts as a spare too: a Go program of
		// this binary's size takes tens of milliseconds to start (its
		// packages' init, page faults) where a cold start has a few. It
		// waits for Init before it listens or starts a bootstrap. Each
		// holds some megabytes, so they are kept only from the first
		// provided start on.
		for _, r := range runtime.All() {
			if r.Relayed() {
				d.spareWorkers[r.Name] = &spares{onDemand: true}
			}
		}
	}
	for rt := range d.spareWorkers { // the map is complete before anyone reads it
		d.background(func() { d.refillSpareWorkers(rt) })
	}
}

// closeSpareWorkers stops the spare workers.
func (d *Driver) closeSpareWorkers() {
	for _, s := range d.spareWorkers {
		s.mu.Lock()
		s.closed = true
		idle := s.idle
		s.idle = nil
		s.mu.Unlock()
		for _, sb := range idle {
			_ = sb.worker.Kill("driver closed")
		}
		for _, sb := range idle {
			<-sb.worker.Done() // its directory and cgroup are gone
		}
	}
}
