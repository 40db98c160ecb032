package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/testenv"
)

// Options says what the driver under test supports beyond the basics, and
// how to check that an instance left nothing behind.
type Options struct {
	// MemoryLimit: a handler that exceeds its function's memory dies, and
	// the instance's ExitInfo says OOM.
	MemoryLimit bool
	// Freezes: the driver's instances are driver.Freezers, and a frozen
	// instance uses no CPU. When false, the case checks that they are not.
	Freezes bool
	// Gone reports whether what the instance with these stats held (a
	// container, say) is gone. nil checks only that its process is.
	Gone func(t *testing.T, s driver.Stats) bool
}

// Factory returns a driver ready to start instances; the test owns it and
// closes it in t.Cleanup.
type Factory func(t *testing.T) driver.Driver

// Runtimes are the runtimes every case runs with.
var Runtimes = []string{runtime.Python, runtime.NodeJS}

var seq atomic.Int64

// Function returns a function of runtime rt named for the test, with files
// and the runtime's default handler (main.handler in Python, index.handler
// in Node).
func Function(t testing.TB, rt string, files map[string]string) *fn.Function {
	n := seq.Add(1)
	f := &fn.Function{
		ID:           "fn" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(n, 10),
		Name:         "conformance-" + strconv.FormatInt(n, 10),
		Runtime:      rt,
		Files:        files,
		Env:          map[string]string{},
		Timeout:      10000,
		Memory:       128,
		Driver:       "test",
		MaxInstances: 10,
		Revision:     1,
	}
	if r, ok := runtime.Lookup(rt); ok {
		f.Handler = r.DefaultHandler
	}
	return f
}

// Source returns the files of a one-file function: code is the default
// handler's module (main.py or index.js).
func Source(rt, code string) map[string]string {
	r, ok := runtime.Lookup(rt)
	if !ok {
		return nil
	}
	return map[string]string{r.ModuleFiles(r.DefaultHandler)[0]: code}
}

// StartTimeout bounds a start in these tests: generous, as the suite
// runs on loaded machines. The microVM tests raise it: with emulated
// CPUs, a Node guest took over 60 s to start beside a busy CI run.
var StartTimeout = 60 * time.Second

// Start starts an instance of f, failing the test if it does not start,
// and kills it at the end of the test.
func Start(t testing.TB, d driver.Driver, f *fn.Function) driver.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	in, err := d.Start(ctx, driver.InstanceSpec{Function: f})
	if err != nil {
		t.Fatalf("start %s instance: %v", f.Runtime, err)
	}
	t.Cleanup(func() { stop(in) })
	return in
}

func stop(in driver.Instance) {
	in.Kill("test over")
	select {
	case <-in.Done():
	case <-time.After(30 * time.Second):
	}
}

var reqSeq atomic.Int64

// Invoke calls in with event under a deadline of timeout.
func Invoke(in driver.Instance, event any, timeout time.Duration) (*runtime.Response, error) {
	b, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	id := "req-" + strconv.FormatInt(reqSeq.Add(1), 10)
	return in.Invoke(ctx, driver.NewRequest(id, b, deadline.UnixMilli()))
}

// MustInvoke calls in and fails the test unless the handler succeeded; it
// returns the result decoded into T.
func MustInvoke[T any](t testing.TB, in driver.Instance, event any) T {
	t.Helper()
	resp, err := Invoke(in, event, 30*time.Second)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("handler failed: %s: %s\n%s\nlogs: %s", resp.Error.Type, resp.Error.Message, resp.Error.Stack, resp.Logs)
	}
	var v T
	if err := json.Unmarshal(resp.Result, &v); err != nil {
		t.Fatalf("result %s: %v", resp.Result, err)
	}
	return v
}

// WaitDone waits for in to stop.
func WaitDone(t testing.TB, in driver.Instance, within time.Duration) {
	t.Helper()
	select {
	case <-in.Done():
	case <-time.After(within):
		t.Fatalf("instance not stopped %s after it should have", within)
	}
}

