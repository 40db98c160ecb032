package e2e_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/runtimeapi/runtimeapitest"
)

// shellBootstrap is a custom runtime in bash alone (its /dev/tcp): the
// Runtime API needs no client library. Given as inline code, it has no
// executable mode: the relay runs a copy.
const shellBootstrap = `#!/bin/bash
host=${AWS_LAMBDA_RUNTIME_API%:*}; port=${AWS_LAMBDA_RUNTIME_API#*:}
while true; do
  exec 3<>/dev/tcp/$host/$port
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.0\r\nHost: api\r\n\r\n' >&3
  id=""
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case "${line,,}" in lambda-runtime-aws-request-id:*) id=${line#*: } ;; esac
  done
  body=$(cat <&3)
  exec 3<&-
  echo "shell got $body"
  resp="{\"shell\":true,\"handler\":\"$_HANDLER\",\"event\":$body}"
  exec 3<>/dev/tcp/$host/$port
  printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.0\r\nHost: api\r\nContent-Length: %d\r\n\r\n%s' "$id" "${#resp}" "$resp" >&3
  cat <&3 >/dev/null
  exec 3<&-
done
`

// TestProvidedRuntime: functions whose code is an executable bootstrap
// (a static Go program, a bash script) run through the Runtime API under
// the default driver, with the statuses, logs and cold starts of any
// function.
func TestProvidedRuntime(t *testing.T) {
	boot, err := os.ReadFile(runtimeapitest.Bootstrap(t))
	if err != nil {
		t.Fatal(err)
	}
	goFiles := runtimeapitest.GoFunction(t)
	n := start(t, "NIMBUS_GOPROXY=off") // the Go function vendors its modules: no network
	zip := zipArchive(t, map[string]string{"bootstrap": string(boot)}, "bootstrap")
	f := map[string]any{"name": "custom", "runtime": "provided.al2023", "handler": "hello.handler", "zipFile": zip,
		"env": map[string]string{"GREETING": "hi"}, "timeout": 3000}
	if _, st := n.createBuilt(f); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}

	ex := n.invoke("custom", map[string]any{"op": "echo"})
	var got map[string]any
	ex.decode(t, &got)
	if ex.Status != "success" || !ex.ColdStart || got["handler"] != "hello.handler" || got["env"] != "hi" || got["api"] != "127.0.0.1:9001" {
		t.Errorf("first call: status %s cold %v result %v", ex.Status, ex.ColdStart, got)
	}
	if got["id"] != ex.ExecutionID {
		t.Errorf("request id %v, want the execution id %s", got["id"], ex.ExecutionID)
	}
	ex = n.invoke("custom", map[string]any{"op": "log", "text": "hello"})
	if ex.Status != "success" || ex.ColdStart || !strings.Contains(ex.Logs, "out: hello") || !strings.Contains(ex.Logs, "err: hello") {
		t.Errorf("warm call: status %s cold %v logs %q", ex.Status, ex.ColdStart, ex.Logs)
	}
	ex = n.invoke("custom", map[string]any{"op": "error"})
	if ex.Status != "error" || ex.Error == nil || ex.Error.Type != "BrokenError" || ex.Error.Message != "it broke" {
		t.Errorf("error call: status %s error %+v", ex.Status, ex.Error)
	}
	ex = n.invoke("custom", map[string]any{"op": "crash", "code": 3})
	if ex.Status != "crashed" {
		t.Errorf("crash: status %s error %+v", ex.Status, ex.Error)
	}
	ex = n.invoke("custom", map[string]any{"op": "sleep", "ms": 600000})
	if ex.Status != "timeout" {
		t.Errorf("sleep past the timeout: status %s error %+v", ex.Status, ex.Error)
	}
	if ex = n.invoke("custom", map[string]any{"value": 7}); ex.Status != "success" || string(ex.Result) != "7" {
		t.Errorf("after a crash and a timeout: status %s result %s", ex.Status, ex.Result)
	}

	t.Run("shell script", func(t *testing.T) {
		n.create(function{Name: "shell", Runtime: "provided", Code: shellBootstrap})
		ex := n.invoke("shell", map[string]any{"x": 1})
		var got struct {
			Shell   bool           `json:"shell"`
			Handler string         `json:"handler"`
			Event   map[string]int `json:"event"`
		}
		ex.decode(t, &got)
		if !got.Shell || got.Handler != "bootstrap" || got.Event["x"] != 1 || !strings.Contains(ex.Logs, `shell got {"x":1}`) {
			t.Errorf("status %s result %s logs %q", ex.Status, ex.Result, ex.Logs)
		}
	})

	t.Run("go function from sources", func(t *testing.T) {
		files := map[string]string{}
		for name, b := range goFiles {
			files[name] = string(b)
		}
		f := map[string]any{"name": "gofn", "runtime": "go", "zipFile": zipArchive(t, files), "timeout": 5000}
		got, st := n.createBuilt(f)
		if st != http.StatusCreated || got.BuildStatus == nil || got.BuildStatus.State != "ready" || got.BuildStatus.Layer == "" {
			t.Fatalf("create: %d %+v", st, got.BuildStatus)
		}
		ex := n.invoke("gofn", map[string]any{"name": "world"})
		var r struct {
			Greeting, RequestID, Arn, Function string
			HasDeadline                        bool
			LeftMs                             int64
		}
		ex.decode(t, &r)
		if ex.Status != "success" || r.Greeting != "hello world" || r.RequestID != ex.ExecutionID ||
			r.Arn != "arn:nimbus:function:gofn" || r.Function != "gofn" || !r.HasDeadline || r.LeftMs <= 0 || r.LeftMs > 5000 {
			t.Errorf("status %s result %+v (execution %s)", ex.Status, r, ex.ExecutionID)
		}
		if !strings.Contains(ex.Logs, "hello from go, world") {
			t.Errorf("logs %q", ex.Logs)
		}
		ex = n.invoke("gofn", map[string]any{"op": "fail", "name": "such thing"})
		if ex.Status != "error" || ex.Error == nil || ex.Error.Type != "NotFoundError" || ex.Error.Message != "no such thing" {
			t.Errorf("a returned error: status %s error %+v", ex.Status, ex.Error)
		}
	})

	t.Run("init error", func(t *testing.T) {
		f := map[string]any{"name": "bad-init", "runtime": "provided", "zipFile": zip, "env": map[string]string{"BOOT_MODE": "init-error"}}
		if _, st := n.createBuilt(f); st != http.StatusCreated {
			t.Fatalf("create: %d", st)
		}
		ex := n.invoke("bad-init", map[string]any{})
		if ex.Status != "error" || ex.Error == nil || ex.Error.Type != "ConfigError" {
			t.Errorf("status %s error %+v", ex.Status, ex.Error)
		}
	})
}
