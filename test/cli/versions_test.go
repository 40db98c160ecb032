package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestVersionsAliasesReplay: publish, list versions, point an alias,
// call it, split it, roll it back, replay a call against the draft.
func TestVersionsAliasesReplay(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	if r := c.ok("publish", "echo", "-m", "first"); strings.TrimSpace(r.stdout) != "1" || !strings.Contains(r.stderr, "published echo version 1") {
		t.Fatalf("publish: %+v", r)
	}
	if r := c.ok("publish", "echo"); strings.TrimSpace(r.stdout) != "1" || !strings.Contains(r.stderr, "unchanged") {
		t.Errorf("publish again: %+v", r)
	}
	// A new draft: it says "draft".
	c.write(map[string]string{"main.py": strings.Replace(echoCode, `{"echo": event}`, `{"draft": event}`, 1)})
	c.ok("deploy")
	if r := c.ok("publish", "echo"); strings.TrimSpace(r.stdout) != "2" {
		t.Fatalf("publish 2: %+v", r)
	}
	var vs struct{ Versions []struct{ Version int } }
	if err := json.Unmarshal([]byte(c.ok("versions", "echo", "-o", "json").stdout), &vs); err != nil || len(vs.Versions) != 2 {
		t.Errorf("versions -o json: %v %+v", err, vs)
	}
	if out := c.ok("versions", "echo").stdout; !strings.Contains(out, "first") || !strings.Contains(out, "VERSION") {
		t.Errorf("versions table:\n%s", out)
	}

	c.ok("alias", "set", "echo", "live", "1")
	if out := c.ok("invoke", "echo:live", "-d", `{"a":1}`).stdout; out != `{"echo":{"a":1}}`+"\n" {
		t.Errorf("invoke echo:live: %q", out)
	}
	if out := c.ok("invoke", "echo", "-d", `{"a":1}`).stdout; out != `{"draft":{"a":1}}`+"\n" {
		t.Errorf("invoke echo (the draft): %q", out)
	}
	if r := c.ok("alias", "set", "echo", "live", "2", "--weight", "1=0.25"); !strings.Contains(r.stderr, "2 (75%) · 1 (25%)") {
		t.Errorf("alias set with a weight: %+v", r)
	}
	if out := c.ok("alias", "list", "echo").stdout; !strings.Contains(out, "live") || !strings.Contains(out, "2 (75%) · 1 (25%)") {
		t.Errorf("alias list:\n%s", out)
	}
	if r := c.ok("alias", "rollback", "echo", "live"); !strings.Contains(r.stderr, "→ 1") {
		t.Errorf("rollback: %+v", r)
	}
	if r := c.run("", "alias", "rollback", "echo", "live"); r.code != 1 || !strings.Contains(r.stderr, "no earlier version") {
		t.Errorf("a rollback with nothing before: %+v", r)
	}
	if r := c.run("", "alias", "set", "echo", "live", "two"); r.code != 2 {
		t.Errorf("a version that is not a number: exit %d", r.code)
	}

	// Replay the alias's call against the draft.
	var execs []struct {
		ExecutionID string `json:"executionId"`
		Version     int    `json:"version"`
	}
	var page struct {
		Executions []struct {
			ExecutionID string `json:"executionId"`
			Version     int    `json:"version"`
		} `json:"executions"`
	}
	if err := json.Unmarshal([]byte(c.ok("executions", "echo", "-o", "json").stdout), &page); err != nil {
		t.Fatal(err)
	}
	execs = page.Executions
	var id string
	for _, e := range execs {
		if e.Version == 1 {
			id = e.ExecutionID
		}
	}
	if id == "" {
		t.Fatalf("no execution of version 1 in %+v", execs)
	}
	out := c.ok("replay", "echo", id).stdout
	if !strings.Contains(out, "$LATEST") || !strings.Contains(out, `.draft: - → {"a":1}`) || !strings.Contains(out, `.echo: {"a":1} → -`) {
		t.Errorf("replay:\n%s", out)
	}
	if out := c.ok("replay", "echo", id, "--qualifier", "1").stdout; !strings.Contains(out, "same status and result") {
		t.Errorf("replay against version 1:\n%s", out)
	}
	c.ok("alias", "delete", "echo", "live")
	if r := c.run("", "invoke", "echo:live"); r.code != 3 {
		t.Errorf("invoke a deleted alias: exit %d, want 3", r.code)
	}
}

// TestDeadLetters: an async call that fails for good is listed, replayed
// after a fix, and a second one deleted.
func TestDeadLetters(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.url)
	c.write(map[string]string{"nimbus.yaml": echoSpec + "    async:\n      maxRetries: 0\n", "main.py": echoCode})
	c.ok("deploy")
	list := func() []struct {
		ExecutionID string `json:"executionId"`
		Reason      string `json:"reason"`
	} {
		var out struct {
			DeadLetters []struct {
				ExecutionID string `json:"executionId"`
				Reason      string `json:"reason"`
			} `json:"deadLetters"`
		}
		if err := json.Unmarshal([]byte(c.ok("dead-letters", "list", "echo", "-o", "json").stdout), &out); err != nil {
			t.Fatal(err)
		}
		return out.DeadLetters
	}
	id := strings.TrimSpace(c.ok("invoke", "echo", "--async", "-d", `{"fail": true}`).stdout)
	deadline := time.Now().Add(60 * time.Second)
	for len(list()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter in 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := list(); len(d) != 1 || d[0].ExecutionID != id || d[0].Reason != "RetriesExhausted" {
		t.Fatalf("dead letters %+v, want %s", d, id)
	}
	if out := c.ok("dead-letters", "list", "echo").stdout; !strings.Contains(out, id) || !strings.Contains(out, "ValueError: asked to fail") {
		t.Errorf("dead-letters table:\n%s", out)
	}
	again := strings.TrimSpace(c.ok("dead-letters", "replay", "echo", id).stdout)
	if again == "" || again == id {
		t.Errorf("replay printed %q", again)
	}
	for _, d := range list() { // the replay fails again, as a new call
		if d.ExecutionID == id {
			t.Errorf("the replayed dead letter %s is still listed", id)
		}
	}
	if r := c.run("", "dead-letters", "delete", "echo"); r.code != 2 {
		t.Errorf("delete with neither an id nor --all: exit %d, want 2", r.code)
	}
	if r := c.run("", "dead-letters", "delete", "echo", "0123456789abcdef01234567"); r.code != 3 {
		t.Errorf("delete an unknown dead letter: exit %d, want 3", r.code)
	}
	c.ok("dead-letters", "delete", "echo", "--all")
}
