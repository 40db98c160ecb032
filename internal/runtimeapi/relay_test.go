package runtimeapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/driver"
	"github.com/nimbusfaas/nimbus/internal/runtime"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi"
	"github.com/nimbusfaas/nimbus/internal/runtimeapi/runtimeapitest"
)

// relay is a Relay run in the test process, its streams in pipes, with the
// server's side of the protocol (driver.Conn) as every driver has it.
type relay struct {
	conn   *driver.Conn
	exit   chan runtimeapi.Exit
	reqW   io.Closer
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRelay runs a relay whose environment is env, serving on a free
// port of the loopback.
func startRelay(t *testing.T, env []string) *relay { return startRelayTB(t, env) }

// startRelayB is a relay loaded with the test bootstrap, for benchmarks.
func startRelayB(b *testing.B) *relay {
	r := startRelayTB(b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.conn.Init(ctx, initFrame(runtimeapitest.CodeDir(b))); err != nil {
		b.Fatal(err)
	}
	return r
}

func startRelayTB(t testing.TB, env []string) *relay {
	t.Helper()
	reqR, reqW := io.Pipe()
	respR, respW := io.Pipe()
	r := &relay{exit: make(chan runtimeapi.Exit, 1), reqW: reqW, stderr: &syncBuffer{}}
	rl := runtimeapi.New(runtimeapi.Config{
		Requests:  reqR,
		Responses: respW,
		Addr:      "127.0.0.1:0",
		Environ:   append([]string{"PATH=/usr/bin:/bin"}, env...),
		Stderr:    r.stderr,
	})
	go func() {
		ex := rl.Run(context.Background())
		respW.Close() // as the process's exit closes fd 4
		r.exit <- ex
	}()
	r.conn = driver.NewConn(respR, reqW, nil)
	t.Cleanup(func() {
		reqW.Close()
		select {
		case <-r.exit:
		case <-time.After(30 * time.Second):
			t.Error("the relay did not end after its request stream closed")
		}
	})
	return r
}

func initFrame(codeDir string) runtime.Init {
	return runtime.Init{
		Handler:         "my.handler",
		TaskDir:         codeDir,
		FunctionName:    "fname",
		FunctionVersion: "3",
		MemoryMB:        128,
		Env:             map[string]string{"GREETING": "hi"},
	}
}

func (r *relay) load(t *testing.T, in runtime.Init) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs, err := r.conn.Init(ctx, in)
	if err != nil {
		t.Fatalf("init: %v (logs %q)", err, logs)
	}
	return logs
}

var seq int

func (r *relay) invoke(t *testing.T, event string) *runtime.Response {
	t.Helper()
	seq++
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, _ := ctx.Deadline()
	resp, err := r.conn.Invoke(ctx, driver.NewRequest("req-"+string(rune('a'+seq%26))+time.Now().Format("150405.000000"), json.RawMessage(event), d.UnixMilli()))
	if err != nil {
		t.Fatalf("invoke %s: %v", event, err)
	}
	return resp
}

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

func TestRelayServesTheRuntimeAPI(t *testing.T) {
	r := startRelay(t, []string{"BOOT_INIT_PRINT=hello from init"})
	if logs := r.load(t, initFrame(runtimeapitest.CodeDir(t))); !strings.Contains(logs, "hello from init") {
		t.Errorf("init logs %q, want what the bootstrap printed before its first next", logs)
	}

	t.Run("event, headers and environment", func(t *testing.T) {
		resp := r.invoke(t, `{"op":"echo","n":1}`)
		if resp.Error != nil {
			t.Fatalf("error %+v", resp.Error)
		}
		var got map[string]any
		if err := json.Unmarshal(resp.Result, &got); err != nil {
			t.Fatal(err)
		}
		if ev, _ := got["event"].(map[string]any); ev["n"] != 1.0 {
			t.Errorf("event %v", got["event"])
		}
		for k, want := range map[string]string{"handler": "my.handler", "name": "fname", "env": "hi", "arn": "arn:nimbus:function:fname"} {
			if got[k] != want {
				t.Errorf("%s = %v, want %q", k, got[k], want)
			}
		}
		if id, _ := got["id"].(string); !strings.HasPrefix(id, "req-") {
			t.Errorf("request id %v", got["id"])
		}
		if d, _ := got["deadline"].(string); len(d) < 13 {
			t.Errorf("deadline %v, want epoch ms", got["deadline"])
		}
		if tr, _ := got["trace"].(string); !strings.HasPrefix(tr, "Root=1-") {
			t.Errorf("trace id %v", got["trace"])
		}
		if api, _ := got["api"].(string); !strings.HasPrefix(api, "127.0.0.1:") {
			t.Errorf("AWS_LAMBDA_RUNTIME_API %v", got["api"])
		}
	})

	t.Run("the caller's ARN and client context", func(t *testing.T) {
		req := driver.NewRequest("req-cc", json.RawMessage(`{"op":"echo"}`), time.Now().Add(time.Minute).UnixMilli())
		req.FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:fname:live"
		req.ClientContext = json.RawMessage(`{"custom":{"k":"v"}}`)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := r.conn.Invoke(ctx, req)
		if err != nil || resp.Error != nil {
			t.Fatalf("invoke: %v %+v", err, resp)
		}
		var got map[string]any
		if err := json.Unmarshal(resp.Result, &got); err != nil {
			t.Fatal(err)
		}
		if got["arn"] != req.FunctionARN || got["client"] != `{"custom":{"k":"v"}}` {
			t.Errorf("arn %v client context %v", got["arn"], got["client"])
		}
	})

	t.Run("output is the call's logs", func(t *testing.T) {
		resp := r.invoke(t, `{"op":"log","text":"hello"}`)
		if !strings.Contains(resp.Logs, "out: hello") || !strings.Contains(resp.Logs, "err: hello") {
			t.Errorf("logs %q", resp.Logs)
		}
		if string(resp.Result) != `"logged"` {
			t.Errorf("result %s", resp.Result)
		}
		if resp.MaxRSSKiB <= 0 {
			t.Errorf("max rss %d", resp.MaxRSSKiB)
		}
	})

	t.Run("a body that is not JSON is a string", func(t *testing.T) {
		if resp := r.invoke(t, `{"op":"raw","text":"plain words"}`); string(resp.Result) != `"plain words"` {
			t.Errorf("result %s", resp.Result)
		}
	})

	t.Run("error endpoint", func(t *testing.T) {
		resp := r.invoke(t, `{"op":"error"}`)
		want := runtime.Error{Type: "BrokenError", Message: "it broke", Stack: "one\ntwo"}
		if resp.Error == nil || *resp.Error != want {
			t.Errorf("error %+v, want %+v", resp.Error, want)
		}
		resp = r.invoke(t, `{"op":"error-header"}`)
		want = runtime.Error{Type: "HeaderOnlyError", Message: "not json at all"}
		if resp.Error == nil || *resp.Error != want {
			t.Errorf("error %+v, want %+v", resp.Error, want)
		}
	})

	t.Run("unknown ids and misuse", func(t *testing.T) {
		resp := r.invoke(t, `{"op":"ids"}`)
		var got map[string]int
		if err := json.Unmarshal(resp.Result, &got); err != nil {
			t.Fatalf("result %s: %v", resp.Result, err)
		}
		for k, want := range map[string]int{"unknownResponse": 400, "unknownError": 400, "lateInitError": 403, "unknownPath": 404} {
			if got[k] != want {
				t.Errorf("%s: status %d, want %d", k, got[k], want)
			}
		}
		if got["wrongMethod"] != 404 && got["wrongMethod"] != 405 {
			t.Errorf("GET of a response: status %d", got["wrongMethod"])
		}
		eventually(t, "a second response to one id refused with 403", func() bool { return strings.Contains(r.stderr.String(), "again:403") })
	})

	t.Run("response too large", func(t *testing.T) {
		resp := r.invoke(t, `{"op":"big","n":6291456}`)
		if resp.Error == nil || resp.Error.Type != "Function.ResponseSizeTooLarge" {
			t.Fatalf("error %+v, want Function.ResponseSizeTooLarge", resp.Error)
		}
		eventually(t, "the runtime told 413", func() bool { return strings.Contains(r.stderr.String(), "big response status 413") })
		if resp := r.invoke(t, `{"op":"big","n":1000}`); resp.Error != nil || len(resp.Result) != 1002 {
			t.Errorf("after it, a result of 1000 bytes: %+v", resp.Error)
		}
	})
}

func TestRelayInitErrors(t *testing.T) {
	code := runtimeapitest.CodeDir(t)
	for _, tt := range []struct {
		name, mode string
		code       func() string
		want       runtime.Error
		logs       string
	}{
		{name: "init error endpoint", mode: "init-error",
			want: runtime.Error{Type: "ConfigError", Message: "missing setting", Stack: "main.go:1\nmain.go:2"}},
		{name: "exit before next", mode: "exit", logs: "giving up at init",
			want: runtime.Error{Type: "Runtime.ExitError", Message: "bootstrap exited with status 7 before it asked for an invocation"}},
		{name: "no bootstrap", code: func() string { return t.TempDir() },
			want: runtime.Error{Type: "Runtime.InvalidEntrypoint"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := startRelay(t, []string{"BOOT_MODE=" + tt.mode})
			dir := code
			if tt.code != nil {
				dir = tt.code()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			logs, err := r.conn.Init(ctx, initFrame(dir))
			var re *runtime.Error
			if !errors.As(err, &re) {
				t.Fatalf("init: %v, want a *runtime.Error", err)
			}
			if re.Type != tt.want.Type || (tt.want.Message != "" && re.Message != tt.want.Message) || re.Stack != tt.want.Stack {
				t.Errorf("error %+v, want %+v", re, tt.want)
			}
			if !strings.Contains(logs, tt.logs) {
				t.Errorf("logs %q, want %q", logs, tt.logs)
			}
			select {
			case ex := <-r.exit:
				if ex.Code != 1 {
					t.Errorf("relay exit %+v, want code 1", ex)
				}
				r.exit <- ex
			case <-time.After(30 * time.Second):
				t.Fatal("the relay did not end after the init error")
			}
		})
	}
}

func TestRelayEndsAsTheBootstrapEnds(t *testing.T) {
	r := startRelay(t, nil)
	r.load(t, initFrame(runtimeapitest.CodeDir(t)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := r.conn.Invoke(ctx, driver.NewRequest("crash-1", json.RawMessage(`{"op":"crash","code":3}`), time.Now().Add(time.Minute).UnixMilli()))
	if err == nil {
		t.Fatal("a call whose bootstrap exited got an answer")
	}
	ex := <-r.exit
	if ex.Code != 3 || ex.Signal != 0 {
		t.Errorf("relay exit %+v, want the bootstrap's code 3", ex)
	}
	r.exit <- ex
}

func TestRelayRunsABootstrapWithoutItsMode(t *testing.T) {
	// A function given as files has no modes: its bootstrap is 0644.
	dir := t.TempDir()
	b, err := os.ReadFile(runtimeapitest.Bootstrap(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, nil)
	r.load(t, initFrame(dir))
	if resp := r.invoke(t, `{"value":42}`); string(resp.Result) != "42" {
		t.Errorf("result %s (error %+v)", resp.Result, resp.Error)
	}
}

func TestVmHWM(t *testing.T) {
	status := []byte("Name:\tx\nVmPeak:\t  9999 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n")
	if got := runtimeapi.VmHWM(status); got != 5120 {
		t.Errorf("VmHWM = %d, want 5120", got)
	}
	if got := runtimeapi.VmHWM([]byte("Name:\tx\n")); got != 0 {
		t.Errorf("without VmHWM: %d", got)
	}
}
