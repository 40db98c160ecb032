package runtimeapi

import (
	"bytes"
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

// maxRSSKiB is the peak resident set of the bootstrap plus the relay's,
// in KiB; 0 if unknown. It is on every call's path: the relay's own is one
// getrusage, the bootstrap's (VmHWM) one pread of its status file, kept
// open.
func (r *Relay) maxRSSKiB() int64 {
	var ru unix.Rusage
	var total int64
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		total = ru.Maxrss
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.child == nil {
		return total
	}
	if r.childStatus == nil {
		f, err := os.Open("/proc/" + strconv.Itoa(r.child.Pid) + "/status")
		if err != nil {
			return total
		}
		r.childStatus = f
	}
	n, _ := r.childStatus.ReadAt(r.statusBuf[:], 0)
	return total + vmHWM(r.statusBuf[:n])
}

// vmHWM is the VmHWM of a /proc/<pid>/status, in KiB; 0 if absent.
func vmHWM(status []byte) int64 {
	i := bytes.Index(status, []byte("VmHWM:"))
	if i < 0 {
		return 0
	}
	var n int64
	seen := false
	for _, c := range status[i+len("VmHWM:"):] {
		switch {
		case c >= '0' && c <= '9':
			n, seen = n*10+int64(c-'0'), true
		case seen || c == '\n':
			return n
		}
	}
	return n
}
