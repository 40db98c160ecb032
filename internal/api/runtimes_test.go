package api_test

import (
	"net/http"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/api"
	"github.com/nimbusfaas/nimbus/internal/runtime"
)

// GET /api/runtimes lists the runtime table, in its order, with whether
// this host has each runtime's interpreter.
func TestRuntimesComeFromTheTable(t *testing.T) {
	only := runtime.All()[0]
	h := newHarness(t, options{key: "k", api: func(c *api.Config) {
		c.Interpreters = runtime.Interpreters{only.Name: {Path: "/usr/bin/" + only.Command, Version: "1.2.3"}}
	}})
	var got []struct {
		Name           string   `json:"name"`
		Label          string   `json:"label"`
		Spellings      []string `json:"spellings"`
		DefaultHandler string   `json:"defaultHandler"`
		Extension      string   `json:"extension"`
		Available      bool     `json:"available"`
		Version        string   `json:"version"`
	}
	if st := h.do("GET", "/api/runtimes", nil, &got); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	all := runtime.All()
	if len(got) != len(all) {
		t.Fatalf("%d runtimes, want %d: %+v", len(got), len(all), got)
	}
	for i, r := range all {
		g := got[i]
		if g.Name != r.Name || g.Label != r.Label || g.DefaultHandler != r.DefaultHandler || g.Extension != r.Ext || len(g.Spellings) != len(r.Spellings) {
			t.Errorf("runtime %d: %+v, want the table's %s", i, g, r.Name)
		}
		want := r == only
		if g.Available != (want || r.Relayed()) || (g.Version == "1.2.3") != want {
			t.Errorf("%s: available %v version %q, want available %v (relayed %v)", r.Name, g.Available, g.Version, want, r.Relayed())
		}
	}
	// It needs the key, as every /api route does.
	h.key = ""
	if st := h.do("GET", "/api/runtimes", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("without the key: status %d, want 401", st)
	}
}
