package cli_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A handler that prints a line and then waits, in the same instance
// (concurrency 2, one instance), until a second call releases it: the
// first call is still running for as long as the test wants, without a
// clock.
var blockingHandlers = map[string]map[string]string{
	"python": {"main.py": `import threading

released = threading.Event()

def handler(event, context):
    if event.get("release"):
        released.set()
        return "released"
    print("waiting for release")
    released.wait(600)
    print("released")
    return "done"
`},
	"nodejs": {"index.js": `let release;
const released = new Promise((r) => { release = r; });
exports.handler = async (event) => {
  if (event.release) { release(); return 'released'; }
  console.log('waiting for release');
  await released;
  console.log('released');
  return 'done';
};
`},
}

const blockingSpec = `functions:
  - name: NAME
    runtime: RUNTIME
    code: .
    concurrency: 2
    maxInstances: 1
    timeout: 600000
`

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// background is nimbus running while the test goes on.
type background struct {
	cmd         *exec.Cmd
	stdout      syncBuffer
	stderr      syncBuffer
	done        chan struct{}
	err         error
	description string
}

// start runs nimbus args in the background until it exits or the test
// ends.
func (c *client) start(args ...string) *background {
	c.t.Helper()
	b := &background{done: make(chan struct{}), description: "nimbus " + strings.Join(args, " ")}
	b.cmd = exec.Command(binary, args...)
	b.cmd.Dir, b.cmd.Env = c.dir, c.env
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.done) }()
	c.t.Cleanup(func() { b.cmd.Process.Kill(); <-b.done })
	return b
}

func (b *background) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// waitFor polls until cond holds, failing the test after two minutes or
// when the process ended first.
func (b *background) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if b.exited() && !cond() {
			t.Fatalf("%s exited (%v) before %s\nstdout: %s\nstderr: %s", b.description, b.err, what, b.stdout.String(), b.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s in 2 minutes\nstdout: %s\nstderr: %s", b.description, what, b.stdout.String(), b.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLogsFollowShowsALineWhileTheCallRuns follows a function with nimbus
// logs -f, calls it, and sees the line its handler printed before it
// blocked while the call is still running; the call's end follows once it
// is released.
func TestLogsFollowShowsALineWhileTheCallRuns(t *testing.T) {
	s := startServer(t)
	for _, rt := range []string{"python", "nodejs"} {
		t.Run(rt, func(t *testing.T) {
			name := "blocker-" + rt
			c := newClient(t, s.url)
			files := map[string]string{"nimbus.yaml": strings.NewReplacer("NAME", name, "RUNTIME", rt).Replace(blockingSpec)}
			for k, v := range blockingHandlers[rt] {
				files[k] = v
			}
			c.write(files)
			c.ok("deploy")

			follow := c.start("logs", name, "-f")
			follow.waitFor(t, "the line saying it follows", func() bool { return strings.Contains(follow.stderr.String(), "following "+name) })

			call := c.start("invoke", name)
			follow.waitFor(t, "the handler's first line", func() bool { return strings.Contains(follow.stdout.String(), "waiting for release") })
			if call.exited() {
				t.Fatalf("the call ended before it was released: %v\n%s%s", call.err, call.stdout.String(), call.stderr.String())
			}

			c.ok("invoke", name, "-d", `{"release": true}`)
			call.waitFor(t, "the end of the call", call.exited)
			if call.err != nil || strings.TrimSpace(call.stdout.String()) != `"done"` {
				t.Fatalf("the call: %v, stdout %q, stderr %q", call.err, call.stdout.String(), call.stderr.String())
			}
			follow.waitFor(t, "the call's last line and end", func() bool {
				out := follow.stdout.String()
				return strings.Contains(out, "released\n") && strings.Contains(out, "success in")
			})
			lines := strings.Split(follow.stdout.String(), "\n")
			var id string
			for _, l := range lines {
				if strings.HasSuffix(l, " waiting for release") {
					id = strings.TrimSuffix(l, " waiting for release")
				}
			}
			if id == "" || !strings.Contains(follow.stdout.String(), id+" released\n") {
				t.Fatalf("lines not prefixed with the call's id:\n%s", follow.stdout.String())
			}

			// Ctrl-C ends it, successfully.
			follow.cmd.Process.Signal(syscall.SIGINT)
			follow.waitFor(t, "its exit", follow.exited)
			if follow.err != nil {
				t.Fatalf("logs -f after SIGINT: %v\nstderr: %s", follow.err, follow.stderr.String())
			}

			// Without -f: the past calls' logs, oldest first; -o json parses.
			past := c.ok("logs", name)
			if i, j := strings.Index(past.stdout, "waiting for release"), strings.LastIndex(past.stdout, "released\n"); i < 0 || j < i {
				t.Fatalf("nimbus logs:\n%s", past.stdout)
			}
			var doc struct {
				Executions []struct {
					ExecutionID string `json:"executionId"`
					Logs        string `json:"logs"`
				} `json:"executions"`
			}
			js := c.ok("logs", name, "-o", "json")
			if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil || len(doc.Executions) != 2 {
				t.Fatalf("logs -o json: %v: %s", err, js.stdout)
			}
			if doc.Executions[0].ExecutionID != id || !strings.Contains(doc.Executions[0].Logs, "waiting for release\nreleased\n") {
				t.Fatalf("logs -o json, oldest first: %+v", doc.Executions)
			}
		})
	}
}

func TestLogsFilters(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	c.ok("invoke", "echo", "-d", `{"first": 1}`)
	if r := c.run("", "invoke", "echo", "-d", `{"fail": 1}`); r.code != 4 {
		t.Fatalf("failing call: %d", r.code)
	}
	all := c.ok("logs", "echo")
	if !strings.Contains(all.stdout, "got ['first']") || !strings.Contains(all.stdout, "got ['fail']") || !strings.Contains(all.stdout, "asked to fail") {
		t.Fatalf("logs:\n%s", all.stdout)
	}
	errs := c.ok("logs", "echo", "--status", "error")
	if strings.Contains(errs.stdout, "got ['first']") || !strings.Contains(errs.stdout, "got ['fail']") {
		t.Fatalf("logs --status error:\n%s", errs.stdout)
	}
	one := c.ok("logs", "echo", "--limit", "1")
	if strings.Contains(one.stdout, "got ['first']") || !strings.Contains(one.stdout, "got ['fail']") {
		t.Fatalf("logs --limit 1:\n%s", one.stdout)
	}
	// --since: a window that holds both calls, and one that (measured
	// back from now) cannot hold any call made before this line.
	if r := c.ok("logs", "echo", "--since", "1h"); !strings.Contains(r.stdout, "got ['first']") {
		t.Fatalf("logs --since 1h:\n%s", r.stdout)
	}
	if r := c.ok("logs", "echo", "--since", "1ns"); r.stdout != "" {
		t.Fatalf("logs --since 1ns:\n%s", r.stdout)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"logs", "nope"}, 3},
		{[]string{"logs", "echo", "--status", "sad"}, 2},
		{[]string{"logs", "echo", "-f", "-o", "yaml"}, 2},
	} {
		if r := c.run("", tc.args...); r.code != tc.code {
			t.Errorf("nimbus %v: exit %d, want %d (%s)", tc.args, r.code, tc.code, r.stderr)
		}
	}
}
