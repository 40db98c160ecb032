package fn_test

import (
	"encoding/json"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nimbusfaas/nimbus/internal/fn"
)

// FuzzNormalize decodes a function as the API and the store do and
// normalises it: never a panic, and whatever is accepted is safe to write
// below an instance directory and normalises again to itself.
func FuzzNormalize(f *testing.F) {
	f.Add([]byte(`{"name":"hello","runtime":"python","code":"def handler(e, c):\n    return 1\n"}`))
	f.Add([]byte(`{"name":"web","runtime":"nodejs20.x","handler":"lib/app.handler","files":{"lib/app.js":"x","package.json":"{}"}}`))
	f.Add([]byte(`{"name":"x","runtime":"python","files":{"../main.py":"x"}}`))
	f.Add([]byte(`{"name":"x","runtime":"python","handler":"a.b.c","files":{"a/b.py":"x","a":"y"}}`))
	f.Add([]byte(`{"name":"x","runtime":"node","env":{"A":"b"},"timeout":1,"memory":16,"maxInstances":2,"minInstances":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var g fn.Function
		if json.Unmarshal(b, &g) != nil {
			return
		}
		if err := g.Normalize(defaults); err != nil {
			if !strings.Contains(err.Error(), ":") {
				t.Errorf("error names no field: %v", err)
			}
			return
		}
		for p := range g.Files {
			if path.IsAbs(p) || p != path.Clean(p) || p == ".." || strings.HasPrefix(p, "../") || !utf8.ValidString(p) ||
				strings.ContainsAny(p, "\\\x00") || len(p) > fn.MaxPathLen {
				t.Fatalf("accepted unsafe path %q", p)
			}
		}
		if len(g.Files) == 0 || len(g.Files) > fn.MaxFiles || len(g.Handler) > fn.MaxHandlerLen {
			t.Fatalf("accepted %d files, handler %q", len(g.Files), g.Handler)
		}
		again := g
		if err := again.Normalize(defaults); err != nil {
			t.Fatalf("a normalised function does not normalise again: %v", err)
		}
		if !fn.SameConfig(&g, &again) || again.Name != g.Name || again.Handler != g.Handler {
			t.Fatalf("normalising twice changed it: %+v -> %+v", g, again)
		}
	})
}