// Run runs the conformance suite against the drivers newDriver makes.
func Run(t *testing.T, newDriver Factory, opts Options) {
	for _, c := range []struct {
		name     string
		run      func(t *testing.T, d driver.Driver, rt string, opts Options)
		runtimes []string // nil: every runtime
	}{
		{"Invoke", testInvoke, nil},
		{"Env", testEnv, nil},
		{"Logs", testLogs, nil},
		{"HandlerError", testHandlerError, nil},
		{"LoadError", testLoadError, nil},
		{"Timeout", testTimeout, nil},
		{"OOM", testOOM, nil},
		{"Crash", testCrash, nil},
		// Node's shim moves its protocol stream away from fd 4, where a
		// handler cannot find it.
		{"HalfFrame", testHalfFrame, []string{runtime.Python}},
		{"Freeze", testFreeze, nil},
		{"Concurrency", testConcurrency, nil},
		{"StreamedLogs", testStreamedLogs, nil},
		{"Cleanup", testCleanup, nil},
		{"Code", testCode, nil},
		{"Layers", testLayers, nil},
		{"HostPackages", testHostPackages, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDriver(t)
			rts := c.runtimes
			if rts == nil {
				rts = Runtimes
			}
			for _, rt := range rts {
				t.Run(rt, func(t *testing.T) { c.run(t, d, rt, opts) })
			}
		})
	}
}

