package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests call function URLs over HTTP on the real API server, engine
// and store, with the fake driver: a call without an x-fake header returns
// the payload v2.0 event it got, so what the function saw can be checked.

// createURL creates a function with a URL and more settings.
func (h *harness) createURL(name string, url map[string]any, more map[string]any) {
	h.t.Helper()
	body := map[string]any{"name": name, "runtime": "python", "code": "x = 1\n", "url": url}
	for k, v := range more {
		body[k] = v
	}
	var out map[string]any
	if st := h.do("POST", "/api/functions", body, &out); st != http.StatusCreated {
		h.t.Fatalf("create %s: %d %v", name, st, out)
	}
}

// call sends a request to a function URL, without the API key unless hdr
// has it.
func (h *harness) call(method, path string, hdr http.Header, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, data
}

// v2Event is the part of a payload v2.0 event the tests read.
type v2Event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	RequestContext        struct {
		AccountID    string `json:"accountId"`
		APIID        string `json:"apiId"`
		DomainName   string `json:"domainName"`
		DomainPrefix string `json:"domainPrefix"`
		HTTP         struct {
			Method    string `json:"method"`
			Path      string `json:"path"`
			Protocol  string `json:"protocol"`
			SourceIP  string `json:"sourceIp"`
			UserAgent string `json:"userAgent"`
		} `json:"http"`
		RequestID string `json:"requestId"`
		RouteKey  string `json:"routeKey"`
		Stage     string `json:"stage"`
		Time      string `json:"time"`
		TimeEpoch int64  `json:"timeEpoch"`
	} `json:"requestContext"`
	Body            *string `json:"body"`
	IsBase64Encoded bool    `json:"isBase64Encoded"`
}

func decodeEvent(t *testing.T, resp *http.Response, data []byte) v2Event {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var ev v2Event
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return ev
}

