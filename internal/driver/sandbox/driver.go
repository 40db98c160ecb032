package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
)

// Name is the name functions select this driver by.
const Name = "sandbox"

func init() {
	driver.Register(Name, func(cfg driver.Config) (driver.Driver, error) { return New(cfg) })
}

// Driver starts each instance as a worker process isolated by the kernel:
// namespaces, a root of its own, cgroups, no privileges and a seccomp
// filter (see docs/isolation.md). Where the host does not allow that, it
// runs plain processes, says so, and in strict mode refuses.
type Driver struct {
	cfg     driver.Config
	opts    options
	log     driver.Logger
	instDir string // the instances' code, on the host
	rootDir string // where helpers mount their new roots (in their own namespace)

	isolation      isolation
	cg             *cgroups           // nil without cgroups
	plan           *rootPlan          // nil without isolation
	spareSandboxes spares             // sandboxes started ahead, waiting for a function (spare.go)
	spareWorkers   map[string]*spares // workers started ahead in their sandbox, by runtime
	zygote         *zygote            // nil when Python workers are not forked
	zygoteOff      error              // why not, when zygote is nil

	closing atomic.Bool    // Close has been called
	refills sync.WaitGroup // refills of the spare sandboxes and spare workers, waited for by Close
}

var (
	_ driver.Driver             = (*Driver)(nil)
	_ driver.Closer             = (*Driver)(nil)
	_ driver.ProtectionReporter = (*Driver)(nil)
	_ driver.Confiner           = (*Driver)(nil)
)

// New prepares the driver's directories below cfg.DataDir, removing what an
// earlier run left there, and finds out which protections this host allows:
// it starts one sandbox with every protection as a probe.
func New(cfg driver.Config) (*Driver, error) {
	opts, err := readOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = driver.Discard
	}
	base := filepath.Join(cfg.DataDir, "sandbox")
	d := &Driver{
		cfg:     cfg,
		opts:    opts,
		log:     cfg.Logger,
		instDir: filepath.Join(base, "instances"),
		rootDir: filepath.Join(base, "root"),
	}
	if err := os.RemoveAll(d.instDir); err != nil {
		return nil, fmt.Errorf("sandbox: clean instances: %w", err)
	}
	for _, dir := range []string{d.instDir, d.rootDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	d.isolation = d.detect()
	d.zygote, d.zygoteOff = d.startZygote()
	d.logProtections()
	if d.isolation.on {
		d.background(d.refillSpareSandboxes)
	}
	d.startSpareWorkers()
	return d, nil
}

