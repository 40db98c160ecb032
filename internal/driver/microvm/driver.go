package microvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Name is the name functions select this driver by ("firecracker" is an
// alias: fn.CanonicalDriver maps it to Name).
const Name = "microvm"

func init() {
	driver.Register(Name, func(cfg driver.Config) (driver.Driver, error) { return New(cfg) })
}

// Where a guest sees the function's code.
const guestTaskDir = "/var/task"

// Driver runs each instance in its own QEMU microvm.
type Driver struct {
	cfg   driver.Config
	opts  options
	log   driver.Logger
	art   artifactCache
	accel accel

	qemu    string // resolved path, or ""
	qemuErr error

	shimMu sync.Mutex
	shims  map[string]string // host shim path → content

	mu        sync.Mutex
	closed    bool
	run       string // the run directory: RAM files, snapshots, sockets
	templates map[string]*template
	spares    map[string]*spare
	vms       map[*vm]struct{}
}

var (
	_ driver.Driver         = (*Driver)(nil)
	_ driver.Closer         = (*Driver)(nil)
	_ driver.DetailReporter = (*Driver)(nil)
)

var errClosed = fmt.Errorf("microvm: driver closed: %w", fn.ErrUnavailable)

// New reads the driver's settings and finds QEMU and the accelerator. It
// starts nothing: the first instance does.
func New(cfg driver.Config) (*Driver, error) {
	if cfg.Logger == nil {
		cfg.Logger = driver.Discard
	}
	opts, err := readOptions(cfg.Lookup, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("microvm: %w", err)
	}
	d := &Driver{
		cfg:       cfg,
		opts:      opts,
		log:       cfg.Logger,
		art:       artifactCache{dir: opts.dir},
		accel:     detectAccel(opts.accel, "/sys/module", "/dev/kvm"),
		shims:     map[string]string{},
		templates: map[string]*template{},
		spares:    map[string]*spare{},
		vms:       map[*vm]struct{}{},
	}
	d.qemu, d.qemuErr = exec.LookPath(opts.qemu)
	// What a server killed with SIGKILL left (RAM files, snapshots)
	// goes at start-up, not when this one first needs a VM.
	removeStale(runBase())
	return d, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Available reports whether QEMU and the artifacts are there.
func (d *Driver) Available(context.Context) error {
	if d.qemuErr != nil {
		return fmt.Errorf("microvm: %s not found (apt-get install qemu-system-x86): %w", d.opts.qemu, fn.ErrUnavailable)
	}
	if _, err := d.art.get(); err != nil {
		return fmt.Errorf("microvm: %w: %w", err, fn.ErrUnavailable)
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return errClosed
	}
	return nil
}

// Details reports the accelerator and why, the artifacts and the
// templates, for GET /api/system.
func (d *Driver) Details() map[string]any {
	out := map[string]any{
		"accelerator":       d.accel.name,
		"acceleratorReason": d.accel.reason,
		"qemu":              d.qemu,
		"artifacts":         d.opts.dir,
		"snapshots":         d.opts.snapshots,
		"spares":            d.opts.spares,
		"guestOverheadMB":   d.opts.overheadMB,
	}
	if a, err := d.art.get(); err == nil {
		out["kernel"] = a.m.KernelVersion
		rts := map[string]string{}
		for rt, img := range a.m.Runtimes {
			rts[rt] = img.Version
		}
		out["runtimes"] = rts
	}
	type tmplInfo struct {
		Runtime    string `json:"runtime"`
		MemoryMB   int    `json:"memoryMB"`
		Ready      bool   `json:"ready"`
		Error      string `json:"error,omitempty"`
		BootMs     int64  `json:"bootMs,omitempty"`
		SnapshotMs int64  `json:"snapshotMs,omitempty"`
	}
	var ts []tmplInfo
	d.mu.Lock()
	for _, t := range d.templates {
		ti := tmplInfo{Runtime: t.runtime, MemoryMB: t.fnMemMB}
		if driver.IsClosed(t.ready) {
			ti.Ready = t.err == nil
			if t.err != nil {
				ti.Error = t.err.Error()
			}
			ti.BootMs, ti.SnapshotMs = t.boot.Milliseconds(), t.snap.Milliseconds()
		}
		ts = append(ts, ti)
	}
	d.mu.Unlock()
	out["templates"] = ts
	return out
}

// Start starts a VM for spec.Function, a clone of the runtime's template
// where there is one, and loads the handler in it.
func (d *Driver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	if err := d.Available(ctx); err != nil {
		return nil, err
	}
	a, err := d.art.get()
	if err != nil {
		return nil, fmt.Errorf("microvm: %w: %w", err, fn.ErrUnavailable)
	}
	f := spec.Function
	r, ok := runtime.Lookup(f.Runtime)
	if !ok {
		return nil, fmt.Errorf("microvm: runtime %q: %w", f.Runtime, fn.ErrInvalid)
	}
	if err := spec.Check(); err != nil {
		return nil, fmt.Errorf("microvm: %w", err)
	}
	if r.Relayed() {
		// Its guest would need the Runtime API relay beside the agent.
		return nil, fmt.Errorf("microvm: the %s runtime does not run in microVMs yet (use the sandbox or docker driver): %w", f.Runtime, fn.ErrInvalid)
	}
	if _, ok := a.runtimes[f.Runtime]; !ok {
		return nil, fmt.Errorf("microvm: the artifacts in %s have no %s image (was its interpreter installed when they were built?): %w",
			a.dir, f.Runtime, fn.ErrUnavailable)
	}
	var (
		v      *vm
		conn   net.Conn
		cloned bool
	)
	t0 := time.Now()
	if r.Snapshots && d.opts.snapshots {
		t, err := d.template(ctx, a, f.Runtime, f.Memory)
		if err == nil {
			v, conn, err = d.restore(ctx, t)
			cloned = err == nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, fn.ErrUnavailable) {
				return nil, err
			}
			d.log.Warn("microVM restore failed: booting afresh", "function", f.Name, "error", err)
		}
	}
	vs := vmSpec{runtime: f.Runtime, memMB: f.Memory + d.opts.overheadMB, fnMemMB: f.Memory}
	spares := !r.Snapshots && d.opts.spares
	if v == nil && spares {
		v, conn = d.takeSpare(ctx, vs)
	}
	if v == nil {
		bctx, cancel := context.WithTimeout(ctx, d.opts.bootTimeout)
		v, conn, err = d.bootPrepared(bctx, a, vs)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("microvm: %w", err)
		}
	}
	ready := time.Since(t0)
	if spares {
		d.refillSpare(a, vs)
	}
	inst := d.newInstance(v, conn, cloned)
	if err := inst.setup(ctx, spec); err != nil {
		err = inst.FailStart(ctx, err, "")
		return nil, inst.startError(err)
	}
	if err := inst.Load(ctx, spec.Init(guestTaskDir, nil)); err != nil {
		return nil, inst.startError(err)
	}
	d.log.Debug("microVM instance started", "vm", v.id, "function", f.Name, "cloned", cloned,
		"vm_ready", ready.Round(time.Millisecond), "handler_loaded", time.Since(t0).Round(time.Millisecond))
	return inst, nil
}

