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
	in := interpreters(t)
	bin := in.Python
	if rt == runtime.RuntimeNodeJS {
		bin = in.Node
	}
	if bin == "" {
		testenv.Require(t, "a "+rt+" interpreter", fmt.Errorf("none found: %v", found.errs))
	}
	return bin
}

var runtimes = []string{runtime.RuntimePython, runtime.RuntimeNodeJS}

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
}

type workerOption func(*workerConfig)

// withEnv adds a function environment variable.
func withEnv(k, v string) workerOption {
	return func(c *workerConfig) { c.env = append(c.env, k+"="+v) }
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
	var args []string
	switch rt {
	case runtime.RuntimePython:
		args = []string{"-I", "-B", shims.Python}
	case runtime.RuntimeNodeJS:
		args = []string{"--max-old-space-size=256", shims.Node}
	}
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

// ---------------------------------------------------------------------------
// Tests

func TestInstallShims(t *testing.T) {
	dir := t.TempDir()
	p1, err := runtime.InstallShims(dir)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := runtime.InstallShims(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Errorf("second install gave %+v, first %+v", p2, p1)
	}
	for _, p := range []string{p1.Python, p1.Node} {
		if !filepath.IsAbs(p) {
			t.Errorf("%s is not absolute", p)
		}
		if got := filepath.Base(filepath.Dir(p)); got != runtime.ShimVersion() {
			t.Errorf("%s is not under a directory named %s", p, runtime.ShimVersion())
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if filepath.Base(p1.Python) != "bootstrap.py" || filepath.Base(p1.Node) != "bootstrap.js" {
		t.Errorf("shim names %+v", p1)
	}
}

func TestInvokeResults(t *testing.T) {
	big := strings.Repeat("0123456789", 300_000) // 3 MB: many pipe chunks each way
	tests := []struct {
		runtime string
		name    string
		files   map[string]string
		handler string
		event   any
		want    string // JSON
	}{
		{runtime.RuntimePython, "sync", map[string]string{"main.py": `
def handler(event, context):
    return {"echo": event, "n": 1}
`}, "main.handler", map[string]any{"a": 1}, `{"echo":{"a":1},"n":1}`},
		{runtime.RuntimePython, "async", map[string]string{"main.py": `
import asyncio

async def handler(event, context):
    await asyncio.sleep(0.01)
    return {"async": True, "event": event}
`}, "main.handler", "x", `{"async":true,"event":"x"}`},
		{runtime.RuntimePython, "none is null", map[string]string{"main.py": `
def handler(event, context):
    pass
`}, "main.handler", nil, `null`},
		{runtime.RuntimePython, "unicode", map[string]string{"main.py": `
def handler(event, context):
    return {"s": event + " ✓ ünï"}
`}, "main.handler", "héllo", `{"s":"héllo ✓ ünï"}`},
		{runtime.RuntimePython, "Decimal as a number", map[string]string{"main.py": `
from decimal import Decimal

def handler(event, context):
    return {"price": Decimal("12.5")}
`}, "main.handler", nil, `{"price":12.5}`},
		{runtime.RuntimePython, "nested pkg.sub.handler", map[string]string{
			"pkg/__init__.py": "",
			"pkg/sub.py": `
from pkg import helper

def handler(event, context):
    return helper.twice(event)
`,
			"pkg/helper.py": "def twice(x):\n    return x * 2\n",
		}, "pkg.sub.handler", 21, `42`},
		{runtime.RuntimePython, "big event and result", map[string]string{"main.py": `
def handler(event, context):
    return event
`}, "main.handler", big, strconv.Quote(big)},

		{runtime.RuntimeNodeJS, "async", map[string]string{"index.js": `
exports.handler = async (event) => ({ echo: event, n: 1 });
`}, "index.handler", map[string]any{"a": 1}, `{"echo":{"a":1},"n":1}`},
		{runtime.RuntimeNodeJS, "sync return", map[string]string{"index.js": `
exports.handler = (event) => event * 2;
`}, "index.handler", 21, `42`},
		{runtime.RuntimeNodeJS, "returned promise", map[string]string{"index.js": `
exports.handler = (event) => new Promise((resolve) => setTimeout(() => resolve('later'), 5));
`}, "index.handler", nil, `"later"`},
		{runtime.RuntimeNodeJS, "callback", map[string]string{"index.js": `
exports.handler = (event, context, callback) => {
  setTimeout(() => callback(null, { cb: event }), 5);
};
`}, "index.handler", "x", `{"cb":"x"}`},
		{runtime.RuntimeNodeJS, "context.succeed", map[string]string{"index.js": `
exports.handler = function (event, context) {
  setTimeout(() => context.succeed('ok'), 5);
};
`}, "index.handler", nil, `"ok"`},
		{runtime.RuntimeNodeJS, "context.done", map[string]string{"index.js": `
exports.handler = function (event, context) {
  context.done(null, { done: true });
};
`}, "index.handler", nil, `{"done":true}`},
		{runtime.RuntimeNodeJS, "undefined is null", map[string]string{"index.js": `
exports.handler = () => {};
`}, "index.handler", nil, `null`},
		{runtime.RuntimeNodeJS, "first completion wins", map[string]string{"index.js": `
exports.handler = async (event, context, callback) => {
  callback(null, 'first');
  context.succeed('second');
  return 'third';
};
`}, "index.handler", nil, `"first"`},
		{runtime.RuntimeNodeJS, "nested lib/app.handler", map[string]string{
			"lib/app.js":    "const h = require('./helper');\nexports.handler = async (e) => h.twice(e);\n",
			"lib/helper.js": "exports.twice = (x) => x * 2;\n",
		}, "lib/app.handler", 21, `42`},
		{runtime.RuntimeNodeJS, "ESM .mjs", map[string]string{
			"index.mjs":  "import { twice } from './helper.mjs';\nconst base = await Promise.resolve(1);\nexport const handler = async (e) => ({ esm: true, v: twice(e) + base });\n",
			"helper.mjs": "export const twice = (x) => x * 2;\n",
		}, "index.handler", 20, `{"esm":true,"v":41}`},
		{runtime.RuntimeNodeJS, "ESM .js in a module package", map[string]string{
			"package.json": `{"type": "module"}`,
			"index.js":     "export async function handler(e) { return import.meta.url.endsWith('/index.js'); }\n",
		}, "index.handler", nil, `true`},
		{runtime.RuntimeNodeJS, "CommonJS .cjs", map[string]string{
			"index.cjs": "module.exports.handler = async () => 'cjs';\n",
		}, "index.handler", nil, `"cjs"`},
		{runtime.RuntimeNodeJS, "unicode", map[string]string{"index.js": `
exports.handler = async (e) => ({ s: e + ' ✓ ünï' });
`}, "index.handler", "héllo", `{"s":"héllo ✓ ünï"}`},
		{runtime.RuntimeNodeJS, "big event and result", map[string]string{"index.js": `
exports.handler = async (e) => e;
`}, "index.handler", big, strconv.Quote(big)},
	}
	for _, tt := range tests {
		t.Run(tt.runtime+"/"+tt.name, func(t *testing.T) {
			w := startWorker(t, tt.runtime, tt.files, tt.handler).mustLoad()
			for i := 0; i < 2; i++ { // cold, then warm
				got := w.result(tt.event)
				if !jsonEqual(t, got, []byte(tt.want)) {
					t.Fatalf("invocation %d: result %.300s, want %.300s", i+1, got, tt.want)
				}
			}
		})
	}
}

func TestContext(t *testing.T) {
	files := map[string]map[string]string{
		runtime.RuntimePython: {"main.py": `
import os

def handler(event, context):
    return {
        "functionName": [context.function_name, context.functionName],
        "functionVersion": [context.function_version, context.functionVersion],
        "memory": [context.memory_limit_in_mb, context.memoryLimitInMB],
        "requestId": [context.aws_request_id, context.awsRequestId, context.requestId],
        "arn": context.invoked_function_arn,
        "remaining": [context.get_remaining_time_in_millis(), context.getRemainingTimeInMillis()],
        "env": [os.environ.get("GREETING"), os.environ.get("AWS_LAMBDA_FUNCTION_NAME")],
        "cwd": os.getcwd(),
    }
`},
		runtime.RuntimeNodeJS: {"index.js": `
exports.handler = async (event, context) => ({
  functionName: [context.functionName],
  functionVersion: [context.functionVersion],
  memory: [context.memoryLimitInMB],
  requestId: [context.awsRequestId],
  arn: context.invokedFunctionArn,
  remaining: [context.getRemainingTimeInMillis()],
  waits: context.callbackWaitsForEmptyEventLoop,
  env: [process.env.GREETING, process.env.AWS_LAMBDA_FUNCTION_NAME],
  cwd: process.cwd(),
});
`},
	}
	handlers := map[string]string{runtime.RuntimePython: "main.handler", runtime.RuntimeNodeJS: "index.handler"}
	type ctxResult struct {
		FunctionName    []string `json:"functionName"`
		FunctionVersion []string `json:"functionVersion"`
		Memory          []any    `json:"memory"`
		RequestID       []string `json:"requestId"`
		ARN             string   `json:"arn"`
		Remaining       []int64  `json:"remaining"`
		Waits           *bool    `json:"waits"`
		Env             []string `json:"env"`
		Cwd             string   `json:"cwd"`
	}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt], withEnv("GREETING", "hi there")).mustLoad()
			wantMemory := any(float64(256)) // Python: an int
			if rt == runtime.RuntimeNodeJS {
				wantMemory = "256" // Node: a string, as Lambda
			}

			resp := w.invokeDeadline(nil, time.Now().Add(5*time.Second))
			if resp.Error != nil {
				t.Fatalf("handler failed: %+v", resp.Error)
			}
			got := decode[ctxResult](t, resp.Result)
			for _, v := range got.FunctionName {
				if v != "test-fn" {
					t.Errorf("function name %q", v)
				}
			}
			for _, v := range got.FunctionVersion {
				if v != "3" {
					t.Errorf("function version %q", v)
				}
			}
			for _, v := range got.Memory {
				if v != wantMemory {
					t.Errorf("memory limit %#v, want %#v", v, wantMemory)
				}
			}
			for _, v := range got.RequestID {
				if v != resp.ID {
					t.Errorf("request id %q, want %q", v, resp.ID)
				}
			}
			if got.ARN != "arn:nimbus:function:test-fn" {
				t.Errorf("arn %q", got.ARN)
			}
			for _, v := range got.Remaining {
				if v < 3000 || v > 5000 {
					t.Errorf("remaining time %d ms with a deadline 5 s away", v)
				}
			}
			if rt == runtime.RuntimeNodeJS && (got.Waits == nil || !*got.Waits) {
				t.Errorf("callbackWaitsForEmptyEventLoop %v, want true", got.Waits)
			}
			if len(got.Env) != 2 || got.Env[0] != "hi there" || got.Env[1] != "test-fn" {
				t.Errorf("environment %q", got.Env)
			}
			if got.Cwd != w.TaskDir {
				t.Errorf("cwd %q, want %q", got.Cwd, w.TaskDir)
			}

			resp = w.invokeDeadline(nil, time.Now().Add(-time.Second))
			if resp.Error != nil {
				t.Fatalf("handler failed: %+v", resp.Error)
			}
			got = decode[ctxResult](t, resp.Result)
			for _, v := range got.Remaining {
				if v != 0 {
					t.Errorf("remaining time %d ms past the deadline, want 0", v)
				}
			}
		})
	}
}

