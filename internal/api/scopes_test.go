package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/auth"
)

// newKey makes a key with the admin key and returns its secret.
func (h *harness) newKey(req map[string]any) string {
	h.t.Helper()
	var out struct {
		ID, Secret string
	}
	if st := h.do("POST", "/api/keys", req, &out); st != http.StatusCreated || out.Secret == "" {
		h.t.Fatalf("create key %v: %d", req, st)
	}
	return out.Secret
}

// as sends a request with key (and JSON, where it has a body).
func (h *harness) as(key, method, path, body string) (*http.Response, string) {
	h.t.Helper()
	headers := map[string]string{"Authorization": "Bearer " + key}
	if method != "GET" && method != "DELETE" {
		headers["Content-Type"] = "application/json"
	}
	saved := h.key
	h.key = ""
	defer func() { h.key = saved }()
	return h.send(method, path, body, headers)
}

func errorMessage(body string) string {
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error.Message
}

// TestScopeTable walks every route of the table with a key of each scope
// (and one limited to other functions) and checks that each gets exactly
// what the table says: a key that may not is refused with 403 naming the
// scope it lacks; a key that may is not refused (whatever the route then
// answers: 404 for the function that is not there, 400 for an empty body).
func TestScopeTable(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	keys := map[string]string{}
	for _, sc := range auth.Scopes {
		keys[string(sc)] = h.newKey(map[string]any{"name": string(sc), "scopes": []string{string(sc)}})
	}
	// Limited to functions whose names start "other": every route that
	// names function "fa" refuses it, whatever the scope.
	keys["limited"] = h.newKey(map[string]any{"name": "limited", "scopes": []string{"admin"}, "functions": []string{"other*"}})
	fill := strings.NewReplacer("{id}", "fa", "{functionId}", "fa", "{n}", "1", "{name}", "nosuch", "{executionId}", "e1")
	may := func(have string, rt api_RouteScope) (bool, string) {
		if have == "limited" {
			if rt.Function != "" || rt.AllFunctions {
				return false, "limited"
			}
			return true, ""
		}
		p := auth.NewPrincipal("k", []auth.Scope{auth.Scope(have)}, nil)
		return p.Has(rt.Scope), string(rt.Scope)
	}
	routes := h.api.Routes()
	if len(routes) < 50 {
		t.Fatalf("the table has %d routes", len(routes))
	}
	for _, r := range routes {
		rt := api_RouteScope(r)
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = fill.Replace(path)
		if strings.HasSuffix(path, "/api/events") {
			path += "?function=fa" // a stream would not end: ask for one that is not there
		}
		body := ""
		if method == "POST" || method == "PUT" {
			body = "{}"
		}
		for have, key := range keys {
			ok, need := may(have, rt)
			resp, got := h.as(key, method, path, body)
			switch {
			case rt.Scope == auth.ScopeNone:
				if resp.StatusCode == http.StatusForbidden {
					t.Errorf("%s as %s: 403 on a route that needs no scope", rt.Pattern, have)
				}
			case ok && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized):
				t.Errorf("%s as %s: %d %s, want it let through", rt.Pattern, have, resp.StatusCode, errorMessage(got))
			case !ok && resp.StatusCode != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403", rt.Pattern, have, resp.StatusCode)
			case !ok && need != "limited" && !strings.Contains(errorMessage(got), `"`+need+`"`):
				t.Errorf("%s as %s: %q does not name the missing scope %q", rt.Pattern, have, errorMessage(got), need)
			}
		}
		// And with no key at all, every route that needs a scope is a 401.
		if rt.Scope != auth.ScopeNone {
			if resp, _ := h.as("", method, path, body); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a key: %d, want 401", rt.Pattern, resp.StatusCode)
			}
		}
	}
}

type api_RouteScope = struct {
	Pattern      string
	Scope        auth.Scope
	Function     string
	AllFunctions bool
}

