package runtime_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// Errors a handler or its module raises, at load and at invoke, reported
// as the protocol says.

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
		{runtime.Python, "exception", map[string]string{"main.py": `
def helper(x):
    raise ValueError("bad input: %s" % x)

def handler(event, context):
    return helper(event)
`}, "main.handler", 0, "ValueError", []string{"bad input: 7"}, []string{"Traceback", "main.py\", line 3, in helper", "ValueError: bad input: 7"}},
		{runtime.Python, "custom exception in a coroutine", map[string]string{"main.py": `
class PaymentDeclined(Exception):
    pass

async def handler(event, context):
    raise PaymentDeclined("card 7 declined")
`}, "main.handler", 0, "PaymentDeclined", []string{"card 7 declined"}, []string{"main.py\", line 6, in handler"}},
		{runtime.Python, "set", map[string]string{"main.py": `
def handler(event, context):
    return {"s": {1, 2}}
`}, "main.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "set"}, nil},
		{runtime.Python, "NaN", map[string]string{"main.py": `
def handler(event, context):
    return [float("nan")]
`}, "main.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "float"}, nil},
		{runtime.Python, "circular", map[string]string{"main.py": `
def handler(event, context):
    a = []
    a.append(a)
    return a
`}, "main.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "Circular"}, nil},
		{runtime.Python, "too large", map[string]string{"main.py": `
def handler(event, context):
    return "x" * 2000
`}, "main.handler", 1000, "Runtime.ResultTooLarge", []string{"2002", "1000"}, nil},
		{runtime.Python, "sys.exit", map[string]string{"main.py": `
import sys

def handler(event, context):
    sys.exit(3)
`}, "main.handler", 0, "Runtime.ExitError", []string{"sys.exit(3)"}, nil},

		{runtime.NodeJS, "throw", map[string]string{"index.js": `
function helper(x) { throw new TypeError('bad input: ' + x); }
exports.handler = async (e) => helper(e);
`}, "index.handler", 0, "TypeError", []string{"bad input: 7"}, []string{"TypeError: bad input: 7", "index.js:2"}},
		{runtime.NodeJS, "sync throw", map[string]string{"index.js": `
exports.handler = (e) => { throw new RangeError('out of range'); };
`}, "index.handler", 0, "RangeError", []string{"out of range"}, []string{"index.js:2"}},
		{runtime.NodeJS, "throw a string", map[string]string{"index.js": `
exports.handler = async () => { throw 'plain ' + 'words'; };
`}, "index.handler", 0, "Error", []string{"plain words"}, nil},
		{runtime.NodeJS, "callback error", map[string]string{"index.js": `
exports.handler = (e, ctx, cb) => { setTimeout(() => cb(new Error('cb failed')), 1); };
`}, "index.handler", 0, "Error", []string{"cb failed"}, []string{"index.js:2"}},
		{runtime.NodeJS, "context.fail", map[string]string{"index.js": `
exports.handler = (e, ctx) => { ctx.fail(new SyntaxError('ctx failed')); };
`}, "index.handler", 0, "SyntaxError", []string{"ctx failed"}, nil},
		{runtime.NodeJS, "circular", map[string]string{"index.js": `
exports.handler = async () => { const a = {}; a.self = a; return a; };
`}, "index.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "circular"}, nil},
		{runtime.NodeJS, "BigInt", map[string]string{"index.js": `
exports.handler = async () => ({ n: 10n });
`}, "index.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "BigInt"}, nil},
		{runtime.NodeJS, "NaN", map[string]string{"index.js": `
exports.handler = async () => ({ list: [1, NaN] });
`}, "index.handler", 0, "Runtime.MarshalError", []string{"not JSON serializable", "NaN"}, nil},
		{runtime.NodeJS, "too large", map[string]string{"index.js": `
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
		{runtime.Python, "handler missing", map[string]string{"main.py": "def other(e, c):\n    pass\n"},
			"main.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'main'"}, ""},
		{runtime.Python, "handler not callable", map[string]string{"main.py": "handler = 5\n"},
			"main.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'main'", "not callable"}, ""},
		{runtime.Python, "module missing", map[string]string{"main.py": ""},
			"app.handler", "Runtime.ImportModuleError", []string{"app"}, ""},
		{runtime.Python, "syntax error", map[string]string{"main.py": "print('before')\ndef handler(event, context:\n    pass\n"},
			"main.handler", "Runtime.UserCodeSyntaxError", []string{"'main'", "main.py, line 2"}, ""},
		{runtime.Python, "exception at import", map[string]string{"main.py": "print('loading')\nraise KeyError('config')\n"},
			"main.handler", "KeyError", []string{"config"}, "loading\n"},

		{runtime.NodeJS, "handler missing", map[string]string{"index.js": "exports.other = () => 1;\n"},
			"index.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'index'"}, ""},
		{runtime.NodeJS, "handler not a function", map[string]string{"index.js": "exports.handler = 5;\n"},
			"index.handler", "Runtime.HandlerNotFound", []string{"'handler'", "'index'", "not a function"}, ""},
		{runtime.NodeJS, "module missing", map[string]string{"index.js": ""},
			"app.handler", "Runtime.ImportModuleError", []string{"app"}, ""},
		{runtime.NodeJS, "dependency missing", map[string]string{"index.js": "require('left-pad');\n"},
			"index.handler", "Runtime.ImportModuleError", []string{"left-pad"}, ""},
		{runtime.NodeJS, "syntax error", map[string]string{"index.js": "console.log('before');\nexports.handler = (;\n"},
			"index.handler", "Runtime.UserCodeSyntaxError", []string{"'index'", "Unexpected token", "(index.js line 2)"}, ""},
		{runtime.NodeJS, "ESM syntax error", map[string]string{"index.mjs": "\nexport const handler = (;\n"},
			"index.handler", "Runtime.UserCodeSyntaxError", []string{"'index'", "Unexpected token", "(index.mjs line 2)"}, ""},
		{runtime.NodeJS, "syntax error in a dependency", map[string]string{"index.js": "require('./lib/dep');\n", "lib/dep.js": "\n\nlet let = 1;\n"},
			"index.handler", "Runtime.UserCodeSyntaxError", []string{"'index'", "(lib/dep.js line 3)"}, ""},
		{runtime.Python, "syntax error in a dependency", map[string]string{"main.py": "import dep\n", "dep.py": "\nx = = 1\n"},
			"main.handler", "Runtime.UserCodeSyntaxError", []string{"'main'", "dep.py, line 2"}, ""},
		{runtime.NodeJS, "exception at import", map[string]string{"index.js": "console.log('loading');\nthrow new RangeError('config');\n"},
			"index.handler", "RangeError", []string{"config"}, "loading\n"},
		{runtime.NodeJS, "ESM exception at import", map[string]string{"index.mjs": "console.log('loading');\nawait null;\nthrow new RangeError('config');\n"},
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
			w := startWorker(t, runtime.NodeJS, map[string]string{"index.js": tt.code}, "index.handler").mustLoad()
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
