package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

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
	dir    string // on the host: task/, bound at /var/task, and layers/, at /opt/layers; empty until assigned
	h      *helper
	p      *pipes
	cg     *cgroup
	specW  *os.File
	masked []string  // the host's package directories masked when it was built
	worker *instance // set once a spare worker's interpreter runs in it
}

// taskDir and layersDir are the sandbox's directories on the host that are
// bound at /var/task and /opt/layers.
func (sb *sandbox) taskDir() string   { return filepath.Join(sb.dir, "task") }
func (sb *sandbox) layersDir() string { return filepath.Join(sb.dir, "layers") }

// startSandbox starts a helper, in a new network namespace unless network,
// moves it into a new cgroup, and has it build its sandbox around empty
// code and layer directories; it then waits to be told what to run.
func (d *Driver) startSandbox(network bool) (*sandbox, error) {
	sb := &sandbox{id: fn.NewID()}
	sb.dir = filepath.Join(d.instDir, sb.id)
	for _, dir := range []string{sb.dir, sb.taskDir(), sb.layersDir()} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			os.RemoveAll(sb.dir)
			return nil, fmt.Errorf("sandbox: %w", err)
		}
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
	sp := d.instanceSpec(sb.taskDir(), sb.layersDir(), network)
	for _, m := range sp.Masks {
		sb.masked = append(sb.masked, m.Path)
	}
	if err := writeJSON(sb.specW, sp); err != nil {
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
// it to spec's function.
func (d *Driver) sandboxFor(spec driver.InstanceSpec) (*sandbox, error) {
	sb, err := d.takeSandbox(spec.Function.Network)
	if err != nil {
		return nil, err
	}
	if err := d.assign(sb, spec); err != nil {
		sb.abort()
		return nil, err
	}
	return sb, nil
}

// assign gives sb to spec's function: it shows the function's code at
// /var/task and its layers at /opt/layers/<i>, masks the host's package
// directories that appeared since sb was built, and sets its cgroup's
// limits. Code and layers are mounted into the sandbox read-only where
// this host allows it (mount_linux.go), and copied into its directories
// (hard links) where not; files given by hand (spec.Code "") are written.
func (d *Driver) assign(sb *sandbox, spec driver.InstanceSpec) error {
	f := spec.Function
	if spec.Code == "" {
		if err := driver.WriteFiles(sb.taskDir(), f.Files); err != nil {
			return fmt.Errorf("sandbox: write code: %w", err)
		}
	}
	var (
		trees  []treeMount
		copies []string // where each tree goes when it is copied: sb's directories
	)
	if spec.Code != "" {
		trees = append(trees, treeMount{Src: spec.Code, Dst: TaskDir})
		copies = append(copies, sb.taskDir())
	}
	for i, l := range spec.Layers {
		dir := filepath.Join(sb.layersDir(), strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		trees = append(trees, treeMount{Src: l, Dst: driver.LayerDir(i)})
		copies = append(copies, dir)
	}
	if d.isolation.codeMounts {
		late := d.plan.lateMasks(sb.masked)
		if len(trees)+len(late) > 0 {
			if err := d.mountInto(sb, trees, late); err != nil {
				return err
			}
		}
	} else {
		for i, t := range trees {
			if err := driver.LinkTree(t.Src, copies[i]); err != nil {
				return fmt.Errorf("sandbox: copy %s: %w", t.Src, err)
			}
		}
	}
	if sb.cg != nil {
		if err := sb.cg.limit(f.Memory); err != nil {
			return fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
		}
	}
	return nil
}

// mountInto mounts trees and masks into sb once its helper has built the
// sandbox.
func (d *Driver) mountInto(sb *sandbox, trees []treeMount, masks []string) error {
	<-sb.h.ready
	if driver.IsClosed(sb.h.reported) || driver.IsClosed(sb.h.exited) {
		return fmt.Errorf("sandbox: init helper stopped before its sandbox was ready: %w", fn.ErrUnavailable)
	}
	if err := mountInto(sb.h.cmd.Process.Pid, trees, masks); err != nil {
		return fmt.Errorf("sandbox: %w: %w", err, fn.ErrUnavailable)
	}
	return nil
}
