package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/api"
)

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `[]` + strings.Repeat("}", depth-1)
}

// Request bodies may nest 512 levels; 513 is refused with 400 naming the
// limit before anything decodes it or a worker sees it. Brackets inside
// strings are text, not nesting.
func TestJSONDepthLimit(t *testing.T) {
	h := newHarness(t, options{})
	h.create("echo", 1)
	deepString := `{"s":"` + strings.Repeat("[", 5000) + `\"` + strings.Repeat("{", 5000) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"event at the limit", "POST", "/api/executions/echo", nested(api.MaxJSONDepth), 200},
		{"event over the limit", "POST", "/api/executions/echo", nested(api.MaxJSONDepth + 1), 400},
		{"event 9000 deep", "POST", "/api/executions/echo", strings.Repeat("[", 9000) + strings.Repeat("]", 9000), 400},
		{"brackets in strings", "POST", "/api/executions/echo", deepString, 200},
		{"function over the limit", "POST", "/api/functions", `{"name":"deep","runtime":"python","code":"x = 1\n","env":` + nested(api.MaxJSONDepth) + `}`, 400},
		{"update over the limit", "PUT", "/api/functions/echo", `{"env":` + nested(api.MaxJSONDepth) + `}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.send(tc.method, tc.path, tc.body, map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, body)
			}
			if tc.status == http.StatusBadRequest && (errorCode(t, body) != "invalid" || !strings.Contains(body, "512")) {
				t.Errorf("the error does not name the limit of 512: %.300s", body)
			}
		})
	}
}
