package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Name is the name functions select this driver by.
const Name = "sandbox"

func init() {
	driver.Register(Name, func(cfg driver.Config) (driver.Driver, error) { return New(cfg) })
}

// Driver starts worker processes on the host.
type Driver struct {
	cfg     driver.Config
	instDir string
}

var _ driver.Driver = (*Driver)(nil)

// New prepares the driver's directory below cfg.DataDir, removing what an
// earlier run left there.
func New(cfg driver.Config) (*Driver, error) {
	dir := filepath.Join(cfg.DataDir, "sandbox", "instances")
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("sandbox: clean instances: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return &Driver{cfg: cfg, instDir: dir}, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Available reports whether at least one runtime's interpreter was found.
func (d *Driver) Available(context.Context) error {
	if d.cfg.Interpreters.Python == "" && d.cfg.Interpreters.Node == "" {
		return fmt.Errorf("sandbox: no python3 or node interpreter found: %w", fn.ErrUnavailable)
	}
	return nil
}

// command returns the interpreter and arguments that run f's runtime shim.
func (d *Driver) command(f *fn.Function) (string, []string, error) {
	in := d.cfg.Interpreters
	switch f.Runtime {
	case fn.Python:
		if in.Python == "" {
			return "", nil, fmt.Errorf("sandbox: python3 is not installed on this host: %w", fn.ErrUnavailable)
		}
		return in.Python, []string{in.Python, "-I", "-B", d.cfg.Shims.Python}, nil
	case fn.NodeJS:
		if in.Node == "" {
			return "", nil, fmt.Errorf("sandbox: node is not installed on this host: %w", fn.ErrUnavailable)
		}
		return in.Node, []string{in.Node, "--max-old-space-size=" + strconv.Itoa(f.Memory), d.cfg.Shims.Node}, nil
	}
	return "", nil, fmt.Errorf("sandbox: runtime %q: %w", f.Runtime, fn.ErrInvalid)
}

// Start starts a worker for spec.Function and loads its handler.
func (d *Driver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Instance, error) {
	f := spec.Function
	path, args, err := d.command(f)
	if err != nil {
		return nil, err
	}
	id := fn.NewID()
	dir := filepath.Join(d.instDir, id)
	if err := writeFiles(dir, f.Files); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("sandbox: write code: %w", err)
	}
	inst, err := d.spawn(id, dir, path, args, Env(f, dir))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logs, err := inst.conn.Init(ctx, runtime.Init{
		Handler:         f.Handler,
		TaskDir:         dir,
		FunctionName:    f.Name,
		FunctionVersion: strconv.Itoa(f.Version),
		MemoryMB:        f.Memory,
		LogLimit:        spec.LogLimit,
	})
	if err != nil {
		return nil, inst.failStart(ctx, err, logs)
	}
	inst.initLogs = logs
	return inst, nil
}

// spawn starts the worker process with its protocol pipes on fds 3 and 4.
func (d *Driver) spawn(id, dir, path string, args, env []string) (*instance, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		respR.Close()
		respW.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	cmd := &exec.Cmd{
		Path:       path,
		Args:       args,
		Dir:        dir,
		Env:        env,
		Stdout:     outW,
		Stderr:     outW,
		ExtraFiles: []*os.File{reqR, respW},
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	err = cmd.Start()
	// The child holds its own copies now.
	reqR.Close()
	respW.Close()
	outW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		outR.Close()
		return nil, fmt.Errorf("sandbox: start worker: %w", err)
	}
	inst := &instance{
		id:    id,
		dir:   dir,
		cmd:   cmd,
		reqW:  reqW,
		done:  make(chan struct{}),
		start: time.Now(),
		log:   d.cfg.Logger,
	}
	inst.conn = driver.NewConn(respR, reqW, inst.broken)
	go inst.wait(respR)
	go inst.drain(outR)
	return inst, nil
}

// failStart turns a failed init into the error Start returns, and makes
// sure the worker is gone.
func (i *instance) failStart(ctx context.Context, err error, logs string) error {
	var rtErr *runtime.Error
	switch {
	case errors.As(err, &rtErr):
		i.Kill("handler failed to load")
		return &driver.InitError{Err: rtErr, Logs: logs}
	case ctx.Err() != nil:
		i.Kill(killReason(ctx))
		return ctx.Err()
	}
	return i.died(err)
}

func writeFiles(dir string, files map[string]string) error {
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(dir, 0o755)
}

// Env is the whole environment of f's worker: the documented runtime
// variables and the function's own, never the server's.
func Env(f *fn.Function, taskDir string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/tmp",
		"LANG=C.UTF-8",
		"TZ=UTC",
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"LAMBDA_TASK_ROOT=" + taskDir,
		"AWS_LAMBDA_FUNCTION_NAME=" + f.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=" + strconv.Itoa(f.Version),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(f.Memory),
		"NIMBUS_FUNCTION_ID=" + f.ID,
	}
	for k, v := range f.Env {
		env = append(env, k+"="+v)
	}
	return env
}
