package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// launched is a started init helper waiting for its spec: already in its
// namespaces and its cgroup, with its pipes, but not yet knowing which
// function it will run. Starting one costs a few milliseconds (a clone
// that creates namespaces, the exec and start of this binary, and on
// cgroup v1 a move into the cgroup that waits for an RCU grace period), so
// the driver keeps warm ones ready: Start then only writes the limits and
// the spec.
type launched struct {
	id    string
	dir   string // its code directory on the host, bound at /var/task, empty until Start
	h     *helper
	p     *pipes
	cg    *cgroup
	specW *os.File
	inst  *instance // set once a prestarted worker's interpreter runs
}

// launch starts a helper, in a new network namespace unless network, moves
// it into a new cgroup, and has it build its sandbox around an empty code
// directory; it then waits to be told what to run.
func (d *Driver) launch(network bool) (*launched, error) {
	l := &launched{id: fn.NewID()}
	l.dir = filepath.Join(d.instDir, l.id)
	if err := os.Mkdir(l.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	var err error
	if d.cg != nil {
		if l.cg, err = d.cg.create(l.id); err != nil {
			os.Remove(l.dir)
			return nil, fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
		}
	}
	if l.p, err = newPipes(); err != nil {
		l.abort()
		return nil, err
	}
	l.h, l.specW, err = d.startHelper(network, l.p.reqR, l.p.respW, l.p.outW)
	l.p.closeChildEnds()
	if err != nil {
		l.abort()
		return nil, err
	}
	if l.cg != nil {
		if err := l.cg.attach(l.h.cmd.Process.Pid); err != nil {
			l.abort()
			return nil, fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
		}
	}
	if err := writeJSON(l.specW, d.instanceSpec(l.dir, network)); err != nil {
		l.abort()
		return nil, err
	}
	return l, nil
}

// alive reports whether the helper still waits.
func (l *launched) alive() bool {
	select {
	case <-l.h.exited:
		return false
	default:
		return true
	}
}

// run tells the helper what to run: it starts the interpreter.
func (l *launched) run(r runSpec) error {
	err := writeJSON(l.specW, r)
	if cerr := l.specW.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sandbox: write to init helper: %w: %w", cerr, fn.ErrUnavailable)
	}
	l.specW = nil
	return err
}

// abort stops a helper that will not be used and frees what it holds.
func (l *launched) abort() {
	if l.specW != nil {
		l.specW.Close()
	}
	if l.h != nil {
		_ = l.h.cmd.Process.Kill()
		_ = l.h.cmd.Wait()
	}
	if l.p != nil {
		l.p.closeAll()
	}
	if l.cg != nil {
		l.cg.remove()
	}
	os.RemoveAll(l.dir)
}

// warmPool holds the warm helpers.
type warmPool struct {
	mu      sync.Mutex
	idle    []*launched
	filling int
	closed  bool
}

// take returns a warm helper, or starts one; the caller refills the pool
// when it is done starting. Functions with network access
// share the host's network namespace, so they always start their own.
func (d *Driver) take(network bool) (*launched, error) {
	if !network && d.opts.warm > 0 {
		for {
			d.warm.mu.Lock()
			var l *launched
			if n := len(d.warm.idle); n > 0 {
				l = d.warm.idle[n-1]
				d.warm.idle = d.warm.idle[:n-1]
			}
			d.warm.mu.Unlock()
			if l == nil {
				break
			}
			if l.alive() {
				return l, nil
			}
			l.abort()
		}
	}
	return d.launch(network)
}

// refill starts warm helpers until there are opts.warm of them.
func (d *Driver) refill() {
	for {
		d.warm.mu.Lock()
		if d.warm.closed || len(d.warm.idle)+d.warm.filling >= d.opts.warm {
			d.warm.mu.Unlock()
			return
		}
		d.warm.filling++
		d.warm.mu.Unlock()
		l, err := d.launch(false)
		d.warm.mu.Lock()
		d.warm.filling--
		closed := d.warm.closed
		if err == nil && !closed {
			d.warm.idle = append(d.warm.idle, l)
		}
		d.warm.mu.Unlock()
		switch {
		case err != nil:
			d.log.Warn("start a warm sandbox helper", "error", err)
			return
		case closed:
			l.abort()
			return
		}
	}
}

// Close stops the warm helpers. Instances are the engine's to stop.
func (d *Driver) Close() error {
	d.closing.Store(true)
	d.warm.mu.Lock()
	d.warm.closed = true
	idle := d.warm.idle
	d.warm.idle = nil
	d.warm.mu.Unlock()
	for _, l := range idle {
		l.abort()
	}
	d.closePrestarted()
	d.bg.Wait() // refills in flight see closed and undo their work
	if d.zy != nil {
		d.zy.stop()
	}
	return nil
}

// takeFor takes a helper (a warm one, or one started now) and gives it f.
func (d *Driver) takeFor(f *fn.Function) (*launched, error) {
	l, err := d.take(f.Network)
	if err != nil {
		return nil, err
	}
	if err := l.give(f); err != nil {
		l.abort()
		return nil, err
	}
	return l, nil
}

// give writes f's code into l's code directory and sets its cgroup's
// limits for f.
func (l *launched) give(f *fn.Function) error {
	if err := writeFiles(l.dir, f.Files); err != nil {
		return fmt.Errorf("sandbox: write code: %w", err)
	}
	if l.cg != nil {
		if err := l.cg.limit(f.Memory); err != nil {
			return fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
		}
	}
	return nil
}

// background runs f on its own goroutine; Close waits for it. Once Close
// has begun there is nothing to refill.
func (d *Driver) background(f func()) {
	if d.closing.Load() {
		return
	}
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		f()
	}()
}
