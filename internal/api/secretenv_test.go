package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A function's secret references go in and come out as {"secret": NAME}
// beside its plain variables, with the view's own fields kept; a
// malformed reference is a 400 that names env; an unknown field is
// still refused.
func TestFunctionSecretReferencesThroughTheAPI(t *testing.T) {
	h := newHarness(t, options{})
	body := map[string]any{"name": "refs", "runtime": "python", "code": "def handler(e, c):\n    return 1\n",
		"env": map[string]any{"MODE": "prod", "DB_PASSWORD": map[string]string{"secret": "db-password"}}}
	if st := h.do("POST", "/api/functions", body, nil); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	var got map[string]json.RawMessage
	if st := h.do("GET", "/api/functions/refs", nil, &got); st != http.StatusOK {
		t.Fatalf("get: %d", st)
	}
	if string(got["env"]) != `{"DB_PASSWORD":{"secret":"db-password"},"MODE":"prod"}` || got["keepAliveNow"] == nil || got["name"] == nil {
		t.Fatalf("GET shows env %s, keepAliveNow %s", got["env"], got["keepAliveNow"])
	}
	for name, env := range map[string]any{
		"number":       map[string]any{"A": map[string]any{"secret": 5}},
		"other object": map[string]any{"A": map[string]any{"x": 1}},
		"extra member": map[string]any{"A": map[string]any{"secret": "a", "b": 1}},
		"bad name":     map[string]any{"A": map[string]any{"secret": "-a"}},
	} {
		t.Run(name, func(t *testing.T) {
			var e struct {
				Error struct{ Field, Message string }
			}
			b := map[string]any{"name": "bad", "runtime": "python", "code": "x = 1", "env": env}
			if st := h.do("POST", "/api/functions", b, &e); st != http.StatusBadRequest || e.Error.Field != "env" {
				t.Fatalf("%d %+v, want 400 naming env", st, e)
			}
		})
	}
	var e struct{ Error struct{ Message string } }
	b := map[string]any{"name": "bad", "runtime": "python", "code": "x = 1", "colour": "blue"}
	if st := h.do("POST", "/api/functions", b, &e); st != http.StatusBadRequest || !strings.Contains(e.Error.Message, "colour") {
		t.Fatalf("unknown field: %d %+v", st, e)
	}
}
