package api

import (
	"encoding/json"
	"testing"
)

func TestDiffJSON(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want []Change
	}{
		{`{"a":1,"b":[1,2]}`, `{"a":1,"b":[1,2]}`, nil},
		{`{"a":1,"b":[1,2],"c":true}`, `{"a":2,"b":[1,3,4],"d":null}`, []Change{
			{Path: ".a", Before: json.RawMessage(`1`), After: json.RawMessage(`2`)},
			{Path: ".b[1]", Before: json.RawMessage(`2`), After: json.RawMessage(`3`)},
			{Path: ".b[2]", After: json.RawMessage(`4`)},
			{Path: ".c", Before: json.RawMessage(`true`)},
			{Path: ".d", After: json.RawMessage(`null`)},
		}},
		{`"x"`, `{"x":1}`, []Change{{Path: "", Before: json.RawMessage(`"x"`), After: json.RawMessage(`{"x":1}`)}}},
		{``, `1`, []Change{{Path: "", After: json.RawMessage(`1`)}}},
	} {
		got := diffJSON(json.RawMessage(c.a), json.RawMessage(c.b))
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(c.want)
		if string(g) != string(w) {
			t.Errorf("diff %s → %s:\n got %s\nwant %s", c.a, c.b, g, w)
		}
	}
	big := map[string]int{}
	for i := range 500 {
		big[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	b, _ := json.Marshal(big)
	if n := len(diffJSON(b, json.RawMessage(`{}`))); n != maxChanges {
		t.Errorf("a diff of 500 changes has %d entries, want %d", n, maxChanges)
	}
}
