package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// Saved test events are stored with the function (its draft): set and
// replaced by an update, validated, but never part of a version: not
// carried by a published one, no reason to publish a new one.
func TestTestEventsBelongToTheDraft(t *testing.T) {
	h := newHarness(t, options{})
	h.create("app", 1)
	type testEvent struct {
		Name  string          `json:"name"`
		Event json.RawMessage `json:"event"`
	}
	var f struct {
		Revision   int         `json:"revision"`
		TestEvents []testEvent `json:"testEvents"`
	}
	set := []map[string]any{{"name": "ada", "event": map[string]string{"name": "Ada"}}, {"name": "empty", "event": map[string]any{}}}
	if st := h.do("PUT", "/api/functions/app", map[string]any{"testEvents": set}, &f); st != 200 {
		t.Fatalf("set test events: %d", st)
	}
	if len(f.TestEvents) != 2 || f.TestEvents[0].Name != "ada" || string(f.TestEvents[0].Event) != `{"name":"Ada"}` {
		t.Fatalf("test events after the update: %+v", f.TestEvents)
	}
	h.do("GET", "/api/functions/app", nil, &f)
	if len(f.TestEvents) != 2 || f.TestEvents[1].Name != "empty" {
		t.Errorf("test events read back: %+v", f.TestEvents)
	}

	var v1 struct {
		Version    int `json:"version"`
		ConfigHash string
		Function   struct {
			TestEvents []testEvent `json:"testEvents"`
		} `json:"function"`
	}
	if st := h.do("POST", "/api/functions/app/versions", nil, &v1); st != 201 || v1.Version != 1 {
		t.Fatalf("publish: %d %+v", st, v1)
	}
	var got struct {
		TestEvents []testEvent `json:"testEvents"`
		Version    int         `json:"version"`
	}
	h.do("GET", "/api/functions/app/versions/1", nil, &got)
	if got.Version != 1 || got.TestEvents != nil || v1.Function.TestEvents != nil {
		t.Errorf("version 1 carries test events: %+v / %+v", got, v1.Function.TestEvents)
	}
	// A change of test events alone is stored, but publishes nothing new.
	if st := h.do("PUT", "/api/functions/app", map[string]any{"testEvents": set[:1]}, &f); st != 200 || len(f.TestEvents) != 1 {
		t.Fatalf("replace test events: %d %+v", st, f.TestEvents)
	}
	var again struct{ Version int }
	if st := h.do("POST", "/api/functions/app/versions", nil, &again); st != 200 || again.Version != 1 {
		t.Errorf("publish after a change of test events alone: %d version %d, want 200 and version 1", st, again.Version)
	}

	for _, tc := range []struct {
		name, field string
		events      any
	}{
		{"no name", "testEvents[0].name", []map[string]any{{"name": "", "event": 1}}},
		{"same name", "testEvents[1].name", []map[string]any{{"name": "a", "event": 1}, {"name": "a", "event": 2}}},
		{"too big", "testEvents[0].event", []map[string]any{{"name": "a", "event": strings.Repeat("x", 256<<10)}}},
	} {
		var e struct{ Error struct{ Code, Field string } }
		if st := h.do("PUT", "/api/functions/app", map[string]any{"testEvents": tc.events}, &e); st != 400 || e.Error.Field != tc.field {
			t.Errorf("%s: %d %+v, want 400 on %s", tc.name, st, e, tc.field)
		}
	}
	h.do("GET", "/api/functions/app", nil, &f)
	if len(f.TestEvents) != 1 || f.TestEvents[0].Name != "ada" {
		t.Errorf("after refused updates: %+v", f.TestEvents)
	}
}
