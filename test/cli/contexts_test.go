package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Contexts name servers; the current one is used unless --context,
// NIMBUS_URL or --url say otherwise, in that order of strength: flags,
// then the environment, then the context.
func TestContexts(t *testing.T) {
	s := startServer(t)
	deployEcho(t, s) // one function to list
	const dead = "http://127.0.0.1:1"
	c := newClient(t, "") // no NIMBUS_URL

	c.ok("context", "add", "local", "--url", s.url, "--key", "secret-key")
	c.ok("context", "add", "dead", "--url", dead)
	cfg := filepath.Join(c.config, "nimbus", "config.yaml")
	info, err := os.Stat(cfg)
	if err != nil {
		t.Fatalf("no config file at $XDG_CONFIG_HOME/nimbus/config.yaml: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v, want 0600: it holds keys", info.Mode().Perm())
	}

	r := c.ok("context", "list")
	if !regexp.MustCompile(`(?m)^\*\s+local\s`).MatchString(r.stdout) || strings.Contains(r.stdout, "secret-key") {
		t.Errorf("context list: want local current and no key shown:\n%s", r.stdout)
	}
	if !strings.Contains(c.ok("fn", "list").stdout, "echo") {
		t.Errorf("fn list through the current context (the first added) does not list echo")
	}

	c.ok("context", "use", "dead")
	if r := c.run("", "fn", "list"); r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("fn list through the dead context: exit %d, stderr %q; want 1 and a connection error", r.code, r.stderr)
	}
	c.ok("fn", "list", "--context", "local")
	c.ok("fn", "list", "--url", s.url)

	env := c.env
	c.env = append(env, "NIMBUS_URL="+s.url)
	c.ok("fn", "list") // the environment over the context
	if r := c.run("", "fn", "list", "--url", dead); r.code != 1 {
		t.Errorf("--url did not win over NIMBUS_URL: exit %d", r.code)
	}
	c.env = env

	var list struct {
		Current  string `json:"current"`
		Contexts []struct {
			Name, URL string
		} `json:"contexts"`
	}
	decode(t, c.ok("context", "list", "-o", "json").stdout, &list)
	if list.Current != "dead" || len(list.Contexts) != 2 || list.Contexts[0].URL != s.url {
		t.Errorf("context list -o json: %+v", list)
	}

	c.ok("context", "delete", "dead")
	if r := c.run("", "context", "use", "dead"); r.code != 3 {
		t.Errorf("context use of a deleted context: exit %d, want 3", r.code)
	}
	if r := c.run("", "context", "add", "x"); r.code != 2 {
		t.Errorf("context add without --url: exit %d, want 2", r.code)
	}
	// With no current context: the default URL, not a deleted one.
	c.ok("context", "use", "local")
	c.ok("fn", "list")
}

// The API key goes with every call: from --key, NIMBUS_API_KEY or the
// context.
func TestAPIKey(t *testing.T) {
	s := startServer(t, "NIMBUS_API_KEY=k3y")
	c := newClient(t, s.url)
	if r := c.run("", "fn", "list"); r.code != 1 || !strings.Contains(r.stderr, "API key") {
		t.Errorf("without a key: exit %d, stderr %q; want 1 and the server's reason", r.code, r.stderr)
	}
	c.write(map[string]string{"nimbus.yaml": echoSpec, "main.py": echoCode})
	c.ok("deploy", "--key", "k3y")
	c.ok("invoke", "echo", "--key", "k3y")
	env := c.env
	c.env = append(env, "NIMBUS_API_KEY=k3y")
	c.ok("fn", "list")
	c.env = env
	c.ok("context", "add", "keyed", "--url", s.url, "--key", "k3y")
	c.ok("executions", "echo", "--context", "keyed")
}

// Completion scripts for each shell.
func TestCompletion(t *testing.T) {
	c := newClient(t, "")
	for shell, want := range map[string]string{
		"bash": "__start_nimbus",
		"zsh":  "#compdef nimbus",
		"fish": "complete -c nimbus",
	} {
		r := c.ok("completion", shell)
		if !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s lacks %q:\n%.300s", shell, want, r.stdout)
		}
	}
	// The completion of commands works through the binary.
	r := c.ok("__complete", "dep")
	if !strings.Contains(r.stdout, "deploy") {
		t.Errorf("__complete dep: %q", r.stdout)
	}
}
