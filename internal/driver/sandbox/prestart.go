package sandbox

import (
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Prestarted workers. A warm helper still pays the interpreter's start and
// the shim's imports on a cold start (tens of milliseconds: most of Python's
// is its site import, most of Node's is V8's start). So for each runtime the
// driver keeps workers whose interpreter has started inside a finished
// sandbox, with the shim loaded, waiting for their function: a cold start
// then writes the code into the bound /var/task, sets the cgroup's limits,
// and sends Init (with the function's environment), which imports the
// handler. Every protection is in place before the interpreter starts, as for
// any instance; the worker runs no user code until it is specialised, and is
// never reused for another function.
//
// What a prestarted worker cannot have: per-function interpreter flags. Node
// runs without --max-old-space-size; the cgroup's memory limit (and its OOM
// status) still holds.

// genericCommand runs rt's shim with no function-specific flags.
func (d *Driver) genericCommand(rt string) (string, []string, error) {
	return d.command(&fn.Function{Runtime: rt}, RuntimeDir)
}

// genericEnv is a prestarted worker's environment; the function's own
// variables arrive with Init.
func genericEnv() []string { return runtime.BaseEnv(TaskDir) }

// prestart starts a worker of runtime rt in a fresh sandbox: forked from
// the zygote for Python while it runs, a fresh interpreter otherwise.
func (d *Driver) prestart(rt string) (*launched, error) {
	if rt == fn.Python && d.zygoteUp() {
		l, err := d.launch(false)
		if err != nil {
			return nil, err
		}
		if l.inst, err = d.forkWorker(l); err == nil {
			return l, nil
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
	l, err := d.launch(false)
	if err != nil {
		return nil, err
	}
	if err := l.run(runSpec{Path: path, Args: args, Env: genericEnv(), Dir: TaskDir}); err != nil {
		l.abort()
		return nil, err
	}
	l.inst = d.newInstance(l.id, l.dir, l.h.cmd, l.p, l.h, l.cg, nil)
	return l, nil
}

// takePrestarted returns a live prestarted worker of rt, or nil.
func (d *Driver) takePrestarted(rt string) *launched {
	p := d.pre[rt]
	if p == nil {
		return nil
	}
	for {
		p.mu.Lock()
		var l *launched
		if n := len(p.idle); n > 0 {
			l = p.idle[n-1]
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if l == nil {
			return nil
		}
		if l.alive() {
			return l
		}
		_ = l.inst.Kill("died while prestarted")
	}
}

// specialise turns a prestarted worker into an instance of f: its code in
// /var/task and its limits on the cgroup. Init follows in Start.
func (d *Driver) specialise(l *launched, f *fn.Function) (*instance, error) {
	if err := l.give(f); err != nil {
		_ = l.inst.Kill("could not give it the function")
		return nil, err
	}
	return l.inst, nil
}

// refillPrestarted starts rt's workers until opts.prestart of them wait.
func (d *Driver) refillPrestarted(rt string) {
	p := d.pre[rt]
	if p == nil {
		return
	}
	for {
		p.mu.Lock()
		if p.closed || len(p.idle)+p.filling >= d.opts.prestart {
			p.mu.Unlock()
			return
		}
		p.filling++
		p.mu.Unlock()
		l, err := d.prestart(rt)
		p.mu.Lock()
		p.filling--
		closed := p.closed
		if err == nil && !closed {
			p.idle = append(p.idle, l)
		}
		p.mu.Unlock()
		switch {
		case err != nil:
			d.log.Warn("prestart a sandboxed worker", "runtime", rt, "error", err)
			return
		case closed:
			_ = l.inst.Kill("driver closed")
			<-l.inst.Done()
			return
		}
	}
}

// prestartRuntimes makes a pool for each runtime whose interpreter exists.
func (d *Driver) prestartRuntimes() {
	if !d.iso.on || d.opts.prestart == 0 {
		return
	}
	d.pre = map[string]*warmPool{}
	in := d.cfg.Interpreters
	for rt, path := range map[string]string{fn.Python: in.Python, fn.NodeJS: in.Node} {
		if path != "" {
			d.pre[rt] = &warmPool{}
		}
	}
	for rt := range d.pre { // the map is complete before anyone reads it
		d.background(func() { d.refillPrestarted(rt) })
	}
}

// closePrestarted stops the waiting workers.
func (d *Driver) closePrestarted() {
	for _, p := range d.pre {
		p.mu.Lock()
		p.closed = true
		idle := p.idle
		p.idle = nil
		p.mu.Unlock()
		for _, l := range idle {
			_ = l.inst.Kill("driver closed")
		}
		for _, l := range idle {
			<-l.inst.Done() // its directory and cgroup are gone
		}
	}
}
