package cli_test

import (
	"regexp"
	"strings"
	"testing"
)

// TestKeysSecretsAndAudit: the team commands against a real server. The
// first key must be an admin key; its secret is printed once and works;
// secrets are set (created, then updated), listed without values and
// refused while in use; the audit shows who did each.
func TestKeysSecretsAndAudit(t *testing.T) {
	s := startServer(t)
	c := newClient(t, s.url)
	if r := c.run("", "keys", "create", "--name", "hook", "--scope", "invoke"); r.code == 0 || !strings.Contains(r.stderr, "first key") {
		t.Fatalf("a first invoke key: %d %s", r.code, r.stderr)
	}
	r := c.ok("keys", "create", "--name", "root", "--scope", "admin")
	key := regexp.MustCompile(`nmb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}`).FindString(r.stdout + r.stderr)
	if key == "" {
		t.Fatalf("no key printed:\n%s\n%s", r.stdout, r.stderr)
	}
	// Now the server needs a key: without one, commands are refused.
	if r := c.run("", "fn", "list"); r.code == 0 || !strings.Contains(r.stderr, "401") && !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Errorf("fn list without a key after the first: %d %s", r.code, r.stderr)
	}
	c.env = append(c.env, "NIMBUS_API_KEY="+key)
	c.ok("fn", "list")
	c.ok("secrets", "set", "db", "--value", "v1")
	c.ok("secrets", "set", "db", "--value", "v2-plaintext")
	list := c.ok("secrets", "list").stdout
	if !strings.Contains(list, "db") || strings.Contains(list, "v2-plaintext") || !regexp.MustCompile(`db\s+2`).MatchString(list) {
		t.Errorf("secrets list:\n%s", list)
	}
	keys := c.ok("keys", "list").stdout
	if !strings.Contains(keys, key[:16]) || strings.Contains(keys, key[17:]) {
		t.Errorf("keys list shows no id or shows a secret:\n%s", keys)
	}
	audit := c.ok("audit").stdout
	for _, want := range []string{"key.create", "secret.create", "secret.update", key[:16]} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit has no %q:\n%s", want, audit)
		}
	}
	c.ok("secrets", "rm", "db")
	// The last admin key is not revoked: that would turn auth off.
	if r := c.run("", "keys", "rm", key[:16]); r.code == 0 || !strings.Contains(r.stderr, "last admin key") {
		t.Fatalf("revoking the last admin key: %d %s", r.code, r.stderr)
	}
	r = c.ok("keys", "create", "--name", "root2", "--scope", "admin")
	key2 := regexp.MustCompile(`nmb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}`).FindString(r.stdout + r.stderr)
	c.ok("keys", "rm", key[:16])
	if r := c.run("", "fn", "list"); r.code == 0 {
		t.Error("a revoked key still works")
	}
	c.env[len(c.env)-1] = "NIMBUS_API_KEY=" + key2
	c.ok("fn", "list")
}