// A key limited to some functions sees only those in lists and streams,
// and can create only functions its globs take.
func TestLimitedKeySeesItsFunctions(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	h.create("orders-eu", 1)
	h.create("billing", 1)
	key := h.newKey(map[string]any{"name": "orders", "scopes": []string{"deploy", "invoke"}, "functions": []string{"orders-*"}})
	_, body := h.as(key, "GET", "/api/functions", "")
	if !strings.Contains(body, "orders-eu") || strings.Contains(body, "billing") {
		t.Errorf("list: %.300s", body)
	}
	_, body = h.as(key, "GET", "/api/metrics/functions", "")
	if !strings.Contains(body, "orders-eu") || strings.Contains(body, "billing") {
		t.Errorf("metrics: %.300s", body)
	}
	if resp, _ := h.as(key, "GET", "/api/functions/billing", ""); resp.StatusCode != 403 {
		t.Errorf("another function: %d", resp.StatusCode)
	}
	if resp, _ := h.as(key, "POST", "/api/functions", `{"name":"billing-2","runtime":"python3.12","code":"def handler(e,c): pass"}`); resp.StatusCode != 403 {
		t.Errorf("create outside the globs: %d", resp.StatusCode)
	}
	if resp, _ := h.as(key, "PUT", "/api/functions/orders-eu", `{"name":"billing-3"}`); resp.StatusCode != 403 {
		t.Errorf("rename outside the globs: %d", resp.StatusCode)
	}
	if resp, _ := h.as(key, "POST", "/api/executions/orders-eu", `{}`); resp.StatusCode != 200 {
		t.Errorf("invoke its function: %d", resp.StatusCode)
	}
	if resp, _ := h.as(key, "GET", "/metrics", ""); resp.StatusCode != 403 {
		t.Errorf("/metrics shows every function: %d", resp.StatusCode)
	}
}

