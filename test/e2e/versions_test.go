package e2e_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestVersionsRunTheirOwnCode: real Python instances. A published
// version keeps running its code after the draft changes, sync, async
// (through an alias, resolved when the call runs) and on a schedule.
func TestVersionsRunTheirOwnCode(t *testing.T) {
	n := start(t)
	code := func(v string) string { return "def handler(event, context):\n    return '" + v + "'\n" }
	n.create(function{Name: "rel", Runtime: "python", Code: code("one")})
	var v struct {
		Version int `json:"version"`
	}
	if st := n.do("POST", "/api/functions/rel/versions", nil, &v); st != 201 || v.Version != 1 {
		t.Fatalf("publish: %d %+v", st, v)
	}
	if st := n.do("POST", "/api/functions/rel/aliases", map[string]any{"name": "live", "version": 1}, nil); st != 201 {
		t.Fatalf("alias: %d", st)
	}
	// Warm the draft's instance on the old code, then change the code.
	if ex := n.invoke("rel", nil); string(ex.Result) != `"one"` {
		t.Fatalf("draft: %s", ex.Result)
	}
	if st := n.do("PUT", "/api/functions/rel", map[string]any{"code": code("two")}, nil); st != 200 {
		t.Fatalf("update: %d", st)
	}
	for range 3 {
		if ex := n.invoke("rel", nil); string(ex.Result) != `"two"` || ex.Version != 0 {
			t.Fatalf("the draft after the change: %s (version %d)", ex.Result, ex.Version)
		}
		if ex := n.invoke("rel:live", nil); string(ex.Result) != `"one"` || ex.Version != 1 {
			t.Fatalf("live: %s (version %d)", ex.Result, ex.Version)
		}
	}
	// Async through the alias.
	a, _ := n.enqueue("rel:live", map[string]any{})
	if r := n.final("rel", a.ExecutionID, 60*time.Second); r.Status != "success" || string(r.Result) != `"one"` || r.Version != 1 {
		t.Errorf("async rel:live: %+v", r)
	}
	// A schedule of version 1.
	if st := n.do("PUT", "/api/functions/rel", map[string]any{"schedules": []map[string]any{{"name": "tick", "rate": "1s", "qualifier": "1"}}}, nil); st != 200 {
		t.Fatalf("schedule: %d", st)
	}
	eventually(t, 30*time.Second, "the schedule never ran version 1", func() bool {
		got, _ := n.history("rel", 100)
		for _, ex := range got {
			r := n.record("rel", ex.ExecutionID)
			if r.Trigger == "schedule" && r.Status == "success" {
				var s string
				json.Unmarshal(r.Result, &s)
				if s != "one" || r.Version != 1 {
					t.Fatalf("the schedule ran %q (version %d)", s, r.Version)
				}
				return true
			}
		}
		return false
	})
	n.do("PUT", "/api/functions/rel", map[string]any{"schedules": []any{}}, nil)
	if st := n.do("GET", "/api/functions/rel/versions/1", nil, nil); st != http.StatusOK {
		t.Errorf("version 1: %d", st)
	}
}