func TestURLEventGET(t *testing.T) {
	h := newHarness(t, options{})
	h.createURL("echo", map[string]any{"enabled": true, "auth": "none"}, nil)
	hdr := http.Header{
		"Cookie":     {"a=1; b=2", "c=3"},
		"X-Multi":    {"one", "two"},
		"User-Agent": {"tester/1.0"},
	}
	resp, data := h.call("GET", "/fn/echo/items/a%20b?x=1&x=2&y=z%21", hdr, nil)
	ev := decodeEvent(t, resp, data)
	rc := ev.RequestContext
	for _, c := range []struct{ name, got, want string }{
		{"version", ev.Version, "2.0"},
		{"routeKey", ev.RouteKey, "$default"},
		{"rawPath", ev.RawPath, "/items/a%20b"},
		{"rawQueryString", ev.RawQueryString, "x=1&x=2&y=z%21"},
		{"query x", ev.QueryStringParameters["x"], "1,2"},
		{"query y", ev.QueryStringParameters["y"], "z!"},
		{"header x-multi", ev.Headers["x-multi"], "one,two"},
		{"header user-agent", ev.Headers["user-agent"], "tester/1.0"},
		{"header host", ev.Headers["host"], strings.TrimPrefix(h.srv.URL, "http://")},
		{"cookie header", ev.Headers["cookie"], ""},
		{"accountId", rc.AccountID, "anonymous"},
		{"apiId", rc.APIID, "echo"},
		{"domainName", rc.DomainName, "127.0.0.1"},
		{"method", rc.HTTP.Method, "GET"},
		{"path", rc.HTTP.Path, "/items/a b"},
		{"protocol", rc.HTTP.Protocol, "HTTP/1.1"},
		{"sourceIp", rc.HTTP.SourceIP, "127.0.0.1"},
		{"userAgent", rc.HTTP.UserAgent, "tester/1.0"},
		{"requestId", rc.RequestID, resp.Header.Get("X-Nimbus-Execution-Id")},
		{"context routeKey", rc.RouteKey, "$default"},
		{"stage", rc.Stage, "$default"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !slices.Equal(ev.Cookies, []string{"a=1", "b=2", "c=3"}) {
		t.Errorf("cookies = %q", ev.Cookies)
	}
	if rc.RequestID == "" {
		t.Error("no requestId")
	}
	at, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.Time)
	if err != nil || rc.TimeEpoch/1000 != at.Unix() {
		t.Errorf("time %q (%v), timeEpoch %d", rc.Time, err, rc.TimeEpoch)
	}
	if ev.Body != nil || ev.IsBase64Encoded {
		t.Errorf("a GET has body %v, isBase64Encoded %v", ev.Body, ev.IsBase64Encoded)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content-type %q", resp.Header.Get("Content-Type"))
	}

	// The root of the URL is "/", with or without the slash.
	for _, p := range []string{"/fn/echo", "/fn/echo/"} {
		resp, data := h.call("GET", p, nil, nil)
		if ev := decodeEvent(t, resp, data); ev.RawPath != "/" || ev.RequestContext.HTTP.Path != "/" || ev.QueryStringParameters != nil {
			t.Errorf("%s: rawPath %q path %q query %v", p, ev.RawPath, ev.RequestContext.HTTP.Path, ev.QueryStringParameters)
		}
	}
}

func TestURLEventPOSTBodies(t *testing.T) {
	h := newHarness(t, options{})
	h.createURL("echo", map[string]any{"enabled": true, "auth": "none"}, nil)
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe}
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		base64            bool
	}{
		{"json", "application/json", []byte(`{"a": [1, 2]}`), false},
		{"form", "application/x-www-form-urlencoded", []byte("a=1&b=%C3%A9"), false},
		{"text with charset", "text/plain; charset=utf-8", []byte("héllo"), false},
		{"no content type", "", []byte("plain words"), false},
		{"vendor json", "application/vnd.api+json", []byte(`{}`), false},
		{"png", "image/png", binary, true},
		{"octet stream of text", "application/octet-stream", []byte("text, but said to be binary"), true},
		{"text that is not utf-8", "text/plain", []byte{'a', 0xff, 'b'}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.contentType != "" {
				hdr.Set("Content-Type", tc.contentType)
			}
			resp, data := h.call("POST", "/fn/echo/upload?kind=x", hdr, tc.body)
			ev := decodeEvent(t, resp, data)
			if ev.RequestContext.HTTP.Method != "POST" || ev.QueryStringParameters["kind"] != "x" || ev.Body == nil {
				t.Fatalf("event: %s", data)
			}
			got := []byte(*ev.Body)
			if tc.base64 {
				if got, _ = base64.StdEncoding.DecodeString(*ev.Body); !ev.IsBase64Encoded {
					t.Errorf("isBase64Encoded false for %s", tc.contentType)
				}
			} else if ev.IsBase64Encoded {
				t.Errorf("isBase64Encoded true for %s", tc.contentType)
			}
			if !bytes.Equal(got, tc.body) {
				t.Errorf("body = %q, want %q", got, tc.body)
			}
		})
	}
}

// fakeHeader is the x-fake header that makes the fake return result.
func fakeHeader(t *testing.T, ev fakeEvent) http.Header {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"X-Fake": {string(b)}}
}

func TestURLResponseMapping(t *testing.T) {
	h := newHarness(t, options{})
	h.createURL("fn", map[string]any{"enabled": true, "auth": "none"}, nil)
	for _, tc := range []struct {
		name        string
		result      string
		status      int
		body        string
		contentType string
		headers     map[string]string
		cookies     []string
	}{
		{"response object", `{"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-Custom": "v", "X-Number": 7},
			"cookies": ["a=1; Max-Age=60", "b=2"], "body": "created"}`,
			201, "created", "text/plain", map[string]string{"X-Custom": "v", "X-Number": "7"}, []string{"a=1; Max-Age=60", "b=2"}},
		{"base64 body", `{"statusCode": 200, "headers": {"content-type": "image/png"}, "isBase64Encoded": true, "body": "` +
			base64.StdEncoding.EncodeToString([]byte{0x89, 0, 0xff}) + `"}`,
			200, "\x89\x00\xff", "image/png", nil, nil},
		{"status only", `{"statusCode": 204}`, 204, "", "application/json", nil, nil},
		{"plain object", `{"message": "hi", "n": 1}`, 200, `{"message":"hi","n":1}`, "application/json", nil, nil},
		{"object with body but no statusCode", `{"body": "x", "headers": {"a": "b"}}`, 200, `{"body":"x","headers":{"a":"b"}}`, "application/json", nil, nil},
		{"string", `"Hello, world!"`, 200, `"Hello, world!"`, "application/json", nil, nil},
		{"number", `42`, 200, `42`, "application/json", nil, nil},
		{"null", `null`, 200, `null`, "application/json", nil, nil},
		{"a body that is not a string", `{"statusCode": 200, "body": {"a": 1}}`, 200, `{"a":1}`, "application/json", nil, nil},
		{"bad statusCode", `{"statusCode": "ok"}`, 502, `{"message":"Internal Server Error"}`, "application/json", nil, nil},
		{"statusCode out of range", `{"statusCode": 42}`, 502, `{"message":"Internal Server Error"}`, "application/json", nil, nil},
		{"bad base64", `{"statusCode": 200, "isBase64Encoded": true, "body": "%%%"}`, 502, `{"message":"Internal Server Error"}`, "application/json", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := h.call("GET", "/fn/fn", fakeHeader(t, fakeEvent{Result: json.RawMessage(tc.result)}), nil)
			if resp.StatusCode != tc.status || string(data) != tc.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, data, tc.status, tc.body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.contentType {
				t.Errorf("content-type %q, want %q", ct, tc.contentType)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, tc.cookies) {
				t.Errorf("Set-Cookie = %q, want %q", got, tc.cookies)
			}
		})
	}
}

