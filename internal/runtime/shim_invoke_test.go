package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Invocations through the real shims: installing them, results both ways,
// the context object, state kept between invocations.

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
	for _, p := range []string{p1.Shim(runtime.Python), p1.Shim(runtime.NodeJS), p1.Zygote(runtime.Python)} {
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
	if filepath.Base(p1.Shim(runtime.Python)) != "bootstrap.py" || filepath.Base(p1.Shim(runtime.NodeJS)) != "bootstrap.js" {
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
		{runtime.Python, "sync", map[string]string{"main.py": `
def handler(event, context):
    return {"echo": event, "n": 1}
`}, "main.handler", map[string]any{"a": 1}, `{"echo":{"a":1},"n":1}`},
		{runtime.Python, "async", map[string]string{"main.py": `
import asyncio

async def handler(event, context):
    await asyncio.sleep(0.01)
    return {"async": True, "event": event}
`}, "main.handler", "x", `{"async":true,"event":"x"}`},
		{runtime.Python, "none is null", map[string]string{"main.py": `
def handler(event, context):
    pass
`}, "main.handler", nil, `null`},
		{runtime.Python, "unicode", map[string]string{"main.py": `
def handler(event, context):
    return {"s": event + " ✓ ünï"}
`}, "main.handler", "héllo", `{"s":"héllo ✓ ünï"}`},
		{runtime.Python, "Decimal as a number", map[string]string{"main.py": `
from decimal import Decimal

def handler(event, context):
    return {"price": Decimal("12.5")}
`}, "main.handler", nil, `{"price":12.5}`},
		{runtime.Python, "nested pkg.sub.handler", map[string]string{
			"pkg/__init__.py": "",
			"pkg/sub.py": `
from pkg import helper

def handler(event, context):
    return helper.twice(event)
`,
			"pkg/helper.py": "def twice(x):\n    return x * 2\n",
		}, "pkg.sub.handler", 21, `42`},
		{runtime.Python, "big event and result", map[string]string{"main.py": `
def handler(event, context):
    return event
`}, "main.handler", big, strconv.Quote(big)},

		{runtime.NodeJS, "async", map[string]string{"index.js": `
exports.handler = async (event) => ({ echo: event, n: 1 });
`}, "index.handler", map[string]any{"a": 1}, `{"echo":{"a":1},"n":1}`},
		{runtime.NodeJS, "sync return", map[string]string{"index.js": `
exports.handler = (event) => event * 2;
`}, "index.handler", 21, `42`},
		{runtime.NodeJS, "returned promise", map[string]string{"index.js": `
exports.handler = (event) => new Promise((resolve) => setTimeout(() => resolve('later'), 5));
`}, "index.handler", nil, `"later"`},
		{runtime.NodeJS, "callback", map[string]string{"index.js": `
exports.handler = (event, context, callback) => {
  setTimeout(() => callback(null, { cb: event }), 5);
};
`}, "index.handler", "x", `{"cb":"x"}`},
		{runtime.NodeJS, "context.succeed", map[string]string{"index.js": `
exports.handler = function (event, context) {
  setTimeout(() => context.succeed('ok'), 5);
};
`}, "index.handler", nil, `"ok"`},
		{runtime.NodeJS, "context.done", map[string]string{"index.js": `
exports.handler = function (event, context) {
  context.done(null, { done: true });
};
`}, "index.handler", nil, `{"done":true}`},
		{runtime.NodeJS, "undefined is null", map[string]string{"index.js": `
exports.handler = () => {};
`}, "index.handler", nil, `null`},
		{runtime.NodeJS, "first completion wins", map[string]string{"index.js": `
exports.handler = async (event, context, callback) => {
  callback(null, 'first');
  context.succeed('second');
  return 'third';
};
`}, "index.handler", nil, `"first"`},
		{runtime.NodeJS, "nested lib/app.handler", map[string]string{
			"lib/app.js":    "const h = require('./helper');\nexports.handler = async (e) => h.twice(e);\n",
			"lib/helper.js": "exports.twice = (x) => x * 2;\n",
		}, "lib/app.handler", 21, `42`},
		{runtime.NodeJS, "ESM .mjs", map[string]string{
			"index.mjs":  "import { twice } from './helper.mjs';\nconst base = await Promise.resolve(1);\nexport const handler = async (e) => ({ esm: true, v: twice(e) + base });\n",
			"helper.mjs": "export const twice = (x) => x * 2;\n",
		}, "index.handler", 20, `{"esm":true,"v":41}`},
		{runtime.NodeJS, "ESM .js in a module package", map[string]string{
			"package.json": `{"type": "module"}`,
			"index.js":     "export async function handler(e) { return import.meta.url.endsWith('/index.js'); }\n",
		}, "index.handler", nil, `true`},
		{runtime.NodeJS, "CommonJS .cjs", map[string]string{
			"index.cjs": "module.exports.handler = async () => 'cjs';\n",
		}, "index.handler", nil, `"cjs"`},
		{runtime.NodeJS, "unicode", map[string]string{"index.js": `
exports.handler = async (e) => ({ s: e + ' ✓ ünï' });
`}, "index.handler", "héllo", `{"s":"héllo ✓ ünï"}`},
		{runtime.NodeJS, "big event and result", map[string]string{"index.js": `
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
		runtime.Python: {"main.py": `
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
		runtime.NodeJS: {"index.js": `
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
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
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
			if rt == runtime.NodeJS {
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
			if rt == runtime.NodeJS && (got.Waits == nil || !*got.Waits) {
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
		runtime.Python: {"main.py": `
import os
count = 0

def handler(event, context):
    global count
    count += 1
    return [count, os.getpid()]
`},
		runtime.NodeJS: {"index.js": `
let count = 0;
exports.handler = async () => [++count, process.pid];
`},
	}
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
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

// BenchmarkWarmInvoke measures a warm round trip: request frame written,
// no-op handler run, response frame read.
func BenchmarkWarmInvoke(b *testing.B) {
	files := map[string]map[string]string{
		runtime.Python: {"main.py": "def handler(event, context):\n    return {\"ok\": True}\n"},
		runtime.NodeJS: {"index.js": "exports.handler = async () => ({ ok: true });\n"},
	}
	handlers := map[string]string{runtime.Python: "main.handler", runtime.NodeJS: "index.handler"}
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

// TestClientContext: a request's clientContext (Lambda's Invoke
// X-Amz-Client-Context) reaches the handler as context.client_context
// (Python: client, custom and env attributes, as awslambdaric's) or
// context.clientContext (Node: the object); a request without one leaves
// it None / undefined.
func TestClientContext(t *testing.T) {
	cc := json.RawMessage(`{"client":{"installation_id":"i-1","app_title":"shop"},"custom":{"tenant":"t9"},"env":{"locale":"fr"}}`)
	tests := []struct {
		runtime, handler string
		files            map[string]string
	}{
		{runtime.Python, "main.handler", map[string]string{"main.py": `
def handler(event, context):
    cc = context.client_context
    if cc is None:
        return None
    return {"installation": cc.client.installation_id, "title": cc.client.app_title, "custom": cc.custom, "env": cc.env}
`}},
		{runtime.NodeJS, "index.handler", map[string]string{"index.js": `
exports.handler = async (event, context) => {
  const cc = context.clientContext;
  if (cc === undefined) return null;
  return { installation: cc.client.installation_id, title: cc.client.app_title, custom: cc.custom, env: cc.env };
};
`}},
	}
	for _, tc := range tests {
		t.Run(tc.runtime, func(t *testing.T) {
			w := startWorker(t, tc.runtime, tc.files, tc.handler).mustLoad()
			req := runtime.Request{Type: runtime.TypeInvoke, ID: "with", Event: json.RawMessage(`{}`),
				DeadlineMs: time.Now().Add(30 * time.Second).UnixMilli(), ClientContext: cc}
			if err := runtime.WriteFrame(w.reqW, req); err != nil {
				t.Fatal(err)
			}
			resp := w.read()
			if resp.Error != nil {
				t.Fatalf("handler failed: %+v", resp.Error)
			}
			want := `{"installation":"i-1","title":"shop","custom":{"tenant":"t9"},"env":{"locale":"fr"}}`
			if !jsonEqual(t, resp.Result, []byte(want)) {
				t.Errorf("with a client context: %s, want %s", resp.Result, want)
			}
			if got := w.result(map[string]any{}); string(got) != "null" {
				t.Errorf("without a client context: %s, want null", got)
			}
		})
	}
}