func TestWarmState(t *testing.T) {
	files := map[string]map[string]string{
		runtime.RuntimePython: {"main.py": `
import os
count = 0

def handler(event, context):
    global count
    count += 1
    return [count, os.getpid()]
`},
		runtime.RuntimeNodeJS: {"index.js": `
let count = 0;
exports.handler = async () => [++count, process.pid];
`},
	}
	handlers := map[string]string{runtime.RuntimePython: "main.handler", runtime.RuntimeNodeJS: "index.handler"}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			for i := 1; i <= 3; i++ {
				got := decode[[2]int](t, w.result(nil))
				if got[0] != i || got[1] != w.cmd.Process.Pid {
					t.Errorf("invocation %d: count %d in pid %d, want %d in pid %d", i, got[0], got[1], i, w.cmd.Process.Pid)
				}
			}
		})
	}
}

func TestWorkerExitsAtEOF(t *testing.T) {
	files := map[string]map[string]string{
		runtime.RuntimePython: {"main.py": "def handler(e, c):\n    return 1\n"},
		runtime.RuntimeNodeJS: {"index.js": "setInterval(() => {}, 1000);\nexports.handler = async () => 1;\n"},
	}
	handlers := map[string]string{runtime.RuntimePython: "main.handler", runtime.RuntimeNodeJS: "index.handler"}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			w.result(nil)
			w.closeRequests()
			if code := w.exitCode(10 * time.Second); code != 0 {
				t.Errorf("exit status %d at EOF, want 0; stderr: %s", code, w.stderr.String())
			}
			if out := w.stdout.String(); out != "" {
				t.Errorf("worker wrote %q to stdout", out)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	tests := []struct {
		runtime    string
		name       string
		files      map[string]string
		handler    string
		logLimit   int
		wantReady  string
		wantLogs   string // exact, unless truncated
		wantPrefix string // for truncated logs
		truncated  bool
	}{
		{runtime.RuntimePython, "stdout stderr logging", map[string]string{"main.py": `
import logging
import sys

print("import-time hello")
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
log = logging.getLogger("fn")

def handler(event, context):
    print("out", 1)
    sys.stderr.write("err 2\n")
    log.info("log %d", 3)
    sys.stdout.buffer.write(b"bytes 4\n")
    print("out 5 ✓", file=sys.stderr, flush=True)
    return None
`}, "main.handler", 0, "import-time hello\n", "out 1\nerr 2\nINFO log 3\nbytes 4\nout 5 ✓\n", "", false},
		{runtime.RuntimePython, "truncated", map[string]string{"main.py": `
def handler(event, context):
    for i in range(100):
        print("%04d" % i + "x" * 45)
`}, "main.handler", 1000, "", "", "0000" + strings.Repeat("x", 45) + "\n0001", true},
		{runtime.RuntimePython, "truncated inside a character", map[string]string{"main.py": `
def handler(event, context):
    print("é" * 1000)
`}, "main.handler", 1001, "", "", "éé", true},
		{runtime.RuntimeNodeJS, "console and streams", map[string]string{"index.js": `
console.log('import-time hello');
exports.handler = async () => {
  console.log('out', 1);
  console.error('err 2');
  process.stdout.write('write 3\n');
  process.stderr.write(Buffer.from('bytes 4\n'));
  console.warn({ a: 5 });
  console.info('info ✓');
  return null;
};
`}, "index.handler", 0, "import-time hello\n", "out 1\nerr 2\nwrite 3\nbytes 4\n{ a: 5 }\ninfo ✓\n", "", false},
		{runtime.RuntimeNodeJS, "truncated", map[string]string{"index.js": `
exports.handler = async () => {
  for (let i = 0; i < 100; i++) console.log(String(i).padStart(4, '0') + 'x'.repeat(45));
};
`}, "index.handler", 1000, "", "", "0000" + strings.Repeat("x", 45) + "\n0001", true},
		{runtime.RuntimeNodeJS, "truncated inside a character", map[string]string{"index.js": `
exports.handler = async () => { console.log('é'.repeat(1000)); };
`}, "index.handler", 1001, "", "", "éé", true},
	}
	for _, tt := range tests {
		t.Run(tt.runtime+"/"+tt.name, func(t *testing.T) {
			w := startWorker(t, tt.runtime, tt.files, tt.handler, withLimits(tt.logLimit, 0)).mustLoad()
			if w.Ready.Logs != tt.wantReady {
				t.Errorf("ready logs %q, want %q", w.Ready.Logs, tt.wantReady)
			}
			limit := tt.logLimit
			if limit == 0 {
				limit = runtime.DefaultLogLimit
			}
			for i := 0; i < 2; i++ {
				resp := w.invoke(nil)
				if resp.Error != nil {
					t.Fatalf("handler failed: %+v", resp.Error)
				}
				if resp.LogsTruncated != tt.truncated {
					t.Errorf("logsTruncated %v, want %v", resp.LogsTruncated, tt.truncated)
				}
				if !tt.truncated {
					if resp.Logs != tt.wantLogs {
						t.Errorf("logs %q, want %q", resp.Logs, tt.wantLogs)
					}
					continue
				}
				if len(resp.Logs) > limit || len(resp.Logs) < limit-4 {
					t.Errorf("%d bytes of logs, want at most %d (and nearly that)", len(resp.Logs), limit)
				}
				if !strings.HasPrefix(resp.Logs, tt.wantPrefix) {
					t.Errorf("logs start %.60q, want %q", resp.Logs, tt.wantPrefix)
				}
				if strings.ContainsRune(resp.Logs, '\uFFFD') {
					t.Errorf("logs hold a broken character: %q", resp.Logs[len(resp.Logs)-10:])
				}
			}
			if out := w.stdout.String(); out != "" {
				t.Errorf("worker wrote %q to stdout", out)
			}
		})
	}
}

func TestLogFlood(t *testing.T) {
	// 100 MB printed, line by line and in big writes.
	files := map[string]map[string]string{
		runtime.RuntimePython: {"main.py": `
import sys

def handler(event, context):
    line = "x" * 999
    for _ in range(50_000):
        print(line)
    block = "y" * (1 << 20)
    for _ in range(50):
        sys.stderr.write(block)
    return "done"
`},
		runtime.RuntimeNodeJS: {"index.js": `
exports.handler = async () => {
  const line = 'x'.repeat(999);
  for (let i = 0; i < 50000; i++) console.log(line);
  const block = 'y'.repeat(1 << 20);
  for (let i = 0; i < 50; i++) process.stderr.write(block);
  return 'done';
};
`},
	}
	handlers := map[string]string{runtime.RuntimePython: "main.handler", runtime.RuntimeNodeJS: "index.handler"}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			before := w.status("VmHWM")
			start := time.Now()
			resp := w.invoke(nil)
			elapsed := time.Since(start)
			if resp.Error != nil {
				t.Fatalf("handler failed: %+v", resp.Error)
			}
			after := w.status("VmHWM")
			t.Logf("printing 100 MB took %v; peak RSS %d kB before, %d kB after", elapsed, before, after)
			if string(resp.Result) != `"done"` {
				t.Errorf("result %s", resp.Result)
			}
			if !resp.LogsTruncated || len(resp.Logs) > runtime.DefaultLogLimit {
				t.Errorf("logsTruncated %v with %d bytes of logs", resp.LogsTruncated, len(resp.Logs))
			}
			if elapsed > 20*time.Second {
				t.Errorf("printing 100 MB took %v", elapsed)
			}
			if grew := after - before; grew > 40<<10 {
				t.Errorf("peak RSS grew by %d kB while printing 100 MB", grew)
			}
		})
	}
}