// bootPrepared boots a VM and waits until its agent has the shim and waits
// for its function.
func (d *Driver) bootPrepared(ctx context.Context, a *artifacts, s vmSpec) (*vm, net.Conn, error) {
	shim, err := d.shim(s.runtime)
	if err != nil {
		return nil, nil, err
	}
	v, err := d.startVM(a, s)
	if err != nil {
		return nil, nil, err
	}
	fail := func(what string, err error) (*vm, net.Conn, error) {
		if ctx.Err() != nil && !v.isExited() {
			err = fmt.Errorf("%w (after %s)", err, d.opts.bootTimeout)
		}
		err = v.failure(what, err)
		v.stop()
		d.forget(v)
		return nil, nil, err
	}
	conn, err := v.connectSerial(ctx)
	if err != nil {
		return fail("connect to the VM", err)
	}
	if err := agentHello(ctx, conn, "boot"); err != nil {
		conn.Close()
		return fail("boot", err)
	}
	if err := runtime.WriteFrame(conn, map[string]string{"type": "prepare", "shim": shim}); err != nil {
		conn.Close()
		return fail("boot", err)
	}
	if err := agentHello(ctx, conn, "prepared"); err != nil {
		conn.Close()
		return fail("boot", err)
	}
	return v, conn, nil
}

