package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

func init() {
	if len(os.Args) == 0 || filepath.Base(os.Args[0]) != ProcessName {
		return
	}
	os.Exit(Main())
}

// The relay's file descriptors, as every driver passes a worker's.
const (
	requestFD  = 3
	responseFD = 4
)

// Main runs the relay as its own process: fds 3 and 4 are the protocol
// streams, EnvAddr says where to listen. It returns the exit code, after
// trying to end the process by the signal that killed the bootstrap.
func Main() int {
	// A few threads: the instance's pids limit counts them, and the relay
	// only moves bytes.
	goruntime.GOMAXPROCS(2)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "runtime-api")
	for _, fd := range []int{requestFD, responseFD} {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			log.Error("fds 3 and 4 must be the protocol streams", "fd", fd, "error", err)
			return 2
		}
		unix.CloseOnExec(fd) // never the bootstrap's
	}
	addr, _ := os.LookupEnv(EnvAddr)
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvAddr+"=") {
			environ = append(environ, kv)
		}
	}
	r := New(Config{
		Requests:  os.NewFile(requestFD, "requests"),
		Responses: os.NewFile(responseFD, "responses"),
		Addr:      addr,
		Environ:   environ,
		Log:       log,
		Stderr:    os.Stderr,
	})
	ex := r.Run(context.Background())
	if ex.Signal != 0 {
		signal.Reset(ex.Signal)
		_ = unix.Kill(os.Getpid(), ex.Signal)
		time.Sleep(100 * time.Millisecond) // a signal the process survives: exit below
	}
	return ex.Code
}

// startBootstrap starts the bootstrap with the Runtime API at addr. exited
// receives its state once it has exited; cleanup removes what was made
// for it.
func (r *Relay) startBootstrap(addr string) (exited <-chan *os.ProcessState, cleanup func(), err error) {
	cleanup = func() {}
	path, err := r.bootstrapPath()
	if err != nil {
		return nil, cleanup, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, cleanup, fmt.Errorf("output pipe: %w", err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, cleanup, fmt.Errorf("output pipe: %w", err)
	}
	w := os.NewFile(uintptr(p[1]), "bootstrap-output")
	defer w.Close()
	r.mu.Lock()
	r.out = &output{fd: p[0], sink: r.sinkLocked}
	r.mu.Unlock()

	cmd := r.command(path, addr, w)
	err = cmd.Start()
	if err != nil && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOEXEC)) {
		// Not executable where it is (a file given without its mode, a
		// code directory mounted noexec): run a copy from /tmp.
		var dir string
		if dir, err = copyExecutable(path); err == nil {
			cleanup = func() { os.RemoveAll(dir) }
			cmd = r.command(filepath.Join(dir, entry), addr, w)
			err = cmd.Start()
		}
	}
	if err != nil {
		return nil, cleanup, &runtime.Error{Type: "Runtime.InvalidEntrypoint", Message: fmt.Sprintf("start %s: %v", path, err)}
	}
	r.mu.Lock()
	r.child = cmd.Process
	r.mu.Unlock()
	go r.pump()
	ch := make(chan *os.ProcessState, 1)
	go func() {
		_ = cmd.Wait()
		ch <- cmd.ProcessState
	}()
	return ch, cleanup, nil
}

// command is the bootstrap at path, run with the Runtime API at addr, its
// output to w.
func (r *Relay) command(path, addr string, w *os.File) *exec.Cmd {
	env := map[string]string{}
	for _, kv := range r.cfg.Environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range r.init.Env {
		env[k] = v
	}
	env["AWS_LAMBDA_RUNTIME_API"] = addr
	env["_HANDLER"] = r.init.Handler
	env["LAMBDA_TASK_ROOT"] = r.init.TaskDir
	env["LAMBDA_RUNTIME_DIR"] = RuntimeDir
	setDefault := func(k, v string) {
		if _, ok := env[k]; !ok && v != "" {
			env[k] = v
		}
	}
	setDefault("AWS_LAMBDA_FUNCTION_NAME", r.init.FunctionName)
	setDefault("AWS_LAMBDA_FUNCTION_VERSION", r.init.FunctionVersion)
	if r.init.MemoryMB > 0 {
		setDefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(r.init.MemoryMB))
	}
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	slices.Sort(list)
	return &exec.Cmd{
		Path:   path,
		Args:   []string{path},
		Env:    list,
		Dir:    r.init.TaskDir,
		Stdout: w,
		Stderr: w,
		// The relay's death is the instance's: the bootstrap never
		// outlives it, even outside a PID namespace.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
}

// copyExecutable copies the file at path into a new private directory of
// the temporary directory as an executable "bootstrap".
func copyExecutable(path string) (dir string, err error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dir, err = os.MkdirTemp("", ".nimbus-bootstrap-")
	if err != nil {
		return "", err
	}
	dst, err := os.OpenFile(filepath.Join(dir, entry), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o700)
	if err == nil {
		_, err = io.Copy(dst, src)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("copy the bootstrap to run it: %w", err)
	}
	return dir, nil
}

// maxRSSKiB is the peak resident set of the bootstrap plus the relay's, as
// the kernel reports them (VmHWM), in KiB; 0 if unknown.
func (r *Relay) maxRSSKiB() int64 {
	r.mu.Lock()
	p := r.child
	r.mu.Unlock()
	total := vmHWM("self")
	if p != nil {
		total += vmHWM(strconv.Itoa(p.Pid))
	}
	return total
}

func vmHWM(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.Index(s, "VmHWM:")
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+len("VmHWM:"):])
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}