func testInvoke(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
calls = 0
def handler(event, context):
    global calls
    calls += 1
    return {"echo": event, "calls": calls, "name": context.function_name, "id": context.aws_request_id,
            "left": context.get_remaining_time_in_millis()}
`,
		runtime.NodeJS: `
let calls = 0;
exports.handler = async (event, context) => {
  calls++;
  return { echo: event, calls, name: context.functionName, id: context.awsRequestId,
           left: context.getRemainingTimeInMillis() };
};
`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	in := Start(t, d, f)
	type result struct {
		Echo  map[string]any `json:"echo"`
		Calls int            `json:"calls"`
		Name  string         `json:"name"`
		ID    string         `json:"id"`
		Left  int64          `json:"left"`
	}
	for i := 1; i <= 3; i++ {
		resp, err := Invoke(in, map[string]any{"n": i, "s": "héllo"}, 5*time.Second)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if resp.Error != nil {
			t.Fatalf("call %d failed: %+v", i, resp.Error)
		}
		var r result
		if err := json.Unmarshal(resp.Result, &r); err != nil {
			t.Fatal(err)
		}
		if r.Echo["n"] != float64(i) || r.Echo["s"] != "héllo" {
			t.Errorf("call %d: echo %v", i, r.Echo)
		}
		if r.Calls != i {
			t.Errorf("call %d: the handler counted %d calls: the instance is not warm", i, r.Calls)
		}
		if r.Name != f.Name || r.ID != resp.ID {
			t.Errorf("call %d: context name %q id %q, want %q %q", i, r.Name, r.ID, f.Name, resp.ID)
		}
		if r.Left <= 0 || r.Left > 5000 {
			t.Errorf("call %d: %d ms left of a 5 s deadline", i, r.Left)
		}
	}
	if s := in.Stats(); s.ID == "" {
		t.Errorf("stats without an id: %+v", s)
	}
}

// secretEnv is set in the test process: a worker must never see it.
const secretEnv = "NIMBUS_DRIVERTEST_SERVER_SECRET"

func testEnv(t *testing.T, d driver.Driver, rt string, _ Options) {
	t.Setenv(secretEnv, "leaked")
	code := map[string]string{
		runtime.Python: `
import os, time
AT_IMPORT = os.environ.get("GREETING")
def handler(event, context):
    jan = time.localtime(1705320000)  # 2024-01-15 12:00 UTC
    return {"env": dict(os.environ), "atImport": AT_IMPORT, "utcOffset": jan.tm_gmtoff // 60}
`,
		runtime.NodeJS: `
const atImport = process.env.GREETING;
exports.handler = async () => ({ env: { ...process.env }, atImport,
  utcOffset: -new Date(Date.UTC(2024, 0, 15, 12)).getTimezoneOffset() });
`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	f.Env = map[string]string{"GREETING": "bonjour", "WITH_SPACE": "a b=c", "TZ": "Europe/Paris"}
	in := Start(t, d, f)
	got := MustInvoke[struct {
		Env       map[string]string `json:"env"`
		AtImport  string            `json:"atImport"`
		UTCOffset int               `json:"utcOffset"`
	}](t, in, nil)
	want := map[string]string{
		"GREETING":                        "bonjour",
		"WITH_SPACE":                      "a b=c",
		"AWS_LAMBDA_FUNCTION_NAME":        f.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     fn.Latest, // the draft
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.Memory),
		"NIMBUS_FUNCTION_ID":              f.ID,
		"TZ":                              "Europe/Paris", // the function's own wins
		"LANG":                            "C.UTF-8",
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("%s=%q, want %q", k, got.Env[k], v)
		}
	}
	for _, k := range []string{"PATH", "HOME", "LAMBDA_TASK_ROOT"} {
		if got.Env[k] == "" {
			t.Errorf("%s is not set", k)
		}
	}
	if got.UTCOffset != 60 {
		t.Errorf("UTC offset in January with TZ=Europe/Paris: %d minutes, want 60", got.UTCOffset)
	}
	if got.AtImport != "bonjour" {
		t.Errorf("at import GREETING=%q: the environment must be set before the handler loads", got.AtImport)
	}
	if _, ok := got.Env[secretEnv]; ok {
		t.Errorf("the server's environment leaked into the worker")
	}
}

func testLogs(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
import sys
print("loading")
def handler(event, context):
    print("out", event)
    print("err", event, file=sys.stderr)
    return None
`,
		runtime.NodeJS: `
console.log("loading");
exports.handler = async (event) => {
  console.log("out", event);
  console.error("err", event);
  return null;
};
`,
	}[rt]
	in := Start(t, d, Function(t, rt, Source(rt, code)))
	for i, want := range []string{"loading\nout 1\nerr 1\n", "out 2\nerr 2\n"} {
		resp, err := Invoke(in, i+1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Logs != want {
			t.Errorf("call %d: logs %q, want %q", i+1, resp.Logs, want)
		}
	}
}

func testHandlerError(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
class PaymentError(Exception):
    pass
def handler(event, context):
    if event.get("fail"):
        raise PaymentError("card declined")
    return "ok"
`,
		runtime.NodeJS: `
class PaymentError extends Error { constructor(m) { super(m); this.name = 'PaymentError'; } }
exports.handler = async (event) => {
  if (event.fail) throw new PaymentError('card declined');
  return 'ok';
};
`,
	}[rt]
	in := Start(t, d, Function(t, rt, Source(rt, code)))
	resp, err := Invoke(in, map[string]bool{"fail": true}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil || resp.Error.Type != "PaymentError" || resp.Error.Message != "card declined" || resp.Error.Stack == "" {
		t.Fatalf("error %+v, want PaymentError: card declined with a stack", resp.Error)
	}
	if got := MustInvoke[string](t, in, map[string]bool{"fail": false}); got != "ok" {
		t.Errorf("the call after an error returned %q", got)
	}
}

func testLoadError(t *testing.T, d driver.Driver, rt string, _ Options) {
	cases := []struct {
		name, code, handler, wantType string
	}{
		{"syntax", map[string]string{runtime.Python: "def handler(event, context)\n    return 1\n", runtime.NodeJS: "exports.handler = async (event => 1;\n"}[rt], "", "Runtime.UserCodeSyntaxError"},
		{"missing handler", map[string]string{runtime.Python: "def other(event, context):\n    return 1\n", runtime.NodeJS: "exports.other = async () => 1;\n"}[rt], "", "Runtime.HandlerNotFound"},
		{"missing module", "", map[string]string{runtime.Python: "nothere.handler", runtime.NodeJS: "nothere.handler"}[rt], "Runtime.ImportModuleError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := Function(t, rt, Source(rt, c.code))
			if c.handler != "" {
				f.Handler = c.handler
			}
			ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
			defer cancel()
			in, err := d.Start(ctx, driver.InstanceSpec{Function: f})
			if err == nil {
				stop(in)
				t.Fatal("started an instance of a function that cannot load")
			}
			var ie *driver.InitError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T), want a *driver.InitError", err, err)
			}
			if ie.Err.Type != c.wantType {
				t.Errorf("error type %q (%s), want %q", ie.Err.Type, ie.Err.Message, c.wantType)
			}
		})
	}
}

func testTimeout(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
import time
def handler(event, context):
    time.sleep(event)
    return "slept"
`,
		runtime.NodeJS: `exports.handler = (event) => new Promise((ok) => setTimeout(() => ok('slept'), event * 1000));`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	in := Start(t, d, f)
	t0 := time.Now()
	_, err := Invoke(in, 30, 700*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("a 700 ms deadline took %s to return", took)
	}
	WaitDone(t, in, 30*time.Second)
	if e := in.Exit(); e.Reason != "timeout" {
		t.Errorf("exit %+v, want reason timeout", e)
	}
	// The next call gets a fresh instance that works.
	in2 := Start(t, d, f)
	if got := MustInvoke[string](t, in2, 0); got != "slept" {
		t.Errorf("after a timeout: %q", got)
	}
}

func testOOM(t *testing.T, d driver.Driver, rt string, opts Options) {
	if !opts.MemoryLimit {
		testenv.Require(t, "a memory limit", errors.New("the driver does not enforce one here"))
	}
	code := map[string]string{
		runtime.Python: `
def handler(event, context):
    if not event:
        return "small"
    chunks = []
    while True:
        chunks.append(b"x" * (4 << 20))
`,
		runtime.NodeJS: `
exports.handler = async (event) => {
  if (!event) return 'small';
  const chunks = [];
  for (;;) chunks.push(Buffer.alloc(4 << 20, 'x'));
};
`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	f.Memory = 96
	in := Start(t, d, f)
	if got := MustInvoke[string](t, in, false); got != "small" {
		t.Fatalf("got %q", got)
	}
	_, err := Invoke(in, true, 30*time.Second)
	var ee *driver.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v (%T), want a *driver.ExitError", err, err)
	}
	if !ee.Exit.OOM {
		t.Errorf("exit %+v, want OOM", ee.Exit)
	}
	WaitDone(t, in, 30*time.Second)
	in2 := Start(t, d, f)
	if got := MustInvoke[string](t, in2, false); got != "small" {
		t.Errorf("after an OOM kill: %q", got)
	}
}

func testCrash(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
import os, signal
def handler(event, context):
    if event == "exit":
        os._exit(3)
    if event == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return "alive"
`,
		runtime.NodeJS: `
exports.handler = async (event) => {
  if (event === 'exit') process.exit(3);
  if (event === 'kill') process.kill(process.pid, 'SIGKILL');
  return 'alive';
};
`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	for _, c := range []struct {
		event string
		check func(driver.ExitInfo) bool
	}{
		{"exit", func(e driver.ExitInfo) bool { return e.Code == 3 && !e.OOM }},
		{"kill", func(e driver.ExitInfo) bool { return e.Signal == "SIGKILL" && !e.OOM }},
	} {
		t.Run(c.event, func(t *testing.T) {
			in := Start(t, d, f)
			if got := MustInvoke[string](t, in, "hi"); got != "alive" {
				t.Fatalf("got %q", got)
			}
			_, err := Invoke(in, c.event, 20*time.Second)
			var ee *driver.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v (%T), want a *driver.ExitError", err, err)
			}
			if !c.check(ee.Exit) {
				t.Errorf("exit %+v does not say the worker %sed", ee.Exit, c.event)
			}
			WaitDone(t, in, 30*time.Second)
			if _, err := Invoke(in, "hi", 5*time.Second); err == nil {
				t.Errorf("a dead instance answered")
			}
			in2 := Start(t, d, f)
			if got := MustInvoke[string](t, in2, "hi"); got != "alive" {
				t.Errorf("after a crash: %q", got)
			}
		})
	}
}

func testConcurrency(t *testing.T, d driver.Driver, rt string, _ Options) {
	code := map[string]string{
		runtime.Python: `
import time, uuid
TOKEN = uuid.uuid4().hex
def handler(event, context):
    time.sleep(0.05)
    return {"n": event, "token": TOKEN}
`,
		runtime.NodeJS: `
const TOKEN = require('crypto').randomUUID();
exports.handler = async (event) => {
  await new Promise((ok) => setTimeout(ok, 50));
  return { n: event, token: TOKEN };
};
`,
	}[rt]
	f := Function(t, rt, Source(rt, code))
	const instances, calls = 4, 5
	// Workers are told apart by a token each draws when it loads the
	// function: pids repeat across PID namespaces.
	type result struct {
		N     int    `json:"n"`
		Token string `json:"token"`
	}
	ins := make([]driver.Instance, instances)
	errs := make(chan error, instances*calls)
	started := make(chan struct{})
	go func() {
		defer close(started)
		done := make(chan struct{}, instances)
		for i := range ins {
			go func() {
				defer func() { done <- struct{}{} }()
				// Four start at once and share the CPUs: a start may take
				// as long as four do one after another (emulated Node VMs
				// on a loaded host: over 60 s seen).
				ctx, cancel := context.WithTimeout(context.Background(), instances*StartTimeout)
				defer cancel()
				in, err := d.Start(ctx, driver.InstanceSpec{Function: f})
				if err != nil {
					errs <- fmt.Errorf("start %d: %w", i, err)
					return
				}
				ins[i] = in
			}()
		}
		for range ins {
			<-done
		}
	}()
	<-started
	for _, in := range ins {
		if in != nil {
			t.Cleanup(func() { stop(in) })
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	ids := map[string]bool{}
	for _, in := range ins {
		ids[in.Stats().ID] = true
	}
	if len(ids) != instances {
		t.Errorf("%d distinct instance ids for %d instances", len(ids), instances)
	}
	results := make(chan result, instances*calls)
	for i, in := range ins {
		for j := range calls {
			go func() {
				n := i*calls + j
				resp, err := Invoke(in, n, 30*time.Second)
				if err == nil && resp.Error != nil {
					err = resp.Error
				}
				if err != nil {
					errs <- err
					return
				}
				var r result
				if err := json.Unmarshal(resp.Result, &r); err != nil || r.N != n {
					errs <- fmt.Errorf("call %d got %s", n, resp.Result)
					return
				}
				results <- r
			}()
		}
	}
	tokens := make([]map[string]bool, instances) // per instance, the workers that answered
	for range instances * calls {
		select {
		case err := <-errs:
			t.Fatal(err)
		case r := <-results:
			i := r.N / calls
			if tokens[i] == nil {
				tokens[i] = map[string]bool{}
			}
			tokens[i][r.Token] = true
		case <-time.After(60 * time.Second):
			t.Fatal("calls did not finish")
		}
	}
	// Each instance's calls ran in its own one worker, and no two
	// instances share one.
	seen := map[string]int{}
	for i, ts := range tokens {
		if len(ts) != 1 {
			t.Errorf("instance %d: its calls were answered by %d workers, want 1", i, len(ts))
		}
		for tok := range ts {
			if j, dup := seen[tok]; dup || tok == "" {
				t.Errorf("instances %d and %d answered from the same worker %q", j, i, tok)
			}
			seen[tok] = i
		}
	}
}

func testCleanup(t *testing.T, d driver.Driver, rt string, opts Options) {
	code := map[string]string{
		runtime.Python: "def handler(event, context):\n    return 'ok'\n",
		runtime.NodeJS: "exports.handler = async () => 'ok';\n",
	}[rt]
	in := Start(t, d, Function(t, rt, Source(rt, code)))
	MustInvoke[string](t, in, false)
	s := in.Stats()
	if err := in.Kill("cleanup test"); err != nil {
		t.Fatalf("kill: %v", err)
	}
	WaitDone(t, in, 30*time.Second)
	if e := in.Exit(); e.Reason != "cleanup test" {
		t.Errorf("exit %+v, want reason %q", e, "cleanup test")
	}
	if err := in.Kill("again"); err != nil {
		t.Errorf("a second kill: %v", err)
	}
	if s.PID > 0 {
		if err := syscall.Kill(s.PID, 0); err == nil && processAlive(s.PID) {
			t.Errorf("process %d still runs after its instance stopped", s.PID)
		}
	}
	if opts.Gone != nil && !opts.Gone(t, s) {
		t.Errorf("instance %s left something behind", s.ID)
	}
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ')' && i+2 < len(s) {
			return s[i+2] != 'Z' && s[i+2] != 'X'
		}
	}
	return true
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
