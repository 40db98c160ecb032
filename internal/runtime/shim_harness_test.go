package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// This file holds the test helper that runs a real worker exactly as the
// server does: the interpreter on the installed shim, the request pipe on
// fd 3 and the response pipe on fd 4, stdin /dev/null, cwd the task
// directory, an environment of the runtime variables and the function's.

var found struct {
	once sync.Once
	in   runtime.Interpreters
	errs []error
}

// interpreters finds python3 and node once per test binary.
func interpreters(t testing.TB) runtime.Interpreters {
	t.Helper()
	found.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		found.in, found.errs = runtime.FindInterpreters(ctx, os.LookupEnv)
	})
	return found.in
}

// interpreter returns rt's interpreter, skipping the test if it has none.
func interpreter(t testing.TB, rt string) string {
	t.Helper()
	bin := interpreters(t).Path(rt)
	if bin == "" {
		testenv.Require(t, "a "+rt+" interpreter", fmt.Errorf("none found: %v", found.errs))
	}
	return bin
}

var runtimes = []string{runtime.Python, runtime.NodeJS}

// lockedBuffer collects a worker's stdout or stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type worker struct {
	t       testing.TB
	runtime string
	cmd     *exec.Cmd
	reqW    *os.File
	respR   *os.File
	stdout  lockedBuffer
	stderr  lockedBuffer
	exited  chan struct{}
	waitErr error
	seq     int

	// Ready is the worker's answer to Init.
	Ready runtime.Response
	// TaskDir is the function's directory, the worker's cwd.
	TaskDir string
}

type workerConfig struct {
	init runtime.Init
	env  []string
	cwd  string // "": the task directory
}

type workerOption func(*workerConfig)

// withEnv adds a function environment variable.
func withEnv(k, v string) workerOption {
	return func(c *workerConfig) { c.env = append(c.env, k+"="+v) }
}

// withLayers sets Init's layer directories.
func withLayers(dirs ...string) workerOption {
	return func(c *workerConfig) { c.init.Layers = dirs }
}

// withCwd starts the worker in dir rather than in its task directory, as
// a worker started before it knew its function may be.
func withCwd(dir string) workerOption {
	return func(c *workerConfig) { c.cwd = dir }
}

// withLimits sets Init's log and result limits.
func withLimits(logLimit, resultLimit int) workerOption {
	return func(c *workerConfig) { c.init.LogLimit, c.init.ResultLimit = logLimit, resultLimit }
}

// startWorker writes files into a new task directory, starts a worker for
// rt serving handler, sends Init and reads the ready frame into w.Ready.
func startWorker(t testing.TB, rt string, files map[string]string, handler string, opts ...workerOption) *worker {
	t.Helper()
	bin := interpreter(t, rt)
	shims, err := runtime.InstallShims(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := workerConfig{init: runtime.Init{
		Type:            runtime.TypeInit,
		Handler:         handler,
		TaskDir:         dir,
		FunctionName:    "test-fn",
		FunctionVersion: "3",
		MemoryMB:        256,
	}}
	for _, o := range opts {
		o(&cfg)
	}
	r, _ := runtime.Lookup(rt)
	args := r.ShimCommand(bin, shims.Shim(rt), 256)[1:]
	env := append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/tmp",
		"LANG=C.UTF-8",
		"TZ=UTC",
		"LAMBDA_TASK_ROOT=" + dir,
		"AWS_LAMBDA_FUNCTION_NAME=" + cfg.init.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=" + cfg.init.FunctionVersion,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(cfg.init.MemoryMB),
	}, cfg.env...)

	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{t: t, runtime: rt, reqW: reqW, respR: respR, exited: make(chan struct{}), TaskDir: dir}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Dir = dir
	if cfg.cwd != "" {
		w.cmd.Dir = cfg.cwd
	}
	w.cmd.Env = env
	w.cmd.Stdout = &w.stdout
	w.cmd.Stderr = &w.stderr
	w.cmd.ExtraFiles = []*os.File{reqR, respW}
	err = w.cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		t.Fatal(err)
	}
	go func() {
		w.waitErr = w.cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(w.stop)

	if err := runtime.WriteFrame(reqW, cfg.init); err != nil {
		t.Fatalf("write init: %v", err)
	}
	w.Ready = w.read()
	if w.Ready.Type != runtime.TypeReady {
		t.Fatalf("first frame has type %q, want %q", w.Ready.Type, runtime.TypeReady)
	}
	return w
}

