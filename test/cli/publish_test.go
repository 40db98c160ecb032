package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/build/deps/depstest"
)

// TestDeployPublishAlias: deploy --publish --alias publishes each
// function's draft and points the alias at it; again, unchanged, it
// publishes nothing new; after a change, the alias moves.
func TestDeployPublishAlias(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.url)
	c.write(map[string]string{"nimbus.yaml": echoSpec, "main.py": echoCode})
	if r := c.run("", "deploy", "--alias", "live"); r.code != 2 {
		t.Fatalf("--alias without --publish: exit %d", r.code)
	}
	r := c.ok("deploy", "--publish", "--alias", "live")
	if !strings.Contains(r.stdout, "published echo version 1, alias live") {
		t.Fatalf("deploy --publish: %q", r.stdout)
	}
	if out := c.ok("invoke", "echo:live", "-d", `{"a":1}`).stdout; out != `{"echo":{"a":1}}`+"\n" {
		t.Fatalf("invoke echo:live: %q", out)
	}
	r = c.ok("deploy", "--publish", "--alias", "live")
	if !strings.Contains(r.stdout, "unchanged echo version 1, alias live") {
		t.Fatalf("deploy --publish again: %q", r.stdout)
	}
	c.write(map[string]string{"main.py": strings.Replace(echoCode, `{"echo": event}`, `{"v2": event}`, 1)})
	var steps []struct {
		Name, Action, Alias string
		Version             int
	}
	if err := json.Unmarshal([]byte(c.ok("deploy", "--publish", "--alias", "live", "--json").stdout), &steps); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Action != "update" || steps[0].Version != 2 || steps[0].Alias != "live" {
		t.Fatalf("deploy --json: %+v", steps)
	}
	if out := c.ok("invoke", "echo:live", "-d", `{"a":1}`).stdout; out != `{"v2":{"a":1}}`+"\n" {
		t.Fatalf("invoke echo:live after the move: %q", out)
	}
}

// Not on a terminal, deploy prints a plain line for each line of a build
// it waits for, and how the build ended.
func TestDeployShowsBuildLines(t *testing.T) {
	s := startServer(t, "NIMBUS_PIP_FIND_LINKS="+depstest.Wheels(t))
	c := newClient(t, s.url)
	c.write(map[string]string{
		"nimbus.yaml":      "functions:\n  - name: deps\n    runtime: python\n    code: .\n",
		"main.py":          "import nimbusdemo\ndef handler(event, context):\n    return nimbusdemo.answer()\n",
		"requirements.txt": "nimbusdemo==1.0\n",
	})
	r := c.ok("deploy")
	if !strings.Contains(r.stderr, "build deps: ") || !strings.Contains(r.stderr, "build deps: ready") {
		t.Fatalf("deploy with a build: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "\x1b[") {
		t.Errorf("escape codes on a pipe: %q", r.stderr)
	}
	if out := c.ok("invoke", "deps").stdout; out != "42\n" {
		t.Fatalf("invoke deps: %q", out)
	}
	// Code without dependencies builds nothing, and says nothing of it.
	c2 := deployEcho(t, s)
	c2.write(map[string]string{"main.py": echoCode + "\n# changed\n"})
	if r := c2.ok("deploy"); strings.Contains(r.stderr, "build") {
		t.Fatalf("a deploy without dependencies printed %q", r.stderr)
	}
}
