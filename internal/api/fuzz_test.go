package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzAPI sends whatever bodies to the routes that decode them (create,
// update, invoke): a bad request is a 4xx, never a 5xx or a panic.
func FuzzAPI(f *testing.F) {
	h := newHarness(f, options{})
	h.create("fz", 2)
	u, _ := url.Parse(h.srv.URL)
	f.Add(uint8(0), []byte(`{"name":"a1","runtime":"python","code":"def handler(e, c):\n    return 1\n"}`))
	f.Add(uint8(1), []byte(`{"env":{"A":"b"},"timeout":1000}`))
	f.Add(uint8(1), []byte(`{"code":"x = ("}`))
	f.Add(uint8(2), []byte(`{"hello":"world","n":[1,2,{"x":null}]}`))
	f.Add(uint8(2), []byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Add(uint8(0), []byte(`{"name":"0123456789abcdef01234567","runtime":"node","files":{"../x.js":"1"}}`))
	f.Add(uint8(2), []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		method, path := "POST", "/api/functions"
		switch route % 3 {
		case 1:
			method, path = "PUT", "/api/functions/fz"
		case 2:
			path = "/api/executions/fz"
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Host = u.Host
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusCreated && route%3 == 0 { // keep the store small
			var created struct{ ID string }
			_ = json.Unmarshal(rec.Body.Bytes(), &created)
			del := httptest.NewRequest("DELETE", "/api/functions/"+created.ID, nil)
			del.Host = u.Host
			h.api.ServeHTTP(httptest.NewRecorder(), del)
		}
	})
}