// startVM starts QEMU in a directory of its own and tracks it until forget.
func (d *Driver) startVM(a *artifacts, s vmSpec) (*vm, error) {
	run, err := d.runDir()
	if err != nil {
		return nil, err
	}
	v, err := startVM(a, d.accel, d.qemu, filepath.Join(run, "vm-"+fn.NewID()), s, d.log)
	if err != nil {
		return nil, fmt.Errorf("microvm: %w: %w", err, fn.ErrUnavailable)
	}
	d.mu.Lock()
	closed := d.closed
	if !closed {
		d.vms[v] = struct{}{}
	}
	d.mu.Unlock()
	if closed {
		v.stop()
		return nil, errClosed
	}
	return v, nil
}

// forget stops tracking a VM that has been stopped.
func (d *Driver) forget(v *vm) {
	d.mu.Lock()
	delete(d.vms, v)
	d.mu.Unlock()
}

// shim returns the runtime shim's source, read from where the server
// installed it.
func (d *Driver) shim(rt string) (string, error) {
	path := d.cfg.Shims.Shim(rt)
	if path == "" {
		return "", fmt.Errorf("microvm: no %s runtime shim installed: %w", rt, fn.ErrUnavailable)
	}
	d.shimMu.Lock()
	defer d.shimMu.Unlock()
	if s, ok := d.shims[path]; ok {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("microvm: read the runtime shim: %w: %w", err, fn.ErrUnavailable)
	}
	d.shims[path] = string(b)
	return string(b), nil
}

// runDir makes, once, the directory that holds this driver's RAM files,
// snapshots and sockets: in /dev/shm, so guest RAM is memory, not disk.
// Directories that servers no longer running left behind are removed.
func (d *Driver) runDir() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return "", errClosed
	}
	if d.run != "" {
		return d.run, nil
	}
	base := runBase()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	dir := filepath.Join(base, fmt.Sprintf("%s%d-%s", runDirPrefix, os.Getpid(), hex.EncodeToString(rnd[:])))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("microvm: %w: %w", err, fn.ErrUnavailable)
	}
	d.run = dir
	return dir, nil
}

const runDirPrefix = "nimbus-microvm-"

// runBase is where run directories go: /dev/shm, so guest RAM is memory.
func runBase() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// removeStale removes run directories whose server process is gone.
func removeStale(base string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), runDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}

// RunDir is the directory holding the driver's RAM files and sockets, or ""
// before the first VM.
func (d *Driver) RunDir() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.run
}

// Close stops every VM the driver started, templates included, and removes
// their RAM files, snapshots and sockets. Instances still in use die.
func (d *Driver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.mu.Lock()
	d.closed = true
	vms := make([]*vm, 0, len(d.vms))
	for v := range d.vms {
		vms = append(vms, v)
	}
	run := d.run
	d.mu.Unlock()
	for _, v := range vms {
		v.kill()
	}
	for _, v := range vms {
		select {
		case <-v.exited:
		case <-ctx.Done():
			return fmt.Errorf("microvm: close: VMs still running: %w", ctx.Err())
		}
	}
	if run != "" {
		if err := os.RemoveAll(run); err != nil {
			return fmt.Errorf("microvm: %w", err)
		}
	}
	return nil
}