func TestURLErrors(t *testing.T) {
	h := newHarness(t, options{queueTimeout: 50 * time.Millisecond})
	h.createURL("fn", map[string]any{"enabled": true, "auth": "none"}, map[string]any{"timeout": 100, "maxInstances": 1})
	h.createURL("off", map[string]any{"enabled": false, "auth": "none"}, nil)
	h.create("nourl", 0)

	t.Run("handler error is 502 without its details", func(t *testing.T) {
		resp, data := h.call("POST", "/fn/fn", fakeHeader(t, fakeEvent{Error: "ValueError"}), nil)
		if resp.StatusCode != http.StatusBadGateway || string(data) != `{"message":"Internal Server Error"}` {
			t.Fatalf("got %d %s", resp.StatusCode, data)
		}
	})
	t.Run("timeout is 504", func(t *testing.T) {
		resp, data := h.call("GET", "/fn/fn", fakeHeader(t, fakeEvent{SleepMs: 60_000}), nil)
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("got %d %s", resp.StatusCode, data)
		}
	})
	for _, p := range []string{"/fn/missing", "/fn/off", "/fn/nourl", "/fn/", "/fn/off/sub/path"} {
		t.Run("404 "+p, func(t *testing.T) {
			if resp, data := h.call("GET", p, nil, nil); resp.StatusCode != http.StatusNotFound || string(data) != `{"message":"Not Found"}` {
				t.Fatalf("got %d %s", resp.StatusCode, data)
			}
		})
	}
	t.Run("limits", func(t *testing.T) {
		if resp, _ := h.call("POST", "/fn/fn", nil, make([]byte, 6<<20+1)); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a body over 6 MiB: %d", resp.StatusCode)
		}
		if resp, _ := h.call("GET", "/fn/fn?q="+strings.Repeat("a", 8<<10), nil, nil); resp.StatusCode != http.StatusRequestURITooLong {
			t.Errorf("a URL over 8 KiB: %d", resp.StatusCode)
		}
		big := http.Header{"X-Big": {strings.Repeat("a", 9<<10), strings.Repeat("b", 8<<10)}}
		if resp, _ := h.call("GET", "/fn/fn", big, nil); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("headers over 16 KiB: %d", resp.StatusCode)
		}
	})
	t.Run("over capacity is 429 with Retry-After", func(t *testing.T) {
		release := make(chan struct{})
		holds.Store(t.Name(), release)
		// A function with a long timeout, held busy until the test ends.
		h.createURL("busy", map[string]any{"enabled": true, "auth": "none"}, map[string]any{"timeout": 60_000, "maxInstances": 1})
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("GET", h.srv.URL+"/fn/busy", nil)
			req.Header = fakeHeader(t, fakeEvent{Hold: t.Name()})
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		var f function
		h.do("GET", "/api/functions/busy", nil, &f)
		if err := eventually(func() bool { return h.engine.Instances(f.ID).Busy == 1 }); err != nil {
			t.Fatal("the first call never ran")
		}
		resp, data := h.call("GET", "/fn/busy", nil, nil)
		close(release)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Errorf("got %d %s, Retry-After %q", resp.StatusCode, data, resp.Header.Get("Retry-After"))
		}
		if st := <-done; st != http.StatusOK {
			t.Errorf("the held call: %d", st)
		}
	})
}