func TestHandlerErrors(t *testing.T) {
	tests := []struct {
		runtime     string
		name        string
		files       map[string]string
		handler     string
		limit       int // result limit; 0 for the default
		wantType    string
		wantMessage []string // substrings
		wantStack   []string // substrings
	}{
		{runtime.RuntimePython, "exception", map[string]string{"main.py": `
def helper(x):
    raise ValueError("bad input: %s" % x)

def handler(event, context):
    return helper(event)
`}, "main.handler", 0, "ValueError", []string{"bad input: 7"}, []string{"Traceback", "main.py\", line 3, in helper", "ValueError: bad input: 7"}},
		{runtime.RuntimePython, "custom exception in a coroutine", map[string]string{"main.py": `
class PaymentDeclined(Exception):
    pass

async def handler(event, context):
    raise PaymentDeclined("card 7 declined")
`}, "main.handler", 0, "PaymentDeclined", []string{"card 7 declined"}, []string{"main.py\", line 6, in handler"}},
		{runtime.RuntimePython, "set", map[string]string{"main.py": `
def handler(event, context):
    return {"s": {1, 2}}
`}, "main.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "set"}, nil},
		{runtime.RuntimePython, "NaN", map[string]string{"main.py": `
def handler(event, context):
    return [float("nan")]
`}, "main.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "float"}, nil},
		{runtime.RuntimePython, "circular", map[string]string{"main.py": `
def handler(event, context):
    a = []
    a.append(a)
    return a
`}, "main.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "Circular"}, nil},
		{runtime.RuntimePython, "too large", map[string]string{"main.py": `
def handler(event, context):
    return "x" * 2000
`}, "main.handler", 1000, "Runtime.ResultTooLarge", []string{"2002", "1000"}, nil},
		{runtime.RuntimePython, "sys.exit", map[string]string{"main.py": `
import sys

def handler(event, context):
    sys.exit(3)
`}, "main.handler", 0, "Runtime.ExitError", []string{"sys.exit(3)"}, nil},

		{runtime.RuntimeNodeJS, "throw", map[string]string{"index.js": `
function helper(x) { throw new TypeError('bad input: ' + x); }
exports.handler = async (e) => helper(e);
`}, "index.handler", 0, "TypeError", []string{"bad input: 7"}, []string{"TypeError: bad input: 7", "index.js:2"}},
		{runtime.RuntimeNodeJS, "sync throw", map[string]string{"index.js": `
exports.handler = (e) => { throw new RangeError('out of range'); };
`}, "index.handler", 0, "RangeError", []string{"out of range"}, []string{"index.js:2"}},
		{runtime.RuntimeNodeJS, "throw a string", map[string]string{"index.js": `
exports.handler = async () => { throw 'plain ' + 'words'; };
`}, "index.handler", 0, "Error", []string{"plain words"}, nil},
		{runtime.RuntimeNodeJS, "callback error", map[string]string{"index.js": `
exports.handler = (e, ctx, cb) => { setTimeout(() => cb(new Error('cb failed')), 1); };
`}, "index.handler", 0, "Error", []string{"cb failed"}, []string{"index.js:2"}},
		{runtime.RuntimeNodeJS, "context.fail", map[string]string{"index.js": `
exports.handler = (e, ctx) => { ctx.fail(new SyntaxError('ctx failed')); };
`}, "index.handler", 0, "SyntaxError", []string{"ctx failed"}, nil},
		{runtime.RuntimeNodeJS, "circular", map[string]string{"index.js": `
exports.handler = async () => { const a = {}; a.self = a; return a; };
`}, "index.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "circular"}, nil},
		{runtime.RuntimeNodeJS, "BigInt", map[string]string{"index.js": `
exports.handler = async () => ({ n: 10n });
`}, "index.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "BigInt"}, nil},
		{runtime.RuntimeNodeJS, "NaN", map[string]string{"index.js": `
exports.handler = async () => ({ list: [1, NaN] });
`}, "index.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "NaN"}, nil},
		{runtime.RuntimeNodeJS, "too large", map[string]string{"index.js": `
exports.handler = async () => 'x'.repeat(2000);
`}, "index.handler", 1000, "Runtime.ResultTooLarge", []string{"2002", "1000"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.runtime+"/"+tt.name, func(t *testing.T) {
			w := startWorker(t, tt.runtime, tt.files, tt.handler, withLimits(0, tt.limit)).mustLoad()
			for i := 0; i < 2; i++ { // the worker goes on serving
				resp := w.invoke(7)
				if resp.Error == nil {
					t.Fatalf("result %s, want an error", resp.Result)
				}
				if resp.Result != nil {
					t.Errorf("result %s along with the error", resp.Result)
				}
				e := resp.Error
				if e.Type != tt.wantType {
					t.Errorf("error type %q, want %q (message %q)", e.Type, tt.wantType, e.Message)
				}
				for _, s := range tt.wantMessage {
					if !strings.Contains(e.Message, s) {
						t.Errorf("error message %q lacks %q", e.Message, s)
					}
				}
				for _, s := range tt.wantStack {
					if !strings.Contains(e.Stack, s) {
						t.Errorf("stack lacks %q:\n%s", s, e.Stack)
					}
				}
				if strings.Contains(e.Stack, "bootstrap.") {
					t.Errorf("stack shows the shim:\n%s", e.Stack)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		runtime     string
		name        string
		files       map[string]string
		handler     string
		wantType    string
		wantMessage []string
		wantLogs    string
	}{
		{runtime.RuntimePython, "handler missing", map[string]string{"main.py": "def other(e, c):\n    pass\n"},
			"main.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'main'"}, ""},
		{runtime.RuntimePython, "handler not callable", map[string]string{"main.py": "handler = 5\n"},
			"main.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'main'", "not callable"}, ""},
		{runtime.RuntimePython, "module missing", map[string]string{"main.py": ""},
			"app.handler", "Runtime.ImportModuleError", []string{"app"}, ""},
		{runtime.RuntimePython, "syntax error", map[string]string{"main.py": "print('before')\ndef handler(event, context:\n    pass\n"},
			"main.handler", "Runtime.UserCodeSyntaxError", []string{"'main'", "main.py, line 2"}, ""},
		{runtime.RuntimePython, "exception at import", map[string]string{"main.py": "print('loading')\nraise KeyError('config')\n"},
			"main.handler", "KeyError", []string{"config"}, "loading\n"},

		{runtime.RuntimeNodeJS, "handler missing", map[string]string{"index.js": "exports.other = () => 1;\n"},
			"index.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'index'"}, ""},
		{runtime.RuntimeNodeJS, "handler not a function", map[string]string{"index.js": "exports.handler = 5;\n"},
			"index.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'index'", "not a function"}, ""},
		{runtime.RuntimeNodeJS, "module missing", map[string]string{"index.js": ""},
			"app.handler", "Runtime.ImportModuleError", []string{"app"}, ""},
		{runtime.RuntimeNodeJS, "dependency missing", map[string]string{"index.js": "require('left-pad');\n"},
			"index.handler", "Runtime.ImportModuleError", []string{"left-pad"}, ""},
		{runtime.RuntimeNodeJS, "syntax error", map[string]string{"index.js": "console.log('before');\nexports.handler = (;\n"},
			"index.handler", "Runtime.UserCodeSyntaxError", []string{"'index'", "Unexpected token", "(index.js line 2)"}, ""},
		{runtime.RuntimeNodeJS, "ESM syntax error", map[string]string{"index.mjs": "\nexport const handler = (;\n"},
			"index.handler", "Runtime.UserCodeSyntaxError", []string{"'index'", "Unexpected token", "(index.mjs line 2)"}, ""},
		{runtime.RuntimeNodeJS, "syntax error in a dependency", map[string]string{"index.js": "require('./lib/dep');\n", "lib/dep.js": "\n\nlet let = 1;\n"},
			"index.handler", "Runtime.UserCodeSyntaxError", []string{"'index'", "(lib/dep.js line 3)"}, ""},
		{runtime.RuntimePython, "syntax error in a dependency", map[string]string{"main.py": "import dep\n", "dep.py": "\nx = = 1\n"},
			"main.handler", "Runtime.UserCodeSyntaxError", []string{"'main'", "dep.py, line 2"}, ""},
		{runtime.RuntimeNodeJS, "exception at import", map[string]string{"index.js": "console.log('loading');\nthrow new RangeError('config');\n"},
			"index.handler", "RangeError", []string{"config"}, "loading\n"},
		{runtime.RuntimeNodeJS, "ESM exception at import", map[string]string{"index.mjs": "console.log('loading');\nawait null;\nthrow new RangeError('config');\n"},
			"index.handler", "RangeError", []string{"config"}, "loading\n"},
	}
	for _, tt := range tests {
		t.Run(tt.runtime+"/"+tt.name, func(t *testing.T) {
			w := startWorker(t, tt.runtime, tt.files, tt.handler)
			e := w.Ready.Error
			if e == nil {
				t.Fatalf("handler loaded, want %s", tt.wantType)
			}
			if e.Type != tt.wantType {
				t.Errorf("error type %q, want %q (message %q)", e.Type, tt.wantType, e.Message)
			}
			for _, s := range tt.wantMessage {
				if !strings.Contains(e.Message, s) {
					t.Errorf("error message %q lacks %q", e.Message, s)
				}
			}
			if w.Ready.Logs != tt.wantLogs {
				t.Errorf("ready logs %q, want %q", w.Ready.Logs, tt.wantLogs)
			}
			if code := w.exitCode(10 * time.Second); code != 1 {
				t.Errorf("exit status %d after a failed load, want 1", code)
			}
		})
	}
}

func TestSysExitKeepsServing(t *testing.T) {
	w := startWorker(t, runtime.RuntimePython, map[string]string{"main.py": `
import sys

def handler(event, context):
    if event == "exit":
        print("bye")
        sys.exit("leaving")
    return "alive"
`}, "main.handler").mustLoad()
	resp := w.invoke("exit")
	if resp.Error == nil || resp.Error.Type != "Runtime.ExitError" || resp.Logs != "bye\n" {
		t.Fatalf("got error %+v, logs %q; want Runtime.ExitError, logs \"bye\\n\"", resp.Error, resp.Logs)
	}
	if got := w.result("again"); string(got) != `"alive"` {
		t.Errorf("after sys.exit: %s", got)
	}
}

func TestSubprocessDoesNotInheritProtocolFds(t *testing.T) {
	_, err := os.Stat("/proc/self/fd")
	testenv.Require(t, "/proc", err)
	// The child lists where its open descriptors lead. Python is asked not
	// to close them (close_fds=False): only FD_CLOEXEC keeps them out.
	script := `for f in /proc/$$/fd/*; do readlink "$f"; done; true`
	files := map[string]map[string]string{
		runtime.RuntimePython: {"main.py": `
import subprocess

def handler(event, context):
    out = subprocess.run(["sh", "-c", event], capture_output=True, text=True, close_fds=False)
    return out.stdout.split()
`},
		runtime.RuntimeNodeJS: {"index.js": `
const { execFileSync } = require('child_process');
exports.handler = async (event) => execFileSync('sh', ['-c', event], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
`},
	}
	handlers := map[string]string{runtime.RuntimePython: "main.handler", runtime.RuntimeNodeJS: "index.handler"}
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			w := startWorker(t, rt, files[rt], handlers[rt]).mustLoad()
			links := decode[[]string](t, w.result(script))
			if len(links) < 3 {
				t.Fatalf("child saw only %q", links)
			}
			for _, ino := range w.pipeInodes() {
				pipe := fmt.Sprintf("pipe:[%d]", ino)
				for _, l := range links {
					if l == pipe {
						t.Errorf("child inherited protocol pipe %s: %q", pipe, links)
					}
				}
			}
		})
	}
}

func TestNodeUncaughtErrors(t *testing.T) {
	tests := []struct {
		name        string
		code        string
		wantType    string
		wantMessage string
		wantStderr  string // for errors outside an invocation
	}{
		{"unhandled rejection", `
exports.handler = async () => {
  Promise.reject(new Error('nobody caught me'));
  await new Promise((r) => setTimeout(r, 200));
  return 'unreachable';
};
`, "Runtime.UnhandledPromiseRejection", "Error: nobody caught me", ""},
		{"uncaught exception", `
exports.handler = (e, ctx, cb) => {
  setTimeout(() => { throw new TypeError('thrown from a timer'); }, 1);
  setTimeout(() => cb(null, 'unreachable'), 200);
};
`, "TypeError", "thrown from a timer", ""},
		{"exception after the invocation", `
exports.handler = async () => {
  setTimeout(() => { throw new Error('background failure'); }, 20);
  return 'ok';
};
`, "", "", "background failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startWorker(t, runtime.RuntimeNodeJS, map[string]string{"index.js": tt.code}, "index.handler").mustLoad()
			resp := w.invoke(nil)
			if tt.wantType == "" {
				if resp.Error != nil || string(resp.Result) != `"ok"` {
					t.Fatalf("got %s, %+v; want \"ok\"", resp.Result, resp.Error)
				}
			} else {
				if resp.Error == nil {
					t.Fatalf("result %s, want an error", resp.Result)
				}
				if resp.Error.Type != tt.wantType || resp.Error.Message != tt.wantMessage {
					t.Errorf("error %q %q, want %q %q", resp.Error.Type, resp.Error.Message, tt.wantType, tt.wantMessage)
				}
				if resp.Error.Stack == "" {
					t.Error("no stack")
				}
			}
			if code := w.exitCode(10 * time.Second); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if tt.wantStderr != "" && !strings.Contains(w.stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", w.stderr.String(), tt.wantStderr)
			}
		})
	}
}

// BenchmarkWarmInvoke measures a warm round trip: request frame written,
// no-op handler run, response frame read.
func BenchmarkWarmInvoke(b *testing.B) {
	files := map[string]map[string]string{
		runtime.RuntimePython: {"main.py": "def handler(event, context):\n    return {\"ok\": True}\n"},
		runtime.RuntimeNodeJS: {"index.js": "exports.handler = async () => ({ ok: true });\n"},
	}
	handlers := map[string]string{runtime.RuntimePython: "main.handler", runtime.RuntimeNodeJS: "index.handler"}
	event := map[string]string{"key": "value"}
	for _, rt := range runtimes {
		b.Run(rt, func(b *testing.B) {
			w := startWorker(b, rt, files[rt], handlers[rt]).mustLoad()
			for i := 0; i < 100; i++ { // warm up (and let V8 optimise)
				w.result(event)
			}
			cpu0 := w.cpuTime()
			n := 0
			for b.Loop() {
				w.result(event)
				n++
			}
			// The worker's own CPU time per invocation: the shim's cost,
			// without the pipe wake-ups and this side's work.
			b.ReportMetric(float64((w.cpuTime()-cpu0).Nanoseconds())/float64(n), "worker-cpu-ns/op")
		})
	}
}
