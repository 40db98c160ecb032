package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// editor writes a shell script that edits its file argument with script
// (run with the file as $1) and makes it the client's EDITOR.
func (c *client) editor(script string) {
	c.t.Helper()
	p := filepath.Join(c.t.TempDir(), "editor.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nset -e\n"+script+"\n"), 0o755); err != nil {
		c.t.Fatal(err)
	}
	env := []string{}
	for _, e := range c.env {
		if !strings.HasPrefix(e, "EDITOR=") {
			env = append(env, e)
		}
	}
	c.env = append(env, "EDITOR="+p)
}

func TestFnEdit(t *testing.T) {
	s := startServer(t)
	c := deployEcho(t, s)
	get := func() (memory, revision int, env map[string]string) {
		t.Helper()
		var f struct {
			Memory   int               `json:"memory"`
			Revision int               `json:"revision"`
			Env      map[string]string `json:"env"`
		}
		if err := json.Unmarshal([]byte(c.ok("fn", "get", "echo", "-o", "json").stdout), &f); err != nil {
			t.Fatal(err)
		}
		return f.Memory, f.Revision, f.Env
	}
	mem0, rev0, _ := get()
	keptFile := regexp.MustCompile(`kept in (\S+\.yaml)`)

	// A file left as it was sends nothing.
	c.editor(`grep -q "^memory: ` + strconv.Itoa(mem0) + `$" "$1"`)
	if r := c.ok("fn", "edit", "echo"); !strings.Contains(r.stderr, "no changes") {
		t.Fatalf("unchanged edit: %q", r.stderr)
	}
	if _, rev, _ := get(); rev != rev0 {
		t.Fatalf("an unchanged edit moved the revision from %d to %d", rev0, rev)
	}

	// A change is sent, and only the change.
	c.editor(`sed -i -e 's/^memory: .*/memory: 256/' -e 's/^env: .*/env: {GREETING: hi}/' "$1"`)
	c.ok("fn", "edit", "echo")
	if mem, rev, env := get(); mem != 256 || rev == rev0 || env["GREETING"] != "hi" {
		t.Fatalf("after the edit: memory %d, revision %d (was %d), env %v", mem, rev, rev0, env)
	}

	// Not YAML, an unknown field, a value the server refuses: an error,
	// nothing sent, the edit kept.
	for _, tc := range []struct{ name, script, says string }{
		{"not YAML", `printf 'memory: [\n' > "$1"`, "not YAML"},
		{"unknown field", `printf 'colour: blue\n' >> "$1"`, "unknown field colour"},
		{"refused", `sed -i 's/^memory: .*/memory: -5/' "$1"`, "memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rev, _ := get()
			c.editor(tc.script)
			r := c.run("", "fn", "edit", "echo")
			if r.code != 1 || !strings.Contains(r.stderr, tc.says) {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			m := keptFile.FindStringSubmatch(r.stderr)
			if m == nil {
				t.Fatalf("no kept file in %q", r.stderr)
			}
			if _, err := os.Stat(m[1]); err != nil {
				t.Fatalf("the edit was not kept: %v", err)
			}
			os.Remove(m[1])
			if _, now, _ := get(); now != rev {
				t.Fatalf("revision moved from %d to %d", rev, now)
			}
		})
	}

	// The function changed while it was being edited: If-Match refuses.
	// The editor waits, once it has the file, until the test has changed
	// the function.
	dir := t.TempDir()
	c.editor(`touch "` + dir + `/opened"; while [ ! -e "` + dir + `/go" ]; do sleep 0.05; done; sed -i 's/^memory: .*/memory: 512/' "$1"`)
	edit := c.start("fn", "edit", "echo")
	edit.waitFor(t, "the editor", func() bool { _, err := os.Stat(filepath.Join(dir, "opened")); return err == nil })
	req, _ := http.NewRequest("PUT", s.url+"/api/functions/echo", strings.NewReader(`{"timeout": 7000}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	edit.waitFor(t, "its end", edit.exited)
	if edit.err == nil || !strings.Contains(edit.stderr.String(), "changed since") || keptFile.FindString(edit.stderr.String()) == "" {
		t.Fatalf("stale edit: %v, stderr %q", edit.err, edit.stderr.String())
	}
	if mem, _, _ := get(); mem == 512 {
		t.Fatal("a stale edit was applied")
	}
}