func TestKeyLimits(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	h.create("fa", 1)
	// A rate limit answers 429 with Retry-After.
	slow := h.newKey(map[string]any{"name": "slow", "scopes": []string{"read"}, "rateLimit": 0.001})
	if resp, _ := h.as(slow, "GET", "/api/functions", ""); resp.StatusCode != 200 {
		t.Fatalf("first call: %d", resp.StatusCode)
	}
	resp, body := h.as(slow, "GET", "/api/functions", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "rate limit") {
		t.Errorf("second call: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Expiry.
	soon := h.newKey(map[string]any{"name": "soon", "scopes": []string{"read"}, "expiresAt": time.Now().Add(1500 * time.Millisecond).Format(time.RFC3339Nano)})
	if resp, _ := h.as(soon, "GET", "/api/functions", ""); resp.StatusCode != 200 {
		t.Fatalf("before expiry: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := h.as(soon, "GET", "/api/functions", "")
		if resp.StatusCode == 401 {
			if !strings.Contains(body, "expired") {
				t.Errorf("an expired key: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key still works 8 s after it expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Revocation, here at once.
	gone := h.newKey(map[string]any{"name": "gone", "scopes": []string{"read"}})
	if st := h.do("DELETE", "/api/keys/"+auth.IDOf(gone), nil, nil); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	if resp, _ := h.as(gone, "GET", "/api/functions", ""); resp.StatusCode != 401 {
		t.Errorf("a revoked key: %d", resp.StatusCode)
	}
	// Failed authentications from one address are limited, then even
	// the right key from it waits.
	for range auth.FailBurst {
		h.as("nmb_000000000000_wrong", "GET", "/api/functions", "")
	}
	resp, _ = h.as("b00t", "GET", "/api/functions", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after %d failures: %d", auth.FailBurst, resp.StatusCode)
	}
}

func TestKeysAPI(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	var created map[string]any
	if st := h.do("POST", "/api/keys", map[string]any{"name": "ci", "scopes": []string{"deploy"}, "functions": []string{"web-*"}}, &created); st != 201 {
		t.Fatalf("create: %d", st)
	}
	secret, _ := created["secret"].(string)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(secret, id+"_") || created["createdBy"] != "bootstrap" {
		t.Fatalf("created %v", created)
	}
	var list struct{ Keys []map[string]any }
	h.do("GET", "/api/keys", nil, &list)
	raw, _ := json.Marshal(list)
	if len(list.Keys) != 1 || strings.Contains(string(raw), secret[len(id)+1:]) || strings.Contains(string(raw), "secret") {
		t.Errorf("the list shows a secret or is wrong: %s", raw)
	}
	for _, bad := range []map[string]any{
		{"name": "", "scopes": []string{"read"}},
		{"name": "x", "scopes": []string{"root"}},
		{"name": "x", "scopes": []string{}},
		{"name": "x", "scopes": []string{"read"}, "functions": []string{"["}},
		{"name": "x", "scopes": []string{"read"}, "expiresAt": "2001-01-01T00:00:00Z"},
		{"name": "x", "scopes": []string{"read"}, "rateLimit": -1},
	} {
		if st := h.do("POST", "/api/keys", bad, nil); st != 400 {
			t.Errorf("create %v: %d, want 400", bad, st)
		}
	}
	// A key that is not admin cannot manage keys.
	if resp, body := h.as(secret, "GET", "/api/keys", ""); resp.StatusCode != 403 || !strings.Contains(errorMessage(body), `"admin"`) {
		t.Errorf("a deploy key lists keys: %d %s", resp.StatusCode, body)
	}
}

func TestSessions(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	key := h.newKey(map[string]any{"name": "ui", "scopes": []string{"read"}})
	// Without credentials the session says who is needed.
	resp, body := h.as("", "GET", "/api/session", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"authRequired":true`) || !strings.Contains(body, `"signedIn":false`) {
		t.Fatalf("session before sign-in: %d %s", resp.StatusCode, body)
	}
	resp, _ = h.send("POST", "/api/session", `{"key":"nope"}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 401 {
		t.Errorf("sign-in with a wrong key: %d", resp.StatusCode)
	}
	resp, body = h.send("POST", "/api/session", `{"key":"`+key+`"}`, map[string]string{"Content-Type": "application/json"})
	var c *http.Cookie
	for _, x := range resp.Cookies() {
		if x.Name == auth.SessionCookie {
			c = x
		}
	}
	if resp.StatusCode != 200 || c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("sign-in: %d %s, cookie %+v", resp.StatusCode, body, c)
	}
	if strings.Contains(c.Value, key[len(auth.IDOf(key))+1:]) || strings.Contains(body, key[len(auth.IDOf(key))+1:]) {
		t.Error("the session carries the key's secret")
	}
	withCookie := func(method, path, body string, extra map[string]string) *http.Response {
		hd := map[string]string{"Cookie": c.Name + "=" + c.Value}
		for k, v := range extra {
			hd[k] = v
		}
		saved := h.key
		h.key = ""
		defer func() { h.key = saved }()
		resp, _ := h.send(method, path, body, hd)
		return resp
	}
	if r := withCookie("GET", "/api/functions", "", nil); r.StatusCode != 200 {
		t.Errorf("a read with the session: %d", r.StatusCode)
	}
	if r := withCookie("POST", "/api/functions", "{}", map[string]string{"Content-Type": "application/json"}); r.StatusCode != 403 {
		t.Errorf("a deploy with a read session: %d", r.StatusCode)
	}
	// Another site's page cannot use the session (SameSite aside, the
	// origin rule refuses it).
	admin := h.signIn("b00t")
	saved := h.key
	h.key = ""
	resp, _ = h.send("POST", "/api/functions", `{"name":"x","runtime":"python3.12","code":"def handler(e,c): pass"}`,
		map[string]string{"Cookie": admin.Name + "=" + admin.Value, "Content-Type": "application/json", "Origin": "https://evil.example"})
	h.key = saved
	if resp.StatusCode != 403 {
		t.Errorf("a cross-site create with an admin session: %d", resp.StatusCode)
	}
	// Revoking the key ends its session.
	h.do("DELETE", "/api/keys/"+auth.IDOf(key), nil, nil)
	if r := withCookie("GET", "/api/functions", "", nil); r.StatusCode != 401 {
		t.Errorf("the session of a revoked key: %d", r.StatusCode)
	}
	// Signing out clears the cookie.
	resp, _ = h.send("DELETE", "/api/session", "", nil)
	if resp.StatusCode != 204 || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("sign-out: %d %v", resp.StatusCode, resp.Cookies())
	}
}

func TestAuditAPI(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	ci := h.newKey(map[string]any{"name": "ci", "scopes": []string{"deploy"}})
	if resp, body := h.as(ci, "POST", "/api/functions", `{"name":"fa","runtime":"python3.12","code":"def handler(e,c): pass"}`); resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	h.as(ci, "PUT", "/api/functions/fa", `{"timeout":2000}`)
	h.as(ci, "DELETE", "/api/functions/fa", "")
	var out struct {
		Entries []struct{ ID, KeyID, Source, Action, Target, Before, After string }
		Next    string
	}
	if st := h.do("GET", "/api/audit?target=fa", nil, &out); st != 200 {
		t.Fatalf("audit: %d", st)
	}
	want := []string{"function.delete", "function.update", "function.create"}
	if len(out.Entries) != 3 {
		t.Fatalf("entries: %+v", out.Entries)
	}
	for i, e := range out.Entries {
		if e.Action != want[i] || e.KeyID != auth.IDOf(ci) || e.Source != "127.0.0.1" {
			t.Errorf("entry %d: %+v, want %s by %s from 127.0.0.1", i, e, want[i], auth.IDOf(ci))
		}
	}
	if c, u, d := out.Entries[2], out.Entries[1], out.Entries[0]; c.Before != "" || c.After != u.Before || u.After != d.Before || d.After != "" {
		t.Errorf("hashes do not chain: create %s→%s, update %s→%s, delete %s→%s", c.Before, c.After, u.Before, u.After, d.Before, d.After)
	}
	h.do("GET", "/api/audit?action=key&limit=1", nil, &out)
	if len(out.Entries) != 1 || out.Entries[0].Action != "key.create" || out.Next == "" {
		t.Errorf("by kind, one page: %+v next %q", out.Entries, out.Next)
	}
	if st := h.do("GET", "/api/audit?since=yesterday", nil, nil); st != 400 {
		t.Errorf("a bad since: %d", st)
	}
}

func TestSecretsAPI(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	var info map[string]any
	if st := h.do("POST", "/api/secrets/db", map[string]any{"value": "v1", "description": "d"}, &info); st != 201 || info["version"] != 1.0 {
		t.Fatalf("create by path: %d %v", st, info)
	}
	if st := h.do("POST", "/api/secrets/other", map[string]any{"name": "db", "value": "x"}, nil); st != 400 {
		t.Errorf("body and path disagree: %d", st)
	}
	if st := h.do("POST", "/api/secrets", map[string]any{"name": "db", "value": "x"}, nil); st != 409 {
		t.Errorf("create twice: %d", st)
	}
	if st := h.do("POST", "/api/secrets", map[string]any{"name": "novalue"}, nil); st != 400 {
		t.Errorf("create without a value: %d", st)
	}
	if st := h.do("PUT", "/api/secrets/db", map[string]any{"value": "v2"}, &info); st != 200 || info["version"] != 2.0 || info["description"] != "d" {
		t.Errorf("update: %d %v", st, info)
	}
	if st := h.do("PUT", "/api/secrets/nosuch", map[string]any{"value": "v"}, nil); st != 404 {
		t.Errorf("update of no secret: %d", st)
	}
	resp, body := h.send("GET", "/api/secrets", "", nil)
	if resp.StatusCode != 200 || strings.Contains(body, "v2") || !strings.Contains(body, `"name":"db"`) {
		t.Errorf("list: %d %s", resp.StatusCode, body)
	}
	if st := h.do("DELETE", "/api/secrets/db", nil, nil); st != 204 {
		t.Errorf("delete: %d", st)
	}
	if st := h.do("GET", "/api/secrets/db", nil, nil); st != 404 {
		t.Errorf("get after delete: %d", st)
	}
}

// An ended session is a 401 that does not count as a failed
// authentication: the UI polling with a stale cookie does not lock its
// user out of signing in again.
func TestEndedSessionsDoNotLockOut(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	saved := h.key
	h.key = ""
	defer func() { h.key = saved }()
	for range auth.FailBurst + 5 {
		resp, _ := h.send("GET", "/api/functions", "", map[string]string{"Cookie": auth.SessionCookie + "=nmb_000000000000.1.x"})
		if resp.StatusCode != 401 {
			t.Fatalf("a stale session: %d", resp.StatusCode)
		}
	}
	if resp, _ := h.send("POST", "/api/session", `{"key":"b00t"}`, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 200 {
		t.Errorf("signing in after stale-session calls: %d", resp.StatusCode)
	}
}