func TestURLCORS(t *testing.T) {
	h := newHarness(t, options{})
	h.createURL("web", map[string]any{"enabled": true, "auth": "none", "cors": map[string]any{
		"allowOrigins": []string{"https://app.example.com"}, "allowMethods": []string{"PUT", "DELETE"},
		"allowHeaders": []string{"content-type", "x-trace"}, "exposeHeaders": []string{"x-request-id"},
		"maxAge": 600, "allowCredentials": true,
	}}, nil)
	h.createURL("plain", map[string]any{"enabled": true, "auth": "none"}, nil)
	const origin = "https://app.example.com"

	preflight := func(path, origin, method, headers string) *http.Response {
		hdr := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}}
		if headers != "" {
			hdr.Set("Access-Control-Request-Headers", headers)
		}
		resp, _ := h.call("OPTIONS", path, hdr, nil)
		return resp
	}
	resp := preflight("/fn/web/x", origin, "PUT", "Content-Type, X-Trace")
	want := map[string]string{
		"Access-Control-Allow-Origin":      origin,
		"Access-Control-Allow-Methods":     "PUT",
		"Access-Control-Allow-Headers":     "content-type, x-trace",
		"Access-Control-Max-Age":           "600",
		"Access-Control-Allow-Credentials": "true",
	}
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: %d", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	for _, tc := range []struct{ name, origin, method, headers string }{
		{"other origin", "https://evil.example", "PUT", ""},
		{"method not allowed", origin, "PATCH", ""},
		{"header not allowed", origin, "PUT", "x-secret"},
	} {
		if resp := preflight("/fn/web", tc.origin, tc.method, tc.headers); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: %d, allow origin %q", tc.name, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	// Preflights were answered without running the function.
	if n := len(h.history("web")); n != 0 {
		t.Errorf("preflights ran the function %d times", n)
	}

	// A call from an allowed origin gets the CORS headers, and the
	// function's own CORS headers are left out; one from another origin
	// runs (the browser keeps the response from the page), without them.
	ownCORS := fakeEvent{Result: json.RawMessage(`{"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": "hi"}`)}
	hdr := fakeHeader(t, ownCORS)
	hdr.Set("Origin", origin)
	resp, data := h.call("PUT", "/fn/web", hdr, []byte("x"))
	if resp.StatusCode != 200 || string(data) != "hi" || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
		resp.Header.Get("Access-Control-Expose-Headers") != "x-request-id" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("allowed origin: %d %q %v", resp.StatusCode, data, resp.Header)
	}
	hdr.Set("Origin", "https://evil.example")
	resp, _ = h.call("PUT", "/fn/web", hdr, []byte("x"))
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %d, allow origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// Without CORS settings, the function answers preflights itself.
	resp = preflight("/fn/plain", origin, "PUT", "")
	if resp.StatusCode != 200 {
		t.Errorf("preflight of a URL without CORS: %d", resp.StatusCode)
	}
	if n := len(h.history("plain")); n != 1 {
		t.Errorf("the preflight of a URL without CORS ran it %d times, want 1", n)
	}
}

