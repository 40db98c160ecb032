package auth_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/auth"
	"github.com/nimbusfaas/nimbus/internal/fn"
	"github.com/nimbusfaas/nimbus/internal/store"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

// These tests run package auth on the real SQLite store.

func openStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func ring(t testing.TB, b byte, prev ...[]byte) *auth.Keyring {
	t.Helper()
	k, err := auth.NewKeyring(bytes.Repeat([]byte{b}, 32), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// server is one server's auth on a store.
type server struct {
	keys    *auth.Keys
	secrets *auth.Secrets
	audit   *auth.Audit
}

func newServer(t testing.TB, st store.AuthStore, r *auth.Keyring, bootstrap string, now func() time.Time) *server {
	t.Helper()
	a := auth.NewAudit(st, nil)
	k := auth.NewKeys(auth.KeysConfig{Store: st, Keyring: r, Audit: a, Bootstrap: bootstrap, Now: now})
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &server{keys: k, secrets: auth.NewSecrets(st, r, a), audit: a}
}

var admin = auth.WithPrincipal(context.Background(), auth.Admin(auth.BootstrapID))

func TestKeyring(t *testing.T) {
	r := ring(t, 1)
	sealed, id := r.Seal("secret:a", []byte("hunter2"))
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value holds the plaintext")
	}
	if got, err := r.Open("secret:a", sealed, id); err != nil || string(got) != "hunter2" {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := r.Open("secret:b", sealed, id); err == nil {
		t.Error("a value sealed for one record opened for another")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := r.Open("secret:a", tampered, id); err == nil {
		t.Error("a tampered value opened")
	}
	if _, err := ring(t, 2).Open("secret:a", sealed, id); !errors.Is(err, auth.ErrNoKey) {
		t.Errorf("another key: %v, want ErrNoKey", err)
	}
	// A keyring that has the old key as a previous one opens it.
	if got, err := ring(t, 2, bytes.Repeat([]byte{1}, 32)).Open("secret:a", sealed, id); err != nil || string(got) != "hunter2" {
		t.Errorf("previous key: %q, %v", got, err)
	}
	for _, s := range []string{strings.Repeat("ab", 32), "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=", "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA"} {
		if _, err := auth.ParseKey(s); err != nil {
			t.Errorf("ParseKey(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "short", strings.Repeat("ab", 31)} {
		if _, err := auth.ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) took it", s)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, generated, err := auth.LoadKeyring("", "", dir)
	if err != nil || !generated {
		t.Fatalf("first load: generated %v, %v", generated, err)
	}
	fi, err := os.Stat(filepath.Join(dir, auth.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	k2, generated, err := auth.LoadKeyring("", "", dir)
	if err != nil || generated || k2.ID() != k1.ID() {
		t.Fatalf("second load: generated %v, id %s vs %s, %v", generated, k2.ID(), k1.ID(), err)
	}
	os.Chmod(filepath.Join(dir, auth.KeyFile), 0o644)
	if _, _, err := auth.LoadKeyring("", "", dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key file others can read: %v", err)
	}
	if _, _, err := auth.LoadKeyring("nope", "", dir); err == nil || !strings.Contains(err.Error(), "NIMBUS_SECRETS_KEY") {
		t.Errorf("a bad NIMBUS_SECRETS_KEY: %v", err)
	}
}

func TestKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.db")
	st := openStore(t, path)
	now := time.Now()
	clock := func() time.Time { return now }
	s := newServer(t, st, ring(t, 1), "", clock)
	ctx := context.Background()
	if s.keys.Required() {
		t.Fatal("a server without keys requires them")
	}
	// The first key must be an admin key for every function.
	if _, _, err := s.keys.Create(ctx, auth.KeyRequest{Name: "hook", Scopes: []string{"invoke"}}); err == nil || !strings.Contains(err.Error(), "first key") {
		t.Fatalf("a first invoke key: %v", err)
	}
	rec, adminKey, err := s.keys.Create(ctx, auth.KeyRequest{Name: "root", Scopes: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.keys.Required() || !strings.HasPrefix(adminKey, rec.ID+"_") || !strings.HasPrefix(rec.ID, "nmb_") {
		t.Fatalf("key %s, secret shaped %.17s…, required %v", rec.ID, adminKey, s.keys.Required())
	}
	exp := now.Add(time.Hour)
	_, hook, err := s.keys.Create(admin, auth.KeyRequest{Name: "hook", Scopes: []string{"invoke"}, Functions: []string{"orders-*"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.keys.Authenticate(ctx, hook)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		scope auth.Scope
		fn    string
		ok    bool
	}{{auth.ScopeInvoke, "orders-eu", true}, {auth.ScopeInvoke, "billing", false}, {auth.ScopeRead, "orders-eu", false}, {auth.ScopeDeploy, "", false}} {
		if err := p.Check(c.scope, c.fn); (err == nil) != c.ok {
			t.Errorf("Check(%s, %q) = %v, want ok %v", c.scope, c.fn, err, c.ok)
		}
	}
	if err := p.Check(auth.ScopeRead, ""); err == nil || !strings.Contains(err.Error(), `"read"`) {
		t.Errorf("a missing scope is not named: %v", err)
	}
	// Wrong secrets, made-up ids and other shapes are refused alike.
	for _, bad := range []string{hook[:len(hook)-1] + "x", rec.ID + "_" + strings.Repeat("A", 43), "nimbus", "", "nmb_zzzzzzzzzzzz_x"} {
		if _, err := s.keys.Authenticate(ctx, bad); !errors.Is(err, auth.ErrBadKey) {
			t.Errorf("Authenticate(%.20q…) = %v, want ErrBadKey", bad, err)
		}
	}
	// Expiry.
	now = exp
	if _, err := s.keys.Authenticate(ctx, hook); !errors.Is(err, auth.ErrExpired) {
		t.Errorf("an expired key: %v", err)
	}
	// The store holds no secret, only its hash and a sealed copy.
	st.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if wal, err := os.ReadFile(path + "-wal"); err == nil {
		raw = append(raw, wal...)
	}
	if bytes.Contains(raw, []byte(hook[17:])) || bytes.Contains(raw, []byte(adminKey[17:])) {
		t.Error("the database file holds a key's secret")
	}
}

func TestBootstrapKey(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "n.db"))
	s := newServer(t, st, ring(t, 1), "b00t", nil)
	if !s.keys.Required() {
		t.Fatal("a bootstrap key does not turn authentication on")
	}
	p, err := s.keys.Authenticate(context.Background(), "b00t")
	if err != nil || p.KeyID != auth.BootstrapID || !p.Has(auth.ScopeAdmin) {
		t.Fatalf("bootstrap: %+v, %v", p, err)
	}
	// With a bootstrap key, the first key need not be an admin key.
	if _, _, err := s.keys.Create(admin, auth.KeyRequest{Name: "hook", Scopes: []string{"invoke"}}); err != nil {
		t.Fatal(err)
	}
}

// Two servers sharing one store: a key made on one works on the other at
// once, and a key revoked on one stops working on the other within a
// reload.
func TestRevocationAcrossServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.db")
	r := ring(t, 1)
	a := newServer(t, openStore(t, path), r, "b00t", nil)
	b := newServer(t, openStore(t, path), r, "b00t", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.keys.Run(ctx)
	rec, key, err := a.keys.Create(admin, auth.KeyRequest{Name: "ci", Scopes: []string{"deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.keys.Authenticate(ctx, key); err != nil {
		t.Fatalf("a key made on another server: %v", err)
	}
	if err := a.keys.Delete(admin, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.keys.Authenticate(ctx, key); err == nil {
		t.Fatal("a revoked key works on the server that revoked it")
	}
	deadline := time.Now().Add(auth.ReloadEvery + 5*time.Second)
	for {
		_, err := b.keys.Authenticate(ctx, key)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked key still works on another server after %v", auth.ReloadEvery+5*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRateLimit(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "n.db"))
	s := newServer(t, st, ring(t, 1), "b00t", nil)
	_, key, err := s.keys.Create(admin, auth.KeyRequest{Name: "slow", Scopes: []string{"invoke"}, RateLimit: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.keys.Authenticate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.Allow(); !ok {
		t.Fatal("the first call is refused")
	}
	ok, wait := p.Allow()
	if ok || wait <= 0 || wait > 1001*time.Second {
		t.Fatalf("the second call at once: ok %v, retry after %v (want refused, ≤ 1000 s)", ok, wait)
	}
	// The bucket survives a reload of the keys.
	s.keys.Load(context.Background())
	p, _ = s.keys.Authenticate(context.Background(), key)
	if ok, _ := p.Allow(); ok {
		t.Error("a reload refilled the key's bucket")
	}
	var f auth.Failures
	for range auth.FailBurst {
		if blocked, _ := f.Blocked("192.0.2.1"); blocked {
			t.Fatal("blocked before its budget is spent")
		}
		f.Fail("192.0.2.1")
	}
	if blocked, wait := f.Blocked("192.0.2.1"); !blocked || wait <= 0 {
		t.Errorf("after %d failures: blocked %v, %v", auth.FailBurst, blocked, wait)
	}
	if blocked, _ := f.Blocked("192.0.2.2"); blocked {
		t.Error("another address is blocked")
	}
}

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.db")
	st := openStore(t, path)
	old := ring(t, 1)
	s := newServer(t, st, old, "b00t", nil)
	_, key, err := s.keys.Create(admin, auth.KeyRequest{Name: "ci", Scopes: []string{"deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.secrets.Create(admin, "db", "hunter2", ""); err != nil {
		t.Fatal(err)
	}
	// The new key alone opens nothing that the old one sealed.
	fresh := newServer(t, st, ring(t, 2), "b00t", nil)
	if _, err := fresh.secrets.Reveal(admin, "db"); err == nil {
		t.Fatal("a secret opened under another key-encryption key")
	}
	// With the old key as a previous one, rotation seals all again.
	rotated := newServer(t, st, ring(t, 2, bytes.Repeat([]byte{1}, 32)), "b00t", nil)
	if n, err := rotated.keys.Rotate(admin); err != nil || n != 1 {
		t.Fatalf("rotate keys: %d, %v", n, err)
	}
	if n, err := rotated.secrets.Rotate(admin); err != nil || n != 1 {
		t.Fatalf("rotate secrets: %d, %v", n, err)
	}
	// Now the new key alone opens both.
	after := newServer(t, st, ring(t, 2), "b00t", nil)
	if v, err := after.secrets.Reveal(admin, "db"); err != nil || v != "hunter2" {
		t.Errorf("secret after rotation: %q, %v", v, err)
	}
	if _, err := after.keys.Authenticate(context.Background(), key); err != nil {
		t.Errorf("key after rotation: %v", err)
	}
	if rec, _ := st.GetSecret(admin, "db"); rec.KEKID != ring(t, 2).ID() {
		t.Errorf("secret sealed under %s, want %s", rec.KEKID, ring(t, 2).ID())
	}
}

func TestSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.db")
	st := openStore(t, path)
	s := newServer(t, st, ring(t, 1), "b00t", nil)
	plain := "pl41n-" + fn.NewID()
	if _, err := s.secrets.Create(admin, "db-password", plain, "the database"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.secrets.Create(admin, "db-password", "x", ""); !errors.Is(err, fn.ErrConflict) {
		t.Errorf("a second create: %v", err)
	}
	for _, bad := range []struct{ name, value string }{{"../x", "v"}, {"", "v"}, {"ok", "a\x00b"}, {"ok", strings.Repeat("v", fn.MaxSecretValueBytes+1)}} {
		if _, err := s.secrets.Create(admin, bad.name, bad.value, ""); !errors.Is(err, fn.ErrInvalid) {
			t.Errorf("Create(%q, %.10q): %v, want invalid", bad.name, bad.value, err)
		}
	}
	if v, err := s.secrets.Reveal(admin, "db-password"); err != nil || v != plain {
		t.Fatalf("reveal: %q, %v", v, err)
	}
	if _, err := s.secrets.Update(admin, "db-password", plain+"2", nil); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.secrets.Get(admin, "db-password")
	if rec.Version != 2 || rec.Description != "the database" {
		t.Errorf("after update: version %d, description %q", rec.Version, rec.Description)
	}
	s.secrets.UsedBy = func(context.Context, string) ([]string, error) { return []string{"orders"}, nil }
	if err := s.secrets.Delete(admin, "db-password"); !errors.Is(err, fn.ErrConflict) || !strings.Contains(err.Error(), "orders") {
		t.Errorf("deleting a secret in use: %v", err)
	}
	st.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if wal, err := os.ReadFile(path + "-wal"); err == nil {
		raw = append(raw, wal...)
	}
	if bytes.Contains(raw, []byte(plain)) {
		t.Error("the SQLite database holds a secret's plaintext")
	}
}

func TestAudit(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "n.db"))
	s := newServer(t, st, ring(t, 1), "b00t", nil)
	ctx := auth.WithSource(admin, "192.0.2.7")
	rec, _, err := s.keys.Create(ctx, auth.KeyRequest{Name: "ci", Scopes: []string{"deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.keys.Delete(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	s.audit.Record(ctx, "function.update", "hello", map[string]int{"v": 1}, map[string]int{"v": 2})
	es, err := s.audit.List(context.Background(), store.AuditQuery{})
	if err != nil || len(es) != 3 {
		t.Fatalf("entries: %d, %v", len(es), err)
	}
	want := []struct{ action, target string }{{"function.update", "hello"}, {"key.delete", rec.ID}, {"key.create", rec.ID}}
	for i, e := range es {
		if e.Action != want[i].action || e.Target != want[i].target || e.KeyID != auth.BootstrapID || e.Source != "192.0.2.7" {
			t.Errorf("entry %d: %+v, want %v by bootstrap from 192.0.2.7", i, e, want[i])
		}
	}
	if es[0].Before == "" || es[0].After == "" || es[0].Before == es[0].After || es[2].Before != "" || es[1].After != "" {
		t.Errorf("hashes: update %s→%s, create before %q, delete after %q", es[0].Before, es[0].After, es[2].Before, es[1].After)
	}
	if es, _ := s.audit.List(context.Background(), store.AuditQuery{Action: "key"}); len(es) != 2 {
		t.Errorf("filter by kind: %d entries", len(es))
	}
}

func TestSession(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "n.db"))
	s := newServer(t, st, ring(t, 1), "b00t", nil)
	rec, _, err := s.keys.Create(admin, auth.KeyRequest{Name: "ui", Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, end, err := s.keys.NewSession(ctx, rec.ID)
	if err != nil || time.Until(end) > auth.SessionTTL {
		t.Fatal(end, err)
	}
	if p, err := s.keys.Session(ctx, tok); err != nil || p.KeyID != rec.ID {
		t.Fatalf("session: %+v, %v", p, err)
	}
	parts := strings.Split(tok, ".")
	for _, bad := range []string{parts[0] + "." + "99999999999" + "." + parts[2], "x", tok + "x", "bootstrap." + parts[1] + "." + parts[2]} {
		if _, err := s.keys.Session(ctx, bad); err == nil {
			t.Errorf("a forged session %q worked", bad)
		}
	}
	// Another server (another key-encryption key) does not take it.
	other := newServer(t, st, ring(t, 2), "b00t", nil)
	if _, err := other.keys.Session(ctx, tok); err == nil {
		t.Error("a session made under another key-encryption key worked")
	}
	// Revoking the key ends its sessions.
	s.keys.Delete(admin, rec.ID)
	if _, err := s.keys.Session(ctx, tok); err == nil {
		t.Error("a session outlived its key")
	}
}