// mustLoad fails the test unless the handler loaded.
func (w *worker) mustLoad() *worker {
	w.t.Helper()
	if w.Ready.Error != nil {
		w.t.Fatalf("handler failed to load: %+v\nlogs: %s\nstderr: %s", w.Ready.Error, w.Ready.Logs, w.stderr.String())
	}
	return w
}

// read reads one response frame.
func (w *worker) read() runtime.Response {
	w.t.Helper()
	if err := w.respR.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
		w.t.Fatal(err)
	}
	b, err := runtime.ReadFrame(w.respR, runtime.MaxResponseFrame)
	if err != nil {
		w.t.Fatalf("read response: %v\nstderr: %s", err, w.stderr.String())
	}
	var resp runtime.Response
	if err := json.Unmarshal(b, &resp); err != nil {
		w.t.Fatalf("decode response %.200q: %v", b, err)
	}
	return resp
}

// invoke runs the handler once on event (marshalled to JSON) with a
// deadline 30 s away.
func (w *worker) invoke(event any) runtime.Response {
	w.t.Helper()
	return w.invokeDeadline(event, time.Now().Add(30*time.Second))
}

func (w *worker) invokeDeadline(event any, deadline time.Time) runtime.Response {
	w.t.Helper()
	ev, err := json.Marshal(event)
	if err != nil {
		w.t.Fatal(err)
	}
	w.seq++
	id := fmt.Sprintf("req-%d", w.seq)
	req := runtime.Request{Type: runtime.TypeInvoke, ID: id, Event: ev, DeadlineMs: deadline.UnixMilli()}
	if err := runtime.WriteFrame(w.reqW, req); err != nil {
		w.t.Fatalf("write request: %v\nstderr: %s", err, w.stderr.String())
	}
	resp := w.read()
	if resp.Type != runtime.TypeResult || resp.ID != id {
		w.t.Fatalf("response type %q id %q, want %q %q", resp.Type, resp.ID, runtime.TypeResult, id)
	}
	return resp
}

// result invokes the handler and returns its result, failing on an error.
func (w *worker) result(event any) json.RawMessage {
	w.t.Helper()
	resp := w.invoke(event)
	if resp.Error != nil {
		w.t.Fatalf("handler failed: %+v\nlogs: %s", resp.Error, resp.Logs)
	}
	return resp.Result
}

// exitCode waits for the worker to exit and returns its status.
func (w *worker) exitCode(timeout time.Duration) int {
	w.t.Helper()
	select {
	case <-w.exited:
	case <-time.After(timeout):
		w.t.Fatalf("worker still running after %v", timeout)
	}
	if w.waitErr == nil {
		return 0
	}
	if ee, ok := w.waitErr.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	w.t.Fatalf("wait: %v", w.waitErr)
	return -1
}

// closeRequests closes the request pipe, which tells the worker to exit.
func (w *worker) closeRequests() { w.reqW.Close() }

func (w *worker) stop() {
	w.reqW.Close()
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		w.cmd.Process.Kill()
		<-w.exited
	}
	w.respR.Close()
}

// status returns a field of /proc/<pid>/status in kB, e.g. "VmHWM".
func (w *worker) status(field string) int {
	w.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", w.cmd.Process.Pid))
	if err != nil {
		testenv.Require(w.t, "/proc", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				w.t.Fatalf("%s: %v", field, err)
			}
			return n
		}
	}
	w.t.Fatalf("no %s in /proc/%d/status", field, w.cmd.Process.Pid)
	return 0
}

// cpuTime returns the worker's user plus system CPU time so far, in the
// kernel's clock ticks (USER_HZ, 100 a second on Linux).
func (w *worker) cpuTime() time.Duration {
	w.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", w.cmd.Process.Pid))
	if err != nil {
		testenv.Require(w.t, "/proc", err)
	}
	// Fields after the command name, which is in parentheses: state is the
	// first, utime the 12th and stime the 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		w.t.Fatalf("bad /proc/%d/stat: %q", w.cmd.Process.Pid, b)
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// pipeInodes returns the inodes of the protocol pipes.
func (w *worker) pipeInodes() []uint64 {
	w.t.Helper()
	var out []uint64
	for _, f := range []*os.File{w.reqW, w.respR} {
		fi, err := f.Stat()
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, fi.Sys().(*syscall.Stat_t).Ino)
	}
	return out
}

// decode unmarshals raw into a value of type T.
func decode[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %.200q: %v", raw, err)
	}
	return v
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("decode %.200q: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("decode %.200q: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
