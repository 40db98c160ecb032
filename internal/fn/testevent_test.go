package fn_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

func withTestEvents(t *testing.T, js string) *fn.Function {
	t.Helper()
	f := &fn.Function{Name: "tested", Runtime: "python", Code: "def handler(e, c): return 1"}
	if err := json.Unmarshal([]byte(js), &f.TestEvents); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return f
}

func TestNormalizeTestEvents(t *testing.T) {
	f := withTestEvents(t, `[{"name":" ada ","event":{ "name" : "Ada" }},{"name":"empty","event":{}},{"name":"list","event":[1, 2]}]`)
	if err := f.Normalize(defaults); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(f.TestEvents)
	if want := `[{"name":"ada","event":{"name":"Ada"}},{"name":"empty","event":{}},{"name":"list","event":[1,2]}]`; string(got) != want {
		t.Errorf("normalized %s, want %s", got, want)
	}
	none := withTestEvents(t, `[]`)
	if err := none.Normalize(defaults); err != nil || none.TestEvents != nil {
		t.Errorf("an empty list: %v %v, want nil", none.TestEvents, err)
	}
	// Exactly at the limits is fine.
	var many []string
	for i := range fn.MaxTestEvents {
		many = append(many, fmt.Sprintf(`{"name":"e%d","event":1}`, i))
	}
	atLimit := `"` + strings.Repeat("x", fn.MaxTestEventBytes-2) + `"`
	for _, js := range []string{"[" + strings.Join(many, ",") + "]", `[{"name":"big","event":` + atLimit + `}]`,
		`[{"name":"` + strings.Repeat("n", fn.MaxTestEventNameLen) + `","event":1}]`} {
		if err := withTestEvents(t, js).Normalize(defaults); err != nil {
			t.Errorf("at the limit: %v", err)
		}
	}
}

func TestNormalizeTestEventsRejects(t *testing.T) {
	var many []string
	for i := range fn.MaxTestEvents + 1 {
		many = append(many, fmt.Sprintf(`{"name":"e%d","event":1}`, i))
	}
	tooBig := `"` + strings.Repeat("x", fn.MaxTestEventBytes-1) + `"`
	for _, tc := range []struct{ name, js, field string }{
		{"too many", "[" + strings.Join(many, ",") + "]", "testEvents"},
		{"no name", `[{"name":"  ","event":1}]`, "testEvents[0].name"},
		{"long name", `[{"name":"` + strings.Repeat("n", fn.MaxTestEventNameLen+1) + `","event":1}]`, "testEvents[0].name"},
		{"control in name", `[{"name":"a\nb","event":1}]`, "testEvents[0].name"},
		{"twice", `[{"name":"a","event":1},{"name":" a","event":2}]`, "testEvents[1].name"},
		{"no event", `[{"name":"a"}]`, "testEvents[0].event"},
		{"too big", `[{"name":"a","event":` + tooBig + `}]`, "testEvents[0].event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := withTestEvents(t, tc.js).Normalize(defaults)
			var fe *fn.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, fn.ErrInvalid) || fe.Field != tc.field {
				t.Fatalf("Normalize = %v, want an error of field %s", err, tc.field)
			}
		})
	}
}

// Test events are no part of what runs: not in the behaviour hash; but
// they are part of the function as stored (SameConfig sees them).
func TestTestEventsAreNotBehaviour(t *testing.T) {
	a := withTestEvents(t, `[{"name":"a","event":1}]`)
	b := withTestEvents(t, `[{"name":"a","event":2}]`)
	for _, f := range []*fn.Function{a, b} {
		if err := f.Normalize(defaults); err != nil {
			t.Fatal(err)
		}
	}
	if a.BehaviourHash() != b.BehaviourHash() {
		t.Error("the behaviour hash changed with a test event")
	}
	if fn.SameConfig(a, b) {
		t.Error("SameConfig: two functions with different test events are the same: an update of test events alone would not be stored")
	}
}
