package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nimbusfaas/nimbus/internal/api"
	"github.com/nimbusfaas/nimbus/internal/web"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// send sends a request with headers and returns the response with its body
// read.
func (h *harness) send(method, path string, body string, headers map[string]string) (*http.Response, string) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	// A stream that was not refused must not hang the test.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.key != "" {
		req.Header.Set("Authorization", "Bearer "+h.key)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Errorf("not a JSON error: %.200q", body)
	}
	return e.Error.Code
}

// Unknown paths are 404, not the UI's page; a route hit with another method
// is 405 with Allow; the UI's own paths still serve it.
func TestRoutesAnswerNotFoundAndMethodNotAllowed(t *testing.T) {
	h := newHarness(t, options{api: func(c *api.Config) { c.UI = web.Handler() }})
	for _, tc := range []struct {
		name, method, path, accept string
		status                     int
		code                       string // JSON error code; "" for none
		allow                      string
		contentType                string // prefix
		lambdaType                 string // the Lambda API's X-Amzn-ErrorType
	}{
		{"Lambda API from a client", "GET", "/2015-03-31/functions", "", 200, "", "", "application/json", ""},
		{"Lambda API, an unknown function", "POST", "/2015-03-31/functions/f/invocations", "application/json", 404, "", "", "application/json", "ResourceNotFoundException"},
		{"Lambda API, no such operation", "GET", "/2015-03-31/nothing", browserAccept, 404, "", "", "application/json", "UnknownOperationException"},
		{"Lambda API, wrong method", "PATCH", "/2015-03-31/functions/f", "", 404, "", "", "application/json", "UnknownOperationException"},
		{"unknown path from curl", "GET", "/favicon.ico", "*/*", 404, "not_found", "", "application/json", ""},
		{"unknown page from a browser", "GET", "/settings", browserAccept, 404, "", "", "text/html", ""},
		{"unknown /api route", "GET", "/api/nothing", browserAccept, 404, "not_found", "", "application/json", ""},
		{"/api itself", "GET", "/api", "", 404, "not_found", "", "application/json", ""},
		{"wrong method on a collection", "DELETE", "/api/functions", "", 405, "method_not_allowed", "GET, HEAD, POST", "application/json", ""},
		{"wrong method on a function", "PATCH", "/api/functions/f", "", 405, "method_not_allowed", "GET, HEAD, PUT, DELETE", "application/json", ""},
		{"GET of invoke", "GET", "/api/executions/f", "", 405, "method_not_allowed", "POST", "application/json", ""},
		{"wrong method on healthz", "POST", "/healthz", "", 405, "method_not_allowed", "GET, HEAD", "application/json", ""},
		{"the UI", "GET", "/", browserAccept, 200, "", "", "text/html", ""},
		{"the UI from curl", "GET", "/", "*/*", 200, "", "", "text/html", ""},
		{"a UI file", "GET", "/app.js", "*/*", 200, "", "", "text/javascript", ""},
		{"a UI stylesheet", "GET", "/app.css", "text/css,*/*;q=0.1", 200, "", "", "text/css", ""},
		{"POST to the UI", "POST", "/", "", 405, "", "GET, HEAD", "", ""},
		{"health", "GET", "/healthz", "", 200, "", "", "application/json", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json"}
			if tc.accept != "" {
				hdr["Accept"] = tc.accept
			}
			resp, body := h.send(tc.method, tc.path, "", hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.200q", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" {
				if c := errorCode(t, body); c != tc.code {
					t.Errorf("error code %q, want %q", c, tc.code)
				}
			}
			if got := resp.Header.Get("X-Amzn-ErrorType"); got != tc.lambdaType {
				t.Errorf("X-Amzn-ErrorType %q, want %q", got, tc.lambdaType)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.contentType)
			}
			if tc.status == 404 && strings.Contains(body, `<script src="/app.js">`) {
				t.Errorf("404 serves the UI's page")
			}
		})
	}
}
