package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/api"
	"github.com/nimbusfaas/nimbus/internal/web"
)

const jsonCT = "application/json"

// A web page on another site, with no API key set, can neither create,
// update, delete nor invoke a function: not by a cross-origin request
// (foreign Origin), not through DNS rebinding (foreign Host), not with a
// "simple" text/plain body.
func TestOtherSitesCannotCall(t *testing.T) {
	h := newHarness(t, options{api: func(c *api.Config) { c.UI = web.Handler(); c.BindHost = "127.0.0.1" }})
	target := h.create("target", 1)
	port := mustURL(t, h.srv.URL).Port()
	fnBody := `{"name":"evil","runtime":"python","code":"x = 1\n"}`

	type call struct{ name, method, path, body string }
	calls := []call{
		{"create", "POST", "/api/functions", fnBody},
		{"update", "PUT", "/api/functions/target", `{"memory":256}`},
		{"invoke", "POST", "/api/executions/target", `{}`},
		{"delete", "DELETE", "/api/functions/target", ""},
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		status  int
		says    string
	}{
		{"foreign origin", map[string]string{"Origin": "http://evil.example", "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_ORIGINS"},
		{"foreign origin on our host name", map[string]string{"Origin": "http://evil.example:" + port, "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_ORIGINS"},
		{"another local port", map[string]string{"Origin": "http://localhost:1", "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_ORIGINS"},
		{"the bound host on another port", map[string]string{"Origin": "http://127.0.0.1:1", "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_ORIGINS"},
		{"opaque origin", map[string]string{"Origin": "null", "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_ORIGINS"},
		{"DNS rebinding", map[string]string{"Host": "evil.example:" + port, "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_HOSTS"},
		{"DNS rebinding, same-origin request", map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_HOSTS"},
		{"loopback name on another port", map[string]string{"Host": "localhost:1", "Content-Type": jsonCT}, 403, "NIMBUS_ALLOWED_HOSTS"},
	} {
		for _, c := range calls {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				resp, body := h.send(c.method, c.path, c.body, tc.headers)
				if resp.StatusCode != tc.status || errorCode(t, body) != "forbidden" || !strings.Contains(body, tc.says) {
					t.Errorf("status %d %.300s: want %d, a forbidden error naming %s", resp.StatusCode, body, tc.status, tc.says)
				}
			})
		}
	}
	// A simple request: a form or fetch with text/plain needs no preflight.
	// (A multipart create is taken: it uploads an archive; a browser that
	// sends it from another site says so in Origin, refused above.)
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		for _, c := range calls[:3] {
			if c.name == "create" && strings.HasPrefix(ct, "multipart/") {
				continue
			}
			t.Run("Content-Type "+ct+"/"+c.name, func(t *testing.T) {
				resp, body := h.send(c.method, c.path, c.body, map[string]string{"Content-Type": ct})
				if resp.StatusCode != http.StatusUnsupportedMediaType || errorCode(t, body) != "unsupported_media_type" || !strings.Contains(body, jsonCT) {
					t.Errorf("status %d %.300s: want 415 naming %s", resp.StatusCode, body, jsonCT)
				}
			})
		}
	}
	// Nothing happened.
	if st := h.do("GET", "/api/functions/evil", nil, nil); st != http.StatusNotFound {
		t.Errorf("GET evil: %d, want 404: it was created", st)
	}
	var f struct {
		Revision int `json:"revision"`
		Memory   int `json:"memory"`
	}
	if st := h.do("GET", "/api/functions/"+target.ID, nil, &f); st != 200 || f.Revision != 1 {
		t.Errorf("target: %d revision %d, want 200 and revision 1: it was changed or deleted", st, f.Revision)
	}
	if n := len(h.history("target")); n != 0 {
		t.Errorf("target ran %d times", n)
	}
}

// DNS rebinding reads too: the UI, /metrics and the API refuse a foreign
// Host; /healthz answers anyone.
func TestForeignHostCannotRead(t *testing.T) {
	h := newHarness(t, options{api: func(c *api.Config) { c.UI = web.Handler() }})
	port := mustURL(t, h.srv.URL).Port()
	foreign := map[string]string{"Host": "attacker.example:" + port}
	for _, path := range []string{"/", "/app.js", "/metrics", "/api/functions", "/api/metrics/system", "/api/events"} {
		if resp, body := h.send("GET", path, "", foreign); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "attacker.example") {
			t.Errorf("GET %s with Host attacker.example: %d %.200s, want 403 naming the host", path, resp.StatusCode, body)
		}
	}
	if resp, _ := h.send("GET", "/healthz", "", foreign); resp.StatusCode != 200 {
		t.Errorf("GET /healthz with a foreign Host: %d", resp.StatusCode)
	}
}

// The UI and command-line clients, which are the server's own site or send
// no Origin, keep working, and settings widen who may call.
func TestSameSiteCalls(t *testing.T) {
	h := newHarness(t, options{api: func(c *api.Config) {
		c.UI = web.Handler()
		c.BindHost = "127.0.0.1"
		c.AllowedHosts = []string{"nimbus.example", "proxy.example:8443"}
		c.AllowedOrigins = []string{"https://ui.example.com"}
	}})
	port := mustURL(t, h.srv.URL).Port()
	n := 0
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"curl", map[string]string{"Content-Type": jsonCT}},
		{"UI on 127.0.0.1", map[string]string{"Origin": "http://127.0.0.1:" + port, "Content-Type": "application/json; charset=utf-8"}},
		{"UI on localhost", map[string]string{"Host": "localhost:" + port, "Origin": "http://localhost:" + port, "Content-Type": jsonCT}},
		{"UI on [::1]", map[string]string{"Host": "[::1]:" + port, "Origin": "http://[::1]:" + port, "Content-Type": jsonCT}},
		{"allowed host, any port", map[string]string{"Host": "nimbus.example", "Origin": "https://nimbus.example", "Content-Type": jsonCT}},
		{"allowed host and port", map[string]string{"Host": "proxy.example:8443", "Origin": "https://proxy.example:8443", "Content-Type": jsonCT}},
		{"allowed origin", map[string]string{"Origin": "https://ui.example.com", "Content-Type": jsonCT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n++
			name := "fn" + string(rune('a'+n))
			steps := []struct {
				method, path, body string
				status             int
			}{
				{"POST", "/api/functions", `{"name":"` + name + `","runtime":"python","code":"x = 1\n"}`, 201},
				{"PUT", "/api/functions/" + name, `{"memory":256}`, 200},
				{"POST", "/api/executions/" + name, `{"a":1}`, 200},
				{"GET", "/api/functions", "", 200},
				{"GET", "/", "", 200},
				{"DELETE", "/api/functions/" + name, "", 204}, // the UI's DELETE has no body and no Content-Type
			}
			for _, s := range steps {
				hdr := tc.headers
				if s.method == "GET" || s.method == "DELETE" {
					hdr = map[string]string{}
					for k, v := range tc.headers {
						if k != "Content-Type" {
							hdr[k] = v
						}
					}
				}
				if resp, body := h.send(s.method, s.path, s.body, hdr); resp.StatusCode != s.status {
					t.Fatalf("%s %s: %d %.300s, want %d", s.method, s.path, resp.StatusCode, body, s.status)
				}
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
