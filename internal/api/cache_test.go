package api_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/nimbusfaas/nimbus/internal/api"
	"github.com/nimbusfaas/nimbus/internal/store/sqlite"
)

// TestChangesFromAnotherServerReachTheInvokePath runs two APIs on one
// database, as two servers sharing MongoDB would: a function one of them
// changes or deletes stops being served as it was by the other, whose
// invoke path had it cached.
func TestChangesFromAnotherServerReachTheInvokePath(t *testing.T) {
	shared, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })
	useShared := options{api: func(c *api.Config) { c.Store = shared }}
	a, b := newHarness(t, useShared), newHarness(t, useShared)

	a.create("shared", 0)
	version := func() (int, int) {
		var ex struct{ Version int }
		st := b.do("POST", "/api/executions/shared", fakeEvent{}, &ex)
		return st, ex.Version
	}
	if st, v := version(); st != http.StatusOK || v != 1 {
		t.Fatalf("call on b: status %d, version %d", st, v)
	}

	if st := a.do("PUT", "/api/functions/shared", map[string]int{"timeout": 1234}, nil); st != http.StatusOK {
		t.Fatalf("update on a: %d", st)
	}
	if err := eventually(func() bool { st, v := version(); return st == http.StatusOK && v == 2 }); err != nil {
		t.Fatal("b still runs version 1 of a function a changed")
	}

	if st := a.do("DELETE", "/api/functions/shared", nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete on a: %d", st)
	}
	if err := eventually(func() bool { st, _ := version(); return st == http.StatusNotFound }); err != nil {
		t.Fatal("b still serves a function a deleted")
	}
}
