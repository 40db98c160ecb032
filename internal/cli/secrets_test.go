package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/cli"
	"github.com/nimbusfaas/nimbus/internal/fn"
)

// secretsAPI answers the secrets, keys and audit routes as the server
// does, from memory, and records what it was sent.
type secretsAPI struct {
	mu      sync.Mutex
	secrets map[string]string // name → value
	sent    []string          // "METHOD PATH body"
}

func (a *secretsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	a.sent = append(a.sent, r.Method+" "+r.URL.RequestURI()+" "+string(body))
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	meta := func(name string) map[string]any {
		return map[string]any{"name": name, "version": 1, "createdAt": "2026-01-02T03:04:05Z", "updatedAt": "2026-01-02T03:04:05Z", "usedBy": []string{}}
	}
	var in struct{ Name, Value string }
	_ = json.Unmarshal(body, &in)
	name := strings.TrimPrefix(r.URL.Path, "/api/secrets/")
	switch {
	case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/api/secrets/"):
		if _, ok := a.secrets[name]; !ok {
			reply(404, map[string]any{"error": map[string]string{"code": "not_found", "message": "no secret " + name}})
			return
		}
		a.secrets[name] = in.Value
		reply(200, meta(name))
	case r.Method == "POST" && r.URL.Path == "/api/secrets":
		a.secrets[in.Name] = in.Value
		reply(201, meta(in.Name))
	case r.Method == "GET" && r.URL.Path == "/api/secrets":
		reply(200, map[string]any{"secrets": []any{meta("db")}})
	case r.Method == "DELETE" && name == "used":
		reply(409, map[string]any{"error": map[string]string{"code": "conflict", "message": "secret used is used by api"}})
	case r.Method == "DELETE":
		w.WriteHeader(204)
	case r.Method == "POST" && r.URL.Path == "/api/keys":
		reply(201, map[string]any{"id": "k1", "name": "ci", "scopes": []string{"invoke"}, "createdAt": "2026-01-02T03:04:05Z", "secret": "nmb_s3cret"})
	case r.Method == "GET" && r.URL.Path == "/api/keys":
		reply(200, map[string]any{"keys": []any{map[string]any{"id": "k1", "name": "ci", "scopes": []string{"invoke", "read"}, "rateLimit": 10, "createdAt": "2026-01-02T03:04:05Z"}}})
	case r.Method == "GET" && r.URL.Path == "/api/audit":
		reply(200, map[string]any{"entries": []any{map[string]any{"id": "a1", "time": "2026-01-02T03:04:05Z", "keyId": "k1", "source": "api", "action": "secret.delete", "target": "db"}}, "next": "a1"})
	default:
		reply(404, map[string]any{"error": map[string]string{"message": "no route"}})
	}
}

func TestSecretsKeysAndAuditOverTheAPI(t *testing.T) {
	api := &secretsAPI{secrets: map[string]string{"db": "old"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := cli.NewClient(srv.URL, "k")
	ctx := t.Context()

	// set replaces an existing secret, and creates a missing one.
	if _, created, err := c.SetSecret(ctx, "db", "new", ""); err != nil || created {
		t.Fatalf("set db: created=%v err=%v", created, err)
	}
	s, created, err := c.SetSecret(ctx, "api", "v4lue", "the API's")
	if err != nil || !created || s.Name != "api" {
		t.Fatalf("set api: %+v created=%v err=%v", s, created, err)
	}
	if api.secrets["db"] != "new" || api.secrets["api"] != "v4lue" {
		t.Fatalf("stored %v", api.secrets)
	}
	_, list, err := c.ListSecrets(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "db" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	var out strings.Builder
	if err := cli.WriteSecrets(&out, list); err != nil || !strings.Contains(out.String(), "db") || strings.Contains(out.String(), "new") {
		t.Fatalf("table %q, %v", out.String(), err)
	}
	if err := c.DeleteSecret(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSecret(ctx, "used"); err == nil || !strings.Contains(err.Error(), "used by api") {
		t.Fatalf("delete a secret in use: %v", err)
	}

	exp := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	k, err := c.CreateKey(ctx, cli.NewKey{Name: "ci", Scopes: []string{"invoke"}, Functions: []string{"web-*"}, ExpiresAt: &exp, RateLimit: 10})
	if err != nil || k.Secret != "nmb_s3cret" {
		t.Fatalf("create key: %+v, %v", k, err)
	}
	_, keys, err := c.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].RateLimit != 10 {
		t.Fatalf("keys: %+v, %v", keys, err)
	}
	if err := c.DeleteKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, entries, next, err := c.Audit(ctx, cli.AuditQuery{KeyID: "k1", Action: "secret.delete", Since: since, Limit: 5})
	if err != nil || len(entries) != 1 || next != "a1" || entries[0].Target != "db" {
		t.Fatalf("audit: %+v next %q, %v", entries, next, err)
	}

	want := []string{
		`PUT /api/secrets/db {"value":"new"}`,
		`PUT /api/secrets/api {"description":"the API's","value":"v4lue"}`,
		`POST /api/secrets {"description":"the API's","name":"api","value":"v4lue"}`,
		`GET /api/secrets `,
		`DELETE /api/secrets/db `,
		`DELETE /api/secrets/used `,
		`POST /api/keys {"name":"ci","scopes":["invoke"],"functions":["web-*"],"expiresAt":"2026-02-01T00:00:00Z","rateLimit":10}`,
		`GET /api/keys `,
		`DELETE /api/keys/k1 `,
		`GET /api/audit?action=secret.delete&keyId=k1&limit=5&since=2026-01-01T00%3A00%3A00Z `,
	}
	if strings.Join(api.sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(api.sent, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	if got, err := cli.ParseSince("2h", now); err != nil || !got.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("2h: %v, %v", got, err)
	}
	if got, err := cli.ParseSince("2026-01-01T00:00:00Z", now); err != nil || got.Day() != 1 {
		t.Errorf("RFC 3339: %v, %v", got, err)
	}
	for _, bad := range []string{"yesterday", "-1h"} {
		if _, err := cli.ParseSince(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A function's details name its secret references, never a value.
func TestWriteFunctionShowsSecretReferences(t *testing.T) {
	f := &fn.Function{Name: "db", Runtime: "python", Env: map[string]string{"MODE": "prod"},
		SecretEnv: map[string]string{"DB_PASSWORD": "db-password"}, Secrets: map[string]string{"DB_PASSWORD": "hunter2"}}
	var b strings.Builder
	if err := cli.WriteFunction(&b, f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "DB_PASSWORD (secret db-password)") || strings.Contains(b.String(), "hunter2") {
		t.Fatalf("details:\n%s", b.String())
	}
}
