package sandbox

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// sandbox is a started init helper waiting for its spec: already in its
// namespaces and its cgroup, with its pipes, but not yet knowing which
// function it will run. Starting one costs a few milliseconds (a clone
// that creates namespaces, the exec and start of this binary, and on
// cgroup v1 a move into the cgroup that waits for an RCU grace period), so
// the driver keeps spare sandboxes ready (spare.go): Start then only
// writes the limits and the spec.
type sandbox struct {
	id     string
	dir    string // its code directory on the host, bound at /var/task, empty until Start
	h      *helper
	p      *pipes
	cg     *cgroup
	specW  *os.File
	worker *instance // set once a spare worker's interpreter runs in it
}

// startSandbox starts a helper, in a new network namespace unless network,
// moves it into a new cgroup, and has it build its sandbox around an empty
// code directory; it then waits to be told what to run.
func (d *Driver) startSandbox(network bool) (*sandbox, error) {
	sb := &sandbox{id: fn.NewID()}
	sb.dir = filepath.Join(d.instDir, sb.id)
	if err := os.Mkdir(sb.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	var err error
	if d.cg != nil {
		if sb.cg, err = d.cg.create(sb.id); err != nil {
			os.Remove(sb.dir)
			return nil, fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
		}
	}
	if sb.p, err = newPipes(); err != nil {
		sb.abort()
		return nil, err
	}
	sb.h, sb.specW, err = d.startHelper(network, sb.p.reqR, sb.p.respW, sb.p.outW)
	sb.p.closeChildEnds()
	if err != nil {
		sb.abort()
		return nil, err
	}
	if sb.cg != nil {
		if err := sb.cg.attach(sb.h.cmd.Process.Pid); err != nil {
			sb.abort()
			return nil, fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
		}
	}
	if err := writeJSON(sb.specW, d.instanceSpec(sb.dir, network)); err != nil {
		sb.abort()
		return nil, err
	}
	return sb, nil
}

// alive reports whether the helper still waits.
func (sb *sandbox) alive() bool {
	select {
	case <-sb.h.exited:
		return false
	default:
		return true
	}
}

// run tells the helper what to run: it starts the interpreter.
func (sb *sandbox) run(r runSpec) error {
	err := writeJSON(sb.specW, r)
	if cerr := sb.specW.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sandbox: write to init helper: %w: %w", cerr, fn.ErrUnavailable)
	}
	sb.specW = nil
	return err
}

// abort stops a helper that will not be used and frees what it holds.
func (sb *sandbox) abort() {
	if sb.specW != nil {
		sb.specW.Close()
	}
	if sb.h != nil {
		_ = sb.h.cmd.Process.Kill()
		_ = sb.h.cmd.Wait()
	}
	if sb.p != nil {
		sb.p.closeAll()
	}
	if sb.cg != nil {
		sb.cg.remove()
	}
	os.RemoveAll(sb.dir)
}

// sandboxFor takes a sandbox (a spare one, or one started now) and assigns
// it to f.
func (d *Driver) sandboxFor(f *fn.Function) (*sandbox, error) {
	sb, err := d.takeSandbox(f.Network)
	if err != nil {
		return nil, err
	}
	if err := sb.assign(f); err != nil {
		sb.abort()
		return nil, err
	}
	return sb, nil
}

// assign gives sb to f: it writes f's code into sb's code directory and
// sets its cgroup's limits for f.
func (sb *sandbox) assign(f *fn.Function) error {
	if err := driver.WriteFiles(sb.dir, f.Files); err != nil {
		return fmt.Errorf("sandbox: write code: %w", err)
	}
	if sb.cg != nil {
		if err := sb.cg.limit(f.Memory); err != nil {
			return fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
		}
	}
	return nil
}