func TestURLAuth(t *testing.T) {
	h := newHarness(t, options{key: "s3cret"})
	h.createURL("public", map[string]any{"enabled": true, "auth": "none"}, nil)
	h.createURL("private", map[string]any{"enabled": true}, nil) // auth "key", the default

	if resp, data := h.call("GET", "/fn/public", http.Header{"Authorization": {"Bearer mine"}}, nil); resp.StatusCode != 200 {
		t.Errorf("public URL without the key: %d %s", resp.StatusCode, data)
	} else if ev := decodeEvent(t, resp, data); ev.Headers["authorization"] != "Bearer mine" {
		t.Errorf("a public URL's function does not get the Authorization header: %q", ev.Headers)
	}
	for _, tc := range []struct {
		name   string
		hdr    http.Header
		status int
	}{
		{"no key", nil, http.StatusUnauthorized},
		{"wrong key", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized},
		{"bearer key", http.Header{"Authorization": {"Bearer s3cret"}}, http.StatusOK},
		{"x-api-key", http.Header{"X-Api-Key": {"s3cret"}}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := h.call("POST", "/fn/private", tc.hdr, []byte("{}"))
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, data, tc.status)
			}
			if tc.status == http.StatusOK {
				ev := decodeEvent(t, resp, data)
				if _, ok := ev.Headers["authorization"]; ok {
					t.Error("the key reached the function in Authorization")
				}
				if _, ok := ev.Headers["x-api-key"]; ok {
					t.Error("the key reached the function in X-Api-Key")
				}
			}
		})
	}
	// The management API still takes the key; a URL does not open it.
	if resp, _ := h.call("GET", "/api/functions/public", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API without key: %d", resp.StatusCode)
	}
	// Any Origin may call a URL (CORS is for browsers to honour), but a
	// Host that is not this server's is refused (DNS rebinding).
	if resp, _ := h.call("GET", "/fn/public", http.Header{"Origin": {"https://other.example"}}, nil); resp.StatusCode != 200 {
		t.Errorf("URL from another origin: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+"/fn/public", nil)
	req.Host = "rebound.example:80"
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("URL with a foreign Host: %d", resp.StatusCode)
	}
}

func TestURLRecordsExecution(t *testing.T) {
	h := newHarness(t, options{})
	h.createURL("rec", map[string]any{"enabled": true, "auth": "none"}, nil)
	resp, data := h.call("GET", "/fn/rec/p?q=1", nil, nil)
	ev := decodeEvent(t, resp, data)
	h.invoke("rec", fakeEvent{}) // through the API: no trigger

	var page struct {
		Executions []struct {
			ID      string `json:"executionId"`
			Trigger string `json:"trigger"`
			Status  string `json:"status"`
		} `json:"executions"`
	}
	if st := h.do("GET", "/api/executions/rec/history", nil, &page); st != 200 || len(page.Executions) != 2 {
		t.Fatalf("history: %d %+v", st, page)
	}
	api, url := page.Executions[0], page.Executions[1] // newest first
	if url.ID != ev.RequestContext.RequestID || url.Trigger != "http" || url.Status != "success" {
		t.Errorf("URL call recorded as %+v, requestId %s", url, ev.RequestContext.RequestID)
	}
	if api.Trigger != "" {
		t.Errorf("API call recorded with trigger %q", api.Trigger)
	}
	var full struct {
		Trigger string  `json:"trigger"`
		Event   v2Event `json:"event"`
	}
	h.do("GET", "/api/executions/rec/"+url.ID, nil, &full)
	if full.Trigger != "http" || full.Event.RawPath != "/p" || full.Event.RequestContext.RequestID != url.ID {
		t.Errorf("recorded execution: %+v", full)
	}
}

// TestURLScopedKeys: a URL whose auth is "key" takes a key with the
// invoke scope whose globs take the function; others are refused.
func TestURLScopedKeys(t *testing.T) {
	h := newHarness(t, options{key: "b00t"})
	h.createURL("orders-eu", map[string]any{"enabled": true}, nil)
	invoke := h.newKey(map[string]any{"name": "hook", "scopes": []string{"invoke"}, "functions": []string{"orders-*"}})
	other := h.newKey(map[string]any{"name": "other", "scopes": []string{"invoke"}, "functions": []string{"billing"}})
	read := h.newKey(map[string]any{"name": "read", "scopes": []string{"read"}})
	slow := h.newKey(map[string]any{"name": "slow", "scopes": []string{"invoke"}, "rateLimit": 0.001})
	for _, tc := range []struct {
		name, key string
		status    int
	}{{"invoke key", invoke, 200}, {"another function's key", other, 403}, {"read key", read, 403}, {"rate-limited key", slow, 200}, {"rate-limited again", slow, 429}} {
		resp, data := h.call("POST", "/fn/orders-eu", http.Header{"X-Api-Key": {tc.key}}, []byte("{}"))
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, data, tc.status)
		}
		if tc.status == 429 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tc.name)
		}
	}
}
