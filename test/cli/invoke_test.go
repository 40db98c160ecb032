package cli_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

const echoSpec = `functions:
  - name: echo
    runtime: python
    code: .
`

const echoCode = `def handler(event, context):
    print("got", sorted(event))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"echo": event}
`

// deployEcho deploys a function that returns its event, or raises when
// the event says fail.
func deployEcho(t *testing.T, s *server) *client {
	t.Helper()
	c := newClient(t, s.url)
	c.write(map[string]string{"nimbus.yaml": echoSpec, "main.py": echoCode})
	c.ok("deploy")
	return c
}

func TestInvoke(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	c.write(map[string]string{"event.json": `{"name": "Ada"}`})

	for _, tc := range []struct {
		name       string
		stdin      string
		args       []string
		code       int
		stdout     string // exactly, when not ""
		stderrHas  []string
		stderrLack []string
	}{
		{"from a file", "", []string{"invoke", "echo", "-d", "@event.json"}, 0, `{"echo":{"name":"Ada"}}` + "\n", nil, []string{"got"}},
		{"inline", "", []string{"invoke", "echo", "-d", `{"a":1}`}, 0, `{"echo":{"a":1}}` + "\n", nil, nil},
		{"no event is {}", "", []string{"invoke", "echo"}, 0, `{"echo":{}}` + "\n", nil, nil},
		{"from stdin with logs", `{"b": 2}`, []string{"invoke", "echo", "-d", "-", "--logs"}, 0, `{"echo":{"b":2}}` + "\n", []string{"got ['b']"}, nil},
		{"from stdin with --tail", `{"c": 3}`, []string{"invoke", "echo", "-d", "-", "--tail"}, 0, `{"echo":{"c":3}}` + "\n", []string{"got ['c']"}, nil},
		{"a function error from stdin", `{"fail": true}`, []string{"invoke", "echo", "-d", "-"}, 4, "", []string{"ValueError", "asked to fail"}, nil},
		{"a function error from a file, with logs", "", []string{"invoke", "echo", "-d", "@fail.json", "--logs"}, 4, "", []string{"asked to fail", "got ['fail']"}, nil},
		{"not JSON", "", []string{"invoke", "echo", "-d", "{nope"}, 2, "", []string{"not valid JSON"}, nil},
		{"no such file", "", []string{"invoke", "echo", "-d", "@missing.json"}, 1, "", []string{"missing.json"}, nil},
		{"no such function", "", []string{"invoke", "nope"}, 3, "", []string{"not found"}, nil},
		{"no name", "", []string{"invoke"}, 2, "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.write(map[string]string{"fail.json": `{"fail": 1}`})
			r := c.run(tc.stdin, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.stdout != "" && r.stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tc.stdout)
			}
			for _, w := range tc.stderrHas {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r.stderr)
				}
			}
			for _, w := range tc.stderrLack {
				if strings.Contains(r.stderr, w) {
					t.Errorf("stderr has %q without --logs: %s", w, r.stderr)
				}
			}
		})
	}
}

// --async queues the call and prints its id, which the execution command
// then finds.
func TestInvokeAsync(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	r := c.ok("invoke", "echo", "--async", "-d", `{"n": 7}`)
	id := strings.TrimSpace(r.stdout)
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(id) {
		t.Fatalf("--async printed %q, want an execution id", r.stdout)
	}
	var ex struct {
		ExecutionID string          `json:"executionId"`
		Event       json.RawMessage `json:"event"`
	}
	// Its record reaches history a moment later (a queued record waits
	// ~100 ms for the call's end, to be written once).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r = c.run("", "execution", "echo", id, "-o", "json"); r.code == 0 || time.Now().After(deadline) {
			break
		}
	}
	if r.code != 0 {
		t.Fatalf("nimbus execution echo %s: exit %d: %s", id, r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || ex.ExecutionID != id || !strings.Contains(string(ex.Event), `"n"`) {
		t.Errorf("execution %s: %+v, %v\n%s", id, ex, err, r.stdout)
	}
}