// Close stops the spare sandboxes, the spare workers and the zygote.
// Instances are the engine's to stop.
func (d *Driver) Close() error {
	d.closing.Store(true)
	d.closeSpareSandboxes()
	d.closeSpareWorkers()
	d.refills.Wait() // refills in flight see closed and undo their work
	if d.zygote != nil {
		d.zygote.stop()
	}
	return nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Available reports whether functions can run: at least one interpreter,
// and in strict mode every protection.
func (d *Driver) Available(context.Context) error {
	if d.opts.strict {
		if missing := d.isolation.missing(); len(missing) > 0 {
			return fmt.Errorf("sandbox: %s=1 and this host does not allow full isolation (%s): %w",
				EnvStrict, joinMissing(missing), fn.ErrUnavailable)
		}
	}
	if len(d.cfg.Interpreters.Paths()) == 0 {
		return fmt.Errorf("sandbox: no %s interpreter found: %w", runtime.Commands(), fn.ErrUnavailable)
	}
	return nil
}

// command returns the interpreter and arguments that run f's runtime shim,
// whose directory is shimDir.
func (d *Driver) command(f *fn.Function, shimDir string) (string, []string, error) {
	r, ok := runtime.Lookup(f.Runtime)
	if !ok {
		return "", nil, fmt.Errorf("sandbox: runtime %q: %w", f.Runtime, fn.ErrInvalid)
	}
	if r.Relayed() {
		return d.relayCommand(f)
	}
	interp := d.cfg.Interpreters.Path(r.Name)
	if interp == "" {
		return "", nil, fmt.Errorf("sandbox: %s is not installed on this host: %w", r.Command, fn.ErrUnavailable)
	}
	return interp, r.ShimCommand(interp, filepath.Join(shimDir, r.Shim), f.Memory), nil
}

// relayCommand runs the Runtime API relay, the worker of a relayed
// runtime: this binary, bound into every sandbox. It serves the Runtime
// API on 127.0.0.1 of the instance's network namespace, so it runs only
// in a sandbox with a namespace of its own: a function with network
// access (the host's namespace) or a plain process would open it to the
// whole host.
func (d *Driver) relayCommand(f *fn.Function) (string, []string, error) {
	switch {
	case !d.isolation.on || d.plan == nil || d.plan.relay == "":
		return "", nil, fmt.Errorf("sandbox: the %s runtime runs only isolated, and this host does not allow isolation: %w", f.Runtime, fn.ErrUnavailable)
	case f.Network:
		return "", nil, fmt.Errorf("sandbox: the %s runtime with network: true is not supported: its Runtime API would listen in the host's network namespace: %w", f.Runtime, fn.ErrInvalid)
	}
	return runtimeapi.RelayPath, []string{runtimeapi.RelayPath}, nil
}

// shimDir is the host directory holding the installed shims.
func (d *Driver) shimDir() string {
	return d.cfg.Shims.Dir
}

// Start starts a worker for spec.Function and loads its handler.
func (d *Driver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	if err := d.Available(ctx); err != nil {
		return nil, err
	}
	if err := spec.Check(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	f := spec.Function
	var (
		inst    *instance
		err     error
		taskDir string
		env     map[string]string
		layers  = spec.LayerDirs()
	)
	var spare *sandbox
	if !f.Network {
		spare = d.takeSpareWorker(f.Runtime)
	}
	if spare != nil {
		taskDir, env = TaskDir, driver.FunctionEnv(f, TaskDir)
		inst, err = d.specialise(spare, spec)
		defer d.background(func() { d.refillSpareWorkers(f.Runtime) })
	} else if d.isolation.on && d.zygoteFor(f.Runtime) {
		taskDir, env = TaskDir, driver.FunctionEnv(f, TaskDir)
		inst, err = d.spawnZygote(spec)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("fork a python worker from the zygote; starting a fresh interpreter instead", "function", f.ID, "error", err)
			env = nil
			inst, err = d.spawnIsolated(spec)
		}
	} else if d.isolation.on {
		taskDir = TaskDir
		inst, err = d.spawnIsolated(spec)
	} else {
		inst, taskDir, err = d.spawnPlain(spec)
		layers = spec.Layers // the host's paths: a plain process sees the host
	}
	if err != nil {
		return nil, err
	}
	if d.isolation.on && !f.Network {
		// Replace the spare sandbox taken, once this one's start no longer
		// competes for the CPU.
		defer d.background(d.refillSpareSandboxes)
	}
	in := spec.Init(taskDir, env)
	in.Layers = layers
	if err := inst.Load(ctx, in); err != nil {
		return nil, inst.startError(err)
	}
	return inst, nil
}

// spawnPlain starts the interpreter as a plain process on the host: no
// isolation beyond its own process group, directory and environment. It
// runs in spec.Code itself (nothing stops a plain process writing there),
// or in a directory of its own holding spec.Function.Files; taskDir says
// which.
func (d *Driver) spawnPlain(spec driver.InstanceSpec) (inst *instance, taskDir string, err error) {
	f := spec.Function
	path, args, err := d.command(f, d.shimDir())
	if err != nil {
		return nil, "", err
	}
	id := fn.NewID()
	dir := filepath.Join(d.instDir, id) // removed when the instance ends
	taskDir = spec.Code
	if taskDir == "" {
		taskDir = dir
		if err := driver.WriteFiles(dir, f.Files); err != nil {
			os.RemoveAll(dir)
			return nil, "", fmt.Errorf("sandbox: write code: %w", err)
		}
	}
	p, err := newPipes()
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	cmd := &exec.Cmd{
		Path:       path,
		Args:       args,
		Dir:        taskDir,
		Env:        envList(driver.FunctionEnv(f, taskDir)),
		Stdout:     p.outW,
		Stderr:     p.outW,
		ExtraFiles: []*os.File{p.reqR, p.respW},
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = cmd.Start()
	p.closeChildEnds()
	if err != nil {
		p.closeAll()
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("sandbox: start worker: %w", err)
	}
	return d.newInstance(id, dir, cmd, p, nil, nil, nil), taskDir, nil
}

// spawnIsolated takes a helper that has built its sandbox around empty
// code and layer directories (a spare sandbox, or one started now),
// assigns it to the function (its code and layers, its cgroup's limits),
// and tells the helper what to run.
func (d *Driver) spawnIsolated(spec driver.InstanceSpec) (*instance, error) {
	f := spec.Function
	path, args, err := d.command(f, RuntimeDir)
	if err != nil {
		return nil, err
	}
	sb, err := d.sandboxFor(spec)
	if err != nil {
		return nil, err
	}
	if err := sb.run(runSpec{Path: path, Args: args, Env: envList(driver.FunctionEnv(f, TaskDir)), Dir: TaskDir}); err != nil {
		sb.abort()
		return nil, err
	}
	return d.newInstance(sb.id, sb.dir, sb.h.cmd, sb.p, sb.h, sb.cg, nil), nil
}

// instanceSpec is the helper's spec for an instance whose /var/task and
// /opt/layers are taskDir and layersDir on the host ("": none).
func (d *Driver) instanceSpec(taskDir, layersDir string, network bool) spec {
	sp := d.plan.spec(d.rootDir, taskDir, layersDir, d.shimDir(), network)
	sp.TmpBytes = int64(d.opts.tmpMB) << 20
	sp.UID, sp.GID = d.opts.uid, d.opts.gid
	sp.SetGroups = !d.isolation.userns
	sp.Seccomp = d.isolation.seccomp
	sp.Rlimits = []rlimit{
		{Resource: syscall.RLIMIT_CORE},
		{Resource: syscall.RLIMIT_NOFILE, Cur: 1024, Max: 1024},
		// Above the size of /tmp, the only writable file system, so that a
		// full /tmp gives ENOSPC rather than SIGXFSZ.
		{Resource: syscall.RLIMIT_FSIZE, Cur: uint64(sp.TmpBytes) + 1<<20, Max: uint64(sp.TmpBytes) + 1<<20},
	}
	return sp
}

// helper is a started init helper.
type helper struct {
	cmd      *exec.Cmd
	ready    chan struct{} // closed once its sandbox is built, or it has exited
	reported chan struct{} // closed once it has reported an outcome, or exited
	exited   chan struct{} // closed once its status pipe is closed: it has exited
	status   []byte        // what it reported; read after exited
}

// startHelper starts this binary as the init helper of new namespaces,
// with req and resp as its fds 3 and 4 and out as its stdout and stderr.
// It waits for its spec on specW.
func (d *Driver) startHelper(network bool, req, resp, out *os.File) (h *helper, specW *os.File, err error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{helperName},
		Env:         []string{"GOMAXPROCS=1"}, // one thread's work: fewer threads in its pids count
		Dir:         "/",
		Stdout:      out,
		Stderr:      out,
		ExtraFiles:  []*os.File{req, resp, specR, statusW},
		SysProcAttr: d.cloneAttr(network),
	}
	err = cmd.Start()
	specR.Close()
	statusW.Close()
	if err != nil {
		specW.Close()
		statusR.Close()
		return nil, nil, fmt.Errorf("sandbox: start init helper: %w: %w", err, fn.ErrUnavailable)
	}
	h = &helper{cmd: cmd, ready: make(chan struct{}), reported: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(h.exited)
		defer statusR.Close()
		br := bufio.NewReader(io.LimitReader(statusR, 64<<10))
		var all []byte
		for {
			line, err := br.ReadBytes('\n')
			all = append(all, line...)
			if st := parseStatus(line); len(line) > 0 {
				if !st.ready && !driver.IsClosed(h.reported) {
					close(h.reported)
				}
				if !driver.IsClosed(h.ready) {
					close(h.ready)
				}
			}
			if err != nil {
				break
			}
		}
		for _, ch := range []chan struct{}{h.ready, h.reported} {
			if !driver.IsClosed(ch) {
				close(ch)
			}
		}
		h.status = all
	}()
	return h, specW, nil
}

// writeJSON writes one message to a helper's spec pipe.
func writeJSON(specW *os.File, v any) error {
	b, err := jsonMarshal(v)
	if err == nil {
		_, err = specW.Write(b)
	}
	if err != nil {
		return fmt.Errorf("sandbox: write to init helper: %w: %w", err, fn.ErrUnavailable)
	}
	return nil
}

// cloneAttr is how the helper is started: in new mount, PID, IPC and UTS
// namespaces, a new network namespace unless the function has network
// access, and a new user namespace when the server is not root.
func (d *Driver) cloneAttr(network bool) *syscall.SysProcAttr {
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS)
	if !network {
		flags |= syscall.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{
		Cloneflags: flags,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	if d.isolation.userns {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: d.opts.uid, HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: d.opts.gid, HostID: os.Getgid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
		// The helper runs as the mapped (unprivileged) user: these let it
		// build the sandbox; it drops them all before the interpreter runs.
		attr.AmbientCaps = []uintptr{capSysAdmin, capNetAdmin, capSetUID, capSetGID, capSetPCap}
	}
	return attr
}

// Capability numbers (linux/capability.h).
const (
	capSetGID   = 6
	capSetUID   = 7
	capSetPCap  = 8
	capNetAdmin = 12
	capSysAdmin = 21
)

// pipes are a worker's protocol pipes and its output pipe.
type pipes struct {
	reqR, reqW, respR, respW, outR, outW *os.File
}

func newPipes() (*pipes, error) {
	var p pipes
	var err error
	if p.reqR, p.reqW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if p.respR, p.respW, err = os.Pipe(); err != nil {
		p.closeAll()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if p.outR, p.outW, err = os.Pipe(); err != nil {
		p.closeAll()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return &p, nil
}

// closeChildEnds closes the ends the worker holds its own copies of.
func (p *pipes) closeChildEnds() {
	for _, f := range []*os.File{p.reqR, p.respW, p.outW} {
		if f != nil {
			f.Close()
		}
	}
}

func (p *pipes) closeAll() {
	for _, f := range []*os.File{p.reqR, p.reqW, p.respR, p.respW, p.outR, p.outW} {
		if f != nil {
			f.Close()
		}
	}
}

// newInstance makes the instance of a started worker: child is the
// zygote's child for a worker forked by it, else nil.
func (d *Driver) newInstance(id, dir string, cmd *exec.Cmd, p *pipes, h *helper, cg *cgroup, child *zygoteChild) *instance {
	inst := &instance{
		id:          id,
		dir:         dir,
		cmd:         cmd,
		reqW:        p.reqW,
		helper:      h,
		cg:          cg,
		zygoteChild: child,
		drained:     make(chan struct{}),
		start:       time.Now(),
		log:         d.log,
	}
	// A worker whose stream broke has a second to be seen exiting.
	inst.Base = driver.NewBase(inst.kill, time.Second)
	inst.Connect(p.respR, p.reqW)
	go inst.drain(p.outR)
	go inst.wait(p.respR)
	if child != nil {
		go inst.watchZygoteChild()
	}
	return inst
}

// envList is env as an exec environment, sorted.
func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	slices.Sort(list)
	return list
}
